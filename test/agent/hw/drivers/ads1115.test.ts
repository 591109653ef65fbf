import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '#agent/core/clock.js';
import { readWordBE, writeWordBE } from '#agent/hw/i2c.js';
import { EmulatedAds1115 } from '#agent/hw/emulated/ads1115.js';
import { EmulatedI2cBus } from '#agent/hw/emulated/bus.js';
import { runClock } from '../run-clock.js';
import { MotorFeed } from '#agent/hw/emulated/motor-feed.js';
import { PROFILES } from '#agent/core/profiles.js';
import { MotorSimulator } from '#agent/motor/simulator.js';

const T0 = Date.UTC(2024, 0, 8, 6);
import { Ads1115, type Ads1115Options } from '#agent/hw/drivers/ads1115.js';

function setup(volts: { a0?: number | ((t: number) => number); a1?: number } = {}, opts: Partial<Ads1115Options> = {}, vdd = 3.3) {
  const clock = new ManualClock(T0);
  const feed = new MotorFeed(new MotorSimulator({ profile: PROFILES.rpm_600, seed: 2, startMs: T0 }), clock);
  const input = { a0: volts.a0 ?? 2.3, a1: volts.a1 ?? 0 };
  // Test inputs: fixed volts, or a function of time (the sub-samples of a conversion see it move).
  const chip = new EmulatedAds1115({ feed, vdd, inputs: { 0: (_, t) => (typeof input.a0 === 'number' ? input.a0 : input.a0(t)), 1: () => input.a1 } });
  const bus = new EmulatedI2cBus().attach(0x48, chip);
  const driver = new Ads1115({ bus, clock, address: 0x48, fsrV: 4.096, dataRate: 860, mode: 'single', input: 'AIN0', ratio: 100, periodMs: 20, ...opts });
  return { clock, chip, bus, driver, input };
}

/** Runs a read to completion on the manual clock (it waits for the conversion). */
async function readOnce(clock: ManualClock, d: Ads1115): Promise<Float64Array | null> {
  const p = d.read();
  p.catch(() => {}); // a rejection is the caller's to assert, after the clock has run
  await runClock(clock, 20);
  return p;
}

test('ADS1115: identity from the threshold registers’ reset values; another part is refused by name', async () => {
  const { bus, driver } = setup();
  await driver.init();
  // Something at 0x48 whose Lo_thresh was changed (or is not an ADS1115 at all).
  await writeWordBE(bus, 0x48, 0x02, 0x1234);
  await assert.rejects(driver.init(), /check 'ads1115-identity' failed: Lo_thresh\/Hi_thresh at 0x48 read 0x1234\/0x7FFF, an ADS1115 holds 0x8000\/0x7FFF/);
});

test('ADS1115: the Config value written is the data sheet’s coding of PGA, MUX, MODE and DR', async () => {
  const cases: Array<[Partial<Ads1115Options>, number]> = [
    // MUX 100 (AIN0–GND), PGA 001 (±4.096 V), MODE 1 (single-shot), DR 111 (860 SPS), COMP_QUE 11.
    [{}, 0b0_100_001_1_111_00011],
    // MUX 000 (AIN0–AIN1), PGA 010 (±2.048 V), MODE 0 (continuous), DR 100 (128 SPS).
    [{ input: 'AIN0-AIN1', fsrV: 2.048, mode: 'continuous', dataRate: 128 }, 0b0_000_010_0_100_00011],
    // MUX 111 (AIN3–GND), PGA 000 (±6.144 V), single-shot, DR 101 (250 SPS).
    [{ input: 'AIN3', fsrV: 6.144, dataRate: 250 }, 0b0_111_000_1_101_00011],
  ];
  for (const [o, want] of cases) {
    const { bus, driver } = setup({}, o);
    assert.equal(driver.config, want);
    await driver.init();
    assert.equal((await readWordBE(bus, 0x48, 0x01)) & 0x7fff, want, `Config for ${JSON.stringify(o)}`);
  }
  assert.equal(0b0_100_001_1_111_00011, 0x43e3);
});

test('ADS1115: counts → volts against hand-computed values (LSB = FSR/32768, × the front-end ratio)', async () => {
  const { clock, driver, input, chip } = setup();
  await driver.init();
  // ±4.096 V: LSB 125 µV. 2.3 V → 18400 counts → 18400 · 125 µV · 100 = 230.0 V.
  let v = await readOnce(clock, driver);
  assert.ok(v);
  assert.ok(Math.abs(v[0]! - 230) < 1e-9, `${v[0]}`);
  // 1.23456 V → 9876.48 → 9876 counts → 123.45 V.
  input.a0 = 1.23456;
  v = await readOnce(clock, driver);
  assert.ok(Math.abs(v![0]! - 123.45) < 1e-9, `${v![0]}`);
  // 3.5 V (under VDD + 0.3 V and inside ±4.096 V) → 28000 counts → 350 V.
  input.a0 = 3.5;
  v = await readOnce(clock, driver);
  assert.ok(Math.abs(v![0]! - 350) < 1e-9);
  // 5 V is clamped by the input's ESD diodes at VDD + 0.3 V = 3.6 V → 28800 counts → 360 V.
  input.a0 = 5;
  v = await readOnce(clock, driver);
  assert.ok(Math.abs(v![0]! - 360) < 1e-9);
  assert.equal(chip.conversions, 4);

  // ±2.048 V, differential AIN0−AIN1 = −0.5 V: −8000 counts · 62.5 µV · 10 = −5.0.
  const d = setup({ a0: 0.2, a1: 0.7 }, { fsrV: 2.048, input: 'AIN0-AIN1', ratio: 10 });
  await d.driver.init();
  const w = await readOnce(d.clock, d.driver);
  assert.ok(Math.abs(w![0]! + 5) < 1e-9, `${w![0]}`);
  // Over range: saturates at 0x7FFF.
  const s = setup({ a0: 2.5 }, { fsrV: 2.048 });
  await s.driver.init();
  const x = await readOnce(s.clock, s.driver);
  assert.ok(Math.abs(x![0]! - (32767 * 2.048) / 32768 * 100) < 1e-9);
});

test('ADS1115: single-shot waits the conversion time on the clock; continuous reads the latest result', async () => {
  const { clock, driver } = setup();
  await driver.init();
  const t0 = clock.now();
  let done = false;
  const p = driver.read().then((v) => {
    done = true;
    return v;
  });
  await runClock(clock, 1);
  assert.equal(done, false, 'still converting after 1 ms (1/860 s = 1.16 ms)');
  await runClock(clock, 1);
  assert.ok(done);
  assert.ok(await p);
  assert.equal(driver.counters.pollRetries, 0);
  assert.ok(clock.now() - t0 >= 1000 / 860);

  const c = setup({}, { mode: 'continuous' });
  await c.driver.init();
  assert.equal(await c.driver.read(), null, 'nothing before the first conversion ends');
  await runClock(c.clock, 2);
  const v = await c.driver.read();
  assert.ok(Math.abs(v![0]! - 230) < 1e-9);
});

test('ADS1115: a conversion averages its input over 1/DR, as the delta-sigma part does: ripple faster than the data rate is filtered', async () => {
  // 2.3 V with 0.3 V of 100 Hz ripple (an RMS front end's residual at 2 × 50 Hz).
  const ripple = (t: number) => 2.3 + 0.3 * Math.sin((2 * Math.PI * 100 * t) / 1000);
  const spread = async (dataRate: number) => {
    const { clock, driver } = setup({ a0: ripple }, { dataRate, periodMs: 50 });
    await driver.init();
    const v: number[] = [];
    for (let i = 0; i < 200; i++) {
      await runClock(clock, 3.7); // conversions start at every phase of the ripple
      v.push((await readOnce(clock, driver))![0]!);
    }
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    return { mean: m, std: Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length) };
  };
  const fast = await spread(860); // 1.16 ms: the ripple passes almost whole (boxcar gain 0.98)
  const slow = await spread(128); // 7.8 ms: boxcar gain |sin(π·100·0.0078)/(π·100·0.0078)| = 0.26
  assert.ok(Math.abs(fast.std - (0.3 * 100 * 0.98) / Math.SQRT2) < 3, `860 SPS: std ${fast.std.toFixed(2)} V`);
  assert.ok(slow.std < 0.4 * fast.std, `128 SPS: std ${slow.std.toFixed(2)} V vs ${fast.std.toFixed(2)} V at 860 SPS`);
  assert.ok(Math.abs(slow.mean - 230) < 2 && Math.abs(fast.mean - 230) < 3);
});

test('ADS1115: a power-cycled part is configured again by the next single-shot read, and detected in continuous mode', async () => {
  const single = setup();
  await single.driver.init();
  single.bus.unplug(0x48);
  await assert.rejects(readOnce(single.clock, single.driver), (e: unknown) => (e as { code?: string }).code === 'EREMOTEIO');
  single.bus.replug(0x48);
  const v = await readOnce(single.clock, single.driver);
  assert.ok(Math.abs(v![0]! - 230) < 1e-9, 'the read rewrote Config (PGA ±4.096 V again, not the ±2.048 V reset)');

  const cont = setup({}, { mode: 'continuous' });
  await cont.driver.init();
  await runClock(cont.clock, 2);
  assert.ok(await cont.driver.read());
  cont.bus.unplug(0x48);
  cont.bus.replug(0x48);
  await assert.rejects(cont.driver.read(), /ADS1115@0x48 Config reads 0x0583, not the 0x42E3 written: it was power-cycled/);
});

test('ADS1115: boundary checks name themselves', () => {
  const { bus, clock } = setup();
  const base: Ads1115Options = { bus, clock, address: 0x48, fsrV: 4.096, dataRate: 860, mode: 'single', input: 'AIN0', ratio: 100, periodMs: 20 };
  assert.throws(() => new Ads1115({ ...base, address: 0x47 }), /check 'i2c-address' failed: address 0x47 is not one the chip answers on \(0x48, 0x49, 0x4A, 0x4B\)/);
  assert.throws(() => new Ads1115({ ...base, fsrV: 5 }), /check 'ads1115-pga' failed: full-scale range must be one of 6.144, 4.096/);
  assert.throws(() => new Ads1115({ ...base, dataRate: 100 }), /check 'ads1115-data-rate' failed/);
  assert.throws(() => new Ads1115({ ...base, input: 'AIN4' }), /check 'ads1115-input' failed/);
  assert.throws(() => new Ads1115({ ...base, ratio: 0 }), /check 'ads1115-ratio' failed: front-end ratio must be a finite number > 0, got 0/);
  assert.throws(() => new Ads1115({ ...base, dataRate: 64 }), /check 'ads1115-conversion-time' failed: a conversion at 64 SPS takes up to 17.3 ms, more than half the 20 ms period/);
});

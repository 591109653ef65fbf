import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '#agent/core/clock.js';
import { PROFILES } from '#agent/core/profiles.js';
import { MotorSimulator, type MotorReading } from '#agent/motor/simulator.js';
import { EmulatedAdxl345 } from '#agent/hw/emulated/adxl345.js';
import { EmulatedI2cBus } from '#agent/hw/emulated/bus.js';
import { EmulatedMcp9808 } from '#agent/hw/emulated/mcp9808.js';
import { MotorFeed } from '#agent/hw/emulated/motor-feed.js';
import { runClock } from '../run-clock.js';
import { Adxl345 } from '#agent/hw/drivers/adxl345.js';

const T0 = Date.UTC(2024, 0, 8, 6);

function setup(opts: Partial<ConstructorParameters<typeof Adxl345>[0]> = {}) {
  const clock = new ManualClock(T0);
  const motor = new MotorSimulator({ profile: PROFILES.rpm_1200, seed: 3, startMs: T0 });
  const feed = new MotorFeed(motor, clock);
  const chip = new EmulatedAdxl345(feed);
  const bus = new EmulatedI2cBus().attach(0x53, chip);
  const driver = new Adxl345({ bus, address: 0x53, rangeG: 16, odrHz: 100, periodMs: 20, ...opts });
  return { clock, motor, feed, chip, bus, driver };
}

const reading = (x: number, y: number, z: number): MotorReading => ({ accel_x: x, accel_y: y, accel_z: z, voltage: 230, rpm: 1200, temperature: 40 });

test('ADXL345: DEVID identifies the part; another chip at the address is refused by name', async () => {
  const { bus, driver, feed } = setup();
  await driver.init();
  assert.equal(await bus.readByte(0x53, 0x00), 0xe5);
  // An MCP9808 strapped to 0x1D (its range is 0x18–0x1F) answers DEVID with 0x00.
  bus.attach(0x1d, new EmulatedMcp9808(feed));
  const wrong = new Adxl345({ bus, address: 0x1d, rangeG: 16, odrHz: 100, periodMs: 20 });
  await assert.rejects(wrong.init(), /check 'adxl345-devid' failed: DEVID at 0x1D reads 0x00, an ADXL345 reads 0xE5/);
});

test('ADXL345: init writes BW_RATE, DATA_FORMAT, FIFO_CTL, INT_ENABLE and POWER_CTL as the data sheet codes them', async () => {
  const cases: Array<[{ rangeG: number; odrHz: number; fullResolution?: boolean }, { bw: number; fmt: number }]> = [
    [{ rangeG: 16, odrHz: 100 }, { bw: 0x0a, fmt: 0x0b }], // 100 Hz = 1010; FULL_RES | ±16 g (11)
    [{ rangeG: 2, odrHz: 800 }, { bw: 0x0d, fmt: 0x08 }], // 800 Hz = 1101; FULL_RES | ±2 g (00)
    [{ rangeG: 4, odrHz: 50, fullResolution: false }, { bw: 0x09, fmt: 0x01 }], // 50 Hz = 1001; 10-bit, ±4 g
  ];
  for (const [o, want] of cases) {
    const { bus, driver, chip } = setup(o);
    await driver.init();
    assert.equal(await bus.readByte(0x53, 0x2c), want.bw, `BW_RATE for ${o.odrHz} Hz`);
    assert.equal(chip.odrHz, o.odrHz);
    assert.equal(await bus.readByte(0x53, 0x31), want.fmt, `DATA_FORMAT for ±${o.rangeG} g`);
    assert.equal(await bus.readByte(0x53, 0x38), 0x80, 'FIFO_CTL: stream mode');
    assert.equal(await bus.readByte(0x53, 0x2e), 0x00, 'INT_ENABLE: no interrupts');
    assert.equal(await bus.readByte(0x53, 0x2d), 0x08, 'POWER_CTL: Measure');
  }
});

test('ADXL345: counts → m/s² against hand-computed values (3.9 mg/LSB full resolution, 31.2 mg/LSB 10-bit ±16 g)', async () => {
  const { driver, chip, clock } = setup();
  await driver.init();
  const g = 9.80665;
  // 1 g → 256.4 → 256 counts → 256 · 0.0039 · 9.80665 = 9.79095936 m/s²; −0.5 g → −128 → −4.89547968;
  // 20 g saturates the 13-bit ±16 g full-resolution code at 4095 → 4095 · 0.0039 · 9.80665 = 156.6171 m/s².
  chip.take(clock.now(), reading(g, -0.5 * g, 20 * g));
  const v = await driver.read();
  assert.ok(v);
  assert.equal(v.length, 3);
  assert.ok(Math.abs(v[0]! - 9.79095936) < 1e-9, `x ${v[0]}`);
  assert.ok(Math.abs(v[1]! + 4.89547968) < 1e-9, `y ${v[1]}`);
  assert.ok(Math.abs(v[2]! - 4095 * 0.0039 * 9.80665) < 1e-9, `z ${v[2]}`);
  assert.ok(Math.abs(v[2]! - 156.6171) < 1e-3);

  const ten = setup({ fullResolution: false });
  await ten.driver.init();
  // 10-bit ±16 g: 31.2 mg/LSB; 1 g → 32.05 → 32 counts → 32 · 0.0312 · 9.80665 = 9.79095936 m/s².
  ten.chip.take(ten.clock.now(), reading(g, 3 * g, -g));
  const w = await ten.driver.read();
  assert.ok(w);
  assert.ok(Math.abs(w[0]! - 9.79095936) < 1e-9);
  assert.ok(Math.abs(w[1]! - 96 * 0.0312 * 9.80665) < 1e-9); // 3 g → 96.15 → 96
  assert.ok(Math.abs(w[2]! + 9.79095936) < 1e-9);
});

test('ADXL345: one value per axis per period (the newest sample), RMS/peak of the burst on request', async () => {
  const { driver, chip, clock } = setup({ stats: true, odrHz: 400, periodMs: 20 });
  await driver.init();
  assert.deepEqual(driver.channels, ['accel_x', 'accel_y', 'accel_z', 'accel_x_rms', 'accel_y_rms', 'accel_z_rms', 'accel_x_peak', 'accel_y_peak', 'accel_z_peak']);
  const g = 9.80665;
  const lsb = 0.0039 * g;
  // Four samples on x: +1, −1, +1, −1 g (AC RMS 1 g, peak 1 g); y constant; z one spike.
  const xs = [1, -1, 1, -1];
  const zs = [0, 0, 2, 0];
  xs.forEach((x, i) => chip.take(clock.now() + i, reading(x * g, 0.5 * g, zs[i]! * g)));
  const v = await driver.read();
  assert.ok(v);
  assert.ok(Math.abs(v[0]! + 256 * lsb) < 1e-9, 'x is the newest sample');
  assert.ok(Math.abs(v[3]! - 256 * lsb) < 1e-9, `x rms ${v[3]}`);
  assert.ok(Math.abs(v[6]! - 256 * lsb) < 1e-9, `x peak ${v[6]}`);
  assert.equal(v[4], 0, 'y rms: a constant has no AC part');
  // z codes 0, 0, 513, 0: mean 128.25; peak |513 − 128.25| = 384.75 counts; rms √(3·128.25² + 384.75²)/2.
  assert.ok(Math.abs(v[8]! - 384.75 * lsb) < 1e-9, `z peak ${v[8]}`);
  assert.ok(Math.abs(v[5]! - (Math.sqrt(3 * 128.25 ** 2 + 384.75 ** 2) / 2) * lsb) < 1e-9, `z rms ${v[5]}`);
  assert.equal(driver.counters.samples, 4);
});

test('ADXL345: the FIFO fills at the output data rate, and a full FIFO (samples lost in stream mode) is reported', async () => {
  const { driver, chip, clock } = setup({ odrHz: 800, periodMs: 20 });
  await driver.init();
  await runClock(clock, 20);
  assert.ok(await driver.read());
  assert.equal(driver.counters.samples, 16, '800 Hz × 20 ms = 16 samples per period');
  assert.equal(driver.counters.fifoOverflows, 0);
  await runClock(clock, 100); // a read 100 ms late: 80 samples into a 32-level FIFO
  const v = await driver.read();
  assert.ok(v);
  assert.equal(driver.counters.fifoOverflows, 1);
  assert.equal(driver.counters.samples, 16 + 32);
  assert.equal(chip.lost, 80 - 32);
  await runClock(clock, 20);
  await driver.read();
  assert.equal(driver.counters.fifoOverflows, 1, 'one overflow per full FIFO, not per read');
});

test('ADXL345: the motor seen through the chip: gravity on z, vibration on x/y, codes on the 3.9 mg grid', async () => {
  const { driver, clock } = setup();
  await driver.init();
  const lsb = 0.0039 * 9.80665;
  const z: number[] = [];
  for (let i = 0; i < 200; i++) {
    await runClock(clock, 20);
    const v = await driver.read();
    assert.ok(v, `period ${i} has a sample`);
    for (const a of v) assert.ok(Math.abs(a / lsb - Math.round(a / lsb)) < 1e-9, `${a} is a whole number of LSB`);
    z.push(v[2]!);
  }
  const mean = z.reduce((a, b) => a + b, 0) / z.length;
  assert.ok(Math.abs(mean - 9.81) < 0.3, `mean z ${mean}`);
});

test('ADXL345: a power-cycled part (back in standby) is a ChipResetError; init brings it back', async () => {
  const { driver, bus, clock } = setup();
  await driver.init();
  await runClock(clock, 20);
  assert.ok(await driver.read());
  bus.unplug(0x53);
  await assert.rejects(driver.read(), (e: unknown) => (e as { code?: string }).code === 'EREMOTEIO');
  bus.replug(0x53);
  await runClock(clock, 20);
  await assert.rejects(driver.read(), /ADXL345@0x53 is in standby \(POWER_CTL 0x00\): it was power-cycled/);
  await driver.init();
  await runClock(clock, 20);
  assert.ok(await driver.read());
});

test('ADXL345: boundary checks name themselves', () => {
  const bus = new EmulatedI2cBus();
  const base = { bus, address: 0x53, rangeG: 16, odrHz: 100, periodMs: 20 };
  assert.throws(() => new Adxl345({ ...base, address: 0x54 }), /check 'i2c-address' failed: address 0x54 is not one the chip answers on \(0x53, 0x1D\)/);
  assert.throws(() => new Adxl345({ ...base, rangeG: 3 }), /check 'adxl345-range' failed: range \(±g\) must be one of 2, 4, 8, 16, got 3/);
  assert.throws(() => new Adxl345({ ...base, odrHz: 300 }), /check 'adxl345-odr' failed: output data rate must be one of 3200, 1600/);
  assert.throws(() => new Adxl345({ ...base, odrHz: 25 }), /check 'adxl345-odr' failed: at 25 Hz a 20 ms period gets 0.50 samples/);
  assert.throws(() => new Adxl345({ ...base, odrHz: 800, periodMs: 50 }), /check 'adxl345-fifo-depth' failed: at 800 Hz a 50 ms period fills 40 of the 32 FIFO entries/);
});

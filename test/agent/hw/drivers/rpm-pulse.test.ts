import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '#agent/core/clock.js';
import { PROFILES } from '#agent/core/profiles.js';
import { MotorSimulator } from '#agent/motor/simulator.js';
import type { BinaryValue, EdgeCallback, GpioInput } from '#agent/hw/gpio.js';
import { MotorFeed } from '#agent/hw/emulated/motor-feed.js';
import { EmulatedTach } from '#agent/hw/emulated/tach.js';
import { runClock } from '../run-clock.js';
import { RpmPulse, type RpmPulseOptions } from '#agent/hw/drivers/rpm-pulse.js';

const T0 = Date.UTC(2024, 0, 8, 6);

/** A pin whose edges the test places by hand (stamped by the clock, as onoff's callbacks are). */
class HandPin implements GpioInput {
  private cbs: EdgeCallback[] = [];
  watch(cb: EdgeCallback): void {
    this.cbs.push(cb);
  }
  unwatchAll(): void {
    this.cbs = [];
  }
  async read(): Promise<BinaryValue> {
    return 1;
  }
  unexport(): void {}
  edge(): void {
    for (const cb of this.cbs) cb(null, 0);
  }
  get watchers(): number {
    return this.cbs.length;
  }
}

function hand(o: Partial<RpmPulseOptions> = {}) {
  const clock = new ManualClock(T0);
  const pin = new HandPin();
  const driver = new RpmPulse({ input: pin, clock, pulsesPerRev: 2, debounceMs: 1, timeoutMs: 1000, ...o });
  return { clock, pin, driver };
}

test('rpm: 60 000 · k / (pulses per rev · span) over one revolution of pulse periods', async () => {
  const { clock, pin, driver } = hand({ pulsesPerRev: 2 });
  await driver.init();
  assert.equal(await driver.read(), null, 'no pulse yet, before the timeout: nothing, not 0');
  pin.edge();
  clock.advance(50);
  assert.equal(await driver.read(), null, 'one edge is no period');
  pin.edge();
  // One period of 50 ms at 2 pulses/rev: 60 000 · 1 / (2 · 50) = 600 rpm.
  assert.equal((await driver.read())![0], 600);
  clock.advance(40);
  pin.edge();
  // Two periods (50 + 40 ms) = one revolution in 90 ms: 60 000 · 2 / (2 · 90) = 666.67 rpm.
  assert.ok(Math.abs((await driver.read())![0]! - 60_000 / 90) < 1e-9);
  clock.advance(40);
  pin.edge();
  // The oldest period drops out: 40 + 40 ms → 750 rpm.
  assert.equal((await driver.read())![0], 750);
});

test('rpm: bounces inside the debounce time are dropped', async () => {
  const { clock, pin, driver } = hand({ pulsesPerRev: 1, debounceMs: 2 });
  await driver.init();
  pin.edge();
  clock.advance(0.5);
  pin.edge(); // contact bounce
  clock.advance(1);
  pin.edge(); // still within 2 ms of the accepted edge
  clock.advance(98.5);
  pin.edge();
  assert.equal(driver.counters.bounces, 2);
  assert.equal(driver.counters.edges, 2);
  assert.equal((await driver.read())![0], 600); // 100 ms per revolution
});

test('rpm: slowing down is bounded by the open interval; no edge for timeoutMs reads 0', async () => {
  const { clock, pin, driver } = hand({ pulsesPerRev: 1, timeoutMs: 1000 });
  await driver.init();
  pin.edge();
  clock.advance(100);
  pin.edge();
  clock.advance(100);
  assert.equal((await driver.read())![0], 600, 'the open interval equals the period: the measurement stands');
  clock.advance(200); // 300 ms since the last edge: 3× the period but not 250 ms more than one — a late edge, maybe
  assert.equal((await driver.read())![0], 600);
  clock.advance(100); // 400 ms: the shaft is slowing down: at most 150 rpm
  assert.equal((await driver.read())![0], 150);
  clock.advance(601);
  assert.equal((await driver.read())![0], 0, 'stopped');
  const fresh = hand({ timeoutMs: 1000 });
  await fresh.driver.init();
  fresh.clock.advance(1001);
  assert.equal((await fresh.driver.read())![0], 0, 'no pulse at all within the timeout: 0');
  await fresh.driver.close();
  assert.equal(fresh.pin.watchers, 0, 'close unwatches the pin');
});

test('rpm: the emulated pickup on the simulated shaft reads the motor’s speed', async () => {
  const clock = new ManualClock(T0);
  const motor = new MotorSimulator({ profile: PROFILES.rpm_1200, seed: 5, startMs: T0, load: 0.5 });
  const feed = new MotorFeed(motor, clock);
  for (const ppr of [1, 4]) {
    const tach = new EmulatedTach({ feed, pulsesPerRev: ppr });
    const driver = new RpmPulse({ input: tach, clock, pulsesPerRev: ppr, debounceMs: 0.5, timeoutMs: 2000 });
    await driver.init();
    await runClock(clock, 500);
    let worst = 0;
    for (let i = 0; i < 100; i++) {
      await runClock(clock, 20);
      const v = await driver.read();
      assert.ok(v);
      worst = Math.max(worst, Math.abs(v[0]! / motor.state().rpm - 1));
    }
    // The pickup measures the mean speed over the last revolution; the shaft's speed wanders ±0.35 %.
    assert.ok(worst < 0.01, `${ppr} pulse(s)/rev: worst deviation ${(worst * 100).toFixed(3)} %`);
    assert.ok(tach.edges > 0);
    await driver.close();
  }
});

test('rpm: a dead pickup (the simulator’s dropout on rpm) reads 0 after the timeout', async () => {
  const clock = new ManualClock(T0);
  const motor = new MotorSimulator({ profile: PROFILES.rpm_600, seed: 6, startMs: T0, load: 0.5 });
  const feed = new MotorFeed(motor, clock);
  const tach = new EmulatedTach({ feed, pulsesPerRev: 1 });
  const driver = new RpmPulse({ input: tach, clock, pulsesPerRev: 1, debounceMs: 0.5, timeoutMs: 1000 });
  await driver.init();
  await runClock(clock, 1000);
  assert.ok((await driver.read())![0]! > 550);
  motor.setFault('dropout', 'obvious', { channels: ['rpm'] });
  await runClock(clock, 1100);
  assert.equal((await driver.read())![0], 0);
  motor.clearFault('dropout');
  await runClock(clock, 500);
  assert.ok((await driver.read())![0]! > 550);
});

test('rpm: boundary checks name themselves', () => {
  const { clock, pin } = hand();
  const base: RpmPulseOptions = { input: pin, clock, pulsesPerRev: 1, debounceMs: 1, timeoutMs: 1000 };
  assert.throws(() => new RpmPulse({ ...base, pulsesPerRev: 0 }), /check 'rpm-pulses-per-rev' failed/);
  // 6000 rpm at 4 pulses/rev is a pulse every 2.5 ms: a 2 ms debounce would eat real pulses.
  assert.throws(() => new RpmPulse({ ...base, pulsesPerRev: 4, debounceMs: 2 }), /check 'rpm-debounce' failed: debounce must be >= 0 and < half the pulse period at 6000 rpm \(1.250 ms\), got 2 ms/);
  assert.throws(() => new RpmPulse({ ...base, timeoutMs: 5 }), /check 'rpm-timeout' failed/);
});

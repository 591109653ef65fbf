import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '#agent/core/clock.js';
import { PROFILES } from '#agent/core/profiles.js';
import { MotorSimulator, type MotorReading } from '#agent/motor/simulator.js';
import { readWordBE } from '#agent/hw/i2c.js';
import { EmulatedAdxl345 } from '#agent/hw/emulated/adxl345.js';
import { EmulatedI2cBus } from '#agent/hw/emulated/bus.js';
import { EmulatedMcp9808 } from '#agent/hw/emulated/mcp9808.js';
import { MotorFeed } from '#agent/hw/emulated/motor-feed.js';
import { runClock } from '../run-clock.js';
import { Mcp9808, mcp9808Celsius } from '#agent/hw/drivers/mcp9808.js';

const T0 = Date.UTC(2024, 0, 8, 6);

function setup(resolutionC = 0.0625) {
  const clock = new ManualClock(T0);
  const motor = new MotorSimulator({ profile: PROFILES.rpm_600, seed: 4, startMs: T0, quantizeTemperature: false });
  const feed = new MotorFeed(motor, clock);
  const chip = new EmulatedMcp9808(feed);
  const bus = new EmulatedI2cBus().attach(0x18, chip);
  const driver = new Mcp9808({ bus, clock, address: 0x18, resolutionC });
  return { clock, motor, feed, chip, bus, driver };
}

const at = (temperature: number): MotorReading => ({ accel_x: 0, accel_y: 0, accel_z: 9.81, voltage: 230, rpm: 600, temperature });

test('MCP9808: manufacturer and device ID identify the part; another chip is refused by name', async () => {
  const { bus, driver, feed } = setup();
  await driver.init();
  assert.equal(await readWordBE(bus, 0x18, 0x06), 0x0054);
  assert.equal((await readWordBE(bus, 0x18, 0x07)) >> 8, 0x04);
  bus.attach(0x1d, new EmulatedAdxl345(feed)); // an ADXL345 strapped to 0x1D, in the MCP9808's range
  const wrong = new Mcp9808({ bus, clock: feed.clock, address: 0x1d, resolutionC: 0.0625 });
  await assert.rejects(wrong.init(), /check 'mcp9808-id' failed: manufacturer\/device ID at 0x1D read 0x0000\/0x00, an MCP9808 reads 0x0054\/0x04/);
});

test('MCP9808: init writes CONFIG 0x0000, T_CRIT −40 °C and the Resolution code', async () => {
  for (const [res, code] of [[0.5, 0], [0.25, 1], [0.125, 2], [0.0625, 3]] as const) {
    const { bus, driver } = setup(res);
    await driver.init();
    assert.equal(await readWordBE(bus, 0x18, 0x01), 0x0000);
    assert.equal(await readWordBE(bus, 0x18, 0x04), 0x1d80, 'T_CRIT: −40 °C = 0x1D80 (sign bit 12, 0.25 °C steps)');
    assert.equal(await bus.readByte(0x18, 0x08), code, `Resolution for ${res} °C`);
  }
});

test('MCP9808: T_A → °C against hand-computed values, both signs, every resolution', async () => {
  // Register words from the data sheet's format: +25.0625 °C = 0x0191, −0.0625 °C = 0x1FFF, −40 °C = 0x1D80.
  assert.equal(mcp9808Celsius(0x0191), 25.0625);
  assert.equal(mcp9808Celsius(0x1fff), -0.0625);
  assert.equal(mcp9808Celsius(0x1d80), -40);
  assert.equal(mcp9808Celsius(0xe191), 25.0625, 'flag bits 15..13 are not temperature');

  const cases: Array<[number, number, number]> = [
    // [resolution, true °C, reading]: 23.4567 · 16 = 375.3 → 375 → 23.4375; at 0.5 °C: 375 → 368 (low 3 bits 0) → 23.0
    [0.0625, 23.4567, 23.4375],
    [0.5, 23.4567, 23.0],
    [0.25, 23.4567, 23.25],
    // −10.3 · 16 = −164.8 → −165 → −10.3125; at 0.5 °C the two's complement code −165 → −168 → −10.5
    [0.0625, -10.3, -10.3125],
    [0.5, -10.3, -10.5],
  ];
  for (const [res, trueC, want] of cases) {
    const { driver, chip, clock } = setup(res);
    await driver.init();
    chip.take(clock.now(), at(trueC));
    const v = await driver.read();
    assert.ok(v);
    assert.equal(v[0], want, `${trueC} °C at ${res} °C resolution`);
  }
});

test('MCP9808: nothing before the first conversion after power-on (no invented 0 °C), then the motor’s frame temperature', async () => {
  const { driver, clock, bus, motor } = setup();
  await driver.init();
  assert.equal(await driver.read(), null, 'T_A reads 0x0000 before the first 250 ms conversion');
  await runClock(clock, 260);
  const v = await driver.read();
  assert.ok(v);
  assert.ok(Math.abs(v[0]! - motor.state().frameC) < 0.1, `${v[0]} vs frame ${motor.state().frameC}`);
  assert.ok(Number.isInteger(v[0]! * 16), 'a multiple of 0.0625 °C');
  bus.unplug(0x18);
  bus.replug(0x18);
  assert.equal(await driver.read(), null, 'power-cycled: nothing until it has converted again');
  assert.equal(driver.counters.notConverted, 2);
  await runClock(clock, 260);
  assert.ok(await driver.read());
});

test('MCP9808: boundary checks name themselves', () => {
  const bus = new EmulatedI2cBus();
  const clock = new ManualClock(0);
  assert.throws(() => new Mcp9808({ bus, clock, address: 0x20, resolutionC: 0.0625 }), /check 'i2c-address' failed: address 0x20 is not one the chip answers on \(0x18, /);
  assert.throws(() => new Mcp9808({ bus, clock, address: 0x18, resolutionC: 0.1 }), /check 'mcp9808-resolution' failed: resolution must be one of 0.5, 0.25, 0.125, 0.0625 °C, got 0.1/);
});

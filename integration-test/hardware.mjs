#!/usr/bin/env node
/**
 * Hardware check on a Raspberry Pi with the sensors wired as in the README (Wiring): probes the I2C
 * bus, sets up every part found with the agent's own drivers, samples for a while at the profile's
 * period and checks that the readings are plausible for a motor at rest or running. Not part of
 * `npm test` (it needs the hardware): `npm run integration -- [options]`.
 *
 *   --bus N          I2C bus (default 1)
 *   --seconds S      how long to sample (default 10)
 *   --profile P      rpm_600 or rpm_1200: the sampling period (default rpm_600)
 *   --rpm-gpio G     BCM GPIO of the speed pickup; omit to skip rpm (default: skip)
 *   --gpio-base B    sysfs GPIO base (512 on Raspberry Pi OS kernels 6.6+; default 0)
 *   --voltage LO:HI  expected supply range, V RMS, through the front end of hardware.ads1115.ratio (default 0:400)
 *   --config FILE    the daemon's config file (hardware.* settings)
 *   --sim            run against the emulated rig instead (checks this script itself, no hardware)
 *
 * Exit code 0 when every part found was identified, set up and read plausibly; 1 otherwise.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../dist/agent/src/config/load.js';
import { systemClock } from '../dist/agent/src/core/clock.js';
import { createLogger } from '../dist/agent/src/core/log.js';
import { PROFILES } from '../dist/agent/src/core/profiles.js';
import { buildDrivers } from '../dist/agent/src/hw/build.js';
import { buildRig } from '../dist/agent/src/hw/emulated/rig.js';
import { openGpioInput } from '../dist/agent/src/hw/gpio.js';
import { hex, openI2cBus } from '../dist/agent/src/hw/i2c.js';
import { probeBus } from '../dist/agent/src/hw/probe.js';
import { Sampler } from '../dist/agent/src/hw/sampler.js';
import { MotorSimulator } from '../dist/agent/src/motor/simulator.js';

const { values: o } = parseArgs({
  options: {
    bus: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '10' },
    profile: { type: 'string', default: 'rpm_600' },
    'rpm-gpio': { type: 'string' },
    'gpio-base': { type: 'string', default: '0' },
    voltage: { type: 'string', default: '0:400' },
    config: { type: 'string' },
    sim: { type: 'boolean', default: false },
  },
});
const profile = PROFILES[o.profile];
if (!profile) throw new Error(`--profile must be rpm_600 or rpm_1200, got ${o.profile}`);
const seconds = Number(o.seconds);
const [vLo, vHi] = o.voltage.split(':').map(Number);
const config = loadConfig({ argv: o.config ? ['--config', o.config] : [] });
const settings = structuredClone(config.hardware);
settings.i2cBus = Number(o.bus);
if (o['rpm-gpio'] !== undefined) settings.rpm.gpio = Number(o['rpm-gpio']);
settings.rpm.gpioBase = Number(o['gpio-base']);
const log = createLogger({ level: 'warn', fd: 2 });
const out = (s) => process.stdout.write(s + '\n');
let failures = 0;
const fail = (s) => {
  failures++;
  out(`FAIL ${s}`);
};

// The bus and pin: real, or the emulated rig on a clock that follows the real one.
let bus;
let openPin;
const clock = systemClock;
if (o.sim) {
  const motor = new MotorSimulator({ profile, seed: 1, startMs: Date.now(), quantizeTemperature: false });
  const rig = buildRig({ motor, clock: systemClock, voltageRatio: settings.ads1115.ratio });
  bus = rig.bus;
  openPin = async () => rig.tach;
} else {
  try {
    bus = await openI2cBus(settings.i2cBus);
  } catch (err) {
    fail(err.message);
    process.exit(1);
  }
  openPin = () => openGpioInput(settings.rpm.gpio, settings.rpm.edge, settings.rpm.gpioBase);
}

const found = await probeBus(bus);
out(`bus ${o.sim ? '(emulated)' : `/dev/i2c-${settings.i2cBus}`}: ${found.map((f) => `${hex(f.address)} ${f.part ?? '?'}`).join(', ') || 'nothing answers'}`);
const sensors = {};
for (const f of found) {
  if (f.part === 'ADXL345') {
    settings.adxl345.address = f.address;
    sensors.vibration = { channels: ['accel_x', 'accel_y', 'accel_z'] };
  } else if (f.part === 'ADS1115') {
    settings.ads1115.address = f.address;
    sensors.voltage = { channels: ['voltage'] };
  } else if (f.part === 'MCP9808') {
    settings.mcp9808.address = f.address;
    sensors.temperature = { channels: ['temperature'] };
  } else fail(`${hex(f.address)}: ${f.detail}`);
}
if (o['rpm-gpio'] !== undefined || o.sim) sensors.rpm = { channels: ['rpm'] };
if (Object.keys(sensors).length === 0) {
  fail('no supported part found');
  process.exit(1);
}

const drivers = await buildDrivers(settings, sensors, { bus, openPin, clock, periodMs: profile.periodMs });
const readings = new Map([...drivers.values()].map((d) => [d, []]));
const sampler = new Sampler({ devices: [...drivers.values()], clock, log, periodMs: profile.periodMs, retries: settings.retries, staleMs: settings.staleMs, errorMs: settings.errorMs, onReading: (d, _t, v) => readings.get(d).push([...v]) });
await sampler.start();
out(`sampling ${[...drivers.values()].map((d) => d.id).join(', ')} every ${profile.periodMs} ms for ${seconds} s …`);
await new Promise((r) => setTimeout(r, seconds * 1000));
const health = sampler.health();
const stats = sampler.stats();
await sampler.stop();
await bus.close();

const expected = Math.floor((seconds * 1000) / profile.periodMs);
for (const [part, d] of drivers) {
  const rows = readings.get(d);
  const s = stats.get(d);
  const j = s.jitter.summary();
  const cols = d.channels.map((ch, i) => {
    const xs = rows.map((r) => r[i]);
    const m = xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length || 1));
    return { ch, m, sd };
  });
  out(`${d.id.padEnd(14)} ${health.get(d)}  ${rows.length}/${expected} readings, ${s.failedAttempts} failed reads, jitter p50 ${j.p50Ms} ms p99 ${j.p99Ms} ms max ${j.maxMs} ms  ${cols.map((c) => `${c.ch} ${c.m.toFixed(3)} ± ${c.sd.toFixed(3)}`).join('  ')}  ${JSON.stringify(d.counters ?? {})}`);
  if (health.get(d) !== 'ok') fail(`${d.id} ended ${health.get(d)} (${s.lastError ?? 'no reading'})`);
  if (rows.length < 0.9 * expected - 10) fail(`${d.id}: only ${rows.length} of ${expected} periods read`);
  const by = Object.fromEntries(cols.map((c) => [c.ch, c]));
  if (part === 'adxl345') {
    const g = Math.hypot(by.accel_x.m, by.accel_y.m, by.accel_z.m);
    if (Math.abs(g - 9.81) > 1.5) fail(`ADXL345: the mean acceleration is ${g.toFixed(2)} m/s², gravity alone is 9.81 (mounting, range or scale wrong?)`);
  }
  if (part === 'ads1115' && !(by.voltage.m >= vLo && by.voltage.m <= vHi)) fail(`ADS1115: ${by.voltage.m.toFixed(2)} V outside the expected ${vLo}..${vHi} V (front-end ratio ${settings.ads1115.ratio}?)`);
  if (part === 'mcp9808' && !(by.temperature.m > -20 && by.temperature.m < 85)) fail(`MCP9808: ${by.temperature.m.toFixed(2)} °C is not a room or motor temperature`);
  if (part === 'rpm' && !(by.rpm.m >= 0 && by.rpm.m < 6000)) fail(`rpm: ${by.rpm.m.toFixed(1)} is not a shaft speed`);
}
out(failures === 0 ? 'OK' : `${failures} problem(s)`);
process.exit(failures === 0 ? 0 : 1);

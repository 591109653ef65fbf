import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '#agent/config/load.js';
import { ManualClock } from '#agent/core/clock.js';
import { silentLogger } from '#agent/core/log.js';
import { PROFILES } from '#agent/core/profiles.js';
import { DEFAULT_SENSORS, type Sample, type SensorSpec } from '#agent/core/sample.js';
import { runClock } from '../hw/run-clock.js';
import { topic } from '#agent/core/topics.js';
import { startBroker } from './broker-fixture.js';
import { assertValidSamples, sourceContract } from './contract.js';
import { parseFaultCommand, parseFaultList, SimSource, type SimSourceOptions } from '#agent/sources/sim.js';

const T0 = Date.UTC(2024, 2, 4, 8);
const defaults = loadConfig({});

interface Run {
  clock: ManualClock;
  source: SimSource;
  samples: Sample[];
  of(sensor: string): Sample[];
}

function makeSim(o: Partial<SimSourceOptions> & { hardware?: Partial<SimSourceOptions['settings']>; simSettings?: Partial<SimSourceOptions['sim']> } = {}): Run {
  const clock = new ManualClock(T0);
  const { hardware, simSettings, ...rest } = o;
  const source = new SimSource({
    sensors: DEFAULT_SENSORS,
    clock,
    log: silentLogger,
    profile: 'rpm_600',
    settings: { ...defaults.hardware, ...hardware },
    sim: { ...defaults.source.sim, ...simSettings },
    statsIntervalMs: 0,
    ...rest,
  });
  const samples: Sample[] = [];
  source.onSample((s) => samples.push(s));
  return { clock, source, samples, of: (sensor) => samples.filter((s) => s.sensor === sensor) };
}

sourceContract('sim', async () => {
  const { clock, source } = makeSim();
  return { source, sensors: DEFAULT_SENSORS, produce: async () => void (await runClock(clock, 1000)), settle: async () => {}, close: async () => {} };
});

test('sim: one sample per sensor per profile period, stamped at read, in the units and ranges of the training data', async () => {
  const r = makeSim();
  await r.source.start();
  await runClock(r.clock, 60_000);
  await r.source.stop();
  assertValidSamples(r.samples, DEFAULT_SENSORS);
  const periods = 60_000 / PROFILES.rpm_600.periodMs;
  for (const sensor of ['vibration', 'voltage']) assert.ok(Math.abs(r.of(sensor).length - periods) <= 2, `${sensor}: ${r.of(sensor).length} samples for ${periods} periods`);
  // rpm: nothing until the pickup has seen two edges (one revolution at 1 pulse/rev, ≈ 100 ms).
  assert.ok(periods - r.of('rpm').length <= 5, `rpm: ${r.of('rpm').length}`);
  // Temperature: nothing before the MCP9808's first conversion (250 ms), then every period.
  assert.ok(Math.abs(r.of('temperature').length - (periods - 5)) <= 2, `temperature: ${r.of('temperature').length}`);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const col = (sensor: string, i: number) => r.of(sensor).map((s) => s.values[i]!);
  assert.ok(Math.abs(mean(col('vibration', 2)) - 9.81) < 0.2, 'gravity on z');
  assert.ok(Math.abs(mean(col('vibration', 0))) < 0.2, 'x around 0');
  assert.ok(Math.abs(mean(col('voltage', 0)) - 230) < 10, `voltage ${mean(col('voltage', 0))}`);
  assert.ok(Math.abs(mean(col('rpm', 0)) - 590) < 15, `rpm ${mean(col('rpm', 0))}`);
  assert.ok(mean(col('temperature', 0)) > 25, 'a running motor is warmer than ambient');
  for (const v of col('temperature', 0)) assert.ok(Number.isInteger(v * 16), 'MCP9808 steps of 0.0625 °C');
  for (const v of col('voltage', 0)) assert.ok(Math.abs(v / 0.0125 - Math.round(v / 0.0125)) < 1e-6, 'ADS1115 steps of 125 µV × 100');
  // Stamped at read: after the grid instant of the tick that read it, within the period.
  for (const s of r.of('vibration')) assert.ok(s.t % 50 >= 0 && s.t % 50 < 50);
  assert.deepEqual(r.source.health(), { vibration: 'stale', voltage: 'stale', rpm: 'stale', temperature: 'stale' }, 'stopped');
});

test('sim: one simulated hour at the rpm_1200 rate runs in seconds on an injected clock; jitter statistics', async (t) => {
  const r = makeSim({ profile: 'rpm_1200' });
  const counts = new Map<string, number>();
  r.source.onSample((s) => counts.set(s.sensor, (counts.get(s.sensor) ?? 0) + 1));
  r.samples.length = 0;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  await r.source.start();
  const hour = 3_600_000;
  let timers = 0;
  for (let m = 0; m < 60; m++) {
    timers += await runClock(r.clock, 60_000);
    r.samples.length = 0; // keep memory flat; counts are kept above
  }
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const stats = r.source.stats();
  const overruns = r.source.overruns;
  await r.source.stop();
  const periods = hour / PROFILES.rpm_1200.periodMs;
  t.diagnostic(`simulated 1 h at rpm_1200 (${periods} periods of 20 ms, ${timers} timer events) in ${(wallMs / 1000).toFixed(1)} s of wall time, ${(cpuMs / 1000).toFixed(1)} s of CPU`);
  for (const s of stats) {
    const j = s.stats.jitter.summary();
    t.diagnostic(
      `${s.id.padEnd(14)} readings ${String(j.n).padStart(6)}  offset from the grid instant: mean ${j.meanMs.toFixed(3)} ms, std ${j.stdMs.toFixed(3)} ms, p50 ${j.p50Ms.toFixed(2)} ms, p99 ${j.p99Ms.toFixed(2)} ms, max ${j.maxMs.toFixed(2)} ms; failed periods ${s.stats.failedPeriods}; ${JSON.stringify(s.counters)}`,
    );
    assert.equal(s.stats.failedPeriods, 0);
    assert.ok(j.maxMs < PROFILES.rpm_1200.periodMs, `${s.id}: every reading inside its period`);
  }
  for (const sensor of ['vibration', 'voltage']) assert.ok(periods - counts.get(sensor)! <= 2, `${sensor}: ${counts.get(sensor)} of ${periods}`);
  assert.ok(periods - counts.get('rpm')! <= 6, `rpm: ${counts.get('rpm')} of ${periods}`);
  assert.ok(periods - counts.get('temperature')! <= 15, `temperature: ${counts.get('temperature')}`);
  assert.equal(overruns, 0);
  assert.ok(cpuMs < 60_000, `took ${cpuMs} ms of CPU`);
});

test('sim: 5 % of I2C transfers fail with EIO — retried, the sensors stay ok, almost no period lost', async (t) => {
  const r = makeSim({ simSettings: { i2cErrorRate: 0.05 } });
  await r.source.start();
  const health = new Set<string>();
  for (let s = 0; s < 120; s++) {
    await runClock(r.clock, 1000);
    for (const h of Object.values(r.source.health())) health.add(h);
  }
  const stats = r.source.stats();
  await r.source.stop();
  assert.deepEqual([...health], ['ok'], 'no sensor went stale');
  const bus = r.source.emulated!.bus;
  t.diagnostic(`bus: ${bus.counters.transfers} transfers, ${bus.counters.injected} failed (${((100 * bus.counters.injected) / bus.counters.transfers).toFixed(2)} %)`);
  assert.ok(Math.abs(bus.counters.injected / bus.counters.transfers - 0.05) < 0.005);
  const periods = 120_000 / 50;
  for (const s of stats) {
    t.diagnostic(`${s.id}: ${s.stats.failedAttempts} failed attempts, ${s.stats.failedPeriods} periods lost, ${s.stats.inits} inits`);
    if (s.part === 'rpm') continue; // no bus
    assert.ok(s.stats.failedAttempts > 0, `${s.id} saw errors`);
    assert.ok(s.stats.failedPeriods / periods < 0.02, `${s.id}: ${s.stats.failedPeriods} of ${periods} periods lost`);
  }
  assertValidSamples(r.samples, DEFAULT_SENSORS);
});

test('sim: a part unplugged goes stale, then error; replugged, it is set up again and samples resume — the rest never stops', async () => {
  const r = makeSim({ hardware: { staleMs: 500, errorMs: 2000 } });
  await r.source.start();
  await runClock(r.clock, 2000);
  assert.deepEqual(r.source.health(), { vibration: 'ok', voltage: 'ok', rpm: 'ok', temperature: 'ok' });
  r.source.command({ action: 'unplug', part: 'adxl345' });
  const cut = r.clock.now();
  await runClock(r.clock, 400);
  assert.equal(r.source.health().vibration, 'ok', 'within staleMs');
  await runClock(r.clock, 300);
  assert.equal(r.source.health().vibration, 'stale');
  await runClock(r.clock, 1500);
  assert.equal(r.source.health().vibration, 'error');
  assert.equal(r.source.health().voltage, 'ok', 'the other parts on the bus keep reading');
  r.source.command({ action: 'replug', part: 'adxl345' });
  const back = r.clock.now();
  await runClock(r.clock, 1000);
  assert.equal(r.source.health().vibration, 'ok');
  const vib = r.of('vibration');
  const during = vib.filter((s) => s.t > cut + 50 && s.t < back);
  assert.equal(during.length, 0, 'no vibration sample while unplugged: nothing invented');
  const after = vib.filter((s) => s.t >= back);
  assert.ok(after.length >= 15, `${after.length} vibration samples in the second after the replug`);
  const adxl = r.source.stats().find((s) => s.part === 'adxl345')!;
  assert.ok(adxl.stats.inits >= 2, 'set up again after the replug');
  assert.ok(r.of('voltage').filter((s) => s.t > cut && s.t < back).length > 40, 'voltage kept coming');
  await r.source.stop();
});

test('sim: faults switched by command change what the chips read; off clears them', async () => {
  const r = makeSim({ simSettings: { load: 0.6 } });
  await r.source.start();
  const rms = (from: number) => {
    const xs = r.of('vibration').filter((s) => s.t >= from).map((s) => s.values[1]!);
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
  };
  await runClock(r.clock, 5000);
  const healthy = rms(T0);
  assert.equal(r.source.command({ action: 'on', fault: 'looseness', intensity: 'obvious' }), 'fault on: looseness/obvious');
  let t = r.clock.now();
  await runClock(r.clock, 5000);
  const loose = rms(t + 1000);
  assert.ok(loose > 2 * healthy, `looseness: y RMS ${loose.toFixed(3)} vs healthy ${healthy.toFixed(3)}`);
  r.source.command({ action: 'off' });
  t = r.clock.now();
  await runClock(r.clock, 5000);
  assert.ok(rms(t + 100) < 1.3 * healthy);
  r.source.command({ action: 'on', fault: 'sag', intensity: 'obvious' });
  t = r.clock.now();
  await runClock(r.clock, 2000);
  const v = r.of('voltage').filter((s) => s.t > t + 200).map((s) => s.values[0]!);
  assert.ok(Math.max(...v) < 200, `sag: ${Math.max(...v)} V`);
  await r.source.stop();
});

test('sim: fault commands over MQTT (cmd/fault) are applied; bad ones are refused and logged, never thrown', async () => {
  const tb = await startBroker();
  try {
    const client = await tb.client();
    const r = makeSim({ client, device: 'pump-7', prefix: 'anomaly', simSettings: { faults: 'stuck:moderate:voltage' } });
    await r.source.start();
    assert.deepEqual(r.source.simulator!.activeFaults().map((f) => [f.kind, f.channels]), [['stuck', ['voltage']]], 'source.sim.faults on at start');
    const pub = await tb.client();
    const cmdTopic = topic('anomaly', 'pump-7', 'fault');
    assert.equal(cmdTopic, 'anomaly/pump-7/cmd/fault');
    await pub.publishAsync(cmdTopic, JSON.stringify({ action: 'on', fault: 'bearing', intensity: 'obvious' }), { qos: 1 });
    await pub.publishAsync(cmdTopic, '{not json', { qos: 1 });
    await pub.publishAsync(cmdTopic, JSON.stringify({ action: 'on', fault: 'gremlins', intensity: 'obvious' }), { qos: 1 });
    await pub.publishAsync(cmdTopic, JSON.stringify({ action: 'off', fault: 'stuck' }), { qos: 1 });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && r.source.simulator!.activeFaults().map((f) => f.kind).join() !== 'bearing') await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(r.source.simulator!.activeFaults().map((f) => `${f.kind}/${f.intensity}`), ['bearing/obvious']);
    await r.source.stop();
  } finally {
    await tb.close();
  }
});

test('sim: commands and the fault list are checked with exact messages', () => {
  assert.deepEqual(parseFaultCommand({ action: 'on', fault: 'bearing', intensity: 'moderate' }), { action: 'on', fault: 'bearing', intensity: 'moderate' });
  assert.deepEqual(parseFaultCommand({ action: 'off' }), { action: 'off' });
  assert.deepEqual(parseFaultCommand({ action: 'bus-errors', rate: 0.05 }), { action: 'bus-errors', rate: 0.05, code: 'EIO' });
  assert.equal(parseFaultCommand({ action: 'on', fault: 'bearing' }), 'intensity must be one of subtle, moderate, obvious, got nothing');
  assert.equal(parseFaultCommand({ action: 'on', fault: 'bearing', intensity: 'obvious', channels: ['rpm'] }), 'channels only apply to stuck and dropout (bearing acts on its own channels)');
  assert.equal(parseFaultCommand({ action: 'unplug', part: 'gpu' }), 'part must be one of adxl345, ads1115, mcp9808, tach, got "gpu"');
  assert.equal(parseFaultCommand({ action: 'bus-errors', rate: 2 }), 'rate must be a number within 0..1, got 2');
  assert.equal(parseFaultCommand([]), 'the payload must be a JSON object with an action');
  assert.equal(parseFaultCommand({ action: 'explode' }), 'action must be one of on, off, unplug, replug, bus-errors, got "explode"');
  assert.deepEqual(parseFaultList(' bearing:obvious , dropout:subtle:accel_x+rpm'), [
    { action: 'on', fault: 'bearing', intensity: 'obvious' },
    { action: 'on', fault: 'dropout', intensity: 'subtle', channels: ['accel_x', 'rpm'] },
  ]);
  assert.equal(parseFaultList('bearing'), "'bearing': intensity must be one of subtle, moderate, obvious, got nothing");
  assert.equal(parseFaultList('a:b:c:d'), "'a:b:c:d': expected kind:intensity or kind:intensity:channel+channel");
});

test('sim: sensors the parts cannot give are refused at start, naming the channel', async () => {
  const sensors: SensorSpec = { ...DEFAULT_SENSORS, current: { channels: ['current'] } };
  const r = makeSim({ sensors });
  await assert.rejects(r.source.start(), /sensor 'current': no driver gives channel 'current' \(known channels: accel_x, /);
  const mixed = makeSim({ sensors: { odd: { channels: ['voltage', 'rpm'] } } });
  await assert.rejects(mixed.source.start(), /sensor 'odd' mixes channels of ads1115 and rpm: a sensor is read from one part/);
  const stats = makeSim({ sensors: { vibration: DEFAULT_SENSORS.vibration!, burst: { channels: ['accel_x_rms', 'accel_z_peak'] } }, hardware: { adxl345: { ...defaults.hardware.adxl345, odrHz: 400 } } });
  await stats.source.start();
  await runClock(stats.clock, 1000);
  await stats.source.stop();
  const b = stats.of('burst');
  assert.ok(b.length >= 18);
  assert.ok(b.every((s) => s.values.length === 2 && s.values[0]! > 0 && s.values[1]! > 0));
});

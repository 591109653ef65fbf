import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ManualClock } from '#agent/core/clock.js';
import { silentLogger } from '#agent/core/log.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { DEFAULT_SENSORS, type Sample } from '#agent/core/sample.js';
import { startBroker } from './broker-fixture.js';
import { MqttIngestSource } from '#agent/sources/mqtt-ingest.js';
import { createSource, SOURCE_KINDS, type SourceDeps, type SourceKind } from '#agent/sources/registry.js';
import { loadConfig } from '#agent/config/load.js';
import { runClock } from '../hw/run-clock.js';
import { ReplaySource } from '#agent/sources/replay.js';

const deps = (): SourceDeps => ({ sensors: DEFAULT_SENSORS, clock: new ManualClock(0), log: silentLogger });

test('registry: replay is built from deps.replay and runs', async () => {
  const d = deps();
  const s = await createSource('replay', { ...d, replay: { file: join(PACKAGE_ROOT, 'datas/raw/rpm_600/test/test_01.csv'), speed: 2 } });
  assert.ok(s instanceof ReplaySource);
  assert.equal(s.kind, 'replay');
  const got: Sample[] = [];
  s.onSample((x) => got.push(x));
  await s.start();
  (d.clock as ManualClock).advance(1000);
  await s.stop();
  assert.equal(got.length, 40 * 4);
});

test('registry: mqtt is built around the given client', async () => {
  const tb = await startBroker();
  try {
    const client = await tb.client();
    const s = await createSource('mqtt', { ...deps(), client, mqtt: { device: 'pump-7' } });
    assert.ok(s instanceof MqttIngestSource);
    assert.equal(s.kind, 'mqtt');
    await s.start();
    await s.stop();
  } finally {
    await tb.close();
  }
});

test('registry: sim is built from the profile, hardware and sim settings, imported on demand, and runs', async () => {
  assert.deepEqual([...SOURCE_KINDS], ['replay', 'mqtt', 'sim', 'hardware']);
  const config = loadConfig({ argv: ['--source-kind', 'sim'] });
  const d = deps();
  const s = await createSource('sim', { ...d, profile: 'rpm_600', hardware: config.hardware, sim: config.source.sim });
  assert.equal(s.kind, 'sim');
  const got: Sample[] = [];
  s.onSample((x) => got.push(x));
  await s.start();
  await runClock(d.clock as ManualClock, 2000);
  await s.stop();
  assert.deepEqual(new Set(got.map((x) => x.sensor)), new Set(['vibration', 'voltage', 'rpm', 'temperature']));
  await assert.rejects(createSource('sim', { ...deps(), profile: 'rpm_600' }), /source 'sim' needs hardware settings \(deps.hardware\)/);
});

test('registry: hardware needs its settings; on a machine without /dev/i2c-<n> it fails at start, naming the device', async () => {
  const config = loadConfig({ argv: ['--source-kind', 'hardware', '--hardware-i2c-bus', '97'] });
  await assert.rejects(createSource('hardware', deps()), /source 'hardware' needs a speed profile/);
  const s = await createSource('hardware', { ...deps(), profile: 'rpm_600', hardware: config.hardware });
  assert.equal(s.kind, 'hardware');
  await assert.rejects(s.start(), /cannot (open \/dev\/i2c-97|load i2c-bus)/);
  assert.deepEqual(s.health(), { vibration: 'stale', voltage: 'stale', rpm: 'stale', temperature: 'stale' });
});

test('registry: missing deps and unknown kinds are refused with clear messages', async () => {
  await assert.rejects(createSource('mqtt', { ...deps(), mqtt: { device: 'd' } }), /source 'mqtt' needs an mqtt client \(deps.client\)/);
  await assert.rejects(createSource('replay', deps()), /source 'replay' needs replay options/);
  await assert.rejects(createSource('replay', { ...deps(), replay: { file: '' } }), /source 'replay' needs a file to replay/);
  await assert.rejects(createSource('i2c' as SourceKind, deps()), /unknown source 'i2c'; known sources: replay, mqtt, sim, hardware/);
});

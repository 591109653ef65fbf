import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ManualClock } from '../core/clock.js';
import { silentLogger } from '../core/log.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { DEFAULT_SENSORS, type Sample } from '../core/sample.js';
import { startBroker } from './broker-fixture.js';
import { MqttIngestSource } from './mqtt-ingest.js';
import { createSource, SOURCE_KINDS, SourceUnavailableError, type SourceDeps, type SourceKind } from './registry.js';
import { ReplaySource } from './replay.js';

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

test("registry: 'sim' is a named slot that is not available yet", async () => {
  assert.deepEqual([...SOURCE_KINDS], ['replay', 'mqtt', 'sim']);
  await assert.rejects(createSource('sim', deps()), (e: unknown) => {
    assert.ok(e instanceof SourceUnavailableError);
    assert.equal(e.name, 'SourceUnavailableError');
    assert.equal(e.kind, 'sim');
    assert.equal(e.message, "source 'sim' is not available yet");
    return true;
  });
});

test('registry: missing deps and unknown kinds are refused with clear messages', async () => {
  await assert.rejects(createSource('mqtt', { ...deps(), mqtt: { device: 'd' } }), /source 'mqtt' needs an mqtt client \(deps.client\)/);
  await assert.rejects(createSource('replay', deps()), /source 'replay' needs replay options/);
  await assert.rejects(createSource('replay', { ...deps(), replay: { file: '' } }), /source 'replay' needs a file to replay/);
  await assert.rejects(createSource('i2c' as SourceKind, deps()), /unknown source 'i2c'; known sources: replay, mqtt, sim/);
});

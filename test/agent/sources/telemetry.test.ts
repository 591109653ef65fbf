/**
 * sources/telemetry.ts on a real aedes broker with real mqtt.js clients: a gateway's telemetry
 * batches (TelemetryPayload) taken apart into samples; what is not a batch of a configured sensor is
 * dropped, counted and logged once per burst.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { ManualClock } from '#agent/core/clock.js';
import { DEFAULT_SENSORS, type Sample } from '#agent/core/sample.js';
import { SCHEMA_VERSION, topic, type TelemetryPayload } from '#agent/core/topics.js';
import { TELEMETRY_DROP_REASONS, TelemetrySource } from '#agent/sources/telemetry.js';
import { settler, startBroker, type TestBroker } from './broker-fixture.js';
import { assertValidSamples, sourceContract } from './contract.js';

const START = Date.UTC(2024, 4, 1, 12);
let tb: TestBroker;
let devices = 0;

before(async () => {
  tb = await startBroker();
});
after(() => tb.close());

/** A batch as the daemon's publisher makes it (publish/publisher.ts). */
function batch(sensor: string, ts: number[], value = (t: number, ch: number) => (t % 1000) / 100 + ch): TelemetryPayload {
  const channels = DEFAULT_SENSORS[sensor]!.channels;
  return { v: SCHEMA_VERSION, t: ts.at(-1)!, t0: ts[0]!, periodMs: ts.length > 1 ? ts[1]! - ts[0]! : 0, channels, ts, values: ts.map((t) => channels.map((_, c) => value(t, c))) };
}

async function rig() {
  const dev = `gw-${++devices}`;
  const clock = new ManualClock(START);
  const client = await tb.client();
  const pub = await tb.client();
  const lines: { level: number; msg: string; reason?: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const source = new TelemetrySource({ client, sensors: DEFAULT_SENSORS, clock, device: dev, log });
  const samples: Sample[] = [];
  source.onSample((s) => samples.push(s));
  const settle = await settler(client, pub, dev);
  return {
    dev,
    clock,
    client,
    pub,
    source,
    samples,
    lines,
    send: (sensor: string, payload: unknown) => void pub.publish(topic('anomaly', dev, 'telemetry', sensor), typeof payload === 'string' ? payload : JSON.stringify(payload)),
    settle,
  };
}

sourceContract('telemetry', async () => {
  const r = await rig();
  let t = START;
  return {
    source: r.source,
    sensors: DEFAULT_SENSORS,
    produce: async () => {
      const ts = [t, t + 20, t + 40];
      for (const sensor of Object.keys(DEFAULT_SENSORS)) r.send(sensor, batch(sensor, ts));
      t += 60;
    },
    settle: r.settle,
    close: async () => {},
  };
});

test('every row of a batch becomes a sample, with its own time and values, in order', async () => {
  const r = await rig();
  await r.source.start();
  try {
    r.send('vibration', batch('vibration', [START, START + 20, START + 41]));
    r.send('temperature', batch('temperature', [START + 13]));
    await r.settle();
    assert.deepEqual(r.samples, [
      { sensor: 'vibration', t: START, values: [0, 1, 2] },
      { sensor: 'vibration', t: START + 20, values: [0.2, 1.2, 2.2] },
      { sensor: 'vibration', t: START + 41, values: [0.41, 1.41, 2.41] },
      { sensor: 'temperature', t: START + 13, values: [0.13] },
    ]);
    assertValidSamples(r.samples, DEFAULT_SENSORS);
    assert.equal(r.source.accepted, 4);
    assert.deepEqual(r.source.health(), { vibration: 'ok', voltage: 'ok', rpm: 'ok', temperature: 'ok' });
    r.clock.advance(6000);
    assert.deepEqual(r.source.health(), { vibration: 'stale', voltage: 'stale', rpm: 'stale', temperature: 'stale' });
  } finally {
    await r.source.stop();
  }
});

test("what is not a configured sensor's batch is dropped by reason, counted, logged once per burst; good rows of a batch still count", async () => {
  const r = await rig();
  await r.source.start();
  try {
    r.send('voltage', batch('voltage', [START + 100]));
    r.send('pressure', batch('voltage', [START])); // unknown_sensor
    r.send('voltage', '{not json'); // bad_payload
    r.send('voltage', { ...batch('voltage', [START + 200]), periodMs: 'fast' }); // bad_payload: the schema
    r.send('voltage', { ...batch('voltage', [START + 200]), channels: ['volts'] }); // wrong_channels
    r.send('vibration', { ...batch('vibration', [START + 200]), channels: ['accel_y', 'accel_x', 'accel_z'] }); // wrong_channels: order counts
    r.send('voltage', { ...batch('voltage', [START + 200, START + 220]), values: [[230]] }); // bad_row: lengths differ
    r.send('voltage', { ...batch('voltage', [START + 200, START + 220, START + 240]), values: [[230], [1, 2], [231]] }); // one bad_row, two good
    r.send('voltage', batch('voltage', [START + 240, START + 260])); // bad_time (240 again), then 260
    await r.settle();
    assert.deepEqual(
      r.samples.map((s) => s.t - START),
      [100, 200, 240, 260],
    );
    assert.deepEqual(r.source.drops, { unknown_sensor: 1, bad_payload: 2, wrong_channels: 2, bad_row: 2, bad_time: 1 });
    assert.deepEqual(Object.keys(r.source.drops), [...TELEMETRY_DROP_REASONS]);
    const warns = r.lines.filter((l) => l.level === 40);
    assert.equal(warns.length, 1, 'one line for the burst');
    assert.match(warns[0]!.msg, /^telemetry dropped: unknown_sensor/);
    r.clock.advance(10_000);
    assert.match(r.lines.filter((l) => l.level === 40).at(-1)!.msg, /^telemetry dropped: 8 in the last burst/);
  } finally {
    await r.source.stop();
  }
});

test('a refused subscription fails start with the filter named, and the sensors are in error', async () => {
  const refusing = await startBroker({ authorizeSubscribe: (_c, sub, cb) => (sub.topic.includes('/telemetry/') ? cb(null, null) : cb(null, sub)) });
  let client: MqttClient | undefined;
  try {
    client = await refusing.client();
    const source = new TelemetrySource({ client, sensors: DEFAULT_SENSORS, clock: new ManualClock(START), device: 'gw-x' });
    await assert.rejects(source.start(), /^Error: cannot subscribe to anomaly\/gw-x\/telemetry\/\+: /);
    assert.deepEqual(new Set(Object.values(source.health())), new Set(['error']));
    await source.stop();
  } finally {
    await refusing.close();
  }
});

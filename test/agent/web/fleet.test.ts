/** What the page makes of MQTT messages (page/fleet.ts), run in node with payloads typed by core/topics.ts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTopic, topic, topicFilter, type ModelAlertPayload, type SensorAlertPayload, type ScorePayload, type StatusPayload, type TelemetryPayload } from '#agent/core/topics.js';
import { alertDuration, Fleet } from '#agent/web/page/fleet.js';

const P = 'plant/line-2';
const T = 1_700_000_000_000;

const status = (state: 'online' | 'offline', t = T): StatusPayload => ({
  v: 1,
  t,
  state,
  version: '0.1.0',
  models: [{ model: 'vibration', name: 'rpm_600/vibration', sha256: 'a'.repeat(64), drift: 0 }],
  sensors: { vibration: 'ok', temperature: 'stale' },
});

const telemetry = (t0: number, n: number, channels = ['accel_x', 'accel_y', 'accel_z']): TelemetryPayload => ({
  v: 1,
  t: t0 + n * 20,
  t0,
  periodMs: 20,
  channels,
  ts: Array.from({ length: n }, (_, i) => t0 + i * 20),
  values: Array.from({ length: n }, (_, i) => channels.map((_, c) => i + c / 10)),
});

const score = (windowEnd: number, s: number): ScorePayload => ({ v: 1, t: windowEnd, windowEnd, score: s, threshold: 2, perFeature: { accel_x: 1, 'temperature.shape': 0.5 } });

const alert = (state: 'raised' | 'cleared', t: number, id = 'a-1'): ModelAlertPayload => ({
  v: 1,
  t,
  kind: 'machine',
  id,
  model: 'vibration',
  state,
  score: 9,
  threshold: 2,
  topFeatures: [{ feature: 'temperature.shape', error: 3, share: 0.7 }],
  since: T + 5000,
});

const send = (f: Fleet, dev: string, name: 'status' | 'telemetry' | 'score' | 'alerts', payload: unknown, param?: string) => f.handle(topic(P, dev, name, param), JSON.stringify(payload));

test('topics: parseTopic inverts topic() for every topic, under a multi-level prefix', () => {
  assert.deepEqual(parseTopic(P, topic(P, 'm-1', 'status')), { name: 'status', dev: 'm-1' });
  assert.deepEqual(parseTopic(P, topic(P, 'm-1', 'alerts')), { name: 'alerts', dev: 'm-1' });
  assert.deepEqual(parseTopic(P, topic(P, 'm-1', 'telemetry', 'vibration')), { name: 'telemetry', dev: 'm-1', param: 'vibration' });
  assert.deepEqual(parseTopic(P, topic(P, 'm-1', 'score', 'multi-feature')), { name: 'score', dev: 'm-1', param: 'multi-feature' });
  assert.deepEqual(parseTopic(P, topic(P, 'm-1', 'ingest', 'rpm')), { name: 'ingest', dev: 'm-1', param: 'rpm' });
  for (const bad of ['plant/line-2', 'plant/line-2/m-1', 'plant/line-2/m-1/telemetry', 'plant/line-2/m-1/score/a/b', 'plant/line-2//status', 'other/m-1/status', 'plant/line-2/m-1/statuses']) {
    assert.equal(parseTopic(P, bad), undefined, bad);
  }
  assert.equal(topicFilter(P, '+', 'status'), 'plant/line-2/+/status');
});

test('fleet: status, telemetry and scores per device, changes reported once', () => {
  let now = T;
  const f = new Fleet(P, undefined, () => now);
  assert.equal(send(f, 'm-1', 'status', status('online')), true);
  assert.deepEqual(f.takeChanges(), { devices: true, alerts: false });
  assert.deepEqual(f.takeChanges(), { devices: false, alerts: false });
  const d = f.devices.get('m-1')!;
  assert.equal(d.status?.state, 'online');
  assert.equal(d.lastMessageAt, T);

  now += 1000;
  assert.equal(send(f, 'm-1', 'telemetry', telemetry(T, 50), 'vibration'), true);
  assert.equal(send(f, 'm-1', 'telemetry', telemetry(T + 1000, 50), 'vibration'), true);
  const s = d.sensors.get('vibration')!;
  assert.deepEqual(s.channels, ['accel_x', 'accel_y', 'accel_z']);
  assert.equal(s.rows, 100);
  assert.equal(s.ring.length, 100);
  assert.equal(s.ring.valueAt(99, 2), 49.2);
  assert.equal(s.version, 2);
  assert.equal(d.lastMessageAt, T + 1000);
  // New channels: a new track (the chart is rebuilt).
  send(f, 'm-1', 'telemetry', telemetry(T + 2000, 5, ['accel_x']), 'vibration');
  assert.notEqual(d.sensors.get('vibration'), s);
  assert.equal(d.sensors.get('vibration')!.rows, 5);

  for (let i = 0; i < 10; i++) send(f, 'm-1', 'score', score(T + i * 500, i), 'vibration');
  const m = d.models.get('vibration')!;
  assert.equal(m.windows, 10);
  assert.equal(m.threshold, 2);
  assert.equal(m.lastWindowEnd, T + 4500);
  assert.deepEqual(m.perFeature, { accel_x: 1, 'temperature.shape': 0.5 });
  assert.equal(f.bad, 0);
});

test('fleet: alerts pair by id into one log row and one episode; durations in wall-clock time', () => {
  const f = new Fleet(P, undefined, () => T + 60_000);
  send(f, 'm-1', 'score', score(T + 5000, 9), 'vibration');
  send(f, 'm-1', 'alerts', alert('raised', T + 10_000));
  assert.deepEqual(f.takeChanges().alerts, true);
  const m = f.devices.get('m-1')!.models.get('vibration')!;
  assert.deepEqual(m.episodes, [{ id: 'a-1', since: T + 5000, end: undefined }]);
  assert.equal(alertDuration(f.alerts[0]!, T + 40_000), 30_000, 'open: raised until now');

  send(f, 'm-1', 'score', score(T + 12_000, 1), 'vibration');
  send(f, 'm-1', 'alerts', alert('cleared', T + 25_000));
  assert.equal(f.alerts.length, 1);
  const a = f.alerts[0]!;
  assert.equal(a.raised?.state, 'raised');
  assert.equal(a.cleared?.state, 'cleared');
  assert.equal(alertDuration(a, T + 99_000), 15_000);
  assert.deepEqual(m.episodes, [{ id: 'a-1', since: T + 5000, end: T + 12_000 }], 'ends at the newest window scored when it cleared');

  // Opened mid-episode: only the clear; its duration falls back on since.
  send(f, 'm-2', 'alerts', alert('cleared', T + 8000, 'b-1'));
  assert.equal(f.alerts[0]!.id, 'b-1', 'newest first');
  assert.equal(alertDuration(f.alerts[0]!, T), 3000);

  // Scores starting over (a restarted replay) drop the old timeline's episodes.
  send(f, 'm-1', 'score', score(T, 1), 'vibration');
  assert.deepEqual(m.episodes, []);
});

test('fleet: a sensor alert is one log row of its own, names its sensor, and explains the sensor badge while open; it shades no score chart', () => {
  const f = new Fleet(P, undefined, () => T + 60_000);
  const sensorAlert = (state: 'raised' | 'cleared', t: number): SensorAlertPayload => ({
    v: 1,
    t,
    kind: 'sensor',
    id: 'voltage-1',
    sensor: 'voltage',
    state,
    fault: 'out of range',
    detail: 'voltage read 0.42, outside its plausible range 10..300 (or 0 at rest)',
    since: T + 1000,
    ...(state === 'cleared' ? { reason: 'readings plausible again' as const } : {}),
  });
  send(f, 'm-1', 'score', score(T + 500, 1), 'voltage');
  assert.equal(send(f, 'm-1', 'alerts', sensorAlert('raised', T + 1000)), true);
  assert.equal(f.alerts.length, 1);
  const a = f.alerts[0]!;
  assert.equal(a.kind, 'sensor');
  assert.equal(a.subject, 'sensor voltage');
  assert.deepEqual([...f.sensorFaults('m-1').keys()], ['voltage']);
  assert.deepEqual(f.devices.get('m-1')!.models.get('voltage')!.episodes, [], 'not a machine episode');
  assert.equal(send(f, 'm-1', 'alerts', sensorAlert('cleared', T + 12_000)), true);
  assert.equal(f.alerts.length, 1);
  assert.equal(f.alerts[0]!.cleared?.reason, 'readings plausible again');
  assert.equal(alertDuration(f.alerts[0]!, T), 11_000);
  assert.equal(f.sensorFaults('m-1').size, 0, 'cleared: nothing to explain');
  assert.equal(send(f, 'm-1', 'alerts', { ...sensorAlert('raised', T), fault: 'loose' }), false, 'an unknown fault is malformed');
});

test('fleet: bounded — the alert log and the episodes keep only the newest', () => {
  const f = new Fleet(P, { telemetryRows: 16, scoreRows: 8, episodes: 3, alerts: 5 });
  for (let i = 0; i < 12; i++) send(f, 'm-1', 'alerts', alert('raised', T + i, `id-${i}`));
  assert.deepEqual(
    f.alerts.map((a) => a.id),
    ['id-11', 'id-10', 'id-9', 'id-8', 'id-7'],
  );
  assert.deepEqual(
    f.devices.get('m-1')!.models.get('vibration')!.episodes.map((e) => e.id),
    ['id-9', 'id-10', 'id-11'],
  );
  send(f, 'm-1', 'telemetry', telemetry(T, 100), 'vibration');
  assert.equal(f.devices.get('m-1')!.sensors.get('vibration')!.ring.length, 16);
  assert.equal(f.devices.get('m-1')!.sensors.get('vibration')!.rows, 100);
});

test('fleet: malformed payloads are counted and dropped; foreign topics ignored', () => {
  const f = new Fleet(P);
  assert.equal(f.handle(topic(P, 'm-1', 'status'), '{"v":1,'), false);
  assert.equal(send(f, 'm-1', 'status', { ...status('online'), v: 2 }), false);
  assert.equal(send(f, 'm-1', 'status', { ...status('online'), state: 'sleeping' }), false);
  assert.equal(send(f, 'm-1', 'telemetry', { ...telemetry(T, 3), ts: [T] }, 'vibration'), false);
  assert.equal(send(f, 'm-1', 'telemetry', { ...telemetry(T, 2), values: [[1, 2, 3], [1]] }, 'vibration'), false);
  assert.equal(send(f, 'm-1', 'score', { ...score(T, 1), score: 'high' }, 'vibration'), false);
  assert.equal(send(f, 'm-1', 'alerts', { ...alert('raised', T), topFeatures: [{ feature: 'x' }] }), false);
  assert.equal(f.handle(topic(P, 'm-1', 'status'), new TextEncoder().encode(JSON.stringify(status('offline')))), true);
  assert.equal(f.bad, 7);
  assert.equal(f.handle('elsewhere/m-1/status', JSON.stringify(status('online'))), false);
  assert.equal(f.handle(topic(P, 'm-1', 'ingest', 'rpm'), '600'), false);
  assert.equal(f.bad, 7, 'not ours is not malformed');
  assert.equal(f.devices.get('m-1')!.status?.state, 'offline');
});

/**
 * Sensor faults are not machine faults, on the whole daemon in this process on a ManualClock: the
 * embedded aedes broker, real mqtt.js clients, the shipped rpm_600 bundles, /metrics and /healthz over
 * HTTP.
 * - The reported case: bare numbers between 0 and 1 published to the voltage, rpm and temperature
 *   ingest topics in the middle of normal readings. They are sensor alerts, counted, shown in status
 *   and /healthz — and no model scores them or raises a machine alert. With limits that let them
 *   through, the same feed raises machine alerts (what the issue saw).
 * - The sim's stuck fault on one accelerometer axis: a stuck sensor alert, cleared once it moves.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { loadConfig } from '#agent/config/load.js';
import { ManualClock } from '#agent/core/clock.js';
import { silentLogger } from '#agent/core/log.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { payloadProblem } from '#agent/core/payloads.js';
import type { AlertPayload, ScorePayload, SensorAlertPayload, StatusPayload } from '#agent/core/topics.js';
import { Controller } from '#agent/daemon/controller.js';
import { runClock } from '../hw/run-clock.js';
import { freePort } from './daemon-fixture.js';

const FILE = join(PACKAGE_ROOT, 'datas', 'raw', 'rpm_600', 'train', 'train_01.csv');
const [header, ...lines] = readFileSync(FILE, 'utf8').trim().split('\n');
const COLS = header!.split(',');
const ROWS = lines.map((l) => {
  const cells = l.split(',').map(Number);
  return Object.fromEntries(COLS.map((c, i) => [c, cells[i]!])) as Record<string, number>;
});
const T0 = ROWS[0]!.timestamp!;
const DEV = 'press-3';

const turn = () => new Promise<void>((r) => setImmediate(r));
const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await turn();
  }
};

interface Wire {
  alerts: AlertPayload[];
  statuses: StatusPayload[];
  scores: (ScorePayload & { model: string })[];
}

async function daemon(dir: string, argv: string[], clock: ManualClock, log = silentLogger) {
  // prettier-ignore
  const config = loadConfig({ argv: [
    '--device-id', DEV, '--broker-port', '0', '--broker-ws-port', '0', '--http-port', String(await freePort()), '--outbox-dir', join(dir, 'outbox'), '--models-dir', join(dir, 'models'),
    '--models-profile', 'rpm_600', ...argv,
  ] });
  const c = new Controller({ config, log, version: 'test', clock, threads: false });
  await c.start();
  const url = `mqtt://127.0.0.1:${c.brokerAddress()!.port}`;
  const listener = await connectAsync(url, { clientId: 'listener', reconnectPeriod: 0 });
  const wire: Wire = { alerts: [], statuses: [], scores: [] };
  listener.on('message', (topic, payload) => {
    const p = JSON.parse(payload.toString());
    if (topic === `anomaly/${DEV}/alerts`) wire.alerts.push(p);
    else if (topic === `anomaly/${DEV}/status`) wire.statuses.push(p);
    else if (topic.startsWith(`anomaly/${DEV}/score/`)) wire.scores.push({ ...p, model: topic.split('/').at(-1) });
  });
  await listener.subscribeAsync([`anomaly/${DEV}/alerts`, `anomaly/${DEV}/status`, `anomaly/${DEV}/score/+`], { qos: 1 });
  await until('the retained online status', () => wire.statuses.some((s) => s.state === 'online'));
  const http = `http://127.0.0.1:${c.httpAddress()!.port}`;
  return { c, url, listener, wire, http };
}

const total = async (m: { get(): Promise<{ values: { value: number }[] }> }) => (await m.get()).values.reduce((s, v) => s + v.value, 0);

/**
 * Publishes rows of the recording as a plant system would, 50 ms apart on the clock: vibration as
 * {t, values}; voltage, rpm and temperature as `bare(i)` when it gives a number, else as {t, values}.
 * Each step waits until the daemon has judged every message so far (bare numbers are stamped on
 * arrival, so the clock may only move on once they are in).
 */
async function feed(d: Awaited<ReturnType<typeof daemon>>, clock: ManualClock, publisher: MqttClient, from: number, to: number, bare: (i: number) => number | undefined): Promise<void> {
  const m = d.c.metrics;
  const judged = async () => (await total(m.samples)) + (await total(m.sensorFaults)) + (await total(m.ingestDropped));
  let sent = await judged();
  for (let i = from; i < to; i++) {
    const row = ROWS[i]!;
    clock.advance(row.timestamp! - clock.now());
    const t = row.timestamp!;
    publisher.publish(`anomaly/${DEV}/ingest/vibration`, JSON.stringify({ t, values: [row.accel_x, row.accel_y, row.accel_z] }));
    for (const s of ['voltage', 'rpm', 'temperature']) {
      const b = bare(i);
      publisher.publish(`anomaly/${DEV}/ingest/${s}`, b === undefined ? JSON.stringify({ t, values: [row[s]] }) : String(b));
    }
    sent += 4;
    await until(`row ${i} judged`, async () => (await judged()) === sent);
  }
  await turn();
  await turn();
}

/** The numbers: between 0 and 1, never the same twice in a row. */
const unit = (i: number) => Number(((i * 0.6180339887) % 1).toFixed(4)) || 0.5;
const FAULT_FROM = 300; // 15 s of normal running first: every model has scored
const FAULT_TO = 500; // 10 s of bare numbers
const END = 900; // 20 s of normal running again

test('the reported case: bare numbers 0..1 on the voltage, rpm and temperature ingest topics are sensor faults — alerted, counted, in status and /healthz, never scored', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sensor-faults-'));
  const clock = new ManualClock(T0 - 50);
  const d = await daemon(dir, ['--source-kind', 'mqtt', '--sensor-faults-clear-ms', '5000'], clock);
  const publisher = await connectAsync(d.url, { clientId: 'plc', reconnectPeriod: 0 });
  try {
    const bare = (i: number) => (i >= FAULT_FROM && i < FAULT_TO ? unit(i) : undefined);
    await feed(d, clock, publisher, 0, FAULT_FROM + 40, bare);
    // Two seconds into the fault: status, /healthz and /metrics say so.
    await until('status naming the faults', () => d.wire.statuses.at(-1)?.sensors.temperature === 'fault');
    assert.deepEqual(d.wire.statuses.at(-1)!.sensors, { vibration: 'ok', voltage: 'fault', rpm: 'fault', temperature: 'fault' });
    const health = await fetch(`${d.http}/healthz`);
    assert.equal(health.status, 503);
    const reasons = ((await health.json()) as { reasons: string[] }).reasons;
    assert.ok(
      reasons.some((r) => /^sensor voltage: sensor fault, out of range: voltage read 0\.\d+, outside its plausible range 10\.\.300 \(or 0 at rest\)$/.test(r)),
      reasons.join('\n'),
    );
    assert.ok(!reasons.some((r) => r.includes('no window scored')), 'a model waiting for a faulty sensor is not stalled');
    assert.equal(d.c.progress().ok, true, 'the watchdog is fed: a restart would not mend a sensor');

    await feed(d, clock, publisher, FAULT_FROM + 40, END, bare);
    const metrics = await (await fetch(`${d.http}/metrics`)).text();
    for (const s of ['voltage', 'rpm', 'temperature']) {
      assert.match(metrics, new RegExp(`^anomaly_agent_sensor_faults_total\\{sensor="${s}",fault="out of range"\\} ${FAULT_TO - FAULT_FROM}$`, 'm'));
      assert.match(metrics, new RegExp(`^anomaly_agent_alerts_total\\{kind="sensor",sensor="${s}",state="raised"\\} 1$`, 'm'));
      assert.match(metrics, new RegExp(`^anomaly_agent_alerts_total\\{kind="sensor",sensor="${s}",state="cleared"\\} 1$`, 'm'));
    }
    assert.doesNotMatch(metrics, /^anomaly_agent_sensor_faults_total\{sensor="vibration"/m);
    await until('the cleared alerts on the wire', () => d.wire.alerts.filter((a) => a.state === 'cleared').length === 3);

    // No alert of a model at all; one raised and one cleared sensor alert per sensor, on the wire.
    for (const a of d.wire.alerts) assert.equal(payloadProblem('alerts', a), undefined);
    assert.deepEqual(d.wire.alerts.filter((a) => a.kind !== 'sensor'), [], 'no machine alert');
    const sensorAlerts = d.wire.alerts as SensorAlertPayload[];
    const faultStart = ROWS[FAULT_FROM]!.timestamp!;
    const faultEnd = ROWS[FAULT_TO - 1]!.timestamp!;
    const limits: Record<string, string> = { voltage: '10\\.\\.300 \\(or 0 at rest\\)', rpm: '1\\.\\.3600 \\(or 0 at rest\\)', temperature: '5\\.\\.155' };
    for (const s of ['voltage', 'rpm', 'temperature']) {
      const [raised, cleared, ...more] = sensorAlerts.filter((a) => a.sensor === s);
      assert.equal(more.length, 0, `${s}: one episode`);
      assert.equal(raised!.state, 'raised');
      assert.equal(raised!.fault, 'out of range');
      assert.equal(raised!.since, faultStart);
      assert.match(raised!.detail, new RegExp(`^${s} read ${unit(FAULT_FROM)}, outside its plausible range ${limits[s]}$`));
      assert.equal(cleared!.id, raised!.id);
      assert.equal(cleared!.reason, 'readings plausible again');
      assert.match(cleared!.detail, new RegExp(`; ${FAULT_TO - FAULT_FROM} readings withheld in 9\\.95 s$`));
    }
    assert.deepEqual(d.wire.statuses.at(-1)!.sensors, { vibration: 'ok', voltage: 'ok', rpm: 'ok', temperature: 'ok' }, 'healthy again');

    // Not scored: no window of a model reading those sensors ends in the fault (a window after it
    // begins after it: the gap broke the windows); the vibration model scored on throughout.
    await until('scores on the wire', () => d.wire.scores.length > 0);
    const during = d.wire.scores.filter((s) => s.windowEnd >= faultStart && s.windowEnd <= faultEnd);
    assert.deepEqual([...new Set(during.map((s) => s.model))], ['vibration']);
    assert.ok(during.length >= 15, `${during.length} vibration windows during the fault`);
    for (const model of ['voltage', 'rpm', 'temperature', 'multi-feature']) {
      const after = d.wire.scores.filter((s) => s.model === model && s.windowEnd > faultEnd);
      assert.ok(after.length > 0, `${model} scores again after the fault`);
      assert.ok(after[0]!.windowEnd - faultEnd >= 99 * 50, `${model}: its first window after the fault holds no reading of it`);
    }
  } finally {
    await publisher.endAsync();
    await d.listener.endAsync();
    await d.c.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the same feed with limits that let 0..1 through: the models score it and raise machine alerts (what the issue reported)', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sensor-faults-'));
  const clock = new ManualClock(T0 - 50);
  const open = JSON.stringify(Object.fromEntries(['voltage', 'rpm', 'temperature'].map((ch) => [ch, { min: -1e6, max: 1e6, stuckMs: 0 }])));
  const d = await daemon(dir, ['--source-kind', 'mqtt', '--sensor-faults-channels', open], clock);
  const publisher = await connectAsync(d.url, { clientId: 'plc', reconnectPeriod: 0 });
  try {
    await feed(d, clock, publisher, 0, FAULT_TO, (i) => (i >= FAULT_FROM ? unit(i) : undefined));
    await until('machine alerts', () => d.wire.alerts.some((a) => a.kind === 'machine'));
    const raised = d.wire.alerts.filter((a) => a.kind === 'machine' && a.state === 'raised').map((a) => (a as { model: string }).model);
    assert.ok(['voltage', 'rpm', 'temperature'].some((m) => raised.includes(m)), raised.join(', '));
    assert.equal(d.wire.alerts.filter((a) => a.kind === 'sensor').length, 0);
  } finally {
    await publisher.endAsync();
    await d.listener.endAsync();
    await d.c.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the sim stuck fault on one accelerometer axis: a stuck sensor alert, its readings withheld, cleared once the axis moves again', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sensor-faults-'));
  const clock = new ManualClock(Date.UTC(2024, 2, 4, 8));
  const logs: { msg: string }[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (chunk, _e, cb) => (logs.push(JSON.parse(String(chunk))), cb()) }));
  const d = await daemon(dir, ['--models-enabled', 'vibration', '--sensor-faults-clear-ms', '3000'], clock, log);
  const admin = await connectAsync(d.url, { clientId: 'operator', reconnectPeriod: 0 });
  const command = async (c: object, applied: string) => {
    const before = logs.length;
    await admin.publishAsync(`anomaly/${DEV}/cmd/fault`, JSON.stringify(c), { qos: 1 });
    await until(`'${applied}' in the log`, () => logs.slice(before).some((l) => l.msg.startsWith(applied)));
  };
  try {
    await runClock(clock, 10_000);
    const withheld = async () => total(d.c.metrics.sensorFaults);
    assert.equal(await withheld(), 0, 'the healthy sim has no sensor fault');
    const samples = await total(d.c.metrics.samples);
    await command({ action: 'on', fault: 'stuck', intensity: 'subtle', channels: ['accel_x'] }, 'fault on: stuck/subtle');
    const onAt = clock.now();
    await runClock(clock, 5000);
    await until('the stuck alert', () => d.wire.alerts.some((a) => a.kind === 'sensor'));
    const raised = d.wire.alerts.find((a) => a.kind === 'sensor') as SensorAlertPayload;
    assert.equal(raised.sensor, 'vibration');
    assert.equal(raised.fault, 'stuck');
    assert.match(raised.detail, /^accel_x read -?\d+(\.\d+)? unchanged for 2 s \(\d+ readings; stuck after 2 s\)$/);
    assert.ok(raised.since >= onAt - 50 && raised.since <= onAt + 100, `froze at the command: ${raised.since - onAt} ms`);
    // Readings of the 3 s after detection were withheld: about 60 of them (one per 50 ms period).
    const n = await withheld();
    assert.ok(n >= 55 && n <= 62, `${n} readings withheld`);
    assert.equal(d.wire.statuses.at(-1)!.sensors.vibration, 'fault');

    await command({ action: 'off' }, 'fault off');
    await runClock(clock, 5000);
    await until('the cleared alert', () => d.wire.alerts.some((a) => a.kind === 'sensor' && a.state === 'cleared'));
    const cleared = d.wire.alerts.find((a) => a.kind === 'sensor' && a.state === 'cleared') as SensorAlertPayload;
    assert.equal(cleared.id, raised.id);
    assert.equal(cleared.reason, 'readings plausible again');
    assert.ok((await total(d.c.metrics.samples)) > samples + 150, 'its readings reach the rings again');
    await until('status ok again', () => d.wire.statuses.at(-1)?.sensors.vibration === 'ok');
    const machine = d.wire.alerts.filter((a) => a.kind !== 'sensor');
    assert.deepEqual(machine, [], 'the stuck axis raised no machine alert');
  } finally {
    await admin.endAsync();
    await d.listener.endAsync();
    await d.c.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * The whole daemon in this process, on a ManualClock: the Controller with its real components — the
 * embedded aedes broker, the outbox on disk, the MQTT client, the shipped rpm_600 vibration bundle,
 * the replay source, health and HTTP — and a real mqtt.js client listening on the broker. Samples in
 * (a labelled seed recording replayed by the clock), alerts out on the wire, stop. Sample time is
 * the clock's, so a minute and a half of running takes a fraction of a second.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectAsync } from 'mqtt';
import { loadConfig } from '#agent/config/load.js';
import { ManualClock } from '#agent/core/clock.js';
import { silentLogger } from '#agent/core/log.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { Controller } from '#agent/daemon/controller.js';
import { payloadProblem } from '#agent/core/payloads.js';
import type { ModelAlertPayload, StatusPayload } from '#agent/core/topics.js';

const DATA = join(PACKAGE_ROOT, 'datas', 'raw', 'rpm_600', 'test');
const FILE = join(DATA, 'test_01.csv');
/** The recording's first timestamp: with the clock started there, sample times are the file's own. */
const T0 = Number(readFileSync(FILE, 'utf8').split('\n')[1]!.split(',')[0]);
const faults = JSON.parse(readFileSync(join(DATA, 'faults.json'), 'utf8')) as Record<string, { kind: string; intensity: string; startMs: number; endMs: number }[]>;
const BEARING = faults['test_01.csv']!.find((f) => f.kind === 'bearing' && f.intensity === 'obvious')!;

const turn = () => new Promise<void>((r) => setImmediate(r));
const until = async (what: string, ok: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('in process on a ManualClock: replayed samples in, the bearing fault raised and cleared on the wire, status offline at stop', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'controller-'));
  const clock = new ManualClock(T0);
  // prettier-ignore
  const config = loadConfig({ argv: [
    '--device-id', 'press-3', '--broker-port', '0', '--http-port', '0', '--outbox-dir', join(dir, 'outbox'), '--models-dir', join(dir, 'models'),
    '--models-profile', 'rpm_600', '--models-enabled', 'vibration',
    '--source-kind', 'replay', '--source-replay-file', FILE, '--source-replay-speed', '1',
  ] });
  const c = new Controller({ config, log: silentLogger, version: 'test', clock, threads: false });
  let listener: Awaited<ReturnType<typeof connectAsync>> | undefined;
  try {
    await c.start();
    listener = await connectAsync(`mqtt://127.0.0.1:${c.brokerAddress()!.port}`, { clientId: 'listener', reconnectPeriod: 0 });
    const alerts: ModelAlertPayload[] = [];
    const statuses: StatusPayload[] = [];
    listener.on('message', (topic, payload) => {
      if (topic === 'anomaly/press-3/alerts') alerts.push(JSON.parse(payload.toString()) as ModelAlertPayload);
      if (topic === 'anomaly/press-3/status') statuses.push(JSON.parse(payload.toString()) as StatusPayload);
    });
    await listener.subscribeAsync(['anomaly/press-3/alerts', 'anomaly/press-3/status'], { qos: 1 });
    await until('the retained online status', () => statuses.some((s) => s.state === 'online'));
    assert.deepEqual(statuses.at(-1)!.models.map((m) => m.model), ['vibration']);

    // Up to 30 s past the bearing fault's end, a second of clock at a time; real time only for the wire.
    while (clock.now() < BEARING.endMs + 30_000 && !alerts.some((a) => a.state === 'cleared')) {
      clock.advance(1000);
      await turn(); // the windows of this second are scored as one batch, then published
      await turn();
    }
    await until('the cleared alert on the wire', () => alerts.some((a) => a.state === 'cleared'));
    const [raised, cleared] = alerts;
    assert.equal(raised!.state, 'raised');
    assert.equal(raised!.model, 'vibration');
    assert.ok(raised!.since >= BEARING.startMs && raised!.since <= BEARING.endMs, `raised at ${raised!.since - T0} ms, inside the bearing fault (${BEARING.startMs - T0}–${BEARING.endMs - T0} ms)`);
    assert.ok(raised!.topFeatures.length > 0 && raised!.topFeatures.every((f) => ['accel_x', 'accel_y', 'accel_z'].includes(f.feature)));
    assert.equal(cleared!.id, raised!.id);
    assert.equal(cleared!.state, 'cleared');
    // Exactly the declared payloads: no key more or less.
    for (const a of alerts) assert.equal(payloadProblem('alerts', a), undefined);
    for (const s of statuses) assert.equal(payloadProblem('status', s), undefined);

    // Health and metrics read the same clock: samples arrived and windows were scored just now.
    assert.deepEqual(c.health().reasons, []);
    assert.equal(c.progress().ok, true);
    const scored = (await c.metrics.windowsScored.get()).values.find((v) => v.labels.model === 'vibration')!.value;
    assert.ok(scored > 50, `${scored} windows scored`);

    await c.stop();
    await until('the offline status', () => statuses.at(-1)?.state === 'offline');
  } finally {
    await c.stop();
    await listener?.endAsync();
    await rm(dir, { recursive: true, force: true });
  }
});

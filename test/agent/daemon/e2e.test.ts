/**
 * End to end, with real parts: the compiled daemon replays a labelled seed test file (×20) and a
 * real `mosquitto_sub` hears its alerts, first through the embedded aedes broker, then through a real
 * Mosquitto 2 with the daemon in external-broker mode. What a person at `mosquitto_sub -t
 * 'anomaly/+/alerts'` sees must be:
 * - every payload exactly an AlertPayload (DESIGN.md "MQTT topics"), no key more or less;
 * - per model, raised and cleared strictly alternating, a cleared with the id (and since) of its raise;
 * - exactly what the agent logged as raised/cleared, in the same order;
 * - one pair per detected episode: mapped back to file time, each pair's span overlaps exactly one
 *   labelled episode and no episode has two pairs; every obvious vibration episode is detected;
 * - the retained status `online` with the model list while running, `offline` after SIGTERM; the
 *   daemon exits 0 within its shutdown timeout.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { payloadProblem } from '#agent/core/payloads.js';
import type { AlertPayload, ScorePayload, SensorAlertPayload } from '#agent/core/topics.js';
import {
  Daemon,
  firstMessage,
  freePort,
  isListening,
  isSensorAlert,
  killAll,
  labelledFile,
  Mosquitto,
  pairAlerts,
  parseAlert,
  parseStatus,
  replayStart,
  startSub,
  TEST_DATA,
  waitFor,
  waitListening,
  waitStable,
  type AlertPair,
  type Episode,
  type Flags,
  type LabelledFile,
  type Sub,
} from './daemon-fixture.js';

/** test_01: obvious bearing (109–128 s) and obvious stuck accel_z (231–248 s) episodes, plus subtle/electrical ones. */
const FILE = join(TEST_DATA, 'test_01.csv');
const SPEED = 20;
const SHUTDOWN_MS = 5000;
/** Signal to exit: the stop is bounded by SHUTDOWN_MS; this much more covers process exit on a loaded machine. */
const EXIT_SLACK_MS = 1500;
const MODEL = 'vibration';
/** The detector's clear rule, pinned by flags so the test can find the clearing window in the score stream. */
const CLEAR_M = 5;
const CLEAR_RATIO = 0.8;
const VIBRATION = ['accel_x', 'accel_y', 'accel_z'];
const BUNDLE = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'models', 'rpm_600', MODEL, 'bundle.json'), 'utf8')) as { seqLen: number; hop: number; periodMs: number; name: string };

after(killAll);

interface Run {
  daemon: Daemon;
  alertsSub: Sub;
  statusSub: Sub;
  scoreSub: Sub;
  alerts: AlertPayload[];
  pairs: AlertPair[];
  exitMs: number;
}

/**
 * Runs the daemon over FILE; `brokerPort` says where its broker listens (the embedded one's port from
 * its log, or Mosquitto's). Subscribes mosquitto_sub to alerts, status and scores once that port
 * listens, waits for the end of the file and every logged alert to arrive, stops the daemon with
 * SIGTERM and checks everything but the episodes.
 */
async function replay(t: TestContext, dev: string, flags: Flags, brokerPort: (d: Daemon) => Promise<number>): Promise<Run> {
  const daemon = new Daemon(`agent ${dev}`, {
    ...flags,
    'device-id': dev,
    'source-replay-file': FILE,
    'source-replay-speed': SPEED,
    'shutdown-timeout-ms': SHUTDOWN_MS,
    'detector-clear-m': CLEAR_M,
    'detector-clear-ratio': CLEAR_RATIO,
    'publish-scores': true,
  });
  const port = await brokerPort(daemon);
  await waitListening(port, 10_000, daemon);
  const alertsSub = await startSub('sub alerts', { port, topics: ['anomaly/+/alerts'], qos: 1 });
  const statusSub = await startSub('sub status', { port, topics: ['anomaly/+/status'], qos: 1, format: 'retain' });
  const scoreSub = await startSub('sub scores', { port, topics: [`anomaly/${dev}/score/${MODEL}`] });
  await daemon.started();
  assert.equal(daemon.find((l) => l.msg === 'alert raised'), undefined, 'no alert before the subscriber was in place');

  // Retained `online`, with the model list, while running.
  await statusSub.waitForLine('status online', (l) => l.includes('"state":"online"'), 10_000);
  const online = await firstMessage(port, 'anomaly/+/status');
  assert.equal(online.topic, `anomaly/${dev}/status`);
  assert.equal(online.retain, true, 'status is retained');
  const onlineStatus = parseStatus(online.payload);
  assert.equal(onlineStatus.state, 'online');
  assert.deepEqual(
    onlineStatus.models.map((m) => [m.model, m.name]),
    [[MODEL, BUNDLE.name]],
  );
  assert.deepEqual(Object.keys(onlineStatus.sensors).sort(), ['rpm', 'temperature', 'vibration', 'voltage']);

  const file = labelledFile(FILE);
  const budget = file.durationMs / SPEED + 30_000;
  await waitFor('the end of the file, every episode closed', () => daemon.reachedEnd() && daemon.alerts().length % 2 === 0, budget);
  // On a timeout, go on: the comparison below says which alerts are missing.
  await waitStable('every logged alert at the subscriber', () => alertsSub.messages().length === daemon.alerts().length, 300, 10_000).catch((err: Error) => t.diagnostic(err.message));

  const stop = await daemon.stop('SIGTERM', SHUTDOWN_MS + 10_000);
  t.diagnostic(`${dev}: SIGTERM → exit ${stop.code} in ${stop.ms} ms`);
  assert.equal(stop.code, 0, `exit code\n${daemon.tail()}`);
  assert.ok(stop.ms <= SHUTDOWN_MS + EXIT_SLACK_MS, `exited ${stop.ms} ms after SIGTERM (shutdown timeout ${SHUTDOWN_MS} ms)`);
  assert.ok(daemon.find((l) => l.msg === 'agent stopped'), `'agent stopped' logged\n${daemon.tail()}`);
  assert.equal(daemon.find((l) => l.msg === 'shutdown timed out'), undefined, 'no component outlived the shutdown timeout');

  // What the subscriber heard: AlertPayloads only, on this device's topic, exactly what was logged.
  const received = alertsSub.messages();
  for (const m of received) assert.equal(m.topic, `anomaly/${dev}/alerts`);
  const alerts = received.filter((m) => !isSensorAlert(m.payload)).map((m) => parseAlert(m.payload, { models: [MODEL], features: VIBRATION }));
  assert.deepEqual(
    alerts.map((a) => [a.id, a.state, a.score]),
    daemon.alerts().filter((a) => a.kind !== 'sensor').map((a) => [a.id, a.state, a.score]),
    'the subscriber got exactly the alerts the agent logged, in order',
  );
  // The file's stuck accelerometer axis (accel_z at the +16 g rail, 185 s in) is a sensor fault, not a machine one:
  // no model window holds a reading of it.
  const sensorAlerts = received.filter((m) => isSensorAlert(m.payload)).map((m) => JSON.parse(m.payload) as SensorAlertPayload);
  for (const a of sensorAlerts) assert.equal(payloadProblem('alerts', a), undefined);
  assert.deepEqual(
    sensorAlerts.map((a) => [a.id, a.state]),
    daemon.alerts().filter((a) => a.kind === 'sensor').map((a) => [a.id, a.state]),
    'and exactly the sensor alerts',
  );
  assert.ok(sensorAlerts.some((a) => a.state === 'raised' && a.sensor === 'vibration' && a.fault === 'out of range' && a.detail.startsWith('accel_z read 156.9, outside its plausible range -150..150')), JSON.stringify(sensorAlerts));
  const pairs = pairAlerts(alerts);
  assert.ok(pairs.length > 0, 'at least one episode detected');

  // The status the subscriber saw last: `offline`, same models.
  const statuses = statusSub.messages().map((m) => parseStatus(m.payload));
  assert.equal(statuses[0]?.state, 'online');
  const last = statuses.at(-1)!;
  assert.equal(last.state, 'offline', `last status seen: ${JSON.stringify(last)}`);
  assert.deepEqual(last.models, onlineStatus.models);
  return { daemon, alertsSub, statusSub, scoreSub, alerts, pairs, exitMs: stop.ms };
}

/**
 * The end (sample time) of the window that cleared pair `p`, from the score stream (QoS 0, so it
 * may lack a window): the last of the first CLEAR_M consecutive windows after `since` that all score
 * under CLEAR_RATIO × threshold. No run of CLEAR_M low windows fits between `since` and the raise
 * (raiseK of raiseN are over there), so the first run after `since` is the one that cleared.
 * Undefined when the stream has a hole there.
 */
function clearingWindowEnd(run: Run, p: AlertPair, notAfter: number): number | undefined {
  const hopMs = BUNDLE.hop * BUNDLE.periodMs;
  const windows = run.scoreSub
    .messages()
    .map((m) => JSON.parse(m.payload) as ScorePayload)
    .filter((w) => w.windowEnd >= p.raised.since && w.windowEnd <= notAfter)
    .sort((a, b) => a.windowEnd - b.windowEnd);
  let lowRun = 0;
  let prev: number | undefined;
  for (const w of windows) {
    if (prev !== undefined && w.windowEnd - prev !== hopMs) return undefined; // a hole: cannot tell
    prev = w.windowEnd;
    lowRun = w.score < CLEAR_RATIO * w.threshold ? lowRun + 1 : 0;
    if (lowRun === CLEAR_M) return w.windowEnd;
  }
  return undefined;
}

/**
 * Maps each pair back to file time and matches it with the labelled episodes. A pair spans from the
 * first sample of the window that began it (since − (seqLen − 1)·period) to the end of the window that
 * cleared it: from the score stream when it is complete there, else a bound that holds anyway — the
 * file time the replay had reached when the cleared alert was made (at clock time c a replay started
 * at S has emitted only rows with offset < (c − S)·speed), looser by scoring latency × speed.
 */
function checkEpisodes(t: TestContext, run: Run, file: LabelledFile): void {
  const start = run.daemon.replayStartLog();
  assert.ok(start, "'replaying …' logged");
  const S = replayStart(start.time, run.pairs[0]!.raised.since, file.periodMs);
  const toFile = (sampleTime: number) => sampleTime - S + file.t0;
  const clockToFile = (clock: number) => (clock - S) * SPEED + file.t0;
  const windowSpan = (BUNDLE.seqLen - 1) * BUNDLE.periodMs;
  const hits = new Map<Episode, AlertPair[]>();
  for (const p of run.pairs) {
    const since = toFile(p.raised.since);
    assert.ok(since >= file.t0 && since <= file.t0 + file.durationMs, `${p.id}: since maps into the file`);
    assert.ok(since <= clockToFile(p.raised.t), `${p.id}: the episode began before it was raised`);
    const from = since - windowSpan;
    const bound = clockToFile(p.cleared!.t);
    const cleared = clearingWindowEnd(run, p, bound - file.t0 + S);
    const to = cleared === undefined ? bound : toFile(cleared);
    if (cleared !== undefined) assert.ok(to <= bound + 1, `${p.id}: the clearing window (${to}) was emitted before the cleared alert (${bound})`);
    else t.diagnostic(`${p.id}: score stream incomplete around the clear; using the clock bound`);
    const overlapped = file.episodes.filter((e) => from <= e.endMs && to >= e.startMs);
    const sec = (x: number) => ((x - file.t0) / 1000).toFixed(1);
    t.diagnostic(`${p.id}: since ${sec(since)} s, span ${sec(from)}–${sec(to)} s of the file (clock bound ${sec(bound)} s) → ${overlapped.map((e) => `${e.kind}/${e.intensity} ${sec(e.startMs)}–${sec(e.endMs)} s`).join(', ') || 'no episode'}`);
    assert.equal(overlapped.length, 1, `${p.id} (file ${sec(from)}–${sec(to)} s) overlaps exactly one labelled episode, not ${overlapped.length}`);
    const e = overlapped[0]!;
    hits.set(e, [...(hits.get(e) ?? []), p]);
  }
  for (const [e, ps] of hits) assert.equal(ps.length, 1, `episode ${e.kind} at ${e.startMs} has one pair, not ${ps.map((p) => p.id).join(', ')}`);
  // A sensor's own fault (stuck, dropout) is a sensor alert, checked in replay(): the model never sees it.
  const obvious = file.episodes.filter((e) => e.intensity === 'obvious' && e.kind !== 'stuck' && e.kind !== 'dropout' && e.channels.some((c) => VIBRATION.includes(c)));
  assert.ok(obvious.length >= 1, 'the file has obvious vibration episodes of the machine');
  for (const e of obvious) assert.ok(hits.has(e), `obvious vibration episode ${e.kind} at ${(e.startMs - file.t0) / 1000} s of the file detected`);
}

describe('daemon end to end (compiled daemon, real mosquitto_sub)', () => {
  test('embedded aedes broker: alerts are exact AlertPayloads, one raised/cleared pair per episode, retained status, exit 0', { timeout: 120_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'anomaly-e2e-'));
    try {
      const run = await replay(t, 'e2e-embedded', { 'outbox-dir': join(dir, 'outbox'), 'broker-port': 0 }, (d) => d.brokerPort());
      checkEpisodes(t, run, labelledFile(FILE));
    } finally {
      await killAll();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('external Mosquitto 2 (--mqtt-url): no embedded broker, alerts through Mosquitto, retained offline after exit', { timeout: 120_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'anomaly-e2e-mosq-'));
    try {
      const port = await freePort();
      const mosquitto = await new Mosquitto({ port, dir }).start();
      const unusedBrokerPort = await freePort();
      const dev = 'e2e-mosquitto';
      const url = `mqtt://127.0.0.1:${port}`;
      const run = await replay(t, dev, { 'outbox-dir': join(dir, 'outbox'), 'mqtt-url': url, 'broker-port': unusedBrokerPort }, async () => port);
      const d = run.daemon;

      // External-broker mode: no embedded broker, the client went to Mosquitto.
      assert.equal(d.find((l) => l.msg === 'broker listening' || l.module === 'broker'), undefined, 'the embedded broker did not start');
      assert.equal(d.find((l) => l.msg === 'agent started')!.mqtt, url);
      assert.equal(d.find((l) => l.module === 'mqtt' && l.msg === 'connected')?.url, url);
      assert.equal(await isListening(unusedBrokerPort), false, `nothing listens on --broker-port ${unusedBrokerPort}`);
      assert.ok(
        mosquitto.log().some((l) => l.includes(`as anomaly-agent-${dev} `)),
        'Mosquitto saw the agent connect',
      );
      checkEpisodes(t, run, labelledFile(FILE));

      // After SIGTERM the retained status says offline (a fresh subscriber gets it from Mosquitto).
      const offline = await firstMessage(port, 'anomaly/+/status');
      assert.equal(offline.topic, `anomaly/${dev}/status`);
      assert.equal(offline.retain, true);
      const st = parseStatus(offline.payload);
      assert.equal(st.state, 'offline');
      assert.deepEqual(
        st.models.map((m) => m.model),
        [MODEL],
      );
      assert.ok(mosquitto.proc!.running, 'Mosquitto still up');
      await mosquitto.stop();
    } finally {
      await killAll();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

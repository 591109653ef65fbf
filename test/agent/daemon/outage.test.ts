/**
 * Store-and-forward across a broker outage and an agent crash, with real parts: an external
 * Mosquitto 2, the compiled daemon, a real `mosquitto_sub`.
 *
 * Sequence: agent #1 up, broker up (alerts arrive live) → Mosquitto stopped (SIGTERM) → agent #1
 * raises alerts with the broker down → agent #1 SIGKILLed → agent #2 started on the same outbox, broker
 * still down, raises more → Mosquitto started again on the same port → agent #2 reconnects, drains its
 * outbox (its own alerts and #1's), keeps raising live. Claim under test: the AGENT loses nothing —
 * every alert the two agents logged ('alert raised' / 'alert cleared', with ids) reaches the
 * subscriber, in the logged order, none missing, none invented; those raised during the outage only
 * after the broker is back.
 *
 * Why the subscriber is a persistent session (`mosquitto_sub -c -i ID -q 1`) on a Mosquitto with
 * `persistence true`: a clean-session subscriber re-subscribes on its own reconnect schedule after the
 * restart; had the agent drained its outbox first, the broker would have had nobody to deliver to and
 * the test would blame the agent for the broker's (correct) behaviour — or, with a lucky order, prove
 * nothing. With a persistent QoS 1 session saved across the restart, the broker queues for the
 * subscriber whatever it PUBACKs to the agent, whenever the subscriber comes back: what the
 * subscriber misses, the agent never delivered.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Daemon, firstMessage, isSensorAlert, killAll, parseStatus, Mosquitto, freePort, pairAlerts, parseAlert, startSub, TEST_DATA, waitFor, waitStable, type LoggedAlert, type LogLine } from './daemon-fixture.js';
import { payloadProblem } from '#agent/core/payloads.js';
import type { AlertPayload } from '#agent/core/topics.js';

/** test_01 at ×20: an obvious bearing episode (~5.5–6.8 s after start) and an obvious stuck accel_z one (~11.6–12.8 s). */
const FILE = join(TEST_DATA, 'test_01.csv');
const SPEED = 20;
const DEV = 'outage-1';
const SUB_ID = 'outage-test-subscriber';
/** A replay of the whole file plus headroom for a loaded machine. */
const PASS_MS = 269_150 / SPEED + 15_000;

after(killAll);

test('broker outage + SIGKILL of the agent during it: every alert either agent raised reaches the subscriber once the broker is back, in order', { timeout: 150_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'anomaly-outage-'));
  const t0 = Date.now();
  const at = (ms: number) => `${((ms - t0) / 1000).toFixed(1)} s`;
  try {
    const port = await freePort();
    await mkdir(join(dir, 'mosquitto'));
    const mosquitto = await new Mosquitto({ port, dir: join(dir, 'mosquitto'), persistence: true }).start();
    const sub = await startSub('sub alerts (persistent)', { port, topics: [`anomaly/${DEV}/alerts`], qos: 1, persistentId: SUB_ID });
    const flags = {
      'device-id': DEV,
      'mqtt-url': `mqtt://127.0.0.1:${port}`,
      'mqtt-reconnect-ms': 500,
      'outbox-dir': join(dir, 'outbox'),
      'source-replay-file': FILE,
      'source-replay-speed': SPEED,
      'shutdown-timeout-ms': 5000,
    };
    const connected = (l: LogLine) => l.module === 'mqtt' && l.msg === 'connected';

    // 1. Agent #1 with the broker up: the first episode arrives live.
    const a1 = new Daemon('agent#1', flags);
    await a1.started();
    await a1.waitForLog('connected to Mosquitto', connected, 10_000);
    await waitFor('agent #1: first episode raised, cleared and delivered live', () => a1.alerts().length >= 2 && sub.messages().length >= 2, PASS_MS);
    const live1 = a1.alerts().length;

    // 2. Broker down; agent #1 goes on raising into its outbox.
    const downAt = Date.now();
    const IN_FLIGHT_MS = 1000;
    await mosquitto.stop();
    t.diagnostic(`${at(downAt)}: Mosquitto stopped after ${live1} alerts`);
    await a1.waitForLog('agent #1 notices the broker is gone', (l) => l.msg === 'broker unreachable; alerts go to the outbox' && l.time >= downAt, 10_000);
    await waitFor('agent #1 raises and clears an episode with the broker down', () => a1.alerts().filter((a) => a.time > downAt).length >= 2, PASS_MS);
    const outage1 = a1.alerts().filter((a) => a.time > downAt);
    // The agent logs an alert, then appends it to the outbox (fdatasync): a kill within those few ms
    // would lose an alert that never became durable, which no design can save. Kill once they are in
    // the file (a killed process's written data survives; only a power cut needs the fdatasync).
    const outboxLog = join(dir, 'outbox', 'outbox.log');
    await waitFor(
      "agent #1's outage alerts in outbox.log",
      () => {
        const text = readFileSync(outboxLog, 'latin1');
        return outage1.every((a) => text.includes(`"id":"${a.id}","kind":"${a.kind}","${a.kind === 'sensor' ? `sensor":"${a.sensor}` : `model":"${a.model}`}","state":"${a.state}"`));
      },
      5000,
    );

    // 3. Agent #1 killed outright; agent #2 takes over its outbox, broker still down.
    const killed = await a1.stop('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    const a1Alerts = a1.alerts();
    t.diagnostic(`${at(killed.at)}: agent #1 SIGKILLed; it logged ${a1Alerts.length} alerts, ${outage1.length} during the outage`);
    const a2 = new Daemon('agent#2', flags);
    await a2.started();
    const recovered = a2.find((l) => l.msg === 'outbox: recovered');
    assert.ok(recovered, `agent #2 recovered the outbox\n${a2.tail()}`);
    assert.equal((recovered.depth as { alert: number }).alert, a1Alerts.length - live1, 'the outbox holds exactly the alerts agent #1 could not deliver');
    await waitFor('agent #2 raises and clears an episode with the broker still down', () => a2.alerts().length >= 2, PASS_MS);
    assert.equal(a2.find(connected), undefined, 'agent #2 has not reached a broker yet');
    const beforeUp = a2.alerts().length;

    // 4. Broker back on the same port (sessions restored); agent #2 reconnects and drains.
    const upAt = Date.now();
    await mosquitto.start();
    t.diagnostic(`${at(upAt)}: Mosquitto started again; agent #2 had logged ${beforeUp} alerts offline`);
    const reconnected = await a2.waitForLog('agent #2 reconnects', connected, 10_000);
    t.diagnostic(`${at(reconnected.time)}: agent #2 connected`);

    // The models' alerts and the sensors' (the file's accelerometer axis stuck at the rail) take the same outbox.
    const logged = (): LoggedAlert[] => [...a1Alerts, ...a2.alerts()];
    const parse = (text: string): AlertPayload => {
      if (!isSensorAlert(text)) return parseAlert(text, { models: ['vibration'], features: ['accel_x', 'accel_y', 'accel_z'] });
      const p = JSON.parse(text) as AlertPayload;
      assert.equal(payloadProblem('alerts', p), undefined, text);
      return p;
    };
    const firstOf = () => dedupe(sub.messages().map((m) => ({ m, a: parse(m.payload) })));
    await waitFor('agent #2 at the end of the file, its episodes closed', () => a2.reachedEnd() && a2.alerts().length % 2 === 0, PASS_MS);
    // On a timeout, go on: the comparison below says which alerts are missing.
    const settled = await waitStable('every logged alert at the subscriber', () => firstOf().length === logged().length, 300, 10_000).then(
      () => true,
      (err: Error) => (t.diagnostic(err.message), false),
    );
    const stop = await a2.stop('SIGTERM', 15_000);
    assert.equal(stop.code, 0, a2.tail());
    const status = await firstMessage(port, `anomaly/${DEV}/status`);
    assert.equal(status.retain, true);
    assert.equal(parseStatus(status.payload).state, 'offline', 'agent #2 left the retained status offline');

    // 5. Compare what the agents logged with what the subscriber got.
    const expected = logged();
    const got = firstOf();
    const duplicates = sub.messages().length - got.length;
    t.diagnostic(`logged ${expected.length} alerts (agent #1: ${a1Alerts.length}, agent #2: ${expected.length - a1Alerts.length}); received ${got.length} distinct, ${duplicates} QoS 1 redeliveries`);
    const score = (a: AlertPayload | LoggedAlert) => ('score' in a ? a.score : undefined);
    assert.deepEqual(
      got.map(({ a }) => [a.id, a.state, score(a)]),
      expected.map((a) => [a.id, a.state, a.score]),
      'every logged alert arrived, in the logged order, nothing else',
    );
    assert.ok(settled, 'the run settled');
    pairAlerts(got.flatMap(({ a }) => (a.kind === 'sensor' ? [] : [a])));
    for (let i = 0; i < expected.length; i++) {
      const e = expected[i]!;
      const { m } = got[i]!;
      if (e.time > downAt) assert.ok(m.at >= upAt, `${e.state} ${e.id}, logged during the outage at ${at(e.time)}, arrived after the broker was back (${at(m.at)})`);
      // One logged in the last second before the stop may be in flight as the broker goes: either way is right.
      else if (e.time < downAt - IN_FLIGHT_MS) assert.ok(m.at < downAt, `${e.state} ${e.id}, logged with the broker up, arrived live (${at(m.at)})`);
    }
    assert.ok(expected.filter((e) => e.time > downAt && e.time <= upAt).length >= 4, 'both agents raised alerts during the outage');
    assert.ok(expected.filter((e) => e.time > reconnected.time).length >= 2, 'agent #2 raised alerts after reconnecting too');
    await mosquitto.stop();
  } finally {
    await killAll();
    await rm(dir, { recursive: true, force: true });
  }
});

/** Keeps the first delivery of each (id, state): QoS 1 is at least once, a redelivery is not a new alert. */
function dedupe<T extends { a: { id: string; state: string } }>(xs: T[]): T[] {
  const seen = new Set<string>();
  return xs.filter(({ a }) => {
    const k = `${a.id} ${a.state}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * `npm start` as shipped: the compiled daemon on its defaults — source `sim` (the real drivers on
 * the emulated chips, driven by the motor simulator), the rpm_600 bundles, the embedded broker — with
 * only its ports and outbox moved, and a real mqtt.js client listening. A fault switched on with
 * `anomaly-agent fault` raises an alert within a bounded number of windows; switched off, it clears.
 * A part unplugged shows in the status topic and /metrics, the daemon keeps running, and scoring
 * resumes once it is plugged back in.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connectAsync, type MqttClient } from 'mqtt';
import { DEFAULTS } from '#agent/core/defaults.js';
import { PROFILES } from '#agent/core/profiles.js';
import type { ModelAlertPayload, ScorePayload, StatusPayload } from '#agent/core/topics.js';
import { AGENT_MAIN, Daemon, DEVICE, freePort, killAll, MODELS_DIR, needBundles, parseAlert, parseStatus, scrape, series, serviceFlags, suiteTempDir, waitFor } from './daemon-fixture.js';

const MODELS = ['vibration', 'voltage', 'rpm', 'temperature', 'multi-feature'];
const FEATURES = ['accel_x', 'accel_y', 'accel_z', 'voltage', 'rpm', 'temperature', 'temperature.shape'];
const P = PROFILES.rpm_600;
const HOP_MS = P.hop * P.periodMs;
/** Bounds, in windows of the model concerned (one every hop = 0.5 s): the on-delay (a window span) and ten more. */
const RAISE_WITHIN = (DEFAULTS.config.detector.onDelaySpans * P.seqLen) / P.hop + 10;
/** The window must first lose every faulty row (seqLen / hop windows), then clearM (5) low windows follow. */
const CLEAR_WITHIN = P.seqLen / P.hop + 5 + 5;

interface Heard {
  alerts: (ModelAlertPayload & { at: number })[];
  scores: (ScorePayload & { model: string; at: number })[];
  statuses: (StatusPayload & { at: number })[];
}

async function listen(port: number): Promise<{ client: MqttClient; heard: Heard }> {
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
  const heard: Heard = { alerts: [], scores: [], statuses: [] };
  client.on('message', (topic, payload) => {
    const at = Date.now();
    const text = payload.toString('utf8');
    if (topic === `anomaly/${DEVICE}/alerts`) heard.alerts.push({ ...parseAlert(text, { models: MODELS, features: FEATURES }), at });
    else if (topic === `anomaly/${DEVICE}/status`) heard.statuses.push({ ...parseStatus(text), at });
    else if (topic.startsWith(`anomaly/${DEVICE}/score/`)) heard.scores.push({ ...(JSON.parse(text) as ScorePayload), model: topic.split('/').pop()!, at });
  });
  await client.subscribeAsync([`anomaly/${DEVICE}/alerts`, `anomaly/${DEVICE}/status`, `anomaly/${DEVICE}/score/+`], { qos: 1 });
  return { client, heard };
}

/** `anomaly-agent fault …` against the daemon's broker; resolves with its stdout. */
function faultCli(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANOMALY_')));
    const p = spawn(process.execPath, [AGENT_MAIN, 'fault', ...args, '--mqtt-url', `mqtt://127.0.0.1:${port}`, '--device-id', DEVICE], { env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`anomaly-agent fault ${args.join(' ')}: exit ${code}\n${err}`))));
  });
}

/** Windows of `model` that ended after `from` and were heard before `until` (ms epoch). */
const windowsBetween = (h: Heard, model: string, from: number, until: number) => h.scores.filter((s) => s.model === model && s.windowEnd > from && s.at <= until).length;

describe('npm start on its defaults: the sim source end to end', () => {
  const dir = suiteTempDir('anomaly-sim-e2e-');

  test('a fault switched on raises an alert within a bounded number of windows, off clears it; an unplugged part shows in status and /metrics and scoring resumes after the replug', { timeout: 240_000 }, async (t) => {
    needBundles('rpm_600', MODELS);
    const httpPort = await freePort();
    // The shipped defaults (no --source-kind, no --models-*), only ports, outbox and device moved;
    // errorMs shortened so the test sees 'error' sooner.
    const daemon = new Daemon('sim-daemon', { 'hardware-error-ms': 2000, 'models-dir': MODELS_DIR }, { base: serviceFlags(dir(), httpPort) });
    try {
      const started = await daemon.started(30_000);
      assert.equal(started.source, 'sim');
      assert.deepEqual(started.models, MODELS);
      const port = await daemon.brokerPort();
      const { client, heard } = await listen(port);
      try {
        // Healthy running: every model scores, every sensor ok, no alert.
        await waitFor('every model scoring 10 windows', () => MODELS.every((m) => heard.scores.filter((s) => s.model === m).length >= 10), 60_000);
        assert.equal(heard.alerts.length, 0, "no alert while the simulated motor is healthy");
        const healthy = heard.statuses.at(-1)!;
        assert.deepEqual(healthy.sensors, { vibration: 'ok', voltage: 'ok', rpm: 'ok', temperature: 'ok' });
        const maxRatio = Math.max(...heard.scores.map((s) => s.score / s.threshold));
        t.diagnostic(`healthy: ${heard.scores.length} windows, highest score ${(100 * maxRatio).toFixed(0)} % of its threshold`);

        // Fault on: bearing, obvious. Windows are counted from the instant the sim switched it on (its log line).
        assert.match(await faultCli(port, 'on', 'bearing', 'obvious'), /^anomaly\/motor-1\/cmd\/fault \{"action":"on","fault":"bearing","intensity":"obvious"\}/);
        const tOn = (await daemon.waitForLog("'fault on: bearing/obvious'", (l) => l.msg === 'fault on: bearing/obvious', 10_000)).time;
        const raised = await waitFor('an alert raised', () => heard.alerts.find((a) => a.state === 'raised'), 30_000);
        const toRaise = windowsBetween(heard, raised.model, tOn, raised.at);
        t.diagnostic(`fault on → ${raised.model} raised after ${toRaise} of its windows (${((raised.at - tOn) / 1000).toFixed(1)} s), top ${raised.topFeatures.map((f) => f.feature).join(', ')}`);
        assert.ok(toRaise <= RAISE_WITHIN, `raised after ${toRaise} windows (bound ${RAISE_WITHIN})`);
        assert.ok(['vibration', 'multi-feature'].includes(raised.model));
        assert.ok(raised.topFeatures.some((f) => f.feature.startsWith('accel_')));

        // Fault off: every raised episode clears.
        await new Promise((r) => setTimeout(r, 3000)); // let every model that will raise, raise
        await faultCli(port, 'off');
        const tOff = (await daemon.waitForLog("'fault off: all'", (l) => l.msg === 'fault off: all', 10_000)).time;
        const raisedIds = () => heard.alerts.filter((a) => a.state === 'raised').map((a) => a.id);
        await waitFor('every raised alert cleared', () => raisedIds().every((id) => heard.alerts.some((a) => a.id === id && a.state === 'cleared')), 60_000);
        for (const c of heard.alerts.filter((a) => a.state === 'cleared')) {
          const n = windowsBetween(heard, c.model, tOff, c.at);
          t.diagnostic(`fault off → ${c.model} cleared after ${n} of its windows (${((c.at - tOff) / 1000).toFixed(1)} s)`);
          assert.ok(n <= CLEAR_WITHIN, `${c.model} cleared after ${n} windows (bound ${CLEAR_WITHIN})`);
        }

        // Unplug the accelerometer: status says stale, then error; the daemon keeps running.
        const beforeUnplug = heard.statuses.length;
        await client.publishAsync(`anomaly/${DEVICE}/cmd/fault`, JSON.stringify({ action: 'unplug', part: 'adxl345' }), { qos: 1 });
        const tUnplug = Date.now();
        const stale = await waitFor('status: vibration stale', () => heard.statuses.slice(beforeUnplug).find((s) => s.sensors.vibration === 'stale'), 10_000);
        const error = await waitFor('status: vibration error', () => heard.statuses.slice(beforeUnplug).find((s) => s.sensors.vibration === 'error'), 10_000);
        t.diagnostic(`unplugged: stale after ${stale.at - tUnplug} ms, error after ${error.at - tUnplug} ms (staleMs 500, errorMs 2000, status checked every second)`);
        assert.equal(error.state, 'online');
        assert.deepEqual({ ...error.sensors, vibration: 'ok' }, { vibration: 'ok', voltage: 'ok', rpm: 'ok', temperature: 'ok' }, 'the other sensors are unaffected');
        const m = series(await scrape(httpPort), 'anomaly_agent_sensor_state');
        assert.equal(m.get('sensor="vibration",state="error"'), 1);
        assert.equal(m.get('sensor="vibration",state="ok"'), 0);
        assert.equal(m.get('sensor="voltage",state="ok"'), 1);
        await daemon.waitForLog('model vibration paused', (l) => /^model vibration paused: no data from vibration \((stale|error)\)$/.test(l.msg), 5000);
        const health = await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).text();
        assert.match(health, /sensor vibration is error/);
        const voltageScores = heard.scores.filter((s) => s.model === 'voltage').length;
        await waitFor('voltage still scored while vibration is out', () => heard.scores.filter((s) => s.model === 'voltage').length >= voltageScores + 4, 10_000);

        // Replug: ok again, scoring resumes (a fresh window needs seqLen rows: 5 s).
        const tReplug = Date.now();
        await client.publishAsync(`anomaly/${DEVICE}/cmd/fault`, JSON.stringify({ action: 'replug', part: 'adxl345' }), { qos: 1 });
        await waitFor('status: vibration ok', () => heard.statuses.find((s) => s.at > tReplug && s.sensors.vibration === 'ok'), 10_000);
        const resumed = await waitFor('a vibration window after the replug', () => heard.scores.find((s) => s.model === 'vibration' && s.windowEnd > tReplug), 20_000);
        t.diagnostic(`replugged: vibration scored again ${((resumed.at - tReplug) / 1000).toFixed(1)} s later`);
        assert.ok(resumed.windowEnd - (P.seqLen - 1) * P.periodMs > tReplug - HOP_MS, 'the first window after the gap holds no row from before it');
        await daemon.waitForLog("'ADXL345@0x53: reading again'", (l) => l.msg === 'ADXL345@0x53: reading again', 5000);
        await daemon.waitForLog('model vibration resumes', (l) => l.msg === 'model vibration resumes: its sensors deliver again', 5000);
        const vibrationModels = ['vibration', 'multi-feature'];
        assert.equal(heard.alerts.filter((a) => a.at > tUnplug && vibrationModels.includes(a.model)).length, 0, 'the outage raised no alert in the models that lost the sensor: no invented data');
      } finally {
        await client.endAsync();
      }
      const stop = await daemon.stop('SIGTERM', 15_000);
      assert.equal(stop.code, 0, daemon.tail());
    } finally {
      await killAll();
    }
  });
});


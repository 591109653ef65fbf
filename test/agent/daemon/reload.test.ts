/**
 * SIGHUP reload of the compiled daemon, run as a child process on free ports with a CSV replay
 * running and only the vibration model enabled, on a temporary copy of its bundle:
 * (a) a tampered bundle (one byte of weights.bin flipped) is refused with the check 'sha256'; the
 *     running model stays and windows keep being scored with no gap and at the same rate;
 * (b) a different but valid bundle (another threshold in bundle.json, which is not hashed) is loaded;
 *     the status topic says online again, and the window stream carries on where it was: no window
 *     skipped, none scored twice.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { copyBundles, Daemon, DEVICE, flipByte, freePort, needBundles, RAW_DATA, scrape, series, serviceFlags, sleep, waitFor, type LogLine } from './daemon-fixture.js';

// ---------------------------------------------------------------------------------------------

interface Score {
  windowEnd: number;
  score: number;
  threshold: number;
}
interface Status {
  state: string;
  t: number;
  models: { model: string; name: string; sha256: string }[];
}

test('SIGHUP: a tampered bundle is refused and the running model keeps scoring; a valid new one, or several at once, load seamlessly', { timeout: 120_000 }, async (t) => {
  needBundles('rpm_600', ['vibration']);
  const dir = await mkdtemp(join(tmpdir(), 'agent-reload-'));
  const models = await copyBundles(dir, 'rpm_600', ['vibration']);
  const bundleDir = join(models, 'rpm_600', 'vibration');
  const weightsFile = join(bundleDir, 'weights.bin');
  const manifestFile = join(bundleDir, 'bundle.json');
  const originalWeights = await readFile(weightsFile);
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { threshold: number; files: Record<string, string> };
  const manifestSha = createHash('sha256').update(await readFile(manifestFile)).digest('hex');

  const httpPort = await freePort();
  const SPEED = 4; // a window every hop (10 rows × 50 ms) / 4 = 125 ms
  const d = new Daemon(
    'daemon',
    {
      'models-dir': models,
      'models-profile': 'rpm_600',
      'models-enabled': 'vibration',
      'source-kind': 'replay',
      'source-replay-file': join(RAW_DATA, 'rpm_600', 'train', 'train_01.csv'),
      'source-replay-speed': SPEED,
    },
    { base: serviceFlags(dir, httpPort) },
  );
  let client: MqttClient | undefined;
  let polling = true;
  let poller: Promise<void> | undefined;
  try {
    await d.started(45_000);
    const brokerPort = await d.brokerPort();
    client = await connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: 'reload-test', reconnectPeriod: 0 });
    const scores: (Score & { at: number })[] = [];
    const statuses: (Status & { at: number })[] = [];
    client.on('message', (topic, payload) => {
      const at = Date.now();
      if (topic.endsWith('/score/vibration')) scores.push({ ...(JSON.parse(payload.toString()) as Score), at });
      else if (topic.endsWith('/status')) statuses.push({ ...(JSON.parse(payload.toString()) as Status), at });
    });
    await client.subscribeAsync(['anomaly/+/status', `anomaly/${DEVICE}/score/vibration`]);

    // windows_scored_total over time, sampled every 200 ms.
    const samples: { at: number; windows: number }[] = [];
    poller = (async () => {
      while (polling) {
        const m = await scrape(httpPort).catch(() => undefined);
        if (m) samples.push({ at: Date.now(), windows: series(m, 'anomaly_agent_windows_scored_total').get('model="vibration"') ?? 0 });
        await sleep(200);
      }
    })();
    /** Windows per second between two instants, from the nearest samples inside them. */
    const rate = (from: number, to: number) => {
      const inside = samples.filter((s) => s.at >= from && s.at <= to);
      const a = inside[0]!;
      const b = inside[inside.length - 1]!;
      return (b.windows - a.windows) / ((b.at - a.at) / 1000);
    };

    await waitFor('a steady score stream', () => scores.length >= 10, 45_000, 50);
    await sleep(3000);

    // (a) Tampered bundle: refused by its check, the running model stays.
    await flipByte(weightsFile);
    const tA = Date.now();
    const linesA = d.logs.length;
    d.signal('SIGHUP');
    const refused = await d.waitForLog('the refusal', (l) => l.level === 50 && l.model === 'vibration' && String(l.msg).includes('refused'), 30_000);
    assert.match(String(refused.msg), new RegExp(`^bundle ${bundleDir} refused: check 'sha256' failed: weights\\.bin has sha256 [0-9a-f]{64}, bundle\\.json says ${manifest.files['weights.bin']}; the running model stays$`));
    await waitFor('status republished after the refused reload', () => statuses.some((s) => s.at > tA), 10_000, 50);
    await sleep(3000);
    const tA2 = Date.now();
    assert.ok(d.running);
    assert.equal(d.logs.slice(linesA).filter((l) => l.msg === 'model reloaded' || l.msg === 'model loaded').length, 0, 'nothing reloaded');
    const afterA = statuses.filter((s) => s.at > tA);
    assert.deepEqual(afterA.map((s) => [s.state, s.models.map((m) => [m.model, m.sha256])]), [['online', [['vibration', manifestSha]]]], 'status: the original bundle still runs');
    // Same pace before and after the refused reload (generous bounds: the machine is shared).
    const before = rate(tA - 3000, tA);
    const afterRate = rate(tA, tA2);
    t.diagnostic(`windows/s before ${before.toFixed(2)}, after the refused reload ${afterRate.toFixed(2)} (replay ×${SPEED}: nominal ${(SPEED * 2).toFixed(0)})`);
    assert.ok(before > 0 && afterRate > 0.6 * before && afterRate < 1.6 * before, `rate before ${before}, after ${afterRate}`);
    // No gap: every window of the replay, one hop apart, and the stream did not stall.
    const duringA = scores.filter((s) => s.at > tA - 3000 && s.at <= tA2);
    const stall = Math.max(...duringA.slice(1).map((s, i) => s.at - duringA[i]!.at));
    assert.ok(stall < 1500, `longest pause between score messages around the refused reload: ${stall} ms`);

    // (b) A different, valid bundle: the original weights again, another threshold (bundle.json is not hashed).
    const newThreshold = Math.round(manifest.threshold * 1.5 * 1e6) / 1e6;
    await writeFile(weightsFile, originalWeights);
    await writeFile(manifestFile, JSON.stringify({ ...manifest, threshold: newThreshold }, null, 2) + '\n');
    const tB = Date.now();
    d.signal('SIGHUP');
    const reloaded = await d.waitForLog('model reloaded', (l) => l.msg === 'model reloaded' && l.model === 'vibration', 30_000);
    assert.equal(reloaded.threshold, newThreshold);
    await waitFor('status online after the reload', () => statuses.some((s) => s.at > tB && s.state === 'online'), 10_000, 50);
    await waitFor('scores with the new threshold', () => scores.filter((s) => s.threshold === newThreshold).length >= 8, 20_000, 50);
    assert.ok(d.running);

    // (c) SIGHUPs in quick succession (an impatient operator, a deploy script): reloads that are asked
    // for while one runs wait their turn. A reload takes a few ms here; signals sent closer together
    // than the child is scheduled merge into one, so bursts are repeated until two requests overlapped.
    const linesC = d.logs.length;
    const scoresC = scores.length;
    const isHup = (l: LogLine) => l.msg === 'SIGHUP: reloading model bundles';
    const isDone = (l: LogLine) => l.msg === 'model reloaded' || l.msg === 'reload failed';
    let overlapped = 0;
    for (let burst = 0; burst < 10 && overlapped === 0; burst++) {
      const from = d.logs.length;
      for (let i = 0; i < 4; i++) {
        d.signal('SIGHUP');
        await sleep(1);
      }
      await waitFor('the requested reloads', () => d.logs.slice(from).filter(isHup).length <= d.logs.slice(from).filter(isDone).length, 20_000, 50);
      await sleep(200);
      // Two requests with no reload finished in between: the second came while the first ran.
      const seq = d.logs.slice(from).filter((l) => isHup(l) || isDone(l));
      overlapped = seq.filter((l, i) => i > 0 && isHup(l) && isHup(seq[i - 1]!)).length;
    }
    t.diagnostic(`overlapping SIGHUPs: ${overlapped}`);
    assert.ok(overlapped > 0, 'the bursts made reload requests overlap');
    assert.deepEqual(d.logs.slice(linesC).filter((l) => (l.level ?? 0) >= 50), [], 'no error during overlapping SIGHUPs');
    await waitFor('scores after the bursts of reloads', () => scores.length >= scoresC + 8, 20_000, 50);
    assert.ok(d.running);

    // The window stream across every reload: one hop (10 × 50 ms) apart, none skipped, none twice.
    const ends = scores.map((s) => s.windowEnd);
    const bad = ends.flatMap((e, i) => (i > 0 && e - ends[i - 1]! !== 500 ? [`#${i}: ${ends[i - 1]} → ${e}`] : []));
    assert.deepEqual(bad.slice(0, 5), [], `window ends not one hop apart (${bad.length} in ${ends.length})`);
    const firstNew = scores.findIndex((s) => s.threshold === newThreshold);
    assert.ok(scores.slice(firstNew).every((s) => s.threshold === newThreshold), 'after the reload every score uses the new threshold');
    assert.ok(scores.slice(0, firstNew).every((s) => s.threshold === manifest.threshold));
    assert.equal(d.logs.filter((l) => (l.level ?? 0) >= 50).length, 1, `one error line, the refusal: ${d.tail()}`);
  } finally {
    polling = false;
    await poller;
    await client?.endAsync(true).catch(() => {});
    const { code } = await d.stop();
    await rm(dir, { recursive: true, force: true });
    assert.equal(code, 0, `clean exit on SIGTERM; stderr: ${d.stderrText()}`);
  }
});

/**
 * A shipped bundle on a shipped test file through the daemon's path: the windows it judges are the
 * evaluator's windows with the same scores, and its alerts follow the detector's rules as stated in
 * detect/detector.ts, re-derived here from the judged windows by a plain reading of those rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { CHANNELS } from '#agent/core/profiles.js';
import { DEFAULTS } from '#agent/core/defaults.js';
import { readCsvFile } from '#agent/preprocess/csv.js';
import { baselineOptions } from '#agent/detect/baseline.js';
import { loadBundle } from '#agent/model/bundle.js';
import { evaluateBundle, readFaults } from '#agent/evaluate/bundle-eval.js';
import { daemonDetection, scoreStreamed, streamBundleFile, windowSpanMs, type StreamedWindow } from '#agent/evaluate/alert-eval.js';

const PROFILE = 'rpm_1200';
const MODEL = 'temperature';
const FILE = 'test_05.csv'; // holds an obvious overheating episode the temperature model alerts on
const TEST_DIR = join(PACKAGE_ROOT, 'datas', 'raw', PROFILE, 'test');

test("the daemon's detection is the daemon's defaults, baseline included or left out", () => {
  assert.deepEqual(daemonDetection(true), { detector: DEFAULTS.config.detector, baseline: baselineOptions() });
  assert.deepEqual(daemonDetection(false), { detector: DEFAULTS.config.detector });
  assert.equal('baseline' in daemonDetection(), DEFAULTS.config.baseline.enabled);
});

/** The detector's raise / clear / cooldown rules, read plainly from its header, over judged windows. */
function expectedAlerts(windows: readonly StreamedWindow[], d: typeof DEFAULTS.config.detector, spanMs: number) {
  const out: { state: string; windowEnd: number; since: number }[] = [];
  let open: { since: number; low: number } | null = null;
  let history: { over: boolean; end: number }[] = [];
  let clearedAt = -Infinity;
  let runSince: number | null = null; // the first over window of the run through which k-of-n holds (on-delay)
  for (const w of windows) {
    const over = w.score > w.threshold;
    if (open) {
      open.low = w.score < d.clearRatio * w.threshold ? open.low + 1 : 0;
      if (open.low >= d.clearM) {
        out.push({ state: 'cleared', windowEnd: w.windowEnd, since: open.since });
        open = null;
        clearedAt = w.windowEnd;
        history = [];
      }
      continue;
    }
    history = [...history, { over, end: w.windowEnd }].slice(-d.raiseN);
    const overs = history.filter((h) => h.over);
    runSince = overs.length >= d.raiseK ? (runSince ?? overs[0]!.end) : null;
    if (over && runSince !== null && w.windowEnd - runSince >= d.onDelaySpans * spanMs && w.windowEnd - clearedAt >= d.cooldownMs) {
      open = { since: runSince, low: 0 };
      out.push({ state: 'raised', windowEnd: w.windowEnd, since: open.since });
      history = [];
      runSince = null;
    }
  }
  return out;
}

test(`${PROFILE}/${MODEL} on ${FILE} through the daemon's path: the evaluator's windows, and alerts by the detector's rules`, async () => {
  const bundle = await loadBundle(join(PACKAGE_ROOT, 'models', PROFILE, MODEL), { knownFeatures: CHANNELS });
  const series = await readCsvFile(join(TEST_DIR, FILE), { labelColumn: 'label' });
  const episodes = (await readFaults(TEST_DIR))[FILE] ?? [];
  const t0 = series.t[0]!;
  const file = { path: join(TEST_DIR, FILE), name: FILE, rows: series.rows, t0, durationMs: series.t[series.rows - 1]! - t0, episodes };

  // Baseline off: the inputs are exactly what the evaluator scores, window for window.
  const plain = await streamBundleFile(bundle, file, daemonDetection(false));
  const dir = await mkdtemp(join(tmpdir(), 'alert-eval-'));
  try {
    await copyFile(file.path, join(dir, FILE));
    await writeFile(join(dir, 'faults.json'), JSON.stringify({ [FILE]: episodes }));
    const ev = await evaluateBundle(bundle, dir, dir);
    const batch = ev.files[0]!.windows;
    assert.deepEqual(plain.windows.map((w) => w.windowEnd), batch.map((w) => w.endT), 'the daemon cuts the windows the evaluator cuts');
    plain.windows.forEach((w, i) => assert.ok(Math.abs(w.score - batch[i]!.score) <= 1e-6 * batch[i]!.score, `window ${i}: ${w.score} vs ${batch[i]!.score}`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // The daemon's defaults (baseline as configured by default).
  const run = await streamBundleFile(bundle, file, daemonDetection());
  const machine = run.alerts.filter((a) => a.kind === 'machine');
  assert.ok(machine.length > 0, 'no alert raised: the rule check below would prove nothing');
  assert.deepEqual(
    machine.map((a) => ({ state: a.state, windowEnd: a.windowEnd, since: a.since })),
    expectedAlerts(run.windows, DEFAULTS.config.detector, bundle.manifest.seqLen * bundle.manifest.periodMs),
  );
  for (const a of machine) {
    assert.ok(a.windowEnd >= t0 && a.windowEnd <= series.t[series.rows - 1]!, 'alert times are the file\'s own');
    if (a.state === 'raised') assert.ok(a.score > a.threshold, 'a raise is an over window');
  }
  // Scored: the obvious overheating is alerted while it runs (delay within the episode).
  const m = scoreStreamed([run], windowSpanMs(bundle)).metrics;
  const heat = m.episodes.find((e) => e.kind === 'overheating')!;
  assert.equal(heat.intensity, 'obvious');
  assert.ok(heat.detected && heat.delayMs! < heat.endMs - heat.startMs, `overheating: delay ${heat.delayMs}`);
});

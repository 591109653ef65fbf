/**
 * A bundle on the labelled test files through the daemon's path: each file is replayed on its own
 * (a gateway that starts with the recording) into a fresh ModelRuntime with the daemon's detector and
 * baseline (daemonDetection()), and the alerts it raises are scored by alert-metrics.ts.
 */
import type { ModelAlert } from '../core/alert.js';
import { ManualClock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';
import { channelIndex, DEFAULT_SENSORS } from '../core/sample.js';
import type { FaultEpisode } from '../core/faults.js';
import { baselineOptions, type BaselineOptions } from '../detect/baseline.js';
import type { DetectorSettings } from '../detect/detector.js';
import type { LoadedBundle } from '../model/bundle.js';
import type { ScorerEngine } from '../model/engines.js';
import { ModelRuntime } from '../pipeline/model-runtime.js';
import { readCsvDir } from '../preprocess/csv.js';
import { alertMetrics, alertSpans, type AlertFile, type AlertMetrics } from './alert-metrics.js';
import { readFaults } from './bundle-eval.js';
import { sensorRings, streamFile } from './stream.js';

/** Detector and baseline options of a runtime. */
export interface Detection {
  detector: DetectorSettings;
  /** Absent: the notion of normal stays as trained (`baseline.enabled false`). */
  baseline?: BaselineOptions;
}

/** The daemon's detection at its defaults: the detector of DEFAULTS.config.detector and, when on, baselineOptions(). */
export function daemonDetection(baseline: boolean = DEFAULTS.config.baseline.enabled): Detection {
  return { detector: DEFAULTS.config.detector, ...(baseline ? { baseline: baselineOptions() } : {}) };
}

/** The detection settings in words, for the output that reports figures measured with them. */
export function describeDetection(d: Detection): string {
  const t = d.detector;
  const b = d.baseline;
  const base = b
    ? `baseline on (follows ≤ ${b.followPerHour} training ranges/h beyond ${b.deadBand} of the reference taken over the first ${b.referenceMs / 1000} s of healthy windows, settles an episode steady for ${b.settleMs / 1000} s or no longer rising for ${b.holdMs / 1000} s, max drift ${b.maxDrift})`
    : 'baseline off (normal as trained)';
  const delay = t.onDelaySpans ? ` held for ${t.onDelaySpans} window span${t.onDelaySpans === 1 ? '' : 's'}` : '';
  const gate = t.stoppedBelow ? `, windows under ${t.stoppedBelow} × nominal speed not judged` : '';
  return `raise at ${t.raiseK} of ${t.raiseN} windows over the threshold${delay}, clear after ${t.clearM} under ${t.clearRatio} × threshold, cooldown ${t.cooldownMs / 1000} s${gate}; ${base}`;
}

/** One judged window, as the runtime published it. */
export interface StreamedWindow {
  windowEnd: number;
  score: number;
  threshold: number;
  perFeature: Record<string, number>;
}

export interface StreamedFile {
  file: string;
  episodes: FaultEpisode[];
  windows: StreamedWindow[];
  /** Every alert the runtime emitted, in order (machine and drift). */
  alerts: ModelAlert[];
}

/**
 * One file through a fresh runtime of `bundle`. The clock starts at the file's first timestamp, so
 * sample times (ReplaySource re-bases them on the clock) are the file's own and match faults.json.
 * Windows are scored one by one as they are cut (maxBatch 1), as on a gateway sampling in real time:
 * the baseline's offsets then apply from the very next window, not a batch later.
 */
export async function streamBundleFile(
  bundle: LoadedBundle,
  file: { path: string; name: string; rows: number; t0: number; durationMs: number; episodes: FaultEpisode[] },
  detection: Detection,
  opts: { engine?: ScorerEngine } = {},
): Promise<StreamedFile> {
  const channels = channelIndex(DEFAULT_SENSORS);
  const buffers = sensorRings(DEFAULT_SENSORS);
  const clock = new ManualClock(file.t0);
  const out: StreamedFile = { file: file.name, episodes: file.episodes, windows: [], alerts: [] };
  const runtime = await ModelRuntime.create({
    bundle,
    channels,
    buffers,
    ...detection,
    maxBatch: 1,
    engine: opts.engine ?? DEFAULTS.config.scorer.engine,
    log: silentLogger,
    now: () => clock.now(),
    onScore: (_m, p) => out.windows.push({ windowEnd: p.windowEnd, score: p.score, threshold: p.threshold, perFeature: p.perFeature }),
    onAlert: (e) => out.alerts.push(e),
    onScored: () => {},
  });
  try {
    await streamFile({ file: file.path, rows: file.rows, durationMs: file.durationMs, sensors: DEFAULT_SENSORS, clock, buffers, runtimes: [runtime] });
  } finally {
    runtime.dispose();
  }
  return out;
}

/** A window's time span, ms: from its first sample to its last (as metrics.ts's windows). */
export const windowSpanMs = (b: LoadedBundle) => (b.manifest.seqLen - 1) * b.manifest.periodMs;

/** The streamed files' alerts as spans, and their scores (alert-metrics.ts). */
export function scoreStreamed(files: readonly StreamedFile[], windowMs: number): { alertFiles: AlertFile[]; metrics: AlertMetrics } {
  const alertFiles: AlertFile[] = files.map((f) => ({
    file: f.file,
    windowEnds: f.windows.map((w) => w.windowEnd),
    alerts: alertSpans(f.alerts),
    driftAlerts: f.alerts.filter((a) => a.kind === 'drift' && a.state === 'raised').length,
    episodes: f.episodes,
  }));
  return { alertFiles, metrics: alertMetrics(alertFiles, windowMs) };
}

export interface AlertEvaluation {
  detection: Detection;
  files: StreamedFile[];
  alertFiles: AlertFile[];
  metrics: AlertMetrics;
}

/** Every labelled test file of `testDir` through the daemon's path. */
export async function evaluateAlerts(
  bundle: LoadedBundle,
  testDir: string,
  opts: { baseline?: boolean; engine?: ScorerEngine; onProgress?: (done: number, total: number) => void } = {},
): Promise<AlertEvaluation> {
  const detection = daemonDetection(opts.baseline);
  const series = await readCsvDir(testDir, { labelColumn: 'label' });
  const faults = await readFaults(testDir);
  const files: StreamedFile[] = [];
  for (const s of series) {
    const t0 = s.t[0]!;
    files.push(await streamBundleFile(bundle, { path: s.file, name: s.name, rows: s.rows, t0, durationMs: s.t[s.rows - 1]! - t0, episodes: faults[s.name] ?? [] }, detection, opts));
    opts.onProgress?.(files.length, series.length);
  }
  return { detection, files, ...scoreStreamed(files, windowSpanMs(bundle)) };
}

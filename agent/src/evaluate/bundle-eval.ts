import { readFile, mkdir, writeFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { FAULT_MANIFEST_FILE, type FaultManifest } from '../core/faults.js';
import { CHANNELS } from '../core/profiles.js';

const CHANNEL_COUNT = CHANNELS.length;
import { readCsvDir } from '../preprocess/csv.js';
import { makeWindows } from '../preprocess/sequences.js';
import { createScorer } from '../model/scorer.js';
import { normalizeErrors } from '../model/error-scale.js';
import { UnsupportedModelError } from '../model/fast-lstm.js';
import { errorsOf } from '../train/trainer.js';
import type { ScorerEngine } from '../model/engines.js';
import { digestFiles, type DataDigest, type LoadedBundle } from '../model/bundle.js';
import { computeMetrics, type EvalFile, type EvaluationMetrics, type WindowScore } from './metrics.js';
import { renderReport, type ReportInput } from './report.js';

export interface BundleEvaluation {
  files: EvalFile[];
  metrics: EvaluationMetrics;
  testData: DataDigest;
}

/** What `evaluate --write` records in bundle.json, so a later run can check it reproduces. */
export interface RecordedMetrics extends EvaluationMetrics {
  testData: DataDigest;
  backend: string;
}

/** The test folder's faults.json; none: no episodes. */
export async function readFaults(testDir: string): Promise<FaultManifest> {
  try {
    return JSON.parse(await readFile(join(testDir, FAULT_MANIFEST_FILE), 'utf8')) as FaultManifest;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new Error(`${join(testDir, FAULT_MANIFEST_FILE)}: ${(err as Error).message}`);
  }
}

/**
 * Scores every window of the labelled test files the way the device would cut them (bundle scaler,
 * seqLen, hop, maxGapMs) and computes the metrics. `dataRoot` anchors the digest's file names.
 */
export async function evaluateBundle(
  bundle: LoadedBundle,
  testDir: string,
  dataRoot: string,
  opts: { engine?: ScorerEngine; onProgress?: (done: number, total: number) => void } = {},
): Promise<BundleEvaluation & { engine: string }> {
  const m = bundle.manifest;
  const series = await readCsvDir(testDir, { labelColumn: 'label' });
  const faults = await readFaults(testDir);
  const w = makeWindows(series, { features: m.features, scaler: m.scaler, shape: m.shape, seqLen: m.seqLen, hop: m.hop, maxGapMs: m.maxGapMs });
  // The fast engine unless the bundle needs tfjs (or tfjs is asked for): recorded metrics are
  // reproduced by the engine that recorded them, to the bit (RecordedMetrics.backend names it).
  const f = w.f;
  const stride = w.seqLen * f;
  type Errors = (x: Float32Array, n: number) => { score: Float32Array; perFeature: Float32Array };
  let errors: Errors | undefined;
  let engine = 'fast';
  let release = () => {};
  if (opts.engine !== 'tfjs') {
    try {
      const raw = errorsOf(bundle.artifacts, m.seqLen, f);
      errors = (x, n) => normalizeErrors(raw(x, n), n, m.errorScale, m.aggregate);
    } catch (err) {
      if (!(err instanceof UnsupportedModelError) || opts.engine === 'fast') throw err;
    }
  }
  if (!errors) {
    const scorer = await createScorer(bundle, 'tfjs');
    errors = (x, n) => scorer.score(x, n);
    engine = scorer.engine;
    release = () => scorer.dispose();
  }
  const score = new Float32Array(w.n);
  const perFeature = new Float32Array(w.n * f);
  try {
    const step = 256;
    for (let at = 0; at < w.n; at += step) {
      const k = Math.min(step, w.n - at);
      const r = errors(w.x.subarray(at * stride, (at + k) * stride), k);
      score.set(r.score, at);
      perFeature.set(r.perFeature, at * f);
      opts.onProgress?.(at + k, w.n);
    }
  } finally {
    release();
  }
  const files: EvalFile[] = series.map((s) => ({ file: s.name, windows: [], episodes: faults[s.name] ?? [] }));
  for (let i = 0; i < w.n; i++) {
    const pf: Record<string, number> = {};
    w.features.forEach((name, j) => (pf[name] = perFeature[i * f + j]));
    const win: WindowScore = { startT: w.startT[i], endT: w.endT[i], score: score[i], perFeature: pf, labelFraction: w.labelFraction?.[i] ?? 0 };
    files[w.fileIndex[i]].windows.push(win);
  }
  const metrics = computeMetrics(files, m.threshold);
  const testData = await digestFiles(dataRoot, series.map((s) => relative(dataRoot, s.file)));
  return { files, metrics, testData, engine };
}

/** report.md and report/*.svg beside the bundle's files (not part of the hashed manifest). */
export async function writeReport(bundle: LoadedBundle, ev: BundleEvaluation, alerts?: ReportInput['alerts']): Promise<string> {
  const m = bundle.manifest;
  const t = m.training;
  const report = renderReport({
    bundleName: m.name,
    profile: m.profile,
    modelType: m.modelType,
    features: m.features,
    threshold: m.threshold,
    thresholdRule: m.thresholdRule.description,
    metrics: ev.metrics,
    files: ev.files,
    // The acceptance bar is the multi-feature model's: a single-sensor model cannot see most faults.
    acceptance: m.features.length === CHANNEL_COUNT ? undefined : null,
    ...(alerts ? { alerts } : {}),
    trainingSummary: {
      'LSTM units (encoder)': m.architecture.units.join(' → '),
      parameters: m.architecture.parameters,
      'training windows': t.trainWindows,
      'validation windows': t.valWindows,
      epochs: `${t.epochs} (best ${t.bestEpoch})`,
      'validation loss': t.valLoss,
      'training time (s)': t.seconds,
      backend: t.backend,
      seed: t.seed,
    },
  });
  const imgDir = join(bundle.dir, 'report');
  await rm(imgDir, { recursive: true, force: true });
  await mkdir(imgDir, { recursive: true });
  for (const s of report.svgs) await writeFile(join(imgDir, s.name), s.svg);
  const path = join(bundle.dir, 'report.md');
  await writeFile(path, report.markdown);
  return path;
}

export interface Drift {
  what: string;
  recorded: number;
  now: number;
}

/**
 * Compares a fresh evaluation with the one recorded in the bundle. Backends round differently
 * (wasm vs cpu vs libtensorflow), so a window sitting on the threshold may flip: rates are compared
 * with a tolerance instead of exact counts.
 */
export function compareWithRecorded(recorded: RecordedMetrics, now: EvaluationMetrics, tolerance = 0.01): Drift[] {
  const drifts: Drift[] = [];
  for (const set of ['overall', 'focus'] as const) {
    for (const k of ['precision', 'recall', 'f1'] as const) {
      const a = recorded[set][k];
      const b = now[set][k];
      if (Math.abs(a - b) > tolerance) drifts.push({ what: `${set} ${k}`, recorded: a, now: b });
    }
  }
  if (recorded.counts.windows !== now.counts.windows) drifts.push({ what: 'windows', recorded: recorded.counts.windows, now: now.counts.windows });
  return drifts;
}

/**
 * SKAB (Skoltech Anomaly Benchmark) through the daemon's own parts. Per file, with one set of
 * settings for every file (SKAB_SETTINGS) and nothing that reads the file's labels until the rows
 * are marked:
 *
 * 1. Train: the first 400 rows (the benchmark's protocol). The scaler is fitted on them, their windows
 *    are cut by the device's SensorBuffer + Windower (the same grid alignment the device applies),
 *    an LSTM autoencoder is trained on them, and the error scale and threshold are calibrated on them
 *    (train/pipeline.ts calibrate()). The result is written as an ordinary bundle and loaded back
 *    with loadBundle, the daemon's checks included.
 * 2. Stream: the whole file is replayed (sources/replay.ts, on a ManualClock) into one SensorBuffer per
 *    sensor; a ModelRuntime (Windower → scorer → Detector) judges every window, as the daemon's
 *    controller wires it. The first 400 rows warm the rings and the detector like a device that was
 *    already running; rows 400 onwards are the test part.
 * 3. Mark: a test row is 1 when it lies inside one of the detector's episodes (EPISODE_ROWS_RULE).
 *
 * Labels are read only after that, to score the marks (evaluate/skab-metrics.ts).
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import type { Logger } from 'pino';
import { SensorBuffer } from '../buffer/ring.js';
import { Windower } from '../buffer/windower.js';
import { fitShape, InputLayout } from '../preprocess/shape.js';
import type { BaselineOptions } from '../detect/baseline.js';
import type { ModelAlert } from '../core/alert.js';
import { ManualClock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';
import { channelIndex, type SensorSpec } from '../core/sample.js';
import { ModelRuntime } from '../pipeline/model-runtime.js';
import type { DetectorSettings } from '../detect/detector.js';
import { digestFiles, loadBundle, writeBundle, type ThresholdRule } from '../model/bundle.js';
import type { ScoreAggregate } from '../model/error-scale.js';
import { parseCsv, readCsvFile, type Series } from '../preprocess/csv.js';
import { fitMinMax, type MinMaxScaler } from '../preprocess/scaler.js';
import { sliceSeries } from '../preprocess/sequences.js';
import { calibrate } from '../train/pipeline.js';
import { sensorRings, streamFile } from './stream.js';
import { featureErrors, trainAutoencoder, type TrainerChoice } from '../train/trainer.js';
import { addConfusion, addNab, changepointsOf, confusion, EMPTY_NAB, nabCounts, ZERO_CONFUSION, type Confusion, type NabCounts } from './skab-metrics.js';

/** SKAB's sensor columns → channel names. */
export const SKAB_COLUMNS: Readonly<Record<string, string>> = {
  Accelerometer1RMS: 'accel1',
  Accelerometer2RMS: 'accel2',
  Current: 'current',
  Pressure: 'pressure',
  Temperature: 'temperature',
  Thermocouple: 'thermocouple',
  Voltage: 'voltage',
  'Volume Flow RateRMS': 'flow',
};

/** The testbed's sensors as the daemon would configure them (the two accelerometer RMS values as one sensor). */
export const SKAB_SENSORS: SensorSpec = {
  accel: { channels: ['accel1', 'accel2'] },
  current: { channels: ['current'] },
  pressure: { channels: ['pressure'] },
  temperature: { channels: ['temperature'] },
  thermocouple: { channels: ['thermocouple'] },
  voltage: { channels: ['voltage'] },
  flow: { channels: ['flow'] },
};

/** How a SKAB file is written. */
export const SKAB_CSV = { separator: ';', timeColumn: 'datetime', timeFormat: 'iso' } as const;

/** The benchmark's protocol: the first 400 rows of each file train, the rest is the test part. */
export const SKAB_TRAIN_ROWS = 400;

/** The group SKAB's leaderboard leaves out of the outlier score: it holds no anomaly. */
export const ANOMALY_FREE_GROUP = 'anomaly-free';

/** A model the device runs: its name and the channels it reads, in input order. */
export interface SkabModel {
  name: string;
  features: string[];
  /** Slow channels (of `features`) that also get their window shape as an input (preprocess/shape.ts). */
  shape?: string[];
  /** This model's own baseline settings, over the common ones. */
  baseline?: Partial<BaselineOptions>;
  /** This model's own threshold rule, instead of the common one. */
  thresholdRule?: ThresholdRule;
}

export interface SkabSettings {
  /** Models trained per file; a row is anomalous while any of them has an episode open. */
  models: SkabModel[];
  periodMs: number;
  seqLen: number;
  hop: number;
  maxGapMs: number;
  units: number[];
  maxEpochs: number;
  patience: number;
  batchSize: number;
  seed: number;
  /** Share of the training windows (the latest ones) that judge early stopping. */
  valFraction: number;
  /** How a window's per-channel errors make its score (model/error-scale.ts). */
  aggregate: ScoreAggregate;
  thresholdRule: ThresholdRule;
  detector: DetectorSettings;
  /** How each model's notion of normal may move (detect/baseline.ts); absent: as trained. */
  baseline?: BaselineOptions;
}

/** The one set of settings every file is run with (docs/skab.md says why each is what it is). */
export const SKAB_SETTINGS: SkabSettings = {
  // Every channel but the two slow thermal ones (docs/skab.md: their level drifts for minutes in normal running).
  models: [{ name: 'multi-feature', features: ['accel1', 'accel2', 'current', 'pressure', 'voltage', 'flow'] }],
  periodMs: 1000,
  seqLen: 20,
  hop: 1,
  maxGapMs: 5000,
  units: [32, 16],
  maxEpochs: 30,
  patience: 5,
  batchSize: 32,
  seed: 42,
  valFraction: 0.2,
  aggregate: 'max',
  thresholdRule: { kind: 'validation-quantile', quantile: 0.995, margin: 1.75 },
  // The daemon's raise rule; clear after a window length (seqLen windows) of low windows.
  detector: { raiseK: 3, raiseN: 5, clearM: 20, clearRatio: 0.8, cooldownMs: 0 },
  // The daemon's baseline (detect/baseline.ts), at the pace of these files: their 400 training rows
  // span minutes, so the levels of a healthy pump leave them within the hour (docs/skab.md).
  // No hold rule: at 1 Hz a valve held shut is as steady as a new operating point, for longer than these files last.
  baseline: { referenceMs: 300_000, deadBand: 0.1, followPerHour: 6, settleMs: 60_000, holdMs: 0, settleFraction: 0.5, steadyRange: 0.5, trialMs: 40_000, maxDrift: 3 },
};

export const EPISODE_ROWS_RULE =
  'A test row is anomalous (1) when its time t lies in an episode of the detector: since ≤ t < cleared, where since is the ' +
  "raised alert's own episode start (the window end of the first over window among the k-of-n that raised it) and cleared the " +
  'window end of the window that cleared it; an episode still open at the end of the file runs to its end.';

export interface SkabFile {
  /** Group folder, e.g. 'valve1'. */
  group: string;
  /** Path relative to the data directory (the predictions' `file` column). */
  rel: string;
  path: string;
}

const byNumberThenName = (a: string, b: string) => {
  const na = Number.parseInt(a, 10);
  const nb = Number.parseInt(b, 10);
  if (Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
};

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The CSVs of a SKAB-layout directory: `<dir>/<group>/*.csv`, or `<dir>/data/<group>/*.csv` (the
 * benchmark's repository). Groups in name order, files in numeric order within a group.
 */
/** Where SKAB comes from, for messages that find none. */
export const SKAB_GET = 'git clone https://github.com/waico/SKAB and pass --data SKAB/data';

export async function findSkabFiles(dir: string): Promise<SkabFile[]> {
  const root = (await isDir(join(dir, 'data'))) ? join(dir, 'data') : dir;
  if (!(await isDir(root))) throw new Error(`SKAB data directory ${dir} does not exist (${SKAB_GET})`);
  const groups = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const files: SkabFile[] = [];
  for (const group of groups) {
    const names = (await readdir(join(root, group), { withFileTypes: true }))
      .filter((d) => d.isFile() && d.name.toLowerCase().endsWith('.csv'))
      .map((d) => d.name)
      .sort(byNumberThenName);
    for (const name of names) {
      const path = join(root, group, name);
      files.push({ group, rel: relative(dir, path), path });
    }
  }
  if (files.length === 0) throw new Error(`no SKAB files in ${dir}: expected <group>/*.csv or data/<group>/*.csv (${SKAB_GET})`);
  return files;
}

/** The sensor columns of a SKAB file. */
export function readSkabSeries(path: string): Promise<Series> {
  return readCsvFile(path, {
    separator: SKAB_CSV.separator,
    timeColumn: SKAB_CSV.timeColumn,
    parseTime: SKAB_CSV.timeFormat,
    rename: SKAB_COLUMNS,
    requiredColumns: Object.values(SKAB_COLUMNS),
  });
}

export interface SkabLabels {
  anomaly: Uint8Array;
  changepoint: Uint8Array;
}

/** The file's `anomaly` and `changepoint` columns, or undefined when it has none (anomaly-free). Read only to score. */
export async function readSkabLabels(path: string): Promise<SkabLabels | undefined> {
  const text = await readFile(path, 'utf8');
  const header = text.slice(0, text.indexOf('\n')).split(SKAB_CSV.separator).map((c) => c.trim());
  if (!header.includes('anomaly') || !header.includes('changepoint')) return undefined;
  const s = parseCsv(text, { file: path, separator: SKAB_CSV.separator, timeColumn: SKAB_CSV.timeColumn, parseTime: SKAB_CSV.timeFormat, requiredColumns: ['anomaly', 'changepoint'] });
  const bits = (col: Float64Array, name: string) =>
    Uint8Array.from(col, (v, i) => {
      if (v !== 0 && v !== 1) throw new Error(`${path}: row ${i} ${name} is ${v}, not 0 or 1`);
      return v;
    });
  return { anomaly: bits(s.columns.anomaly!, 'anomaly'), changepoint: bits(s.columns.changepoint!, 'changepoint') };
}

/**
 * Windows of a series exactly as the device forms them: the rows are pushed into SensorBuffers and a
 * Windower cuts and scales them (grid alignment, held values, gaps). Returns [n][seqLen][f] and window ends.
 */
export function deviceWindows(
  s: Series,
  o: { sensors: SensorSpec; features: readonly string[]; scaler: MinMaxScaler; periodMs: number; seqLen: number; hop: number; maxGapMs: number },
): { x: Float32Array; n: number; endT: number[] } {
  const channels = channelIndex(o.sensors);
  const buffers = new Map<string, SensorBuffer>();
  for (const [sensor, { channels: ch }] of Object.entries(o.sensors)) buffers.set(sensor, new SensorBuffer({ sensor, channels: ch.length, capacity: Math.max(1, s.rows) }));
  const parts: Float32Array[] = [];
  const endT: number[] = [];
  const w = new Windower({
    features: o.features,
    channels,
    buffers,
    periodMs: o.periodMs,
    seqLen: o.seqLen,
    hop: o.hop,
    maxGapMs: o.maxGapMs,
    scaler: o.scaler,
    onWindow: (win) => {
      parts.push(win.x.slice());
      endT.push(win.endT);
    },
  });
  for (let i = 0; i < s.rows; i++) {
    for (const [sensor, { channels: ch }] of Object.entries(o.sensors)) buffers.get(sensor)!.push(s.t[i]!, ch.map((c) => s.columns[c]![i]!));
  }
  w.advance();
  const stride = o.seqLen * o.features.length;
  const x = new Float32Array(parts.length * stride);
  parts.forEach((p, i) => x.set(p, i * stride));
  return { x, n: parts.length, endT };
}

/** One judged window, for diagnostics. */
export interface JudgedWindow {
  windowEnd: number;
  score: number;
  threshold: number;
  /** Error per model input, in units of its normal error. */
  perFeature: Record<string, number>;
}

/** What one model did on a file. */
export interface ModelRun {
  name: string;
  threshold: number;
  trainWindows: number;
  epochs: number;
  alerts: ModelAlert[];
  windows: JudgedWindow[];
}

export interface FileRun {
  file: SkabFile;
  rows: number;
  /** Sample time (ms) of every row as replayed. */
  t: Float64Array;
  /** 0/1 per test row (rows SKAB_TRAIN_ROWS…). */
  pred: Uint8Array;
  models: ModelRun[];
  trainSeconds: number;
  streamSeconds: number;
}

/** Marks rows by EPISODE_ROWS_RULE from the detector's alerts (in order). */
export function rowsInEpisodes(t: ArrayLike<number>, alerts: readonly ModelAlert[]): Uint8Array {
  const spans: [number, number][] = [];
  let open: number | undefined;
  for (const a of alerts) {
    if (a.kind !== 'machine') continue;
    if (a.state === 'raised') open = a.since;
    else if (open !== undefined) {
      spans.push([open, a.windowEnd]);
      open = undefined;
    }
  }
  if (open !== undefined) spans.push([open, Infinity]);
  const out = new Uint8Array(t.length);
  for (let i = 0; i < t.length; i++) out[i] = spans.some(([a, b]) => t[i]! >= a && t[i]! < b) ? 1 : 0;
  return out;
}

/** Epoch ms the replay starts at: a whole second, so SKAB's whole-second rows sit on the 1 s grid. */
const REPLAY_START = Date.UTC(2024, 0, 1);

/** One model trained on a file's training rows: its bundle on disk and how training went. */
interface Trained {
  name: string;
  dir: string;
  threshold: number;
  windows: number;
  epochs: number;
}

/** Scaler, windows (as the device cuts them), LSTM autoencoder, calibration: one bundle from the training rows. */
async function trainModel(file: SkabFile, train: Series, spec: SkabModel, s: SkabSettings, work: string, trainer: TrainerChoice): Promise<Trained> {
  const scaler = fitMinMax([train], spec.features);
  const plain = deviceWindows(train, { sensors: SKAB_SENSORS, features: spec.features, scaler, periodMs: s.periodMs, seqLen: s.seqLen, hop: s.hop, maxGapMs: s.maxGapMs });
  // The model's inputs as the device lays them out: the levels, then the shape inputs, if any.
  const shape = spec.shape?.length ? fitShape(plain.x, plain.n, s.seqLen, spec.features, spec.shape) : undefined;
  const layout = new InputLayout(spec.features, shape);
  const f = layout.width;
  const all = { n: plain.n, x: new Float32Array(plain.n * s.seqLen * f) };
  for (let w = 0; w < plain.n; w++) layout.write(plain.x, w * s.seqLen * spec.features.length, s.seqLen, all.x, w * s.seqLen * f);
  const stride = s.seqLen * f;
  const nVal = Math.max(1, Math.round(all.n * s.valFraction));
  const nFit = all.n - nVal;
  if (nFit < 1) throw new Error(`${file.rel}: ${all.n} training windows, too few to train and validate`);
  const fitSet = { x: all.x.subarray(0, nFit * stride), n: nFit };
  const valSet = { x: all.x.subarray(nFit * stride), n: nVal };
  const spec0 = { seqLen: s.seqLen, nFeatures: f, units: s.units, seed: s.seed };
  const trained = await trainAutoencoder(spec0, fitSet, valSet, { seqLen: s.seqLen, nFeatures: f, maxEpochs: s.maxEpochs, patience: s.patience, batchSize: s.batchSize, seed: s.seed }, trainer);
  const fit = trained.fit;
  const cal = calibrate(featureErrors(trained.artifacts, all.x, all.n, s.seqLen, f), all.n, f, spec.thresholdRule ?? s.thresholdRule, s.aggregate);
  const dir = join(work, `${file.group}-${basename(file.path, '.csv')}-${spec.name}`);
  await writeBundle(dir, trained.artifacts, {
    name: `skab/${file.rel}/${spec.name}`,
    profile: 'skab',
    modelType: spec.name,
    features: spec.features,
    ...(shape ? { shape } : {}),
    seqLen: s.seqLen,
    hop: s.hop,
    periodMs: s.periodMs,
    maxGapMs: s.maxGapMs,
    scaler,
    errorScale: cal.errorScale,
    ...(s.aggregate !== 'mean' ? { aggregate: s.aggregate } : {}),
    threshold: cal.threshold,
    thresholdRule: cal.thresholdRule,
    architecture: { units: s.units, recurrentActivation: 'sigmoid', parameters: trained.parameters },
    training: {
      seed: s.seed,
      backend: trained.engine,
      epochs: fit.epochs,
      bestEpoch: fit.bestEpoch,
      trainLoss: fit.trainLoss,
      valLoss: fit.valLoss,
      trainWindows: nFit,
      valWindows: nVal,
      trainHop: s.hop,
      seconds: Math.round(fit.seconds * 10) / 10,
      data: await digestFiles(dirname(file.path), [basename(file.path)]),
    },
  });
  return { name: spec.name, dir, threshold: cal.threshold, windows: all.n, epochs: fit.epochs };
}

/**
 * Train on the file's first 400 rows and stream the whole file through the daemon's parts; returns
 * the 0/1 marks of the test rows. Reads no label.
 */
export async function runSkabFile(file: SkabFile, settings: SkabSettings = SKAB_SETTINGS, opts: { workDir?: string; log?: Logger; trainer?: TrainerChoice } = {}): Promise<FileRun> {
  const log = opts.log ?? silentLogger;
  const s = settings;
  const trainer = opts.trainer ?? { trainer: 'fast' };
  const series = await readSkabSeries(file.path);
  if (series.rows <= SKAB_TRAIN_ROWS) throw new Error(`${file.rel}: ${series.rows} rows, the protocol needs more than ${SKAB_TRAIN_ROWS}`);
  const work = opts.workDir ?? (await mkdtemp(join(tmpdir(), 'skab-')));
  const runtimes: ModelRuntime[] = [];
  try {
    // 1. Train on the first 400 rows only.
    const started = performance.now();
    const train = sliceSeries(series, 0, SKAB_TRAIN_ROWS);
    const trained: Trained[] = [];
    for (const spec of s.models) trained.push(await trainModel(file, train, spec, s, work, trainer));
    const trainSeconds = (performance.now() - started) / 1000;

    // 2. Stream the file: every sample into its ring, then each model forms, scores and judges what it can.
    const streamStarted = performance.now();
    const channels = channelIndex(SKAB_SENSORS);
    const buffers = sensorRings(SKAB_SENSORS);
    const models: ModelRun[] = [];
    const clock = new ManualClock(REPLAY_START);
    for (const tr of trained) {
      const bundle = await loadBundle(tr.dir, { knownFeatures: [...channels.keys()] });
      const m: ModelRun = { name: tr.name, threshold: tr.threshold, trainWindows: tr.windows, epochs: tr.epochs, alerts: [], windows: [] };
      models.push(m);
      runtimes.push(
        await ModelRuntime.create({
          bundle,
          channels,
          buffers,
          detector: s.detector,
          ...(s.baseline ? { baseline: { ...s.baseline, ...s.models.find((sm) => sm.name === tr.name)?.baseline } } : {}),
          maxBatch: 64,
          engine: DEFAULTS.config.scorer.engine, // the daemon's: the fast engine where it supports the bundle
          log,
          now: () => clock.now(),
          onScore: (_m, p) => m.windows.push({ windowEnd: p.windowEnd, score: p.score, threshold: p.threshold, perFeature: p.perFeature }),
          onAlert: (e) => m.alerts.push(e),
          onScored: () => {},
        }),
      );
    }
    const t = new Float64Array(series.rows);
    let row = 0;
    const clockSensor = Object.keys(SKAB_SENSORS)[0]!;
    await streamFile({
      file: file.path,
      rows: series.rows,
      durationMs: series.t[series.rows - 1]! - series.t[0]!,
      sensors: SKAB_SENSORS,
      clock,
      buffers,
      runtimes,
      csv: { ...SKAB_CSV, columns: SKAB_COLUMNS },
      onSample: (sample) => {
        if (sample.sensor === clockSensor) t[row++] = sample.t;
      },
    });
    const streamSeconds = (performance.now() - streamStarted) / 1000;

    // 3. Mark the test rows: anomalous while any model has an episode open.
    const test = t.subarray(SKAB_TRAIN_ROWS);
    const pred = new Uint8Array(test.length);
    for (const m of models) rowsInEpisodes(test, m.alerts).forEach((v, i) => (pred[i]! |= v));
    log.info({ file: file.rel, alerts: models.map((m) => m.alerts.length), trainSeconds, streamSeconds }, 'file done');
    return { file, rows: series.rows, t, pred, models, trainSeconds, streamSeconds };
  } finally {
    for (const r of runtimes) r.dispose();
    if (opts.workDir === undefined) await rm(work, { recursive: true, force: true });
  }
}

/** A run's test rows scored against the file's labels. */
export interface FileScore {
  run: FileRun;
  labels?: SkabLabels;
  confusion: Confusion;
  nab: NabCounts;
}

/** Scores a run against `labels` (by default the file's own label columns; none for anomaly-free). */
export async function scoreRun(run: FileRun, labels?: SkabLabels): Promise<FileScore> {
  labels ??= await readSkabLabels(run.file.path);
  const n = run.rows - SKAB_TRAIN_ROWS;
  const truth = labels ? labels.anomaly.subarray(SKAB_TRAIN_ROWS) : new Uint8Array(n);
  const cp = labels ? labels.changepoint.subarray(SKAB_TRAIN_ROWS) : new Uint8Array(n);
  if (truth.length !== n) throw new Error(`${run.file.rel}: ${truth.length} labelled rows, ${n} replayed`);
  return {
    run,
    ...(labels ? { labels } : {}),
    confusion: confusion(truth, run.pred),
    nab: nabCounts(run.t.subarray(SKAB_TRAIN_ROWS), cp, changepointsOf(run.pred)),
  };
}

export interface Totals {
  files: number;
  confusion: Confusion;
  nab: NabCounts;
}

/**
 * The honest protocol's parts (docs/skab.md): settings are chosen on `tune` (with anomaly-free) and
 * confirmed on `confirm`; files of any other group (SKAB's valve2 and other, where present) are
 * reported on their own.
 */
export const SKAB_PARTS: readonly { name: string; include: (f: SkabFile) => boolean }[] = [
  { name: 'tune: valve1 0–7', include: (f) => f.group === 'valve1' && fileNumber(f) <= 7 },
  { name: 'confirm: valve1 8–15', include: (f) => f.group === 'valve1' && fileNumber(f) >= 8 },
  { name: 'other groups', include: (f) => f.group !== 'valve1' && f.group !== ANOMALY_FREE_GROUP },
];

function fileNumber(f: SkabFile): number {
  const n = Number.parseInt(basename(f.rel, '.csv'), 10);
  return Number.isFinite(n) ? n : Infinity;
}

/** Pooled over the files SKAB's leaderboard scores (every group but anomaly-free). */
export function totals(scores: readonly FileScore[], include: (s: FileScore) => boolean = (s) => s.run.file.group !== ANOMALY_FREE_GROUP): Totals {
  const chosen = scores.filter(include);
  return {
    files: chosen.length,
    confusion: chosen.reduce((c, s) => addConfusion(c, s.confusion), { ...ZERO_CONFUSION }),
    nab: chosen.reduce<NabCounts>((c, s) => addNab(c, s.nab), EMPTY_NAB),
  };
}


/** The predictions file: header `file,row,anomaly`, one line per test row (row = 0-based data row of the file). */
export function predictionsCsv(runs: readonly FileRun[]): string {
  const lines = ['file,row,anomaly'];
  for (const r of runs) {
    const file = r.file.rel.includes(',') || r.file.rel.includes('"') ? `"${r.file.rel.replaceAll('"', '""')}"` : r.file.rel;
    r.pred.forEach((p, i) => lines.push(`${file},${SKAB_TRAIN_ROWS + i},${p}`));
  }
  return lines.join('\n') + '\n';
}

/**
 * Every judged window: file,model,window_end,score,threshold and the error of each model input, window_end
 * being the row of the window's last sample.
 */
export function windowScoresCsv(runs: readonly FileRun[]): string {
  const inputs = [...new Set(runs.flatMap((r) => r.models.flatMap((m) => Object.keys(m.windows[0]?.perFeature ?? {}))))];
  const lines = [['file', 'model', 'window_end', 'score', 'threshold', ...inputs].join(',')];
  for (const r of runs) {
    const rowAt = new Map<number, number>();
    r.t.forEach((t, i) => rowAt.set(t, i));
    for (const w of r.models.flatMap((m) => m.windows.map((w) => ({ ...w, model: m.name })))) {
      // A grid point between two rows (a 2 s step) holds the earlier row.
      let row = rowAt.get(w.windowEnd);
      if (row === undefined) {
        row = 0;
        while (row + 1 < r.t.length && r.t[row + 1]! <= w.windowEnd) row++;
      }
      lines.push([r.file.rel, w.model, row, w.score, w.threshold, ...inputs.map((k) => w.perFeature[k] ?? '')].join(','));
    }
  }
  return lines.join('\n') + '\n';
}

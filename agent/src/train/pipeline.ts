import { join, relative } from 'node:path';
import type { Logger } from 'pino';
import { DEFAULTS } from '../core/defaults.js';
import { CHANNELS, defaultMaxGapMs, isProfileName, MODEL_FEATURES, PROFILES, SHAPE_CHANNELS, type ModelType, type ProfileName } from '../core/profiles.js';
import { readCsvDir } from '../preprocess/csv.js';
import { readRecordingManifest } from '../record/manifest.js';
import { fitMinMax, widenScaler, type MinMaxScaler } from '../preprocess/scaler.js';
import { makeWindows, splitEachByTime } from '../preprocess/sequences.js';
import { fitShape, shapeInputName, type ShapeInputs } from '../preprocess/shape.js';
import { digestFiles, loadBundle, type BundleArtifacts, updateManifest, writeBundle, type BundleBaseline, type BundleManifest, type ThresholdRule } from '../model/bundle.js';
import { fitErrorScale, normalizeErrors, type ScoreAggregate } from '../model/error-scale.js';
import type { FitResult, ProgressSink } from './epochs.js';
import { EpochProgress } from './progress.js';
import { featureErrors, trainAutoencoder, type TrainerChoice } from './trainer.js';
import { DEFAULT_THRESHOLD_RULE, describeRule, thresholdFrom } from './threshold.js';

/** Share of each recording's time span used for fitting; the rest of it is validation. */
export const TRAIN_FRACTION = 0.9;

export interface TrainOptions {
  /** Root of the seed-format data, `<dataDir>/<profile>/train/*.csv`, or a recording of the profile (trainingData). */
  dataDir: string;
  profile: ProfileName;
  modelType: ModelType;
  /** Bundles go to `<modelsDir>/<profile>/<modelType>/`. */
  modelsDir: string;
  seed: number;
  maxEpochs: number;
  patience: number;
  batchSize: number;
  /** Overrides the profile's default LSTM sizes. */
  units?: number[];
  /** Overrides the profile's training hop. */
  trainHop?: number;
  thresholdRule?: ThresholdRule;
  /** How per-feature errors make the score (model/error-scale.ts); default 'mean'. */
  aggregate?: ScoreAggregate;
  /** Which trainer (train/trainer.ts); default the fast one on every core. */
  trainer?: TrainerChoice;
  /** Names the run on the progress line (default `<profile>/<model>`). */
  label?: string;
  /** Where the progress bar goes (stderr for the CLI); none when omitted. */
  progressOut?: NodeJS.WritableStream;
  /** Told of every batch and epoch instead, when progressOut is omitted (a learn run's progress). */
  progress?: ProgressSink;
  /** A bundle learned on the device: its baseline, recorded in the manifest. */
  baseline?: BundleBaseline;
  /** Fine-tune this trained model (same architecture) instead of starting from random weights. */
  startFrom?: StartingModel;
  /** Validation in this many blocks through each recording rather than its tail (splitEachByTime): for one continuous baseline. */
  validationSpread?: number;
  log: Logger;
}

/** A trained model a run starts from, and what the new manifest says of it. */
export interface StartingModel {
  artifacts: BundleArtifacts;
  /**
   * Its scaler: the new one is widened to hold its ranges, so the fine-tuned model keeps the levels
   * it knew — a 30-minute baseline sees a part of the loads and ambients of a machine's day.
   */
  scaler: MinMaxScaler;
  from: NonNullable<BundleManifest['training']['startedFrom']>;
}

export interface TrainResult {
  dir: string;
  manifest: BundleManifest;
  fit: FitResult;
}

/** The device allows this many missing periods before a window is broken (core/profiles.ts). */
export { defaultMaxGapMs };

/**
 * Where a profile's training CSVs are, and the columns every row of them must hold: the seed's
 * layout, `<dataDir>/<profile>/train/` with the six seed channels; or `dataDir` itself when it is a
 * recording of that profile (`anomaly-agent record`, record/manifest.ts), with the recording's columns.
 */
export async function trainingData(dataDir: string, profile: ProfileName): Promise<{ dir: string; columns: readonly string[] }> {
  const recording = await readRecordingManifest(dataDir);
  if (recording === undefined) return { dir: join(dataDir, profile, 'train'), columns: CHANNELS };
  if (recording.profile !== profile) {
    throw new Error(`${dataDir} is a recording of ${recording.profile} (a row every ${recording.periodMs} ms): it trains ${recording.profile} models, not ${profile} ones`);
  }
  return { dir: dataDir, columns: recording.columns };
}

/** The features that get a window-shape input beside their level (preprocess/shape.ts). */
function shapeFeaturesOf(features: readonly string[]): string[] {
  return features.filter((f) => (SHAPE_CHANNELS as readonly string[]).includes(f));
}

/** The inputs a model trained here has, in order: its features' levels, then their shape inputs. */
export function trainedInputs(modelType: ModelType): string[] {
  const features = MODEL_FEATURES[modelType];
  return [...features, ...shapeFeaturesOf(features).map(shapeInputName)];
}

/** How trainingWindows scales (as a bundle already does, for re-calibration; or fitted, widened to cover a known range) and splits. */
export interface WindowOptions {
  /** The bundle's scaler and shape gains, as they are. */
  fixed?: { scaler: MinMaxScaler; shape?: ShapeInputs };
  /** Fitted on the data, then widened to hold these ranges too (a fine-tuned model keeps the levels its starting model knew). */
  cover?: MinMaxScaler;
  /** Validation blocks per recording (preprocess/sequences.ts splitEachByTime); 1, its tail, by default. */
  spread?: number;
}

/**
 * The training data of a profile as windows, split in time order: the one path both training and
 * re-calibration take, so they see the same windows.
 */
export async function trainingWindows(dataDir: string, profileName: ProfileName, features: string[], trainHop: number, maxGapMs: number, how: WindowOptions = {}) {
  const profile = PROFILES[profileName];
  const data = await trainingData(dataDir, profileName);
  const missing = features.filter((f) => !data.columns.includes(f));
  // A recording of some sensors trains the models they feed; another model is told what is missing.
  if (missing.length > 0) throw new Error(`${dataDir}: recorded columns ${data.columns.join(', ')}; the model needs ${missing.join(', ')} too`);
  const series = await readCsvDir(data.dir, { requiredColumns: data.columns });
  for (const s of series) {
    // The spacing inside segments: a gap (a step over maxGapMs) ends one and is no sampling rate.
    let span = 0;
    let steps = 0;
    for (let i = 1; i < s.rows; i++) {
      const dt = s.t[i]! - s.t[i - 1]!;
      if (dt <= maxGapMs) {
        span += dt;
        steps++;
      }
    }
    const mean = steps > 0 ? span / steps : profile.periodMs;
    if (Math.abs(mean - profile.periodMs) > profile.periodMs * 0.05) {
      throw new Error(`${s.file}: rows are ${mean.toFixed(1)} ms apart on average (steps over ${maxGapMs} ms, gaps, left out), profile ${profileName} samples every ${profile.periodMs} ms`);
    }
  }
  // Fitted on training files only: test data never shapes the scaler.
  const scaler = how.fixed?.scaler ?? widenScaler(fitMinMax(series, features), how.cover);
  const parts = splitEachByTime(series, TRAIN_FRACTION, how.spread);
  const cut = { features, scaler, seqLen: profile.seqLen, hop: trainHop, maxGapMs };
  let shape = how.fixed?.shape;
  const shapeFeatures = shapeFeaturesOf(features);
  if (how.fixed === undefined && shapeFeatures.length > 0) {
    // Gains from the training windows only, like the scaler.
    const plain = makeWindows(parts.train, cut);
    shape = fitShape(plain.x, plain.n, plain.seqLen, features, shapeFeatures);
  }
  const train = makeWindows(parts.train, { ...cut, shape });
  // Validation windows are cut as the device cuts them (its hop): the threshold is a quantile of
  // exactly the kind of scores it will be compared with, and there are more of them.
  const val = makeWindows(parts.val, { ...cut, hop: profile.hop, shape });
  return { series, scaler, shape, train, val };
}

/**
 * Per-feature error scale and threshold from the validation windows (normal data the model did not
 * train on): errorScale first, then the threshold rule on the normalised scores (ScoreAggregate says
 * how per-feature errors make a score; a bundle that uses 'max' records it as `aggregate`).
 * `perFeature` holds the raw reconstruction MSE per window and model input ([n][f]).
 */
export function calibrate(perFeature: Float32Array, n: number, f: number, rule: ThresholdRule, aggregate: ScoreAggregate = 'mean') {
  const errorScale = fitErrorScale(perFeature, n, f, aggregate === 'max' ? rule.quantile : undefined);
  const { score } = normalizeErrors(perFeature, n, errorScale, aggregate);
  const { threshold, quantileValue } = thresholdFrom(score, rule);
  return {
    errorScale,
    threshold,
    thresholdRule: { ...rule, description: describeRule(rule, aggregate), validationWindows: n, validationQuantileValue: quantileValue },
  };
}

/**
 * Re-derives errorScale and threshold of an existing bundle from its profile's training data, with
 * the model unchanged (its files and hashes stay as they are): for a new threshold rule, or new normal
 * data, without retraining.
 */
export async function calibrateBundle(dir: string, dataDir: string, knownFeatures: readonly string[], rule: ThresholdRule = DEFAULT_THRESHOLD_RULE): Promise<BundleManifest> {
  const bundle = await loadBundle(dir, { knownFeatures });
  const m = bundle.manifest;
  if (!isProfileName(m.profile)) throw new Error(`${dir}: profile '${m.profile}' is not one this version knows`);
  const { val } = await trainingWindows(dataDir, m.profile, m.features, m.training.trainHop, m.maxGapMs, { fixed: { scaler: m.scaler, ...(m.shape ? { shape: m.shape } : {}) }, spread: m.training.validationSpread });
  const cal = calibrate(featureErrors(bundle.artifacts, val.x, val.n, m.seqLen, val.f), val.n, val.f, rule, m.aggregate);
  const next: BundleManifest = { ...m, ...cal };
  delete next.metrics; // measured with the old threshold
  await updateManifest(dir, next);
  return next;
}

/** CSVs → scaler → windows → LSTM autoencoder → error scale and threshold → bundle. */
export async function trainBundle(o: TrainOptions): Promise<TrainResult> {
  const profile = PROFILES[o.profile];
  const features = [...MODEL_FEATURES[o.modelType]];
  const units = o.units ?? [...profile.units];
  const trainHop = o.trainHop ?? profile.trainHop;
  const rule = o.thresholdRule ?? DEFAULT_THRESHOLD_RULE;
  const maxGapMs = defaultMaxGapMs(profile.periodMs);

  const { series, scaler, shape, train, val } = await trainingWindows(o.dataDir, o.profile, features, trainHop, maxGapMs, { ...(o.startFrom ? { cover: o.startFrom.scaler } : {}), spread: o.validationSpread });
  const nInputs = train.f;
  const trainer = o.trainer ?? { trainer: DEFAULTS.train.trainer };
  o.log.info(
    { profile: o.profile, model: o.modelType, files: series.length, rows: series.reduce((s, x) => s + x.rows, 0), trainWindows: train.n, valWindows: val.n, units, trainer: trainer.trainer },
    'training',
  );

  const label = o.label ?? `${o.profile}/${o.modelType}`;
  const batches = Math.ceil(train.n / o.batchSize);
  const progress = o.progressOut ? new EpochProgress(o.progressOut, label, o.maxEpochs, batches) : o.progress;
  const spec = { seqLen: profile.seqLen, nFeatures: nInputs, units, seed: o.seed };
  const fitOptions = { seqLen: profile.seqLen, nFeatures: nInputs, maxEpochs: o.maxEpochs, patience: o.patience, batchSize: o.batchSize, seed: o.seed, progress };
  const trained = await trainAutoencoder(spec, train, val, fitOptions, trainer, o.startFrom?.artifacts);
  const fit = trained.fit;
  const aggregate = o.aggregate ?? 'mean';
  const cal = calibrate(featureErrors(trained.artifacts, val.x, val.n, profile.seqLen, nInputs), val.n, nInputs, rule, aggregate);
  const data = await digestFiles(o.dataDir, series.map((s) => relative(o.dataDir, s.file)));

  const dir = join(o.modelsDir, o.profile, o.modelType);
  const manifest = await writeBundle(dir, trained.artifacts, {
    name: `${o.profile}/${o.modelType}`,
    profile: o.profile,
    modelType: o.modelType,
    features,
    seqLen: profile.seqLen,
    hop: profile.hop,
    periodMs: profile.periodMs,
    maxGapMs,
    scaler,
    ...(shape ? { shape } : {}),
    errorScale: cal.errorScale,
    ...(aggregate !== 'mean' ? { aggregate } : {}),
    threshold: cal.threshold,
    thresholdRule: cal.thresholdRule,
    architecture: { units, recurrentActivation: 'sigmoid', parameters: trained.parameters },
    training: {
      seed: o.seed,
      backend: trained.engine,
      epochs: fit.epochs,
      bestEpoch: fit.bestEpoch,
      trainLoss: fit.trainLoss,
      valLoss: fit.valLoss,
      trainWindows: train.n,
      valWindows: val.n,
      trainHop,
      seconds: Math.round(fit.seconds * 10) / 10,
      data,
      ...(o.startFrom ? { startedFrom: o.startFrom.from } : {}),
      ...(o.validationSpread !== undefined && o.validationSpread > 1 ? { validationSpread: o.validationSpread } : {}),
    },
    ...(o.baseline ? { baseline: o.baseline } : {}),
  });
  o.log.info({ dir, trainer: trained.engine, threshold: cal.threshold, epochs: fit.epochs, bestEpoch: fit.bestEpoch, seconds: fit.seconds }, 'bundle written');
  return { dir, manifest, fit };
}

import { join, relative } from 'node:path';
import type { Logger } from 'pino';
import { MODEL_FEATURES, PROFILES, type ModelType, type ProfileName } from '../core/profiles.js';
import { readCsvDir } from '../preprocess/csv.js';
import { fitMinMax } from '../preprocess/scaler.js';
import { makeWindows, splitByTime } from '../preprocess/sequences.js';
import { buildAutoencoder, reconstructionErrors } from '../model/autoencoder.js';
import { selectBackend } from '../model/backend.js';
import { digestFiles, writeBundle, type BundleManifest, type ThresholdRule } from '../model/bundle.js';
import { fitAutoencoder, type FitResult } from './fit.js';
import { EpochProgress } from './progress.js';
import { DEFAULT_THRESHOLD_RULE, describeRule, thresholdFrom } from './threshold.js';

/** Share of the (time-ordered) training data used for fitting; the rest is validation. */
export const TRAIN_FRACTION = 0.9;

export interface TrainOptions {
  /** Root of the seed-format data: `<dataDir>/<profile>/train/*.csv`. */
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
  /** Where the progress bar goes (stderr for the CLI); none when omitted. */
  progressOut?: NodeJS.WritableStream;
  log: Logger;
}

export interface TrainResult {
  dir: string;
  manifest: BundleManifest;
  fit: FitResult;
}

/** The device allows this many missing periods before a window is broken (DESIGN.md: maxGapMs). */
export function defaultMaxGapMs(periodMs: number): number {
  return periodMs * 5;
}

/** CSVs → scaler → windows → LSTM autoencoder → threshold → bundle. */
export async function trainBundle(o: TrainOptions): Promise<TrainResult> {
  const profile = PROFILES[o.profile];
  const features = [...MODEL_FEATURES[o.modelType]];
  const units = o.units ?? [...profile.units];
  const trainHop = o.trainHop ?? profile.trainHop;
  const rule = o.thresholdRule ?? DEFAULT_THRESHOLD_RULE;
  const maxGapMs = defaultMaxGapMs(profile.periodMs);
  const { backend } = await selectBackend();

  const trainDir = join(o.dataDir, o.profile, 'train');
  const series = await readCsvDir(trainDir);
  for (const s of series) {
    const steps = s.t.length > 1 ? (s.t[s.t.length - 1] - s.t[0]) / (s.t.length - 1) : profile.periodMs;
    if (Math.abs(steps - profile.periodMs) > profile.periodMs * 0.05) {
      throw new Error(`${s.file}: rows are ${steps.toFixed(1)} ms apart on average, profile ${o.profile} samples every ${profile.periodMs} ms`);
    }
  }
  // Fitted on training files only: test data never shapes the scaler.
  const scaler = fitMinMax(series, features);
  const windows = makeWindows(series, { features, scaler, seqLen: profile.seqLen, hop: trainHop, maxGapMs });
  const { train, val } = splitByTime(windows, TRAIN_FRACTION);
  o.log.info(
    { profile: o.profile, model: o.modelType, files: series.length, rows: series.reduce((s, x) => s + x.rows, 0), trainWindows: train.n, valWindows: val.n, units, backend },
    'training',
  );

  const model = buildAutoencoder({ seqLen: profile.seqLen, nFeatures: features.length, units, seed: o.seed });
  const label = `${o.profile}/${o.modelType}`;
  const batches = Math.ceil(train.n / o.batchSize);
  const progress = o.progressOut ? new EpochProgress(o.progressOut, label, o.maxEpochs, batches) : undefined;
  const fit = await fitAutoencoder(model, train, val, {
    seqLen: profile.seqLen,
    nFeatures: features.length,
    maxEpochs: o.maxEpochs,
    patience: o.patience,
    batchSize: o.batchSize,
    seed: o.seed,
    progress,
  });
  const valErrors = reconstructionErrors(model, val.x, val.n, profile.seqLen, features.length).score;
  const { threshold, quantileValue } = thresholdFrom(valErrors, rule);
  const data = await digestFiles(o.dataDir, series.map((s) => relative(o.dataDir, s.file)));

  const dir = join(o.modelsDir, o.profile, o.modelType);
  const manifest = await writeBundle(dir, model, {
    name: label,
    profile: o.profile,
    modelType: o.modelType,
    features,
    seqLen: profile.seqLen,
    hop: profile.hop,
    periodMs: profile.periodMs,
    maxGapMs,
    scaler,
    threshold,
    thresholdRule: { ...rule, description: describeRule(rule), validationWindows: val.n, validationQuantileValue: quantileValue },
    architecture: { units, recurrentActivation: 'sigmoid', parameters: model.countParams() },
    training: {
      seed: o.seed,
      backend,
      epochs: fit.epochs,
      bestEpoch: fit.bestEpoch,
      trainLoss: fit.trainLoss,
      valLoss: fit.valLoss,
      trainWindows: train.n,
      valWindows: val.n,
      trainHop,
      seconds: Math.round(fit.seconds * 10) / 10,
      data,
    },
  });
  model.dispose();
  o.log.info({ dir, threshold, epochs: fit.epochs, bestEpoch: fit.bestEpoch, seconds: fit.seconds }, 'bundle written');
  return { dir, manifest, fit };
}

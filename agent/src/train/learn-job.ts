/**
 * Training a learn run's models (daemon/learner.ts): every enabled model of the profile, one after
 * the other, on the recorded baseline, with the fast trainer; each calibrated as `train` does
 * (pipeline.ts), written atomically into `outDir`, and signed with the device's own key when it
 * has one. Run in a child process of lowest CPU priority (learn-child.ts), so the daemon's sampling
 * and scoring keep their deadlines; nothing here touches the live models.
 */
import { join } from 'node:path';
import { silentLogger } from '../core/log.js';
import { MODEL_FEATURES, PROFILES, type ModelType, type ProfileName } from '../core/profiles.js';
import { bundleInputs, loadBundle, WEIGHTS_FILE, type BundleBaseline } from '../model/bundle.js';
import { signBundle } from '../model/signature.js';
import { initialAutoencoder } from './autoencoder-init.js';
import { TRAIN_FRACTION, trainBundle, trainedInputs, type StartingModel } from './pipeline.js';
import { architectureMismatch } from './trainer.js';

export interface LearnJob {
  /** The baseline: a recording of the profile (record/manifest.ts). */
  dataDir: string;
  profile: ProfileName;
  models: ModelType[];
  /** Bundles go to `<outDir>/<profile>/<model>/`. */
  outDir: string;
  maxEpochs: number;
  patience: number;
  batchSize: number;
  seed: number;
  /** Trainer threads (default: every core). */
  threads?: number;
  /** The device's private key (PEM) to sign with; unsigned without. */
  signingKeyPem?: string;
  baseline: BundleBaseline;
  /** Per model, the installed bundle to fine-tune (train/trainer.ts); a model without one, or whose bundle does not fit, learns from random weights. */
  startFrom?: Partial<Record<ModelType, string>>;
}

/** What the child tells the daemon. */
export type LearnJobMessage =
  | { type: 'started'; pid: number; priority: number }
  | { type: 'progress'; model: ModelType; fraction: number }
  | { type: 'bundle'; model: ModelType; dir: string; epochs: number; seconds: number; startedFrom: string }
  | { type: 'done' }
  | { type: 'error'; message: string };

/** Validation blocks a baseline is split into at most, and the fewest windows each must be long. */
const VALIDATION_BLOCKS = 3;
const WINDOWS_PER_BLOCK = 6;

/**
 * How many blocks through the baseline validate (train/pipeline.ts validationSpread): a baseline is
 * one stretch of running, and its tail alone would judge the threshold on its last load or two.
 * Fewer for a short baseline, so every block holds several windows.
 */
export function validationSpread(job: Pick<LearnJob, 'profile' | 'baseline'>): number {
  const p = PROFILES[job.profile];
  const validationMs = (job.baseline.t1 - job.baseline.t0) / Math.round(1 / (1 - TRAIN_FRACTION)); // a tenth, without 0.1's rounding
  const windowMs = p.seqLen * p.periodMs;
  return Math.max(1, Math.min(VALIDATION_BLOCKS, Math.floor(validationMs / (WINDOWS_PER_BLOCK * windowMs))));
}

export async function runLearnJob(job: LearnJob, tell: (m: LearnJobMessage) => void): Promise<void> {
  const n = job.models.length;
  const spread = validationSpread(job);
  for (const [i, model] of job.models.entries()) {
    tell({ type: 'progress', model, fraction: i / n });
    const start = await startingModel(job, model);
    const r = await trainBundle({
      dataDir: job.dataDir,
      profile: job.profile,
      modelType: model,
      modelsDir: job.outDir,
      seed: job.seed,
      maxEpochs: job.maxEpochs,
      patience: job.patience,
      batchSize: job.batchSize,
      trainer: { trainer: 'fast', ...(job.threads ? { threads: job.threads } : {}) },
      progress: {
        batch: () => {},
        epochEnd: (epoch) => tell({ type: 'progress', model, fraction: (i + epoch / job.maxEpochs) / n }),
      },
      baseline: job.baseline,
      ...(typeof start === 'string' ? {} : { startFrom: start }),
      validationSpread: spread,
      log: silentLogger,
    });
    if (job.signingKeyPem) await signBundle(r.dir, job.signingKeyPem);
    const startedFrom = typeof start === 'string' ? start : `fine-tuned from ${start.from.name} (weights ${start.from.weightsSha256.slice(0, 12)})`;
    tell({ type: 'bundle', model, dir: join(job.outDir, job.profile, model), epochs: r.fit.epochs, seconds: r.fit.seconds, startedFrom });
  }
}

/**
 * The installed bundle a model fine-tunes, or why it learns from random weights instead: none is
 * installed, or it cannot be read, or it is not this model (other inputs, another window length, other
 * LSTM sizes).
 */
async function startingModel(job: LearnJob, model: ModelType): Promise<StartingModel | string> {
  const dir = job.startFrom?.[model];
  if (dir === undefined) return 'from random weights';
  let bundle;
  try {
    bundle = await loadBundle(dir, { knownFeatures: MODEL_FEATURES[model] });
  } catch (err) {
    return `from random weights: the installed bundle cannot be read (${(err as Error).message})`;
  }
  const m = bundle.manifest;
  const profile = PROFILES[job.profile];
  const inputs = trainedInputs(model);
  if (bundleInputs(m).join() !== inputs.join() || m.seqLen !== profile.seqLen) {
    return `from random weights: the installed ${m.name} reads ${bundleInputs(m).join(', ')} in windows of ${m.seqLen}, this model ${inputs.join(', ')} in windows of ${profile.seqLen}`;
  }
  const expected = initialAutoencoder({ seqLen: profile.seqLen, nFeatures: inputs.length, units: profile.units, seed: job.seed });
  const why = architectureMismatch(bundle.artifacts, expected);
  if (why) return `from random weights: the installed ${m.name} is another network (${why})`;
  return { artifacts: bundle.artifacts, scaler: m.scaler, from: { name: m.name, weightsSha256: m.files[WEIGHTS_FILE]! } };
}

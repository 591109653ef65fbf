/**
 * Training a learn run's models (daemon/learner.ts): every enabled model of the profile, one after
 * the other, on the recorded baseline, with the fast trainer; each calibrated as `train` does
 * (pipeline.ts), written atomically into `outDir`, and signed with the device's own key when it
 * has one. Run in a child process of lowest CPU priority (learn-child.ts), so the daemon's sampling
 * and scoring keep their deadlines; nothing here touches the live models.
 */
import { join } from 'node:path';
import { silentLogger } from '../core/log.js';
import type { ModelType, ProfileName } from '../core/profiles.js';
import type { BundleBaseline } from '../model/bundle.js';
import { signBundle } from '../model/signature.js';
import { trainBundle } from './pipeline.js';

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
}

/** What the child tells the daemon. */
export type LearnJobMessage =
  | { type: 'started'; pid: number; priority: number }
  | { type: 'progress'; model: ModelType; fraction: number }
  | { type: 'bundle'; model: ModelType; dir: string; epochs: number; seconds: number }
  | { type: 'done' }
  | { type: 'error'; message: string };

export async function runLearnJob(job: LearnJob, tell: (m: LearnJobMessage) => void): Promise<void> {
  const n = job.models.length;
  for (const [i, model] of job.models.entries()) {
    tell({ type: 'progress', model, fraction: i / n });
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
      log: silentLogger,
    });
    if (job.signingKeyPem) await signBundle(r.dir, job.signingKeyPem);
    tell({ type: 'bundle', model, dir: join(job.outDir, job.profile, model), epochs: r.fit.epochs, seconds: r.fit.seconds });
  }
}

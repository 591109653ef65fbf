import { tf } from '../model/backend.js';
import { runEpochs, type FitOptions, type FitResult, type Learner, type WindowSet } from './epochs.js';

function meanLoss(model: tf.LayersModel, set: WindowSet, seqLen: number, f: number, batchSize: number): number {
  const stride = seqLen * f;
  let total = 0;
  for (let b = 0; b < set.n; b += batchSize) {
    const m = Math.min(batchSize, set.n - b);
    const loss = tf.tidy(() => {
      const x = tf.tensor3d(set.x.subarray(b * stride, (b + m) * stride), [m, seqLen, f]);
      return tf.mean(tf.squaredDifference(model.predict(x) as tf.Tensor, x));
    });
    total += (loss.dataSync()[0] ?? 0) * m;
    loss.dispose();
  }
  return total / set.n;
}

/**
 * Trains a tfjs autoencoder to reconstruct its input (the reference trainer; train/fast-fit.ts is
 * the default). Batches come from the shared epoch loop rather than model.fit, which shuffles with
 * Math.random.
 */
export async function fitAutoencoder(model: tf.LayersModel, train: WindowSet, val: WindowSet, opts: FitOptions): Promise<FitResult> {
  const { seqLen, nFeatures: f, batchSize } = opts;
  const stride = seqLen * f;
  const batch = new Float32Array(batchSize * stride);
  let best: tf.Tensor[] = [];
  const learner: Learner = {
    async trainBatch(order, from, to) {
      const m = to - from;
      for (let k = 0; k < m; k++) {
        const w = order[from + k]!;
        batch.set(train.x.subarray(w * stride, (w + 1) * stride), k * stride);
      }
      const xb = tf.tensor3d(batch.subarray(0, m * stride), [m, seqLen, f]);
      const loss = (await model.trainOnBatch(xb, xb)) as number;
      xb.dispose();
      return loss;
    },
    async valLoss() {
      return meanLoss(model, val, seqLen, f, batchSize);
    },
    keepBest() {
      best.forEach((w) => w.dispose());
      best = model.getWeights().map((w) => w.clone());
    },
    restoreBest() {
      if (best.length) model.setWeights(best);
      best.forEach((w) => w.dispose());
      best = [];
    },
  };
  return runEpochs(learner, train, val, opts);
}

export type { FitOptions, FitResult, WindowSet } from './epochs.js';

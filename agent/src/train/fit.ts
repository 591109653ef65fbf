import { tf } from '../model/backend.js';
import type { EpochProgress } from './progress.js';
import { Rng } from '../core/rng.js';

export interface WindowSet {
  /** Row-major [n][seqLen][nFeatures], already scaled. */
  x: Float32Array;
  n: number;
}

export interface FitOptions {
  seqLen: number;
  nFeatures: number;
  maxEpochs: number;
  /** Epochs without a validation improvement before stopping; the best weights are restored. */
  patience: number;
  batchSize: number;
  /** Seeds the per-epoch shuffle of training windows, so a run is reproducible. */
  seed: number;
  progress?: EpochProgress;
}

export interface FitResult {
  epochs: number;
  bestEpoch: number;
  trainLoss: number;
  valLoss: number;
  history: { epoch: number; loss: number; valLoss: number }[];
  seconds: number;
}

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
 * Trains an autoencoder to reconstruct its input, batch by batch in a seeded order, with early
 * stopping on validation loss. Written as an explicit loop (not model.fit) because fit shuffles with
 * Math.random, which would make two runs on the same data differ.
 */
export async function fitAutoencoder(model: tf.LayersModel, train: WindowSet, val: WindowSet, opts: FitOptions): Promise<FitResult> {
  const { seqLen, nFeatures: f, batchSize } = opts;
  if (train.n === 0) throw new Error('no training windows: the training data is shorter than one window');
  if (val.n === 0) throw new Error('no validation windows: the validation span is shorter than one window');
  const started = Date.now();
  const stride = seqLen * f;
  const rng = new Rng(opts.seed);
  const order = Uint32Array.from({ length: train.n }, (_, i) => i);
  const batch = new Float32Array(batchSize * stride);
  const batches = Math.ceil(train.n / batchSize);
  const history: FitResult['history'] = [];
  let best = { epoch: 0, valLoss: Infinity, loss: Infinity, weights: [] as tf.Tensor[] };

  for (let epoch = 1; epoch <= opts.maxEpochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    let lossSum = 0;
    for (let b = 0; b < batches; b++) {
      const m = Math.min(batchSize, train.n - b * batchSize);
      for (let k = 0; k < m; k++) {
        const w = order[b * batchSize + k];
        batch.set(train.x.subarray(w * stride, (w + 1) * stride), k * stride);
      }
      const xb = tf.tensor3d(batch.subarray(0, m * stride), [m, seqLen, f]);
      const loss = (await model.trainOnBatch(xb, xb)) as number;
      xb.dispose();
      lossSum += loss * m;
      opts.progress?.batch(epoch, b + 1, lossSum / Math.min(train.n, (b + 1) * batchSize));
    }
    const loss = lossSum / train.n;
    const valLoss = meanLoss(model, val, seqLen, f, batchSize);
    history.push({ epoch, loss, valLoss });
    const improved = valLoss < best.valLoss;
    if (improved) {
      best.weights.forEach((w) => w.dispose());
      best = { epoch, valLoss, loss, weights: model.getWeights().map((w) => w.clone()) };
    }
    const stop = epoch - best.epoch >= opts.patience;
    opts.progress?.epochEnd(epoch, loss, valLoss, improved ? '(best)' : stop ? `(no improvement for ${opts.patience}, stopping)` : '');
    if (stop) break;
  }
  model.setWeights(best.weights);
  best.weights.forEach((w) => w.dispose());
  return {
    epochs: history.length,
    bestEpoch: best.epoch,
    trainLoss: best.loss,
    valLoss: best.valLoss,
    history,
    seconds: (Date.now() - started) / 1000,
  };
}

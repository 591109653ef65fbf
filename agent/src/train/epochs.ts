import { Rng } from '../core/rng.js';

export interface WindowSet {
  /** Row-major [n][seqLen][nFeatures], already scaled. */
  x: Float32Array;
  n: number;
}

/** Where the epoch loop reports (train/progress.ts EpochProgress draws it). */
export interface ProgressSink {
  batch(epoch: number, batch: number, loss: number): void;
  epochEnd(epoch: number, loss: number, valLoss: number, note?: string): void;
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
  progress?: ProgressSink;
}

export interface FitResult {
  epochs: number;
  bestEpoch: number;
  trainLoss: number;
  valLoss: number;
  history: { epoch: number; loss: number; valLoss: number }[];
  seconds: number;
}

/** What a trainer does for the epoch loop: one optimiser step on a batch, the validation loss, best weights kept. */
export interface Learner {
  /** One step on training windows order[from …to); returns the batch's mean squared error. */
  trainBatch(order: Uint32Array, from: number, to: number): Promise<number>;
  /** Mean squared error over the validation windows. */
  valLoss(): Promise<number>;
  /** Remember the current weights as the best so far. */
  keepBest(): void;
  /** Go back to the weights last kept. */
  restoreBest(): void;
}

/**
 * The epoch loop both trainers share, so they see the same batches for the same seed: a seeded
 * shuffle of the training windows per epoch (not Math.random, which would make two runs differ),
 * batches in that order, validation after each epoch, early stopping with the best weights restored.
 */
export async function runEpochs(learner: Learner, train: WindowSet, val: WindowSet, opts: FitOptions): Promise<FitResult> {
  if (train.n === 0) throw new Error('no training windows: the training data is shorter than one window');
  if (val.n === 0) throw new Error('no validation windows: the validation span is shorter than one window');
  const started = Date.now();
  const rng = new Rng(opts.seed);
  const order = Uint32Array.from({ length: train.n }, (_, i) => i);
  const batches = Math.ceil(train.n / opts.batchSize);
  const history: FitResult['history'] = [];
  let best = { epoch: 0, valLoss: Infinity, loss: Infinity };

  for (let epoch = 1; epoch <= opts.maxEpochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let lossSum = 0;
    for (let b = 0; b < batches; b++) {
      const from = b * opts.batchSize;
      const to = Math.min(train.n, from + opts.batchSize);
      lossSum += (await learner.trainBatch(order, from, to)) * (to - from);
      opts.progress?.batch(epoch, b + 1, lossSum / to);
    }
    const loss = lossSum / train.n;
    const valLoss = await learner.valLoss();
    history.push({ epoch, loss, valLoss });
    const improved = valLoss < best.valLoss;
    if (improved) {
      best = { epoch, valLoss, loss };
      learner.keepBest();
    }
    const stop = epoch - best.epoch >= opts.patience;
    opts.progress?.epochEnd(epoch, loss, valLoss, improved ? '(best)' : stop ? `(no improvement for ${opts.patience}, stopping)` : '');
    if (stop) break;
  }
  learner.restoreBest();
  return {
    epochs: history.length,
    bestEpoch: best.epoch,
    trainLoss: best.loss,
    valLoss: best.valLoss,
    history,
    seconds: (Date.now() - started) / 1000,
  };
}

/**
 * The one way to train a bundle network: `fast` (train/fast-fit.ts, typed arrays over worker
 * threads, the default) or `tfjs` (TensorFlow.js on its selected backend, the reference and the
 * fallback). Both start from the same kind of initial weights, walk the same batches for a seed,
 * and hand back the same artifacts: what a bundle's model.json and weights.bin hold.
 */
import type { AutoencoderSpec } from '../model/autoencoder.js';
import { FastLstmNetwork, planNetwork, UnsupportedModelError } from '../model/fast-lstm.js';
import { TrainableNetwork } from './fast-network.js';
import type { BundleArtifacts } from '../model/bundle.js';
import { initialAutoencoder } from './autoencoder-init.js';
import type { FitOptions, FitResult, WindowSet } from './epochs.js';
import { defaultThreads, fitFast } from './fast-fit.js';

export const TRAINERS = ['fast', 'tfjs'] as const;
export type TrainerName = (typeof TRAINERS)[number];

export interface TrainerChoice {
  trainer: TrainerName;
  /** Worker threads of the fast trainer (default: every core). */
  threads?: number;
}

export interface Trained {
  fit: FitResult;
  artifacts: BundleArtifacts;
  /** What trained it, for bundle.json and logs: `fast (wasm, 2 threads)`, `tfjs (wasm)`. */
  engine: string;
  /** Trainable parameters. */
  parameters: number;
}

/**
 * Trains the seed's autoencoder of `spec` on `train`, stopping early on `val`; or, given
 * `startFrom`, a trained network of the same architecture from its weights (fine-tuning: a learn run
 * starts from the installed model, which already knows what a motor's signals look like, and only
 * has to learn this machine — far fewer epochs than from random weights).
 */
export async function trainAutoencoder(spec: AutoencoderSpec, train: WindowSet, val: WindowSet, fit: FitOptions, choice: TrainerChoice, startFrom?: BundleArtifacts): Promise<Trained> {
  const init = initialAutoencoder(spec);
  if (startFrom) {
    const why = architectureMismatch(startFrom, init);
    if (why) throw new Error(`cannot start from these weights: ${why}`);
  }
  if (choice.trainer === 'tfjs') {
    if (startFrom) throw new Error('starting from trained weights needs the fast trainer');
    // Loaded only here: the fast path never brings TensorFlow.js into the process.
    const [{ buildAutoencoder, artifactsOf }, { fitAutoencoder }, { selectBackend }] = await Promise.all([import('../model/autoencoder.js'), import('./fit.js'), import('../model/backend.js')]);
    const { backend } = await selectBackend();
    const model = buildAutoencoder(spec);
    try {
      const result = await fitAutoencoder(model, train, val, fit);
      return { fit: result, artifacts: await artifactsOf(model), engine: `tfjs (${backend})`, parameters: model.countParams() };
    } finally {
      model.dispose();
    }
  }
  // The seed's topology (its sequence length, its names) with the trained weights: same shapes, checked above.
  const r = await fitFast(startFrom ? { ...init, weightData: startFrom.weightData } : init, train, val, { ...fit, threads: choice.threads ?? defaultThreads(), learningRate: spec.learningRate });
  return { fit: r.fit, artifacts: r.artifacts, engine: `fast (${r.kernel}, ${r.threads} thread${r.threads === 1 ? '' : 's'})`, parameters: r.artifacts.weightSpecs.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0) };
}

/**
 * Why `weights` cannot seed a network shaped like `expected` (another number of inputs, other LSTM
 * sizes, another depth), or undefined when every tensor has the shape the network needs.
 */
export function architectureMismatch(weights: BundleArtifacts, expected: BundleArtifacts): string | undefined {
  const shapes = (a: BundleArtifacts) => a.weightSpecs.map((w) => w.shape.join('×'));
  const have = shapes(weights);
  const want = shapes(expected);
  if (have.join(',') === want.join(',')) return undefined;
  return `tensors ${have.join(', ')}; this network needs ${want.join(', ')}`;
}

/** Windows scored at once: enough rows for the kernel, little memory. */
const SCORE_CHUNK = 16;

/**
 * A function giving, per window and model input ([n][f]), the mean over steps of the squared
 * reconstruction error: what calibration and evaluation need of a model, built once per model.
 * Many windows at once on the trainer's network (the same float64 arithmetic as the daemon's
 * one-window engine, in another order: tested equal to float32 rounding); a network only the engine
 * runs goes through the engine window by window. Throws UnsupportedModelError for a network neither runs.
 */
export function errorsOf(artifacts: BundleArtifacts, seqLen: number, nFeatures: number): (x: Float32Array, n: number) => Float32Array {
  const plan = planNetwork(artifacts.modelTopology, artifacts.weightSpecs, artifacts.weightData, seqLen, nFeatures);
  let net: TrainableNetwork;
  try {
    net = new TrainableNetwork(plan, SCORE_CHUNK, 'wasm', true);
  } catch (err) {
    if (!(err instanceof UnsupportedModelError)) throw err;
    const engine = new FastLstmNetwork(plan);
    return (x, n) => engine.featureErrors(x, n);
  }
  return (x, n) => {
    const out = new Float32Array(n * nFeatures);
    for (let at = 0; at < n; at += net.maxBatch) {
      const to = Math.min(n, at + net.maxBatch);
      net.featureErrors(x, at, to, out.subarray(at * nFeatures, to * nFeatures));
    }
    return out;
  };
}

/** errorsOf for one set of windows. */
export function featureErrors(artifacts: BundleArtifacts, x: Float32Array, n: number, seqLen: number, nFeatures: number): Float32Array {
  return errorsOf(artifacts, seqLen, nFeatures)(x, n);
}

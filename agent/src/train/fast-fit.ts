/**
 * The fast trainer: the bundle network trained on typed arrays (train/fast-network.ts), data-parallel
 * over worker threads, with Adam as tfjs's `tf.train.adam(lr)` computes it and the epoch loop the
 * tfjs trainer uses (train/epochs.ts). Deterministic for a given seed and thread count: each thread
 * owns a fixed slice of every batch and the main thread adds their gradients in thread order.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { planNetwork } from '../model/fast-lstm.js';
import { concatWeights, type BundleArtifacts } from '../model/bundle.js';
import { runEpochs, type FitOptions, type FitResult, type Learner, type WindowSet } from './epochs.js';
import { TrainableNetwork } from './fast-network.js';

export interface FastFitOptions extends FitOptions {
  /** Worker threads; 1 trains on the calling thread. Default: the cores Node sees. */
  threads?: number;
  /** Adam's step size (tfjs's default for the seed's model: 1e-3). */
  learningRate?: number;
  /**
   * Windows a thread runs at once: bounds its activation memory, not the batch (default 8: a step is
   * then one product of 8 rows, and a layer's activations stay nearer the core's caches; measured
   * 5–15 % faster per window here than 16).
   */
  chunk?: number;
  /** 'wasm' (SIMD kernel, default) or 'js' (the reference loop). */
  kernel?: 'wasm' | 'js';
}

export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

/** tfjs's Adam (tfjs-core adam_optimizer.ts): bias-corrected moments, ε = 1e-7 (float32 backend epsilon). */
export class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;

  constructor(
    size: number,
    private readonly lr = 1e-3,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly epsilon = 1e-7,
  ) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  step(params: Float64Array, grad: Float64Array): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    const { m, v, beta1, beta2, lr, epsilon } = this;
    for (let i = 0; i < params.length; i++) {
      const g = grad[i]!;
      const mi = beta1 * m[i]! + (1 - beta1) * g;
      const vi = beta2 * v[i]! + (1 - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i]! -= (lr * (mi / c1)) / (Math.sqrt(vi / c2) + epsilon);
    }
  }
}

/** Where the gradient of a batch slice and the error of a set of windows are computed. */
interface Pool {
  /** Adds into `grad` the gradient of scale·Σe² over order[from …to); returns Σe². */
  gradient(params: Float64Array, order: Uint32Array, from: number, to: number, scale: number, grad: Float64Array): Promise<number>;
  /** Σe² over windows [0, n) of the validation set. */
  valSse(params: Float64Array): Promise<number>;
  close(): Promise<void>;
}

/** Windows [from, to) cut into `parts` contiguous slices, the first ones one longer. */
function slices(from: number, to: number, parts: number): [number, number][] {
  const n = to - from;
  const out: [number, number][] = [];
  let at = from;
  for (let p = 0; p < parts; p++) {
    const len = Math.floor(n / parts) + (p < n % parts ? 1 : 0);
    out.push([at, at + len]);
    at += len;
  }
  return out;
}

/** Runs windows [from, to) of `data` in chunks the network was sized for. */
export function chunked(net: TrainableNetwork, from: number, to: number, run: (a: number, b: number) => number): number {
  let s = 0;
  for (let a = from; a < to; a += net.maxBatch) s += run(a, Math.min(to, a + net.maxBatch));
  return s;
}

class InlinePool implements Pool {
  private readonly all: Uint32Array;

  constructor(
    private readonly net: TrainableNetwork,
    private readonly train: WindowSet,
    private readonly val: WindowSet,
  ) {
    this.all = Uint32Array.from({ length: val.n }, (_, i) => i);
  }

  async gradient(params: Float64Array, order: Uint32Array, from: number, to: number, scale: number, grad: Float64Array): Promise<number> {
    const net = this.net;
    net.setParams(params);
    net.zeroGrad();
    const sse = chunked(net, from, to, (a, b) => net.gradient(this.train.x, order, a, b, scale));
    for (let i = 0; i < grad.length; i++) grad[i]! += net.grad[i]!;
    return sse;
  }

  async valSse(params: Float64Array): Promise<number> {
    this.net.setParams(params);
    return chunked(this.net, 0, this.val.n, (a, b) => this.net.sse(this.val.x, this.all, a, b));
  }

  async close(): Promise<void> {}
}

/** What a worker thread gets at start (train/fast-worker.ts). */
export interface WorkerSetup {
  artifacts: BundleArtifacts;
  seqLen: number;
  nFeatures: number;
  chunk: number;
  kernel: 'wasm' | 'js';
  /** Shared: parameters (Float64), this worker's gradient (Float64), training and validation windows (Float32). */
  params: SharedArrayBuffer;
  grad: SharedArrayBuffer;
  train: SharedArrayBuffer;
  val: SharedArrayBuffer;
}

export type WorkerRequest = { op: 'grad'; order: Uint32Array; from: number; to: number; scale: number } | { op: 'val'; from: number; to: number };
export type WorkerReply = { ok: true; sse: number } | { ok: false; error: string };

function shared(src: Float32Array): SharedArrayBuffer {
  const buf = new SharedArrayBuffer(src.byteLength);
  new Float32Array(buf).set(src);
  return buf;
}

class WorkerPool implements Pool {
  private readonly workers: { worker: Worker; grad: Float64Array; pending?: { resolve: (v: number) => void; reject: (e: Error) => void } }[] = [];
  private readonly params: Float64Array;
  private readonly valCount: number;
  private failed: Error | undefined;

  constructor(artifacts: BundleArtifacts, train: WindowSet, val: WindowSet, size: number, threads: number, o: { seqLen: number; nFeatures: number; chunk: number; kernel: 'wasm' | 'js' }) {
    const paramsBuf = new SharedArrayBuffer(size * 8);
    this.params = new Float64Array(paramsBuf);
    this.valCount = val.n;
    const trainBuf = shared(train.x.subarray(0, train.n * o.seqLen * o.nFeatures));
    const valBuf = shared(val.x.subarray(0, val.n * o.seqLen * o.nFeatures));
    for (let i = 0; i < threads; i++) {
      const gradBuf = new SharedArrayBuffer(size * 8);
      const setup: WorkerSetup = { artifacts, ...o, params: paramsBuf, grad: gradBuf, train: trainBuf, val: valBuf };
      const worker = new Worker(new URL('./fast-worker.js', import.meta.url), { workerData: setup });
      const entry: (typeof this.workers)[number] = { worker, grad: new Float64Array(gradBuf) };
      worker.on('message', (r: WorkerReply) => {
        const p = entry.pending;
        entry.pending = undefined;
        if (!p) return;
        if (r.ok) p.resolve(r.sse);
        else p.reject(new Error(`trainer thread ${i}: ${r.error}`));
      });
      const fail = (err: Error) => {
        this.failed ??= err;
        entry.pending?.reject(err);
        entry.pending = undefined;
      };
      worker.on('error', fail);
      worker.on('exit', (code) => {
        if (code !== 0) fail(new Error(`trainer thread ${i} exited with code ${code}`));
      });
      this.workers.push(entry);
    }
  }

  private ask(i: number, req: WorkerRequest): Promise<number> {
    if (this.failed) return Promise.reject(this.failed);
    const w = this.workers[i]!;
    return new Promise((resolve, reject) => {
      w.pending = { resolve, reject };
      w.worker.postMessage(req);
    });
  }

  async gradient(params: Float64Array, order: Uint32Array, from: number, to: number, scale: number, grad: Float64Array): Promise<number> {
    this.params.set(params);
    const parts = slices(from, to, this.workers.length);
    const sses = await Promise.all(parts.map(([a, b], i) => (b > a ? this.ask(i, { op: 'grad', order: order.slice(a, b), from: 0, to: b - a, scale }) : Promise.resolve(0))));
    // In thread order, so a given thread count always adds in the same order.
    parts.forEach(([a, b], i) => {
      if (b <= a) return;
      const g = this.workers[i]!.grad;
      for (let k = 0; k < grad.length; k++) grad[k]! += g[k]!;
    });
    return sses.reduce((s, v) => s + v, 0);
  }

  async valSse(params: Float64Array): Promise<number> {
    this.params.set(params);
    const parts = slices(0, this.valCount, this.workers.length);
    const sses = await Promise.all(parts.map(([a, b], i) => (b > a ? this.ask(i, { op: 'val', from: a, to: b }) : Promise.resolve(0))));
    return sses.reduce((s, v) => s + v, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

/**
 * Trains the network in `artifacts` (model.json topology and weights: initial weights from
 * train/autoencoder-init.ts, or a bundle's) on `train`, stopping early on `val`; returns the fit
 * and the best weights as new artifacts of the same topology.
 */
export async function fitFast(artifacts: BundleArtifacts, train: WindowSet, val: WindowSet, opts: FastFitOptions): Promise<{ fit: FitResult; artifacts: BundleArtifacts; kernel: 'wasm' | 'js'; threads: number }> {
  const { seqLen, nFeatures } = opts;
  const threads = Math.max(1, Math.min(opts.threads ?? defaultThreads(), opts.batchSize));
  const chunk = Math.max(1, Math.min(opts.chunk ?? 8, Math.ceil(opts.batchSize / threads)));
  const plan = planNetwork(artifacts.modelTopology, artifacts.weightSpecs, artifacts.weightData, seqLen, nFeatures);
  // The main thread's network: parameters in and out, and the whole trainer when threads = 1.
  const net = new TrainableNetwork(plan, threads === 1 ? chunk : 1, opts.kernel ?? 'wasm');
  const params = net.initialParams();
  const best = params.slice();
  const grad = new Float64Array(net.size);
  const adam = new Adam(net.size, opts.learningRate ?? 1e-3);
  const values = seqLen * nFeatures;
  let pool: Pool;
  if (threads === 1) pool = new InlinePool(net, train, val);
  else pool = new WorkerPool(artifacts, train, val, net.size, threads, { seqLen, nFeatures, chunk, kernel: opts.kernel ?? 'wasm' });
  try {
    const learner: Learner = {
      async trainBatch(order, from, to) {
        grad.fill(0);
        const scale = 1 / ((to - from) * values);
        const sse = await pool.gradient(params, order, from, to, scale, grad);
        adam.step(params, grad);
        return sse * scale;
      },
      async valLoss() {
        return (await pool.valSse(params)) / (val.n * values);
      },
      keepBest() {
        best.set(params);
      },
      restoreBest() {
        params.set(best);
      },
    };
    const fit = await runEpochs(learner, train, val, opts);
    net.exportParams(params);
    return {
      fit,
      artifacts: { modelTopology: artifacts.modelTopology, weightSpecs: artifacts.weightSpecs, weightData: concatWeights(plan.weights) },
      kernel: net.engine,
      threads,
    };
  } finally {
    await pool.close();
  }
}

/**
 * The bundle network made trainable on typed arrays: batched forward pass, backpropagation through
 * time and the gradient of the mean squared reconstruction error, for exactly what bundles hold —
 * LSTM (tanh, sigmoid gates, with bias; a sequence or its last step out; a sequence or a repeated
 * vector in), RepeatVector and a linear Dense over every step (TimeDistributed). Anything else is
 * refused by name (UnsupportedModelError), as the inference engine refuses what it cannot run.
 *
 * It runs the inference engine's cell (model/fast-lstm.ts `lstmCell`, or its WebAssembly twin:
 * the same bits) at every step, so trainer and scorer cannot drift apart, and the engine's matrix
 * product for every product. Its backward step (lstmCellBack) and the transposes run in WebAssembly
 * too; each WebAssembly kernel (model/gemm.ts) has its JavaScript reference, which `engine: 'js'` runs.
 *
 * Layout: all parameters live in one Float64Array (so Adam and the data-parallel gradient sum are
 * one loop each), each LSTM as the engine lays it out — kernel [4u][inDim] and recurrent [4u][u],
 * gate-interleaved (row 4·j + g = gate g of unit j), bias [4u] — and Dense as [units][inDim] + bias.
 * Every product, forward and backward, is written as rows times rows; the backward pass keeps
 * transposed copies of the weights and transposes each long activation once per batch (one transpose
 * serves the weight gradient of the layer above and the recurrent gradient of its own), so the
 * weight gradients are long contiguous dot products over all steps of all windows; bias gradients
 * are products with a row of ones.
 */
import { cellOf, fastTanh, interleaveBias, interleaveGates, LINEAR, SIGMOID, TANH, UnsupportedModelError, type Cell, type NetworkPlan } from '../model/fast-lstm.js';
import { at, KernelArena, type Gemm } from '../model/gemm.js';

interface LstmLayer {
  kind: 'lstm';
  name: string;
  u: number;
  inDim: number;
  /** Input: the previous layer's sequence, or the previous LSTM's last step repeated at every step. */
  repeated: boolean;
  returnSequences: boolean;
  /** Offsets into the parameter vector. */
  pW: number;
  pU: number;
  pB: number;
  /** Activations of the batch, kept for backpropagation: gate values [T][B][4u] (then their gradients), cell states and outputs [T][B][u]. */
  z: Float64Array;
  c: Float64Array;
  h: Float64Array;
  /** Transposed weights for the backward products: kernel [inDim][4u], recurrent [u][4u]. */
  wn: Float64Array;
  un: Float64Array;
}

interface DenseLayer {
  kind: 'dense';
  name: string;
  units: number;
  inDim: number;
  pW: number;
  pB: number;
  /** Output of the batch [T][B][units]. */
  y: Float64Array;
  /** Kernel transposed, [inDim][units]. */
  wn: Float64Array;
}

type Layer = LstmLayer | DenseLayer;

/** Back to Keras's layout [rows][4u] from the gate-interleaved transpose (inverse of interleaveGates). */
function lstmToKeras(p: Float64Array, off: number, rows: number, u: number, m: Float32Array): void {
  for (let j = 0; j < u; j++) for (let g = 0; g < 4; g++) for (let k = 0; k < rows; k++) m[k * 4 * u + g * u + j] = p[off + (4 * j + g) * rows + k]!;
}

/** out [cols][rows] = m [rows][cols]. */
function transposeInto(out: Float64Array, oOff: number, m: Float64Array, mOff: number, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const base = mOff + r * cols;
    for (let c = 0; c < cols; c++) out[oOff + c * rows + r] = m[base + c]!;
  }
}

type Transpose = typeof transposeInto;

/**
 * Backpropagation through one step of lstmCell for n units: z[zo …] holds the gate values the
 * forward step left (i, f, g, o per unit), c[co …] that step's cell state, cPrev[cpo …] the one
 * before. dh[dho …] + dOut[doo …] is the gradient of the step's output h, dc[dco …] that of its
 * cell state from the step after; dc becomes the gradient of cPrev, and z the gradients of the gate
 * pre-activations. The reference of the WebAssembly cellBack (agent/wasm/gemm.mjs), which does the
 * same operations in the same order.
 */
export function lstmCellBack(
  z: Float64Array,
  zo: number,
  c: Float64Array,
  co: number,
  cPrev: Float64Array,
  cpo: number,
  dh: Float64Array,
  dho: number,
  dOut: Float64Array,
  doo: number,
  dc: Float64Array,
  dco: number,
  n: number,
): void {
  for (let j = 0; j < n; j++) {
    const q = zo + 4 * j;
    const i = z[q]!;
    const f = z[q + 1]!;
    const gg = z[q + 2]!;
    const o = z[q + 3]!;
    const tc = fastTanh(c[co + j]!);
    const cp = cPrev[cpo + j]!;
    const dhj = dh[dho + j]! + dOut[doo + j]!;
    const dcj = dhj * o * (1 - tc * tc) + dc[dco + j]!;
    dc[dco + j] = dcj * f;
    z[q] = dcj * gg * i * (1 - i);
    z[q + 1] = dcj * cp * f * (1 - f);
    z[q + 2] = dcj * i * (1 - gg * gg);
    z[q + 3] = dhj * tc * o * (1 - o);
  }
}

type CellBack = typeof lstmCellBack;

/** The arena's backward cell and transpose: the WebAssembly twins on a WebAssembly arena, else the references above. */
function kernelsOf(arena: KernelArena): { cellBack: CellBack; transpose: Transpose } {
  const k = arena.kernels;
  if (!k) return { cellBack: lstmCellBack, transpose: transposeInto };
  return {
    cellBack: (z, zo, c, co, cPrev, cpo, dh, dho, dOut, doo, dc, dco, n) => k.cellBack(at(z, zo), at(c, co), at(cPrev, cpo), at(dh, dho), at(dOut, doo), at(dc, dco), n),
    transpose: (out, oOff, m, mOff, rows, cols) => k.transpose(at(out, oOff), at(m, mOff), rows, cols),
  };
}

/**
 * A network plan (model/fast-lstm.ts planNetwork) as trainable parameters plus the buffers for
 * batches of up to `maxBatch` windows. One instance per thread; the parameters are loaded into it
 * before each batch, so every thread works on the same weights.
 *
 * Activations are time-major, [T][B][·]: the B windows' rows of one step are contiguous, so each
 * step is one product over B rows and one cell call over B·u units, and in the long products the
 * previous step of row r is row r − B.
 */
export class TrainableNetwork {
  readonly seqLen: number;
  readonly nFeatures: number;
  readonly maxBatch: number;
  /** Number of trainable parameters. */
  readonly size: number;
  /** Multiply-adds ×2 of one window's forward pass, as the engine counts them. */
  readonly flops: number;
  private readonly layers: Layer[];
  private readonly plan: NetworkPlan;
  private readonly params: Float64Array;
  /** Gradient accumulated by `gradient` since the last `zeroGrad`, in the parameters' layout. */
  readonly grad: Float64Array;
  /** 'wasm' (SIMD kernel) or 'js' (the reference loop, or the fallback where the kernel cannot run). */
  readonly engine: 'wasm' | 'js';
  private readonly gemm: Gemm;
  private readonly cell: Cell;
  private readonly cellBack: CellBack;
  private readonly transpose: Transpose;
  /** The batch's windows as doubles [T][B][f]. */
  private readonly x: Float64Array;
  /**
   * Backward scratch: transposed gate gradients [4u][T·B]; two transposed activations [dim][T·B]
   * (a layer's input, and its own output, which the layer above transposed as its input); gradients
   * flowing down (two, ping-pong); the recurrent gradients of one step; the repeated input's step
   * sums and their transposes; ones (bias gradients as products).
   */
  private readonly zt: Float64Array;
  private readonly ts: [Float64Array, Float64Array];
  private readonly d: [Float64Array, Float64Array];
  private readonly dh: Float64Array;
  private readonly dc: Float64Array;
  private readonly zsum: Float64Array;
  private readonly zsumT: Float64Array;
  private readonly lastT: Float64Array;
  private readonly ones: Float64Array;
  /** Zeros for one step of B windows: the state before step 0, and no gradient from outside. */
  private readonly zero: Float64Array;

  /** `forwardOnly`: buffers for scoring only (no backward pass), a third of the memory. */
  constructor(plan: NetworkPlan, maxBatch: number, engine: 'wasm' | 'js' = 'wasm', forwardOnly = false) {
    const T = plan.seqLen;
    const B = maxBatch;
    this.plan = plan;
    this.seqLen = T;
    this.nFeatures = plan.nFeatures;
    this.maxBatch = maxBatch;
    // First the shapes (and so the arena's size), then the buffers.
    type Shape = { kind: 'lstm'; name: string; u: number; inDim: number; repeated: boolean; returnSequences: boolean } | { kind: 'dense'; name: string; units: number; inDim: number };
    const shapes: Shape[] = [];
    let repeated = false;
    let seq = true;
    plan.layers.forEach((l, index) => {
      if (l.kind === 'repeat') {
        if (l.n !== T) throw new UnsupportedModelError(l.name, 'n', `= ${l.n}: the trainer repeats the code over the window's ${T} steps only`);
        repeated = true;
        seq = true;
        return;
      }
      if (!seq) throw new UnsupportedModelError(l.name, 'input', 'is a vector: the trainer takes a vector only through RepeatVector');
      if (l.bias === null) throw new UnsupportedModelError(l.name, 'use_bias', '= false is not implemented by the trainer');
      if (l.kind === 'lstm') {
        if (l.activation !== TANH) throw new UnsupportedModelError(l.name, 'activation', 'other than tanh is not implemented by the trainer');
        if (l.recurrentActivation !== SIGMOID) throw new UnsupportedModelError(l.name, 'recurrent_activation', 'other than sigmoid is not implemented by the trainer');
        shapes.push({ kind: 'lstm', name: l.name, u: l.units, inDim: l.inDim, repeated, returnSequences: l.returnSequences });
        repeated = false;
        seq = l.returnSequences;
      } else {
        if (index !== plan.layers.length - 1) throw new UnsupportedModelError(l.name, 'position', 'the trainer runs Dense as the last layer only');
        if (repeated) throw new UnsupportedModelError(l.name, 'input', 'is a repeated vector: the trainer runs Dense on a sequence only');
        if (l.activation !== LINEAR) throw new UnsupportedModelError(l.name, 'activation', 'other than linear is not implemented by the trainer');
        shapes.push({ kind: 'dense', name: l.name, units: l.units, inDim: l.inDim });
      }
    });
    const last = shapes[shapes.length - 1];
    if (!last || last.kind !== 'dense') throw new UnsupportedModelError('model', 'output', 'the trainer needs a Dense over every step as the last layer');

    let size = 0;
    let flops = 0;
    let buffers = 0;
    let maxGates = 1;
    let maxDim = plan.nFeatures;
    let maxUnits = 1;
    for (const l of shapes) {
      if (l.kind === 'lstm') {
        const g = 4 * l.u;
        size += g * (l.inDim + l.u + 1);
        flops += 2 * T * (l.inDim + l.u) * g;
        buffers += B * T * (g + 2 * l.u) + g * (l.inDim + l.u);
        maxGates = Math.max(maxGates, g);
        maxDim = Math.max(maxDim, l.inDim, l.u);
        maxUnits = Math.max(maxUnits, l.u);
      } else {
        size += l.units * (l.inDim + 1);
        flops += 2 * T * l.inDim * l.units;
        buffers += B * T * l.units + l.inDim * l.units;
        maxGates = Math.max(maxGates, l.units);
        maxDim = Math.max(maxDim, l.inDim, l.units);
      }
    }
    const back = forwardOnly ? 0 : 1;
    const R = B * T;
    buffers += 2 * size + R * plan.nFeatures + B * maxGates + B * maxUnits;
    buffers += back * (R * (maxGates + 4 * maxDim + 1) + 2 * B * maxUnits + B * maxGates + B * maxDim);
    const arena = new KernelArena(buffers, engine);
    this.engine = arena.engine;
    this.gemm = arena.gemm;
    this.cell = cellOf(arena);
    ({ cellBack: this.cellBack, transpose: this.transpose } = kernelsOf(arena));
    this.size = size;
    this.flops = flops;
    let p = 0;
    this.layers = shapes.map((l): Layer => {
      if (l.kind === 'lstm') {
        const g = 4 * l.u;
        const layer: LstmLayer = {
          ...l,
          pW: p,
          pU: p + g * l.inDim,
          pB: p + g * (l.inDim + l.u),
          z: arena.alloc(R * g),
          c: arena.alloc(R * l.u),
          h: arena.alloc(R * l.u),
          wn: arena.alloc(l.inDim * g),
          un: arena.alloc(l.u * g),
        };
        p += g * (l.inDim + l.u + 1);
        return layer;
      }
      const layer: DenseLayer = { ...l, pW: p, pB: p + l.units * l.inDim, y: arena.alloc(R * l.units), wn: arena.alloc(l.inDim * l.units) };
      p += l.units * (l.inDim + 1);
      return layer;
    });
    this.params = arena.alloc(size);
    this.grad = arena.alloc(size);
    this.x = arena.alloc(R * plan.nFeatures);
    this.zsum = arena.alloc(B * maxGates);
    this.zero = arena.alloc(B * maxUnits);
    this.zt = arena.alloc(back * R * maxGates);
    this.ts = [arena.alloc(back * R * maxDim), arena.alloc(back * R * maxDim)];
    this.d = [arena.alloc(back * R * maxDim), arena.alloc(back * R * maxDim)];
    this.dh = arena.alloc(back * B * maxUnits);
    this.dc = arena.alloc(back * B * maxUnits);
    this.zsumT = arena.alloc(back * B * maxGates);
    this.lastT = arena.alloc(back * B * maxDim);
    this.ones = arena.alloc(back * R).fill(1);
    this.setParams(this.initialParams());
  }

  /** The plan's own weights as a parameter vector. */
  initialParams(): Float64Array {
    const p = new Float64Array(this.size);
    let li = 0;
    for (const l of this.plan.layers) {
      if (l.kind === 'repeat') continue;
      const t = this.layers[li++]!;
      if (l.kind === 'lstm' && t.kind === 'lstm') {
        p.set(interleaveGates(l.kernel, l.inDim, l.units), t.pW);
        p.set(interleaveGates(l.recurrent, l.units, l.units), t.pU);
        p.set(interleaveBias(l.bias, l.units), t.pB);
      } else if (l.kind === 'dense' && t.kind === 'dense') {
        for (let k = 0; k < l.inDim; k++) for (let o = 0; o < l.units; o++) p[t.pW + o * l.inDim + k] = l.kernel[k * l.units + o]!;
        for (let o = 0; o < l.units; o++) p[t.pB + o] = l.bias![o]!;
      }
    }
    return p;
  }

  /**
   * Writes `params` back into the plan's weight arrays (Keras layout, float32), the ones the
   * plan was read from: its `weights` then serialise as weights.bin.
   */
  exportParams(params: Float64Array): void {
    let li = 0;
    for (const l of this.plan.layers) {
      if (l.kind === 'repeat') continue;
      const t = this.layers[li++]!;
      if (l.kind === 'lstm' && t.kind === 'lstm') {
        lstmToKeras(params, t.pW, l.inDim, l.units, l.kernel);
        lstmToKeras(params, t.pU, l.units, l.units, l.recurrent);
        for (let j = 0; j < l.units; j++) for (let g = 0; g < 4; g++) l.bias![g * l.units + j] = params[t.pB + 4 * j + g]!;
      } else if (l.kind === 'dense' && t.kind === 'dense') {
        for (let k = 0; k < l.inDim; k++) for (let o = 0; o < l.units; o++) l.kernel[k * l.units + o] = params[t.pW + o * l.inDim + k]!;
        for (let o = 0; o < l.units; o++) l.bias![o] = params[t.pB + o]!;
      }
    }
  }

  zeroGrad(): void {
    this.grad.fill(0);
  }

  /** Loads the weights every following batch runs with. */
  setParams(params: Float64Array): void {
    if (params.length !== this.size) throw new RangeError(`trainer got ${params.length} parameters, the network has ${this.size}`);
    this.params.set(params);
    for (const l of this.layers) {
      if (l.kind === 'lstm') {
        const g = 4 * l.u;
        this.transpose(l.wn, 0, this.params, l.pW, g, l.inDim);
        this.transpose(l.un, 0, this.params, l.pU, g, l.u);
      } else {
        this.transpose(l.wn, 0, this.params, l.pW, l.units, l.inDim);
      }
    }
  }

  /** Copies windows `idx[from …to)` of `data` ([n][T][f]) into the batch, time-major. */
  private gather(data: Float32Array, idx: ArrayLike<number>, from: number, to: number): number {
    const T = this.seqLen;
    const f = this.nFeatures;
    const m = to - from;
    if (m > this.maxBatch) throw new RangeError(`batch of ${m} windows, the trainer was sized for ${this.maxBatch}`);
    const x = this.x;
    for (let b = 0; b < m; b++) {
      const base = idx[from + b]! * T * f;
      for (let t = 0; t < T; t++) {
        const dst = (t * m + b) * f;
        const src = base + t * f;
        for (let j = 0; j < f; j++) x[dst + j] = data[src + j]!;
      }
    }
    return m;
  }

  /** Forward pass of the first `m` windows of the batch; the reconstruction is the last layer's y. */
  private forward(m: number): void {
    const gemm = this.gemm;
    const cell = this.cell;
    const T = this.seqLen;
    const R = m * T;
    const p = this.params;
    let src = this.x;
    let srcDim = this.nFeatures;
    for (const l of this.layers) {
      if (l.kind === 'dense') {
        gemm(l.y, 0, l.units, src, 0, srcDim, R, p, l.pW, l.inDim, l.units, l.inDim, p, l.pB, 0);
        src = l.y;
        srcDim = l.units;
        continue;
      }
      const u = l.u;
      const g = 4 * u;
      const mu = m * u;
      const mg = m * g;
      if (l.repeated) {
        // x·W + b once per window (the input, the last step below, is the same at every step), then into every step.
        gemm(this.zsum, 0, g, src, (T - 1) * m * srcDim, srcDim, m, p, l.pW, l.inDim, g, l.inDim, p, l.pB, 0);
        const once = this.zsum.subarray(0, mg);
        for (let t = 0; t < T; t++) l.z.set(once, t * mg);
      } else {
        gemm(l.z, 0, g, src, 0, srcDim, R, p, l.pW, l.inDim, g, l.inDim, p, l.pB, 0);
      }
      // Step 0 starts from zero state (no product); each later step adds U·h of the one before.
      cell(l.z, 0, this.zero, 0, l.c, 0, l.h, 0, mu);
      for (let t = 1; t < T; t++) {
        gemm(l.z, t * mg, g, l.h, (t - 1) * mu, u, m, p, l.pU, u, g, u, l.z, t * mg, g);
        cell(l.z, t * mg, l.c, (t - 1) * mu, l.c, t * mu, l.h, t * mu, mu);
      }
      src = l.h;
      srcDim = u;
    }
  }

  /**
   * Per window and input, the mean over steps of the squared reconstruction error of windows
   * [from, to) of `data`, into out[(w − from)·f …]: what scores are made of, for many windows at
   * once (the engine's FastLstmNetwork does one window at a time, the daemon's case).
   */
  featureErrors(data: Float32Array, from: number, to: number, out: Float32Array): void {
    const T = this.seqLen;
    const f = this.nFeatures;
    const idx = Uint32Array.from({ length: to - from }, (_, i) => from + i);
    const m = this.gather(data, idx, 0, idx.length);
    this.forward(m);
    const y = (this.layers[this.layers.length - 1] as DenseLayer).y;
    for (let w = 0; w < m; w++) {
      for (let j = 0; j < f; j++) {
        let s = 0;
        for (let t = 0; t < T; t++) {
          const k = (t * m + w) * f + j;
          const e = y[k]! - this.x[k]!;
          s += e * e;
        }
        out[w * f + j] = s / T;
      }
    }
  }

  /** Sum over the batch of the squared reconstruction errors (forward only: validation). */
  sse(data: Float32Array, idx: ArrayLike<number>, from: number, to: number): number {
    const m = this.gather(data, idx, from, to);
    this.forward(m);
    const y = (this.layers[this.layers.length - 1] as DenseLayer).y;
    let s = 0;
    const n = m * this.seqLen * this.nFeatures;
    for (let i = 0; i < n; i++) {
      const e = y[i]! - this.x[i]!;
      s += e * e;
    }
    return s;
  }

  /**
   * Forward and backward pass over windows idx[from …to): adds to `this.grad` the gradient of
   * scale · Σ (reconstruction − input)² and returns that sum of squares. With scale = 1 / (values in
   * the whole batch), the sum over threads of their `grad` is the gradient of the batch's mean
   * squared error, the loss tfjs minimises.
   */
  gradient(data: Float32Array, idx: ArrayLike<number>, from: number, to: number, scale: number): number {
    const grad = this.grad;
    const gemm = this.gemm;
    const transpose = this.transpose;
    const T = this.seqLen;
    const m = this.gather(data, idx, from, to);
    const R = m * T;
    this.forward(m);
    let sse = 0;
    // dy: ∂(scale·Σe²)/∂y = 2·scale·e, into d[0].
    const out = this.layers[this.layers.length - 1] as DenseLayer;
    let dy = this.d[0];
    let spare = this.d[1];
    {
      const n = R * out.units;
      for (let i = 0; i < n; i++) {
        const e = out.y[i]! - this.x[i]!;
        sse += e * e;
        dy[i] = 2 * scale * e;
      }
    }
    // The layer's own output transposed, when the layer above left it so (its input, transposed for its weight gradient).
    let held = null as Float64Array | null;
    const [t0, t1] = this.ts;
    const other = (b: Float64Array) => (b === t0 ? t1 : t0);
    for (let li = this.layers.length - 1; li >= 0; li--) {
      const l = this.layers[li]!;
      const below = li > 0 ? (this.layers[li - 1] as LstmLayer) : null;
      const input = below ? below.h : this.x;
      if (l.kind === 'dense') {
        // dW += dyᵀ·h, db += Σ dy, dh = dy·W.
        const inT: Float64Array = held ? other(held) : t0;
        transpose(this.zt, 0, dy, 0, R, l.units);
        transpose(inT, 0, input, 0, R, l.inDim);
        gemm(grad, l.pW, l.inDim, this.zt, 0, R, l.units, inT, 0, R, l.inDim, R, grad, l.pW, l.inDim);
        gemm(grad, l.pB, 1, this.zt, 0, R, l.units, this.ones, 0, R, 1, R, grad, l.pB, 1);
        if (below) gemm(spare, 0, l.inDim, dy, 0, l.units, R, l.wn, 0, l.units, l.inDim, l.units, null, 0, 0);
        held = below ? inT : null;
        [dy, spare] = [spare, dy];
        continue;
      }
      this.backLstm(l, dy, m);
      const u = l.u;
      const g = 4 * u;
      // Gate gradients dz are now in l.z, [T][B][4u]; transposed for the weight gradients.
      transpose(this.zt, 0, l.z, 0, R, g);
      let next: Float64Array | null = null;
      if (l.repeated) {
        // The input was one vector per window (the last step below): its gradients are the step sums.
        const mg = m * g;
        const zsum = this.zsum;
        zsum.set(l.z.subarray(0, mg));
        for (let t = 1; t < T; t++) {
          const base = t * mg;
          for (let k = 0; k < mg; k++) zsum[k]! += l.z[base + k]!;
        }
        transpose(this.zsumT, 0, zsum, 0, m, g);
        transpose(this.lastT, 0, input, (T - 1) * m * l.inDim, m, l.inDim);
        gemm(grad, l.pW, l.inDim, this.zsumT, 0, m, g, this.lastT, 0, m, l.inDim, m, grad, l.pW, l.inDim);
        // The layer below's last step gets Σ_t dz·Wᵀ.
        if (below) gemm(spare, 0, l.inDim, zsum, 0, g, m, l.wn, 0, g, l.inDim, g, null, 0, 0);
      } else {
        const inT: Float64Array = held ? other(held) : t0;
        transpose(inT, 0, input, 0, R, l.inDim);
        gemm(grad, l.pW, l.inDim, this.zt, 0, R, g, inT, 0, R, l.inDim, R, grad, l.pW, l.inDim);
        if (below) gemm(spare, 0, l.inDim, l.z, 0, g, R, l.wn, 0, g, l.inDim, g, null, 0, 0);
        if (below) next = inT;
      }
      // dU += Σ_{t≥1} dz_tᵀ·h_{t-1}: row r of dz with row r − m of h.
      let hT = held;
      if (!hT) {
        hT = next ? other(next) : t0;
        transpose(hT, 0, l.h, 0, R, u);
      }
      gemm(grad, l.pU, u, this.zt, m, R, g, hT, 0, R, u, R - m, grad, l.pU, u);
      gemm(grad, l.pB, 1, this.zt, 0, R, g, this.ones, 0, R, 1, R, grad, l.pB, 1);
      held = next;
      [dy, spare] = [spare, dy];
      // Below a repeated input sits an LSTM that returned its last step only: the gradient of that
      // step is in dy as [B][inDim], which backLstm of that layer reads as such.
    }
    return sse;
  }

  /**
   * Backpropagation through time of one LSTM. `dOut` holds the gradient of its output: [T][B][u]
   * for a sequence, [B][u] for a last step. Leaves the gate pre-activation gradients in l.z.
   */
  private backLstm(l: LstmLayer, dOut: Float64Array, m: number): void {
    const gemm = this.gemm;
    const cellBack = this.cellBack;
    const T = this.seqLen;
    const u = l.u;
    const g = 4 * u;
    const mu = m * u;
    const mg = m * g;
    const dh = this.dh;
    const dc = this.dc;
    dh.fill(0, 0, mu);
    dc.fill(0, 0, mu);
    for (let t = T - 1; t >= 0; t--) {
      const fromOut = l.returnSequences || t === T - 1;
      cellBack(l.z, t * mg, l.c, t * mu, t > 0 ? l.c : this.zero, t > 0 ? (t - 1) * mu : 0, dh, 0, fromOut ? dOut : this.zero, l.returnSequences ? t * mu : 0, dc, 0, mu);
      // dh_{t-1} = dz_t · Uᵀ (un is [u][4u]).
      if (t > 0) gemm(dh, 0, u, l.z, t * mg, g, m, l.un, 0, g, u, g, null, 0, 0);
    }
  }
}

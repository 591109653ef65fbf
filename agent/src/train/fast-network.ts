/**
 * The bundle network made trainable on typed arrays: batched forward pass, backpropagation through
 * time and the gradient of the mean squared reconstruction error, for exactly what bundles hold —
 * LSTM (tanh, sigmoid gates, with bias; a sequence or its last step out; a sequence or a repeated
 * vector in), RepeatVector and a linear Dense over every step (TimeDistributed). Anything else is
 * refused by name (UnsupportedModelError), as the inference engine refuses what it cannot run.
 *
 * It runs the inference engine's cell (model/fast-lstm.ts `lstmCell`, or its WebAssembly twin:
 * the same bits) at every step, so trainer and scorer cannot drift apart, and the engine's matrix product for every product: as WebAssembly
 * SIMD (model/gemm.ts) by default, the JavaScript loop as the reference.
 *
 * Layout: all parameters live in one Float64Array (so Adam and the data-parallel gradient sum are
 * one loop each), each LSTM as the engine lays it out — kernel [4u][inDim] and recurrent [4u][u],
 * gate-interleaved (row 4·j + g = gate g of unit j), bias [4u] — and Dense as [units][inDim] + bias.
 * Every product, forward and backward, is written as rows times rows; the backward pass keeps
 * transposed copies of the weights and transposes the long activations once per batch, so the
 * weight gradients are long contiguous dot products over all steps of all windows.
 */
import { cellOf, fastTanh, interleaveBias, interleaveGates, LINEAR, SIGMOID, TANH, UnsupportedModelError, type Cell, type NetworkPlan } from '../model/fast-lstm.js';
import { KernelArena, type Gemm } from '../model/gemm.js';

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
  /** Activations of the batch, kept for backpropagation: gate values [B][T][4u] (then their gradients), cell states and outputs [B][T][u]. */
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
  /** Output of the batch [B][T][units]. */
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

/**
 * A network plan (model/fast-lstm.ts planNetwork) as trainable parameters plus the buffers for
 * batches of up to `maxBatch` windows. One instance per thread; the parameters are loaded into it
 * before each batch, so every thread works on the same weights.
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
  /** The batch's windows as doubles [B][T][f]. */
  private readonly x: Float64Array;
  /** Backward scratch: transposed gate gradients, transposed inputs, gradients flowing down (two, ping-pong), per-window sums. */
  private readonly zt: Float64Array;
  private readonly at: Float64Array;
  private readonly d: [Float64Array, Float64Array];
  private readonly dh: Float64Array;
  private readonly dc: Float64Array;
  private readonly zsum: Float64Array;
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
        maxDim = Math.max(maxDim, l.inDim);
      }
    }
    const back = forwardOnly ? 0 : 1;
    buffers += 2 * size + B * T * (plan.nFeatures + back * (maxGates + 3 * maxDim)) + back * 2 * B * maxUnits + B * maxGates + maxUnits;
    const arena = new KernelArena(buffers, engine);
    this.engine = arena.engine;
    this.gemm = arena.gemm;
    this.cell = cellOf(arena);
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
          z: arena.alloc(B * T * g),
          c: arena.alloc(B * T * l.u),
          h: arena.alloc(B * T * l.u),
          wn: arena.alloc(l.inDim * g),
          un: arena.alloc(l.u * g),
        };
        p += g * (l.inDim + l.u + 1);
        return layer;
      }
      const layer: DenseLayer = { ...l, pW: p, pB: p + l.units * l.inDim, y: arena.alloc(B * T * l.units), wn: arena.alloc(l.inDim * l.units) };
      p += l.units * (l.inDim + 1);
      return layer;
    });
    this.params = arena.alloc(size);
    this.grad = arena.alloc(size);
    this.x = arena.alloc(B * T * plan.nFeatures);
    this.zt = arena.alloc(back * B * T * maxGates);
    this.at = arena.alloc(back * B * T * maxDim);
    this.d = [arena.alloc(back * B * T * maxDim), arena.alloc(back * B * T * maxDim)];
    this.dh = arena.alloc(back * B * maxUnits);
    this.dc = arena.alloc(back * B * maxUnits);
    this.zsum = arena.alloc(B * maxGates);
    this.zero = arena.alloc(maxUnits);
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
        transposeInto(l.wn, 0, this.params, l.pW, g, l.inDim);
        transposeInto(l.un, 0, this.params, l.pU, g, l.u);
      } else {
        transposeInto(l.wn, 0, this.params, l.pW, l.units, l.inDim);
      }
    }
  }

  /** Copies windows `idx[from …to)` of `data` ([n][T][f]) into the batch. */
  private gather(data: Float32Array, idx: ArrayLike<number>, from: number, to: number): number {
    const stride = this.seqLen * this.nFeatures;
    const m = to - from;
    if (m > this.maxBatch) throw new RangeError(`batch of ${m} windows, the trainer was sized for ${this.maxBatch}`);
    for (let k = 0; k < m; k++) {
      const base = idx[from + k]! * stride;
      const dst = k * stride;
      for (let i = 0; i < stride; i++) this.x[dst + i] = data[base + i]!;
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
      if (l.repeated) {
        // x·W + b once per window (the input is the same at every step), then into every step.
        gemm(this.zsum, 0, g, src, (T - 1) * srcDim, T * srcDim, m, p, l.pW, l.inDim, g, l.inDim, p, l.pB, 0);
        for (let b = 0; b < m; b++) for (let t = 0; t < T; t++) l.z.set(this.zsum.subarray(b * g, b * g + g), (b * T + t) * g);
      } else {
        gemm(l.z, 0, g, src, 0, srcDim, R, p, l.pW, l.inDim, g, l.inDim, p, l.pB, 0);
      }
      for (let t = 0; t < T; t++) {
        if (t > 0) gemm(l.z, t * g, T * g, l.h, (t - 1) * u, T * u, m, p, l.pU, u, g, u, l.z, t * g, T * g);
        for (let b = 0; b < m; b++) {
          const r = b * T + t;
          if (t === 0) cell(l.z, r * g, this.zero, 0, l.c, r * u, l.h, r * u, u);
          else cell(l.z, r * g, l.c, (r - 1) * u, l.c, r * u, l.h, r * u, u);
        }
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
          const k = (w * T + t) * f + j;
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
    for (let li = this.layers.length - 1; li >= 0; li--) {
      const l = this.layers[li]!;
      const below = li > 0 ? (this.layers[li - 1] as LstmLayer) : null;
      const input = below ? below.h : this.x;
      if (l.kind === 'dense') {
        // dW += dyᵀ·h, db += Σ dy, dh = dy·W.
        transposeInto(this.zt, 0, dy, 0, R, l.units);
        transposeInto(this.at, 0, input, 0, R, l.inDim);
        gemm(grad, l.pW, l.inDim, this.zt, 0, R, l.units, this.at, 0, R, l.inDim, R, grad, l.pW, l.inDim);
        for (let o = 0; o < l.units; o++) {
          let s = 0;
          for (let r = 0; r < R; r++) s += this.zt[o * R + r]!;
          grad[l.pB + o]! += s;
        }
        if (below) gemm(spare, 0, l.inDim, dy, 0, l.units, R, l.wn, 0, l.units, l.inDim, l.units, null, 0, 0);
        [dy, spare] = [spare, dy];
        continue;
      }
      this.backLstm(l, dy, m);
      const u = l.u;
      const g = 4 * u;
      // Gate gradients dz are now in l.z, [B][T][4u].
      if (l.repeated) {
        // The input was one vector per window: its gradients are the step sums.
        this.zsum.fill(0, 0, m * g);
        for (let b = 0; b < m; b++) for (let t = 0; t < T; t++) for (let o = 0; o < g; o++) this.zsum[b * g + o]! += l.z[(b * T + t) * g + o]!;
        transposeInto(this.zt, 0, this.zsum, 0, m, g);
        for (let b = 0; b < m; b++) for (let k = 0; k < l.inDim; k++) this.at[k * m + b] = input[(b * T + T - 1) * l.inDim + k]!;
        gemm(grad, l.pW, l.inDim, this.zt, 0, m, g, this.at, 0, m, l.inDim, m, grad, l.pW, l.inDim);
        // The encoder's last step gets Σ_t dz·Wᵀ.
        if (below) gemm(spare, 0, l.inDim, this.zsum, 0, g, m, l.wn, 0, g, l.inDim, g, null, 0, 0);
      } else {
        transposeInto(this.at, 0, input, 0, R, l.inDim);
        transposeInto(this.zt, 0, l.z, 0, R, g);
        gemm(grad, l.pW, l.inDim, this.zt, 0, R, g, this.at, 0, R, l.inDim, R, grad, l.pW, l.inDim);
        if (below) gemm(spare, 0, l.inDim, l.z, 0, g, R, l.wn, 0, g, l.inDim, g, null, 0, 0);
      }
      if (l.repeated) transposeInto(this.zt, 0, l.z, 0, R, g); // it held the step sums
      // dU += Σ_{t≥1} dz_tᵀ·h_{t-1}: h shifted one step, zero at t = 0.
      for (let b = 0; b < m; b++) {
        for (let k = 0; k < u; k++) {
          const row = k * R + b * T;
          this.at[row] = 0;
          for (let t = 1; t < T; t++) this.at[row + t] = l.h[(b * T + t - 1) * u + k]!;
        }
      }
      gemm(grad, l.pU, u, this.zt, 0, R, g, this.at, 0, R, u, R, grad, l.pU, u);
      for (let o = 0; o < g; o++) {
        let s = 0;
        const row = o * R;
        for (let r = 0; r < R; r++) s += this.zt[row + r]!;
        grad[l.pB + o]! += s;
      }
      [dy, spare] = [spare, dy];
      // Below a repeated input sits an LSTM that returned its last step only: the gradient of that
      // step is in dy as [B][inDim], which backLstm of that layer reads as such.
    }
    return sse;
  }

  /**
   * Backpropagation through time of one LSTM. `dOut` holds the gradient of its output: [B][T][u]
   * for a sequence, [B][u] for a last step. Leaves the gate pre-activation gradients in l.z.
   */
  private backLstm(l: LstmLayer, dOut: Float64Array, m: number): void {
    const gemm = this.gemm;
    const T = this.seqLen;
    const u = l.u;
    const g = 4 * u;
    const dh = this.dh;
    const dc = this.dc;
    dh.fill(0, 0, m * u);
    dc.fill(0, 0, m * u);
    for (let t = T - 1; t >= 0; t--) {
      for (let b = 0; b < m; b++) {
        const r = b * T + t;
        const zo = r * g;
        const co = r * u;
        const dOff = l.returnSequences ? r * u : t === T - 1 ? b * u : -1;
        for (let j = 0; j < u; j++) {
          const q = zo + 4 * j;
          const i = l.z[q]!;
          const f = l.z[q + 1]!;
          const gg = l.z[q + 2]!;
          const o = l.z[q + 3]!;
          const c = l.c[co + j]!;
          const cPrev = t > 0 ? l.c[co - u + j]! : 0;
          const tc = fastTanh(c);
          const dhj = dh[b * u + j]! + (dOff >= 0 ? dOut[dOff + j]! : 0);
          const dcj = dhj * o * (1 - tc * tc) + dc[b * u + j]!;
          dc[b * u + j] = dcj * f;
          l.z[q] = dcj * gg * i * (1 - i);
          l.z[q + 1] = dcj * cPrev * f * (1 - f);
          l.z[q + 2] = dcj * i * (1 - gg * gg);
          l.z[q + 3] = dhj * tc * o * (1 - o);
        }
      }
      // dh_{t-1} = dz_t · Uᵀ (un is [u][4u]).
      if (t > 0) gemm(dh, 0, u, l.z, t * g, T * g, m, l.un, 0, g, u, g, null, 0, 0);
    }
  }
}

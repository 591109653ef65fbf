/**
 * The fast engine: the bundle's network run by hand on typed arrays, without TensorFlow.js in the
 * hot path. It reads the same model.json topology and weights.bin bytes tfjs reads, honours each
 * layer's configuration, and refuses (UnsupportedModelError, naming the layer and the option) any
 * layer or option it does not implement, so a bundle it cannot run exactly goes to tfjs instead of
 * being scored wrong.
 *
 * Supported: a Sequential of
 * - LSTM: any units; activation and recurrent_activation linear, tanh, sigmoid, hard_sigmoid (tfjs's:
 *   clip(0.2·x + 0.5, 0, 1)) or relu; with or without bias; return_sequences either way.
 *   Refused: go_backwards, stateful, return_state.
 * - RepeatVector.
 * - Dense, plain (on the last axis) or inside TimeDistributed; the same activations.
 * - InputLayer and Dropout (identity at inference).
 * Options that only matter in training (initializers, regularizers, constraints, dropout rates,
 * unroll, implementation) are ignored; anything else that is set is refused.
 *
 * How it is fast (one window, batch 1, is the daemon's case):
 * - weights are copied once into float64 buffers laid out for the inner loops: the LSTM kernels
 *   transposed and gate-interleaved (row 4·j + g holds gate g of unit j), so each step's gates are
 *   contiguous dot products, then one pass of cell updates (lstmCell, the trainer's cell too; its
 *   WebAssembly SIMD twin, the same operations to the bit, where the kernel is WebAssembly);
 * - every product runs on the matrix kernel of model/gemm.ts (WebAssembly SIMD, the JavaScript loop
 *   where WebAssembly cannot run): each LSTM's input projection x·W + b as one product over all
 *   steps before the recurrence, the decoder's first LSTM, fed the same repeated vector every step,
 *   projecting it once, then one product per step for U·h;
 * - tanh and sigmoid are a rational approximation accurate to 3e-8 (below float32 resolution, the
 *   precision tfjs computes in), under half the cost of Math.tanh / Math.exp per call;
 * - every buffer is allocated at construction: the forward pass allocates nothing (a score call
 *   only its two small result arrays).
 */

import { bundleInputs, type LoadedBundle, type WeightSpec } from './bundle.js';
import { normalizeErrors } from './error-scale.js';
import { at, KernelArena, type Gemm } from './gemm.js';
import type { Scorer } from './engines.js';

/** A model the fast engine will not run, with the layer and the option that stopped it. */
export class UnsupportedModelError extends Error {
  override name = 'UnsupportedModelError';
  constructor(
    /** Layer name from model.json (or 'model' for the topology as a whole). */
    readonly layer: string,
    /** The class or config option that is not supported. */
    readonly option: string,
    detail: string,
  ) {
    super(`fast engine does not support layer '${layer}': ${option} ${detail}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Activations

export const LINEAR = 0;
export const TANH = 1;
export const SIGMOID = 2;
const HARD_SIGMOID = 3;
const RELU = 4;
type ActivationCode = typeof LINEAR | typeof TANH | typeof SIGMOID | typeof HARD_SIGMOID | typeof RELU;

/** Names as tfjs writes them in model.json (snake_case) or takes them in code (camelCase). */
const ACTIVATIONS: Record<string, ActivationCode> = {
  linear: LINEAR,
  tanh: TANH,
  sigmoid: SIGMOID,
  hard_sigmoid: HARD_SIGMOID,
  hardSigmoid: HARD_SIGMOID,
  relu: RELU,
};
const ACTIVATION_NAMES = ['linear', 'tanh', 'sigmoid', 'hard_sigmoid', 'relu'];

/** fastTanh's coefficients: p(x) = x·Σ P_i·x^2i, q(x) = Σ Q_i·x^2i. */
const P0 = 4.89352455891786e-3,
  P1 = 6.37261928875436e-4,
  P2 = 1.48572235717979e-5,
  P3 = 5.12229709037114e-8,
  P4 = -8.60467152213735e-11,
  P5 = 2.00018790482477e-13,
  P6 = -2.76076847742355e-16;
const Q0 = 4.89352518554385e-3,
  Q1 = 2.268434632439e-3,
  Q2 = 1.18534705686654e-4,
  Q3 = 1.19825839466702e-6;
/** The same numbers for the WebAssembly cells, which the build generates from them (agent/wasm/gemm.mjs). */
export const TANH_COEFFICIENTS = { p: [P0, P1, P2, P3, P4, P5, P6], q: [Q0, Q1, Q2, Q3] } as const;

/**
 * tanh as a [13/6] rational function on [-9, 9] (the form Eigen and XNNPACK use for float32),
 * clamped outside, where tanh is ±1 to within 3e-8. Max abs error 3e-8 over the real line.
 */
export function fastTanh(x: number): number {
  if (x > 9) x = 9;
  else if (x < -9) x = -9;
  const x2 = x * x;
  const p = x * (P0 + x2 * (P1 + x2 * (P2 + x2 * (P3 + x2 * (P4 + x2 * (P5 + x2 * P6))))));
  const q = Q0 + x2 * (Q1 + x2 * (Q2 + x2 * Q3));
  return p / q;
}

/** sigmoid(x) = (1 + tanh(x / 2)) / 2; max abs error 1.5e-8. */
export function fastSigmoid(x: number): number {
  return 0.5 + 0.5 * fastTanh(0.5 * x);
}

function activate(code: number, x: number): number {
  switch (code) {
    case TANH:
      return fastTanh(x);
    case SIGMOID:
      return fastSigmoid(x);
    case HARD_SIGMOID: {
      const y = 0.2 * x + 0.5; // tfjs-layers' hardSigmoid, not Keras 3's x / 6 + 0.5
      return y < 0 ? 0 : y > 1 ? 1 : y;
    }
    case RELU:
      return x > 0 ? x : 0;
    default:
      return x;
  }
}

// ---------------------------------------------------------------------------------------------
// Topology: model.json → a validated plan

interface LstmPlan {
  kind: 'lstm';
  name: string;
  units: number;
  inDim: number;
  activation: ActivationCode;
  recurrentActivation: ActivationCode;
  returnSequences: boolean;
  /** Keras layout: kernel [inDim][4·units], recurrent [units][4·units], bias [4·units]; gates i, f, c, o. */
  kernel: Float32Array;
  recurrent: Float32Array;
  bias: Float32Array | null;
}

interface DensePlan {
  kind: 'dense';
  name: string;
  units: number;
  inDim: number;
  activation: ActivationCode;
  /** [inDim][units] */
  kernel: Float32Array;
  bias: Float32Array | null;
}

interface RepeatPlan {
  kind: 'repeat';
  name: string;
  n: number;
}

type LayerPlan = LstmPlan | DensePlan | RepeatPlan;

/** What the network does, checked against the input it will be given; the weights as stored. */
export interface NetworkPlan {
  seqLen: number;
  nFeatures: number;
  layers: LayerPlan[];
  /** Every weight tensor in weights.bin order; the layers' arrays are these same arrays. */
  weights: Float32Array[];
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Config options that do not change what a trained layer computes at inference. */
const INERT = new Set([
  'name',
  'trainable',
  'dtype',
  'batch_input_shape',
  'batch_size',
  'input_dim',
  'input_length',
  'kernel_initializer',
  'recurrent_initializer',
  'bias_initializer',
  'unit_forget_bias',
  'kernel_regularizer',
  'recurrent_regularizer',
  'bias_regularizer',
  'activity_regularizer',
  'kernel_constraint',
  'recurrent_constraint',
  'bias_constraint',
  'dropout',
  'recurrent_dropout',
  'implementation',
  'unroll',
]);

/** Shape of the value flowing between layers: a sequence of `rows` steps, or one vector. */
interface Flow {
  seq: boolean;
  rows: number;
  dim: number;
}

class TopologyReader {
  private readonly byName = new Map<string, { spec: WeightSpec; data: Float32Array }>();
  private readonly used = new Set<string>();

  constructor(specs: readonly WeightSpec[], data: Uint8Array) {
    let off = 0;
    for (const spec of specs) {
      if (spec.dtype !== undefined && spec.dtype !== 'float32') throw new UnsupportedModelError(spec.name, 'dtype', `'${spec.dtype}' (only float32 weights)`);
      if (spec.quantization != null) throw new UnsupportedModelError(spec.name, 'quantization', '(only unquantized float32 weights)');
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const bytes = count * 4;
      if (off + bytes > data.byteLength) throw new UnsupportedModelError(spec.name, 'weights', `run past the end of the weight data (${data.byteLength} bytes)`);
      // A copy: the source may not be 4-byte aligned, and the plan must not alias the caller's buffer.
      const f = new Float32Array(count);
      new Uint8Array(f.buffer).set(data.subarray(off, off + bytes));
      this.byName.set(spec.name, { spec, data: f });
      off += bytes;
    }
    if (off !== data.byteLength) throw new UnsupportedModelError('model', 'weights', `describe ${off} bytes, the weight data has ${data.byteLength}`);
  }

  /**
   * The weight `<layer>/<which>` (tfjs's naming; also `<layer>/<cell or inner layer>/<which>`, as a
   * Keras conversion names them), checked against `shape`.
   */
  weight(layer: string, which: string, shape: number[]): Float32Array {
    let hit = this.byName.get(`${layer}/${which}`);
    let key = `${layer}/${which}`;
    if (!hit) {
      const nested = [...this.byName.keys()].filter((k) => k.startsWith(`${layer}/`) && k.endsWith(`/${which}`) && k.split('/').length === 3);
      if (nested.length === 1) {
        key = nested[0]!;
        hit = this.byName.get(key);
      }
    }
    if (!hit) throw new UnsupportedModelError(layer, 'weights', `have no '${which}' tensor (looked for '${layer}/${which}')`);
    if (hit.spec.shape.length !== shape.length || hit.spec.shape.some((d, i) => d !== shape[i])) {
      throw new UnsupportedModelError(layer, 'weights', `'${key}' has shape [${hit.spec.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    if (this.used.has(key)) throw new UnsupportedModelError(layer, 'weights', `'${key}' is claimed by two layers`);
    this.used.add(key);
    return hit.data;
  }

  /** All tensors in the order of the weight specs. */
  all(): Float32Array[] {
    return [...this.byName.values()].map((w) => w.data);
  }

  unused(): string[] {
    return [...this.byName.keys()].filter((k) => !this.used.has(k));
  }
}

function activationOf(layer: string, cfg: Json, key: string, fallback: string | null): ActivationCode {
  const v = key in cfg && cfg[key] !== undefined ? cfg[key] : fallback;
  if (v === null) return LINEAR; // tfjs: getActivation(null) is linear
  const name = typeof v === 'string' ? v : isObj(v) && typeof v.class_name === 'string' && (!isObj(v.config) || Object.keys(v.config).length === 0) ? v.class_name : undefined;
  const code = name === undefined ? undefined : ACTIVATIONS[name];
  if (code === undefined) throw new UnsupportedModelError(layer, key, `'${typeof v === 'string' ? v : JSON.stringify(v)}' (supported: ${ACTIVATION_NAMES.join(', ')})`);
  return code;
}

function boolOf(layer: string, cfg: Json, key: string, fallback: boolean): boolean {
  const v = cfg[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new UnsupportedModelError(layer, key, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function positiveInt(layer: string, cfg: Json, key: string): number {
  const v = cfg[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new UnsupportedModelError(layer, key, `must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Anything set in `cfg` beyond `understood` and the inert options is refused: it might change the output. */
function refuseOthers(layer: string, cfg: Json, understood: readonly string[]): void {
  for (const [key, v] of Object.entries(cfg)) {
    if (understood.includes(key) || INERT.has(key)) continue;
    if (v === null || v === undefined || v === false) continue;
    throw new UnsupportedModelError(layer, key, `= ${JSON.stringify(v)} is an option the fast engine does not implement`);
  }
  if (cfg.dtype !== undefined && cfg.dtype !== null && cfg.dtype !== 'float32') throw new UnsupportedModelError(layer, 'dtype', `'${String(cfg.dtype)}' (only float32)`);
}

function checkInputShape(layer: string, cfg: Json, seqLen: number, nFeatures: number): void {
  const s = cfg.batch_input_shape;
  if (s === undefined || s === null) return;
  if (!Array.isArray(s) || s.length !== 3) throw new UnsupportedModelError(layer, 'batch_input_shape', `${JSON.stringify(s)} is not [batch, steps, features]`);
  if ((s[1] !== null && s[1] !== seqLen) || s[2] !== nFeatures) {
    throw new UnsupportedModelError(layer, 'batch_input_shape', `${JSON.stringify(s)} does not take windows of ${seqLen}×${nFeatures}`);
  }
}

/**
 * Reads a tfjs layers-model topology (model.json's `modelTopology`) and its weights into a plan for
 * windows of `seqLen` × `nFeatures`, or throws UnsupportedModelError.
 */
export function planNetwork(modelTopology: unknown, weightSpecs: readonly WeightSpec[], weightData: Uint8Array, seqLen: number, nFeatures: number): NetworkPlan {
  const top = isObj(modelTopology) && isObj(modelTopology.model_config) ? modelTopology.model_config : modelTopology;
  if (!isObj(top)) throw new UnsupportedModelError('model', 'modelTopology', 'is missing');
  if (top.class_name !== 'Sequential') throw new UnsupportedModelError('model', 'class_name', `'${String(top.class_name)}' (only Sequential models)`);
  const cfg = top.config;
  const layers = Array.isArray(cfg) ? cfg : isObj(cfg) && Array.isArray(cfg.layers) ? cfg.layers : undefined;
  if (!layers || layers.length === 0) throw new UnsupportedModelError('model', 'layers', 'the Sequential has no layers');
  const reader = new TopologyReader(weightSpecs, weightData);
  const plan: LayerPlan[] = [];
  let flow: Flow = { seq: true, rows: seqLen, dim: nFeatures };

  layers.forEach((l: unknown, index: number) => {
    if (!isObj(l) || typeof l.class_name !== 'string' || !isObj(l.config)) throw new UnsupportedModelError(`#${index}`, 'layer', 'is not a {class_name, config} object');
    const c = l.config;
    const name = typeof c.name === 'string' ? c.name : `#${index}`;
    if (index === 0) checkInputShape(name, c, seqLen, nFeatures);
    switch (l.class_name) {
      case 'InputLayer':
        refuseOthers(name, c, ['sparse', 'ragged']);
        if (c.sparse === true || c.ragged === true) throw new UnsupportedModelError(name, c.sparse ? 'sparse' : 'ragged', 'input is not supported');
        return;
      case 'Dropout':
        refuseOthers(name, c, ['rate', 'noise_shape', 'seed']);
        return; // identity at inference
      case 'LSTM': {
        for (const opt of ['go_backwards', 'stateful', 'return_state', 'time_major'] as const) {
          if (boolOf(name, c, opt, false)) throw new UnsupportedModelError(name, opt, '= true is not supported');
        }
        refuseOthers(name, c, ['units', 'activation', 'recurrent_activation', 'use_bias', 'return_sequences', 'go_backwards', 'stateful', 'return_state', 'time_major']);
        if (!flow.seq) throw new UnsupportedModelError(name, 'input', `is a vector of ${flow.dim}; an LSTM needs a sequence`);
        const units = positiveInt(name, c, 'units');
        const useBias = boolOf(name, c, 'use_bias', true);
        const g = 4 * units;
        const p: LstmPlan = {
          kind: 'lstm',
          name,
          units,
          inDim: flow.dim,
          activation: activationOf(name, c, 'activation', 'tanh'),
          recurrentActivation: activationOf(name, c, 'recurrent_activation', 'hard_sigmoid'), // tfjs's default
          returnSequences: boolOf(name, c, 'return_sequences', false),
          kernel: reader.weight(name, 'kernel', [flow.dim, g]),
          recurrent: reader.weight(name, 'recurrent_kernel', [units, g]),
          bias: useBias ? reader.weight(name, 'bias', [g]) : null,
        };
        plan.push(p);
        flow = p.returnSequences ? { seq: true, rows: flow.rows, dim: units } : { seq: false, rows: 1, dim: units };
        return;
      }
      case 'RepeatVector': {
        refuseOthers(name, c, ['n']);
        if (flow.seq) throw new UnsupportedModelError(name, 'input', `is a sequence; RepeatVector needs a vector`);
        const n = positiveInt(name, c, 'n');
        plan.push({ kind: 'repeat', name, n });
        flow = { seq: true, rows: n, dim: flow.dim };
        return;
      }
      case 'Dense':
      case 'TimeDistributed': {
        let dc = c;
        let dname = name;
        let weightsUnder = name;
        if (l.class_name === 'TimeDistributed') {
          refuseOthers(name, c, ['layer']);
          const inner = c.layer;
          if (!isObj(inner) || !isObj(inner.config)) throw new UnsupportedModelError(name, 'layer', 'is missing');
          if (inner.class_name !== 'Dense') throw new UnsupportedModelError(name, 'layer', `'${String(inner.class_name)}' (TimeDistributed is supported around Dense only)`);
          if (!flow.seq) throw new UnsupportedModelError(name, 'input', 'is a vector; TimeDistributed needs a sequence');
          dc = inner.config;
          dname = typeof dc.name === 'string' ? `${name}/${dc.name}` : name;
          weightsUnder = name; // tfjs names the wrapped layer's weights after the wrapper
        }
        refuseOthers(dname, dc, ['units', 'activation', 'use_bias']);
        const units = positiveInt(dname, dc, 'units');
        const useBias = boolOf(dname, dc, 'use_bias', true);
        plan.push({
          kind: 'dense',
          name: dname,
          units,
          inDim: flow.dim,
          activation: activationOf(dname, dc, 'activation', null),
          kernel: reader.weight(weightsUnder, 'kernel', [flow.dim, units]),
          bias: useBias ? reader.weight(weightsUnder, 'bias', [units]) : null,
        });
        flow = { ...flow, dim: units };
        return;
      }
      default:
        throw new UnsupportedModelError(name, 'class_name', `'${l.class_name}' (supported: LSTM, RepeatVector, Dense, TimeDistributed(Dense), Dropout, InputLayer)`);
    }
  });

  if (!flow.seq || flow.rows !== seqLen || flow.dim !== nFeatures) {
    throw new UnsupportedModelError('model', 'output', `is ${flow.seq ? `${flow.rows}×${flow.dim}` : `a vector of ${flow.dim}`}; windows are ${seqLen}×${nFeatures}`);
  }
  const left = reader.unused();
  if (left.length) throw new UnsupportedModelError('model', 'weights', `[${left.join(', ')}] belong to no layer the fast engine runs`);
  return { seqLen, nFeatures, layers: plan, weights: reader.all() };
}

// ---------------------------------------------------------------------------------------------
// Kernels. Float64Array throughout: V8 loads them without a conversion, and the whole engine
// measured about 20 % faster here than with Float32Array; the arithmetic is double anyway.

/**
 * One LSTM step of one sequence with sigmoid gates and tanh (Keras's defaults, and the only cell the
 * trainer builds): the cell both the engine and the trainer run. z[zo …] holds the step's gate
 * pre-activations, gate-interleaved (i, f, c, o per unit); they are replaced by the gate values,
 * which the trainer keeps for backpropagation. c_t = f·c_{t-1} + i·g goes to c[co …] (cPrev may be
 * c itself, in place), h_t = o·tanh(c_t) to h[ho …].
 */
export function lstmCell(z: Float64Array, zo: number, cPrev: Float64Array, cpo: number, c: Float64Array, co: number, h: Float64Array, ho: number, u: number): void {
  for (let j = 0; j < u; j++) {
    const q = zo + 4 * j;
    const i = fastSigmoid(z[q]!);
    const f = fastSigmoid(z[q + 1]!);
    const g = fastTanh(z[q + 2]!);
    const o = fastSigmoid(z[q + 3]!);
    z[q] = i;
    z[q + 1] = f;
    z[q + 2] = g;
    z[q + 3] = o;
    const cj = f * cPrev[cpo + j]! + i * g;
    c[co + j] = cj;
    h[ho + j] = o * fastTanh(cj);
  }
}

export type Cell = typeof lstmCell;

/**
 * The cell an arena's buffers run: lstmCell's WebAssembly twin (agent/wasm/gemm.mjs: the same
 * operations in the same order, two units at a time, so the same bits) on a WebAssembly arena, or
 * lstmCell itself. Over u units of one row, or of several rows at once when they are contiguous.
 */
export function cellOf(arena: KernelArena): Cell {
  const k = arena.kernels;
  if (!k) return lstmCell;
  return (z, zo, cPrev, cpo, c, co, h, ho, u) => k.cell(at(z, zo), at(cPrev, cpo), at(c, co), at(h, ho), u);
}

/**
 * An LSTM over `steps` steps: `xp` holds x·W + b per step, gate-interleaved like `ut` (row stride
 * `xs`: 4·u, or 0 when every step has the same input). h of step t goes to out[t·u …]. h and c start
 * at zero, so step 0 needs no product. Sigmoid gates with tanh (the trainer's choice) have their
 * own cell loop; any other pair of activations goes through `activate`.
 */
function lstm(gemm: Gemm, cell: Cell, xp: Float64Array, xs: number, steps: number, u: number, ut: Float64Array, act: number, rec: number, c: Float64Array, z: Float64Array, out: Float64Array): void {
  const common = act === TANH && rec === SIGMOID;
  const g = 4 * u;
  c.fill(0, 0, u);
  for (let t = 0; t < steps; t++) {
    const po = t * xs;
    const ho = t * u;
    // z = x·W + b of this step, plus U·h of the last one (h and c start at zero: no product at step 0).
    gemm(z, 0, g, out, t === 0 ? 0 : ho - u, u, 1, ut, 0, u, g, t === 0 ? 0 : u, xp, po, 0);
    if (common) {
      cell(z, 0, c, 0, c, 0, out, ho, u);
    } else {
      for (let j = 0; j < u; j++) {
        const q = 4 * j;
        const cj = activate(rec, z[q + 1]) * c[j] + activate(rec, z[q]) * activate(act, z[q + 2]);
        c[j] = cj;
        out[ho + j] = activate(rec, z[q + 3]) * activate(act, cj);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The network

/** Where a layer reads its input: a buffer, the element offset of row 0, and whether every row is row 0. */
interface Place {
  buf: number;
  off: number;
  repeated: boolean;
}

interface LstmOp {
  kind: 'lstm';
  /** Steps of its input sequence. */
  steps: number;
  u: number;
  inDim: number;
  /** [4u][inDim] and [4u][u], row 4·j + g = gate g (i, f, c, o) of unit j. */
  wt: Float64Array;
  ut: Float64Array;
  b: Float64Array;
  act: ActivationCode;
  rec: ActivationCode;
  from: Place;
  to: number;
}

interface DenseOp {
  kind: 'dense';
  units: number;
  inDim: number;
  /** [units][inDim] */
  wt: Float64Array;
  b: Float64Array;
  act: ActivationCode;
  from: Place;
  /** Rows computed: seqLen, or 1 when the input is one vector or repeated. */
  rows: number;
  to: number;
}

type Op = LstmOp | DenseOp;

/** The 4u gate columns of a Keras LSTM matrix ([rows][4u], gates i, f, c, o) as gate-interleaved rows [4u][rows]. */
export function interleaveGates(m: Float32Array, rows: number, u: number): Float64Array {
  const out = new Float64Array(4 * u * rows);
  for (let j = 0; j < u; j++) {
    for (let g = 0; g < 4; g++) {
      const dst = (4 * j + g) * rows;
      const col = g * u + j;
      for (let k = 0; k < rows; k++) out[dst + k] = m[k * 4 * u + col]!;
    }
  }
  return out;
}

export function interleaveBias(b: Float32Array | null, u: number): Float64Array {
  const out = new Float64Array(4 * u);
  if (b) for (let j = 0; j < u; j++) for (let g = 0; g < 4; g++) out[4 * j + g] = b[g * u + j]!;
  return out;
}

function transpose(m: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c]!;
  return out;
}

/**
 * A plan made runnable: weights laid out for the kernels and every scratch buffer allocated, for
 * one window at a time. Not safe to share between concurrent callers (there are none: Node).
 */
export class FastLstmNetwork {
  readonly seqLen: number;
  readonly nFeatures: number;
  /** Multiply-adds of one window counted as the model defines them (2 FLOP each), the repeated projection T times. */
  readonly flops: number;
  private readonly ops: Op[];
  /** [0], [1]: ping-pong activations; [2]: the input window as doubles. */
  private readonly bufs: Float64Array[];
  private readonly xp: Float64Array;
  private readonly c: Float64Array;
  private readonly z: Float64Array;
  private readonly output: Place;
  private readonly gemm: Gemm;
  private readonly cell: Cell;
  /** Which matrix kernel runs: 'wasm', or 'js' where WebAssembly cannot (model/gemm.ts). */
  readonly engine: 'wasm' | 'js';

  /** `engine`: the matrix kernel, WebAssembly (default) or the JavaScript reference (model/gemm.ts). */
  constructor(plan: NetworkPlan, engine: 'wasm' | 'js' = 'wasm') {
    const T = plan.seqLen;
    this.seqLen = T;
    this.nFeatures = plan.nFeatures;
    const ops: Op[] = [];
    let from: Place = { buf: 2, off: 0, repeated: false };
    let rows = T; // rows the current value has (1 for a vector)
    let dim = plan.nFeatures;
    let maxAct = 1;
    let maxGates = 1;
    let maxUnits = 1;
    let flops = 0;
    const other = (p: Place) => (p.buf === 0 ? 1 : 0);
    for (const l of plan.layers) {
      if (l.kind === 'repeat') {
        from = { ...from, repeated: true };
        rows = l.n;
        continue;
      }
      if (l.kind === 'lstm') {
        const u = l.units;
        const op: LstmOp = {
          kind: 'lstm',
          steps: rows,
          u,
          inDim: l.inDim,
          wt: interleaveGates(l.kernel, l.inDim, u),
          ut: interleaveGates(l.recurrent, u, u),
          b: interleaveBias(l.bias, u),
          act: l.activation,
          rec: l.recurrentActivation,
          from,
          to: other(from),
        };
        ops.push(op);
        flops += 2 * rows * (l.inDim + u) * 4 * u;
        maxAct = Math.max(maxAct, rows * u);
        maxGates = Math.max(maxGates, rows * 4 * u);
        maxUnits = Math.max(maxUnits, u);
        from = l.returnSequences ? { buf: op.to, off: 0, repeated: false } : { buf: op.to, off: (rows - 1) * u, repeated: false };
        if (!l.returnSequences) rows = 1;
        dim = u;
      } else {
        const computed = from.repeated ? 1 : rows;
        const op: DenseOp = {
          kind: 'dense',
          units: l.units,
          inDim: l.inDim,
          wt: transpose(l.kernel, l.inDim, l.units),
          b: l.bias ? Float64Array.from(l.bias) : new Float64Array(l.units),
          act: l.activation,
          from,
          rows: computed,
          to: other(from),
        };
        ops.push(op);
        flops += 2 * rows * l.inDim * l.units;
        maxAct = Math.max(maxAct, computed * l.units);
        from = { buf: op.to, off: 0, repeated: from.repeated };
        dim = l.units;
      }
    }
    if (dim !== plan.nFeatures || rows !== T) throw new UnsupportedModelError('model', 'output', `is ${rows}×${dim}; windows are ${T}×${plan.nFeatures}`);
    // Weights and buffers in the kernel's memory (WebAssembly's, or plain arrays for its fallback).
    const weights = ops.reduce((n, op) => n + op.wt.length + op.b.length + (op.kind === 'lstm' ? op.ut.length : 0), 0);
    const arena = new KernelArena(weights + 2 * maxAct + T * plan.nFeatures + maxGates + 5 * maxUnits, engine);
    const place = (a: Float64Array) => {
      const b = arena.alloc(a.length);
      b.set(a);
      return b;
    };
    for (const op of ops) {
      op.wt = place(op.wt);
      op.b = place(op.b);
      if (op.kind === 'lstm') op.ut = place(op.ut);
    }
    this.gemm = arena.gemm;
    this.cell = cellOf(arena);
    this.engine = arena.engine;
    this.ops = ops;
    this.output = from;
    this.flops = flops;
    this.bufs = [arena.alloc(maxAct), arena.alloc(maxAct), arena.alloc(T * plan.nFeatures)];
    this.xp = arena.alloc(maxGates);
    this.c = arena.alloc(maxUnits);
    this.z = arena.alloc(4 * maxUnits);
  }

  /** Runs window `w` of `x` ([n][seqLen][nFeatures]); the reconstruction is then at `this.output`. */
  private run(x: Float32Array, w: number): void {
    const input = this.bufs[2]!;
    const size = this.seqLen * this.nFeatures;
    const base = w * size;
    for (let i = 0; i < size; i++) input[i] = x[base + i]!;
    for (let i = 0; i < this.ops.length; i++) {
      const op = this.ops[i]!;
      const src = this.bufs[op.from.buf]!;
      const dst = this.bufs[op.to]!;
      if (op.kind === 'lstm') {
        const g = 4 * op.u;
        // x·W + b for every step at once (once for a repeated input), then the recurrence.
        this.gemm(this.xp, 0, g, src, op.from.off, op.inDim, op.from.repeated ? 1 : op.steps, op.wt, 0, op.inDim, g, op.inDim, op.b, 0, 0);
        const xs = op.from.repeated ? 0 : g;
        lstm(this.gemm, this.cell, this.xp, xs, op.steps, op.u, op.ut, op.act, op.rec, this.c, this.z, dst);
      } else {
        this.gemm(dst, 0, op.units, src, op.from.off, op.inDim, op.rows, op.wt, 0, op.inDim, op.units, op.inDim, op.b, 0, 0);
        if (op.act !== LINEAR) {
          const n = op.rows * op.units;
          for (let k = 0; k < n; k++) dst[k] = activate(op.act, dst[k]!);
        }
      }
    }
  }

  /** The reconstructions of `n` windows, [n][seqLen][nFeatures], into `out`. */
  predict(x: Float32Array, n: number, out: Float32Array = new Float32Array(n * this.seqLen * this.nFeatures)): Float32Array {
    const T = this.seqLen;
    const f = this.nFeatures;
    this.check(x, n);
    const y = this.bufs[this.output.buf]!;
    const off = this.output.off;
    const stride = this.output.repeated ? 0 : f;
    for (let w = 0; w < n; w++) {
      this.run(x, w);
      const base = w * T * f;
      for (let t = 0; t < T; t++) for (let j = 0; j < f; j++) out[base + t * f + j] = y[off + t * stride + j]!;
    }
    return out;
  }

  /** Per window and feature, the mean over steps of (reconstruction − input)², into `out` ([n][nFeatures]). */
  featureErrors(x: Float32Array, n: number, out: Float32Array = new Float32Array(n * this.nFeatures)): Float32Array {
    const T = this.seqLen;
    const f = this.nFeatures;
    this.check(x, n);
    const input = this.bufs[2]!;
    const y = this.bufs[this.output.buf]!;
    const off = this.output.off;
    const stride = this.output.repeated ? 0 : f;
    for (let w = 0; w < n; w++) {
      this.run(x, w);
      for (let j = 0; j < f; j++) {
        let s = 0;
        for (let t = 0; t < T; t++) {
          const d = y[off + t * stride + j]! - input[t * f + j]!;
          s += d * d;
        }
        out[w * f + j] = s / T;
      }
    }
    return out;
  }

  private check(x: Float32Array, n: number): void {
    if (!Number.isInteger(n) || n < 0 || x.length < n * this.seqLen * this.nFeatures) {
      throw new RangeError(`fast engine got ${x.length} values for ${n} windows of ${this.seqLen}×${this.nFeatures}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * The bundle's network on the fast engine, behind the Scorer interface. Throws
 * UnsupportedModelError at construction when the bundle holds anything it does not implement.
 */
export class FastScorer implements Scorer {
  readonly engine = 'fast';
  readonly kernel: 'wasm' | 'js';
  readonly seqLen: number;
  readonly nFeatures: number;
  readonly network: FastLstmNetwork;
  /** Raw per-feature errors of the current call, grown only when a call brings more windows. */
  private raw: Float32Array;

  constructor(
    private readonly bundle: LoadedBundle,
    maxBatch = 32,
  ) {
    const m = bundle.manifest;
    const a = bundle.artifacts;
    this.seqLen = m.seqLen;
    // Model inputs: the features, then any window-shape inputs (preprocess/shape.ts).
    this.nFeatures = bundleInputs(m).length;
    this.network = new FastLstmNetwork(planNetwork(a.modelTopology, a.weightSpecs, a.weightData, m.seqLen, this.nFeatures));
    this.kernel = this.network.engine;
    this.raw = new Float32Array(Math.max(1, maxBatch) * this.nFeatures);
  }

  score(x: Float32Array, n: number): { score: Float32Array; perFeature: Float32Array } {
    if (x.length < n * this.seqLen * this.nFeatures) throw new RangeError(`scorer got ${x.length} values for ${n} windows of ${this.seqLen}×${this.nFeatures}`);
    if (this.raw.length < n * this.nFeatures) this.raw = new Float32Array(n * this.nFeatures);
    this.network.featureErrors(x, n, this.raw);
    return normalizeErrors(this.raw, n, this.bundle.manifest.errorScale, this.bundle.manifest.aggregate);
  }

  /** Nothing to release: the network is typed arrays, which the garbage collector reclaims. */
  dispose(): void {}
}

/**
 * The kernels of the engine and the trainer. The matrix product here in two implementations:
 * WebAssembly SIMD (f64x2, generated at build time from agent/wasm/gemm.mjs into gemm.wasm beside
 * this module), about four times the throughput of the same loop in JavaScript here, and that
 * JavaScript loop, the reference and the fallback where the .wasm is missing or cannot run (same
 * numbers to rounding). The same module holds the LSTM cell (model/fast-lstm.ts lstmCell), its
 * backward step and a transpose (train/fast-network.ts), each the twin of a JavaScript reference
 * beside its caller. WebAssembly reads its operands from its own memory, which a `KernelArena` hands out.
 */
import { readFileSync } from 'node:fs';

export type Gemm = typeof jsGemm;

/**
 * The product both implementations compute, every product written as rows of A times rows of W (so
 * every inner loop is a contiguous dot product):
 *
 *   out[oOff + r·oStride + o] = init[iOff + r·iStride + o] + Σ_{k<depth} a[aOff + r·aStride + k] · w[wOff + o·wStride + k]
 *
 * for r < rows, o < cols. `init` null starts from zero; `init` = `out` with the same offset and
 * stride accumulates; iStride 0 repeats one row (a bias). Two rows × four outputs per block, so
 * each load serves several multiply-adds; long products are cut into depth tiles so the eight rows a
 * block reads stay in cache.
 */
function jsGemm(
  out: Float64Array,
  oOff: number,
  oStride: number,
  a: Float64Array,
  aOff: number,
  aStride: number,
  rows: number,
  w: Float64Array,
  wOff: number,
  wStride: number,
  cols: number,
  depth: number,
  init: Float64Array | null,
  iOff: number,
  iStride: number,
): void {
  gemmStart(out, oOff, oStride, rows, cols, init, iOff, iStride);
  for (let k0 = 0; k0 < depth; k0 += GEMM_TILE) {
    const k1 = Math.min(depth, k0 + GEMM_TILE);
    gemmTile(out, oOff, oStride, a, aOff, aStride, rows, w, wOff, wStride, cols, k0, k1);
  }
}

/** The `init` part of gemm: each output row set to its init row, or to zero (whole blocks at once where rows are contiguous). */
function gemmStart(out: Float64Array, oOff: number, oStride: number, rows: number, cols: number, init: Float64Array | null, iOff: number, iStride: number): void {
  if (rows === 0 || cols === 0) return;
  if (init === out && iOff === oOff && iStride === oStride) return; // accumulate in place
  if (oStride === cols && init === null) {
    out.fill(0, oOff, oOff + rows * cols);
    return;
  }
  if (oStride === cols && iStride === 0 && init !== null && init !== out) {
    // One row repeated (a bias): the first row, then doubling copies.
    for (let o = 0; o < cols; o++) out[oOff + o] = init[iOff + o]!;
    const end = oOff + rows * cols;
    for (let done = cols; oOff + done < end; done *= 2) out.copyWithin(oOff + done, oOff, Math.min(oOff + 2 * done, end) - done);
    return;
  }
  for (let r = 0; r < rows; r++) {
    const o0 = oOff + r * oStride;
    if (init === null) out.fill(0, o0, o0 + cols);
    else if (init !== out || iOff + r * iStride !== o0) for (let o = 0; o < cols; o++) out[o0 + o] = init[iOff + r * iStride + o]!;
  }
}

/** Depth tile of gemm: products are added to `out`. */
const GEMM_TILE = 512;

function gemmTile(out: Float64Array, oOff: number, oStride: number, a: Float64Array, aOff: number, aStride: number, rows: number, w: Float64Array, wOff: number, wStride: number, cols: number, k0: number, k1: number): void {
  const c4 = cols - (cols % 4);
  let r = 0;
  for (; r + 1 < rows; r += 2) {
    const x0 = aOff + r * aStride;
    const x1 = x0 + aStride;
    const p0 = oOff + r * oStride;
    const p1 = p0 + oStride;
    let o = 0;
    for (; o < c4; o += 4) {
      const w0 = wOff + o * wStride;
      const w1 = w0 + wStride;
      const w2 = w1 + wStride;
      const w3 = w2 + wStride;
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0,
        c0 = 0,
        c1 = 0,
        c2 = 0,
        c3 = 0;
      for (let k = k0; k < k1; k++) {
        const u = a[x0 + k]!;
        const v = a[x1 + k]!;
        const q0 = w[w0 + k]!,
          q1 = w[w1 + k]!,
          q2 = w[w2 + k]!,
          q3 = w[w3 + k]!;
        a0 += u * q0;
        a1 += u * q1;
        a2 += u * q2;
        a3 += u * q3;
        c0 += v * q0;
        c1 += v * q1;
        c2 += v * q2;
        c3 += v * q3;
      }
      out[p0 + o] += a0;
      out[p0 + o + 1] += a1;
      out[p0 + o + 2] += a2;
      out[p0 + o + 3] += a3;
      out[p1 + o] += c0;
      out[p1 + o + 1] += c1;
      out[p1 + o + 2] += c2;
      out[p1 + o + 3] += c3;
    }
    for (; o < cols; o++) {
      const wr = wOff + o * wStride;
      let s0 = 0;
      let s1 = 0;
      for (let k = k0; k < k1; k++) {
        s0 += a[x0 + k]! * w[wr + k]!;
        s1 += a[x1 + k]! * w[wr + k]!;
      }
      out[p0 + o] += s0;
      out[p1 + o] += s1;
    }
  }
  for (; r < rows; r++) {
    const x0 = aOff + r * aStride;
    const p0 = oOff + r * oStride;
    let o = 0;
    for (; o < c4; o += 4) {
      const w0 = wOff + o * wStride;
      const w1 = w0 + wStride;
      const w2 = w1 + wStride;
      const w3 = w2 + wStride;
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0;
      for (let k = k0; k < k1; k++) {
        const u = a[x0 + k]!;
        a0 += u * w[w0 + k]!;
        a1 += u * w[w1 + k]!;
        a2 += u * w[w2 + k]!;
        a3 += u * w[w3 + k]!;
      }
      out[p0 + o] += a0;
      out[p0 + o + 1] += a1;
      out[p0 + o + 2] += a2;
      out[p0 + o + 3] += a3;
    }
    for (; o < cols; o++) {
      const wr = wOff + o * wStride;
      let s = 0;
      for (let k = k0; k < k1; k++) s += a[x0 + k]! * w[wr + k]!;
      out[p0 + o] += s;
    }
  }
}

const BYTES = 8;
const PAGE = 65536;

let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernel, once per thread; null when it cannot run here (the engines then say 'js'). */
function gemmModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(readFileSync(new URL('./gemm.wasm', import.meta.url)));
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** The module's other exports, on byte addresses in the arena's memory (`at`). */
export interface WasmKernels {
  /** model/fast-lstm.ts lstmCell over n units: the same operations in the same order, so the same bits. */
  cell(z: number, cPrev: number, c: number, h: number, n: number): void;
  /** train/fast-network.ts lstmCellBack over n units, likewise. */
  cellBack(z: number, c: number, cPrev: number, dh: number, dOut: number, dc: number, n: number): void;
  /** out[c][r] = a[r][c] for a [rows][cols]. */
  transpose(out: number, a: number, rows: number, cols: number): void;
}

/**
 * Float64 buffers for one network and the kernels that work on them: in WebAssembly memory with the
 * SIMD kernels, or ordinary arrays with the JavaScript ones (`engine: 'js'`, or the .wasm is not
 * there). Sized once: `doubles` is everything the network will ask `alloc` for.
 */
export class KernelArena {
  readonly engine: 'wasm' | 'js';
  readonly gemm: Gemm;
  /** The WebAssembly kernels besides gemm; null for the JavaScript engine. */
  readonly kernels: WasmKernels | null;
  private readonly memory: WebAssembly.Memory | null;
  private used = 0;

  constructor(doubles: number, engine: 'wasm' | 'js' = 'wasm') {
    const module = engine === 'wasm' ? gemmModule() : null;
    if (!module) {
      this.engine = 'js';
      this.memory = null;
      this.gemm = jsGemm;
      this.kernels = null;
      return;
    }
    this.engine = 'wasm';
    const memory = new WebAssembly.Memory({ initial: Math.ceil((doubles * BYTES) / PAGE) + 1 });
    this.memory = memory;
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    const kernel = exports.gemm as (out: number, os: number, a: number, as: number, rows: number, w: number, ws: number, cols: number, depth: number) => void;
    this.kernels = exports as unknown as WasmKernels;
    this.gemm = (out, oOff, oStride, a, aOff, aStride, rows, w, wOff, wStride, cols, depth, init, iOff, iStride) => {
      gemmStart(out, oOff, oStride, rows, cols, init, iOff, iStride);
      if (depth > 0 && rows > 0 && cols > 0) {
        kernel(out.byteOffset + oOff * BYTES, oStride, a.byteOffset + aOff * BYTES, aStride, rows, w.byteOffset + wOff * BYTES, wStride, cols, depth);
      }
    };
  }

  /** A zeroed buffer of n doubles. */
  alloc(n: number): Float64Array {
    if (!this.memory) return new Float64Array(n);
    const buf = new Float64Array(this.memory.buffer, this.used * BYTES, n);
    this.used += n;
    if (this.used * BYTES > this.memory.buffer.byteLength) throw new RangeError('kernel arena sized too small');
    return buf;
  }
}

/** The byte address of element `off` of an arena buffer, as the WebAssembly kernels take it. */
export function at(buf: Float64Array, off: number): number {
  return buf.byteOffset + off * BYTES;
}

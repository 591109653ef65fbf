/**
 * The matrix kernel as WebAssembly SIMD (f64x2), for the trainer: the same product as fast-lstm.ts
 * `gemm`, about four times the throughput of the JavaScript loop here (measured by bench:train).
 * `gemm.wasm` is generated at build time (agent/wasm/); matrices must live in the module's memory,
 * which a `KernelArena` hands out. Where the .wasm is missing or cannot run, the JavaScript gemm
 * takes over: same numbers to rounding, slower.
 */
import { readFileSync } from 'node:fs';
import { gemmStart, gemm as jsGemm } from './fast-lstm.js';

export type Gemm = typeof jsGemm;

const BYTES = 8;
const PAGE = 65536;

let compiled: WebAssembly.Module | null | undefined;
let why = '';

/** The compiled kernel, once per thread; null (with `kernelProblem()` saying why) when it cannot run here. */
export function gemmModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(readFileSync(new URL('./gemm.wasm', import.meta.url)));
    } catch (err) {
      compiled = null;
      why = (err as Error).message.split('\n')[0] ?? String(err);
    }
  }
  return compiled;
}

export function kernelProblem(): string {
  return why;
}

/**
 * Float64 buffers for one network and the gemm that works on them: in WebAssembly memory with the
 * SIMD kernel, or ordinary arrays with the JavaScript kernel (`engine: 'js'`, or the .wasm is not
 * there). Sized once: `doubles` is everything the network will ask `alloc` for.
 */
export class KernelArena {
  readonly engine: 'wasm' | 'js';
  readonly gemm: Gemm;
  private readonly memory: WebAssembly.Memory | null;
  private used = 0;

  constructor(doubles: number, engine: 'wasm' | 'js' = 'wasm') {
    const module = engine === 'wasm' ? gemmModule() : null;
    if (!module) {
      this.engine = 'js';
      this.memory = null;
      this.gemm = jsGemm;
      return;
    }
    this.engine = 'wasm';
    const memory = new WebAssembly.Memory({ initial: Math.ceil((doubles * BYTES) / PAGE) + 1 });
    this.memory = memory;
    const kernel = new WebAssembly.Instance(module, { env: { memory } }).exports.gemm as (
      out: number, os: number, a: number, as: number, rows: number, w: number, ws: number, cols: number, depth: number,
    ) => void;
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

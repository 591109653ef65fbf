/**
 * Build step (npm run build, after tsc): WebAssembly text of the engine's and trainer's kernels →
 * dist/…/gemm.wasm, beside the module that loads it (agent/src/model/gemm.ts). The cells' tanh
 * coefficients come from the compiled engine (model/fast-lstm.ts TANH_COEFFICIENTS).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import wabtInit from 'wabt';
import { kernelsWat } from './gemm.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const model = join(root, 'dist', 'agent', 'src', 'model');
const { TANH_COEFFICIENTS } = await import(pathToFileURL(join(model, 'fast-lstm.js')).href);
const out = join(model, 'gemm.wasm');
const wabt = await wabtInit();
const module = wabt.parseWat('gemm.wat', kernelsWat(TANH_COEFFICIENTS), { simd: true });
module.validate();
const { buffer } = module.toBinary({});
module.destroy();
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, buffer);

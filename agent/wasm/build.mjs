/**
 * Build step (npm run build, after tsc): WebAssembly text of the trainer's kernel → dist/…/gemm.wasm,
 * beside the module that loads it (agent/src/model/gemm.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';
import { gemmWat } from './gemm.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'dist', 'agent', 'src', 'model', 'gemm.wasm');
const wabt = await wabtInit();
const module = wabt.parseWat('gemm.wat', gemmWat(), { simd: true });
module.validate();
const { buffer } = module.toBinary({});
module.destroy();
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, buffer);

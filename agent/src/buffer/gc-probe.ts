/**
 * How the buffer tests and bench check "no allocation in the hot path": count garbage collections
 * (node:v8 GCProfiler) while the code runs. Not a test file itself, so the runner does not pick it up.
 */
import { GCProfiler } from 'node:v8';

/**
 * GC runs and heap growth while fn runs, from the best of up to `tries` runs (fewest collections,
 * then least growth; it stops early at none and under 64 KiB). A per-call allocation shows in every
 * run; the retries only absorb one-off work on a loaded machine — the JIT still compiling in the
 * background (until then the interpreter boxes doubles) or re-optimising, whose code and metadata
 * also land on the heap.
 */
export function leastGc(fn: () => void, tries = 3): { gcs: number; grown: number } {
  let best = { gcs: Infinity, grown: Infinity };
  for (let i = 0; i < tries && !(best.gcs === 0 && best.grown < 64 * 1024); i++) {
    const heap0 = process.memoryUsage().heapUsed;
    const prof = new GCProfiler();
    prof.start();
    fn();
    const gcs = prof.stop().statistics.length;
    const grown = process.memoryUsage().heapUsed - heap0;
    if (gcs < best.gcs || (gcs === best.gcs && grown < best.grown)) best = { gcs, grown };
  }
  return best;
}

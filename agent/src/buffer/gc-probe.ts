/**
 * How the buffer tests and bench check "no allocation in the hot path": count garbage collections
 * (node:v8 GCProfiler) while the code runs. Not a test file itself, so the runner does not pick it up.
 */
import { GCProfiler } from 'node:v8';

/**
 * GC runs and heap growth while fn runs, from the best of `tries` runs. A per-call allocation shows
 * in every run; the retries only absorb the JIT still compiling in the background on a loaded
 * machine (until then the interpreter boxes doubles, which allocates).
 */
export function leastGc(fn: () => void, tries = 3): { gcs: number; grown: number } {
  let best = { gcs: Infinity, grown: Infinity };
  for (let i = 0; i < tries && best.gcs > 0; i++) {
    const heap0 = process.memoryUsage().heapUsed;
    const prof = new GCProfiler();
    prof.start();
    fn();
    const gcs = prof.stop().statistics.length;
    const grown = process.memoryUsage().heapUsed - heap0;
    if (gcs < best.gcs) best = { gcs, grown };
  }
  return best;
}

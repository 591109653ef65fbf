import type { Logger } from 'pino';
import { DEFAULTS } from '../core/defaults.js';
import type { LoadedBundle } from './bundle.js';
import type { BackendPreference, Scorer, ScorerEngine } from './engines.js';
import { FastScorer, UnsupportedModelError } from './fast-lstm.js';

/**
 * The scorer for `bundle` on `engine` (model/engines.ts). Under `fast` a bundle the fast engine
 * cannot run exactly is an error (UnsupportedModelError, naming the layer and option); under `auto`
 * it is scored by tfjs instead, with a warning giving that reason.
 *
 * TensorFlow.js is imported here, when the first bundle is to be scored with it, and not before: it
 * is most of the daemon's memory and the fast engine needs none of it. `backend` is the tfjs backend
 * selected then (model/backend.ts: once per process, so the first choice stays), and logged.
 */
export async function createScorer(
  bundle: LoadedBundle,
  engine: ScorerEngine,
  maxBatch = DEFAULTS.config.scorer.maxBatch,
  log?: Pick<Logger, 'warn' | 'info'>,
  backend: BackendPreference = DEFAULTS.config.scorer.backend,
): Promise<Scorer> {
  if (engine !== 'tfjs') {
    try {
      return new FastScorer(bundle, maxBatch);
    } catch (err) {
      if (engine !== 'auto' || !(err instanceof UnsupportedModelError)) throw err;
      log?.warn({ bundle: bundle.manifest.name, layer: err.layer, option: err.option }, `${err.message}; scoring this bundle with TensorFlow.js`);
    }
  }
  const { selectBackend } = await import('./backend.js');
  const { TfjsScorer, tfjsModel } = await import('./tfjs-model.js');
  const choice = await selectBackend(backend);
  log?.info({ bundle: bundle.manifest.name, backend: choice.backend, skipped: choice.skipped }, `TensorFlow.js backend: ${choice.backend}`);
  return new TfjsScorer(bundle, await tfjsModel(bundle), maxBatch);
}

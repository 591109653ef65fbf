import * as tf from '@tensorflow/tfjs';
import { DEFAULTS } from '../core/defaults.js';
import type { BackendPreference } from './engines.js';

/**
 * TensorFlow.js and its backend choice (the backends are named in model/engines.ts). Importing this
 * module loads TensorFlow.js: the daemon reaches it only through model/tfjs-model.ts, when a bundle
 * is scored with tfjs.
 */

export interface BackendChoice {
  backend: string;
  /** Why the better ones were not used, for the log line. */
  skipped: { backend: string; reason: string }[];
}

async function tryTensorflow(): Promise<void> {
  // The package name is a variable so tsc does not require its types when it is absent.
  const name = '@tensorflow/tfjs-node';
  await import(name);
  if (!(await tf.setBackend('tensorflow'))) throw new Error('tfjs-node loaded but the tensorflow backend did not initialise');
}

async function tryWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend did not initialise');
}

async function tryCpu(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend did not initialise');
}

const LOADERS: Record<Exclude<BackendPreference, 'auto'>, () => Promise<void>> = {
  tensorflow: tryTensorflow,
  wasm: tryWasm,
  cpu: tryCpu,
};

let chosen: Promise<BackendChoice> | undefined;

/**
 * Selects the backend once per process. `auto` tries tensorflow → wasm → cpu; an explicit choice
 * that fails is an error (the user asked for it), not a silent fallback.
 */
export function selectBackend(preference: BackendPreference = DEFAULTS.config.scorer.backend): Promise<BackendChoice> {
  chosen ??= (async () => {
    // tfjs prints a banner recommending tfjs-node on the cpu backend; we log our own choice instead.
    tf.env().set('IS_TEST', false);
    const order = preference === 'auto' ? (['tensorflow', 'wasm', 'cpu'] as const) : [preference];
    const skipped: BackendChoice['skipped'] = [];
    for (const name of order) {
      try {
        await LOADERS[name]();
        await tf.ready();
        return { backend: tf.getBackend(), skipped };
      } catch (err) {
        const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
        if (preference !== 'auto') throw new Error(`backend '${name}' is not available: ${reason}`);
        skipped.push({ backend: name, reason });
      }
    }
    throw new Error('no TensorFlow.js backend could be initialised');
  })();
  return chosen;
}

export { tf };

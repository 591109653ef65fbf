import type { Logger } from 'pino';
import { bundleInputs, type LoadedBundle } from './bundle.js';
import { reconstructionErrors } from './autoencoder.js';
import { normalizeErrors } from './error-scale.js';
import { FastScorer, UnsupportedModelError } from './fast-lstm.js';

/**
 * Turns scaled windows into reconstruction errors. An interface so a faster engine than tfjs can
 * take over per bundle; every engine must give the same numbers for the same bundle.
 */
export interface Scorer {
  readonly engine: string;
  readonly seqLen: number;
  readonly nFeatures: number;
  /**
   * `x` holds `n` scaled windows, row-major [n][seqLen][nFeatures]. Returns per window × feature
   * ([n][nFeatures]) the reconstruction MSE divided by the bundle's errorScale, and per window their
   * mean (or max, for a bundle with `aggregate: 'max'`): the score the bundle's threshold applies to.
   */
  score(x: Float32Array, n: number): { score: Float32Array; perFeature: Float32Array };
  dispose(): void;
}

/** The bundle's own tfjs model, on whichever backend was selected at start. */
export class TfjsScorer implements Scorer {
  readonly engine = 'tfjs';
  readonly seqLen: number;
  readonly nFeatures: number;

  constructor(
    private readonly bundle: LoadedBundle,
    private readonly maxBatch = 32,
  ) {
    this.seqLen = bundle.manifest.seqLen;
    this.nFeatures = bundleInputs(bundle.manifest).length;
  }

  score(x: Float32Array, n: number): { score: Float32Array; perFeature: Float32Array } {
    if (x.length < n * this.seqLen * this.nFeatures) throw new RangeError(`scorer got ${x.length} values for ${n} windows of ${this.seqLen}×${this.nFeatures}`);
    const raw = reconstructionErrors(this.bundle.model, x, n, this.seqLen, this.nFeatures, this.maxBatch);
    return normalizeErrors(raw.perFeature, n, this.bundle.manifest.errorScale, this.bundle.manifest.aggregate);
  }

  dispose(): void {
    this.bundle.model.dispose();
  }
}

/**
 * Which engine scores a bundle: `fast` (model/fast-lstm.ts, typed arrays, no tfjs in the hot path),
 * `tfjs` (the bundle's own tfjs model), or `auto`: fast when it supports the bundle, else tfjs.
 */
export type ScorerEngine = 'auto' | 'fast' | 'tfjs';

/**
 * The scorer for `bundle` on `engine`. Under `fast` a bundle the fast engine cannot run exactly is
 * an error (UnsupportedModelError, naming the layer and option); under `auto` it is scored by tfjs
 * instead, with a warning giving that reason.
 */
export function createScorer(bundle: LoadedBundle, engine: ScorerEngine, maxBatch = 32, log?: Pick<Logger, 'warn'>): Scorer {
  if (engine === 'tfjs') return new TfjsScorer(bundle, maxBatch);
  try {
    return new FastScorer(bundle, maxBatch);
  } catch (err) {
    if (engine !== 'auto' || !(err instanceof UnsupportedModelError)) throw err;
    log?.warn({ bundle: bundle.manifest.name, layer: err.layer, option: err.option }, `${err.message}; scoring this bundle with TensorFlow.js`);
    return new TfjsScorer(bundle, maxBatch);
  }
}

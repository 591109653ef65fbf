/**
 * The names of the scoring engines and of the TensorFlow.js backends, and the Scorer interface every
 * engine implements, apart from the code that runs them: configuration and flag parsing import these without loading TensorFlow.js, which is most of
 * the daemon's memory and is loaded only when a bundle is scored with it (model/scorer.ts).
 */

/**
 * Which engine scores a bundle: `fast` (model/fast-lstm.ts, typed arrays, no tfjs at all), `tfjs`
 * (the bundle's own tfjs model), or `auto`: fast when it supports the bundle, else tfjs.
 */
export const SCORER_ENGINES = ['auto', 'fast', 'tfjs'] as const;
export type ScorerEngine = (typeof SCORER_ENGINES)[number];

/**
 * TensorFlow.js backends (model/backend.ts). `tensorflow` comes from @tensorflow/tfjs-node, an
 * optional dependency whose install downloads libtensorflow (impossible offline and on many Pis);
 * `wasm` ships its .wasm in the npm package; `cpu` is pure JavaScript and always there.
 */
export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKENDS)[number];

/**
 * Turns scaled windows into reconstruction errors. An interface so a faster engine than tfjs can
 * take over per bundle; every engine must give the same numbers for the same bundle.
 */
export interface Scorer {
  readonly engine: string;
  /** The matrix kernel under the engine, where it has one: the fast engine's 'wasm' or 'js' (model/gemm.ts). */
  readonly kernel?: string;
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

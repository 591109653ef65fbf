/**
 * Reconstruction errors in units of "normal for this feature". A channel the autoencoder reproduces
 * almost exactly (temperature, a slow level) and one it cannot (broadband vibration) differ in normal
 * error by orders of magnitude; averaging raw MSEs lets the noisy channel drown a real change in the
 * quiet one. Dividing each feature's MSE by its mean over normal validation windows puts every channel
 * on the same footing: 1 = typical, 20 = twenty times the usual error.
 */

/** Scaled-unit MSE below which a feature counts as perfectly reproduced (avoids dividing by ~0). */
export const ERROR_SCALE_FLOOR = 1e-6;

/**
 * How a window's per-input errors (each divided by its errorScale) become its one score:
 * - `mean` (the default, and every bundle without an `aggregate` field): their mean, errorScale being
 *   each input's mean normal error. Noise on many inputs averages out, and so does a change on one.
 * - `max`: the worst input, errorScale being each input's own q-quantile of normal error (q = the
 *   threshold rule's quantile), so 1 means "this input at its own rare-but-normal level" whatever its
 *   noise. One channel out of its normal is enough, however many others are quiet.
 */
export const SCORE_AGGREGATES = ['mean', 'max'] as const;
export type ScoreAggregate = (typeof SCORE_AGGREGATES)[number];

/**
 * Per feature over `n` windows ([n][f] row-major), floored: the mean raw MSE, or with `quantile` its
 * linear-interpolated q-quantile (train/threshold.ts quantile()).
 */
export function fitErrorScale(perFeature: Float32Array, n: number, f: number, quantile?: number): number[] {
  if (n === 0) throw new Error('cannot fit an error scale on zero windows');
  if (quantile !== undefined && !(quantile >= 0 && quantile <= 1)) throw new Error(`error scale quantile must be in [0, 1], got ${quantile}`);
  const out: number[] = [];
  const col = new Float64Array(n);
  for (let j = 0; j < f; j++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += col[i] = perFeature[i * f + j];
    let v = sum / n;
    if (quantile !== undefined) {
      col.sort();
      const pos = (n - 1) * quantile;
      const lo = Math.floor(pos);
      const hi = Math.ceil(pos);
      v = col[lo] + (col[hi] - col[lo]) * (pos - lo);
    }
    out.push(Math.max(v, ERROR_SCALE_FLOOR));
  }
  return out;
}

/** Each input's MSE / errorScale, and the window's score: their mean or their max (ScoreAggregate). */
export function normalizeErrors(
  rawPerFeature: Float32Array,
  n: number,
  errorScale: readonly number[],
  aggregate: ScoreAggregate = 'mean',
): { score: Float32Array; perFeature: Float32Array } {
  const f = errorScale.length;
  const max = aggregate === 'max';
  const score = new Float32Array(n);
  const perFeature = new Float32Array(n * f);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < f; j++) {
      const v = rawPerFeature[i * f + j] / errorScale[j];
      perFeature[i * f + j] = v;
      s = max ? (j === 0 || v > s ? v : s) : s + v;
    }
    score[i] = max ? s : s / f;
  }
  return { score, perFeature };
}

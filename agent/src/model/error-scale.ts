/**
 * Reconstruction errors in units of "normal for this feature". A channel the autoencoder reproduces
 * almost exactly (temperature, a slow level) and one it cannot (broadband vibration) differ in normal
 * error by orders of magnitude; averaging raw MSEs lets the noisy channel drown a real change in the
 * quiet one. Dividing each feature's MSE by its mean over normal validation windows puts every channel
 * on the same footing: 1 = typical, 20 = twenty times the usual error.
 */

/** Scaled-unit MSE below which a feature counts as perfectly reproduced (avoids dividing by ~0). */
export const ERROR_SCALE_FLOOR = 1e-6;

/** Mean raw MSE per feature over `n` windows ([n][f] row-major), floored. */
export function fitErrorScale(perFeature: Float32Array, n: number, f: number): number[] {
  if (n === 0) throw new Error('cannot fit an error scale on zero windows');
  const sum = new Float64Array(f);
  for (let i = 0; i < n; i++) for (let j = 0; j < f; j++) sum[j] += perFeature[i * f + j];
  return Array.from(sum, (s) => Math.max(s / n, ERROR_SCALE_FLOOR));
}

/** score = mean over features of MSE / errorScale; perFeature returned normalised the same way. */
export function normalizeErrors(rawPerFeature: Float32Array, n: number, errorScale: readonly number[]): { score: Float32Array; perFeature: Float32Array } {
  const f = errorScale.length;
  const score = new Float32Array(n);
  const perFeature = new Float32Array(n * f);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < f; j++) {
      const v = rawPerFeature[i * f + j] / errorScale[j];
      perFeature[i * f + j] = v;
      s += v;
    }
    score[i] = s / f;
  }
  return { score, perFeature };
}

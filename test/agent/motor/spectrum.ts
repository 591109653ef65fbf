/**
 * Small signal-analysis helpers for checking the simulator (and for anyone who wants a quick
 * look at one spectral line without an FFT library).
 */

/**
 * Amplitude of the component at `freqHz` in `x` sampled at `fsHz` (Goertzel on a Hann window,
 * scaled so a pure sinusoid of amplitude A at that frequency reads ≈ A). The mean is removed
 * first so gravity on z does not leak into low lines.
 */
export function toneAmplitude(x: ArrayLike<number>, fsHz: number, freqHz: number): number {
  const n = x.length;
  if (n === 0) return 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i] as number;
  mean /= n;
  const w = (2 * Math.PI * freqHz) / fsHz;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    const win = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1 || 1));
    wsum += win;
    const s0 = ((x[i] as number) - mean) * win + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const re = s1 - s2 * Math.cos(w);
  const im = s2 * Math.sin(w);
  return (2 * Math.sqrt(re * re + im * im)) / wsum;
}

/** Mean and (population) standard deviation. */
export function meanStd(x: ArrayLike<number>): { mean: number; std: number } {
  const n = x.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += x[i] as number;
  m /= n || 1;
  let v = 0;
  for (let i = 0; i < n; i++) v += ((x[i] as number) - m) ** 2;
  return { mean: m, std: Math.sqrt(v / (n || 1)) };
}

/**
 * Min-max scaling, numerically the same as scikit-learn's MinMaxScaler(feature_range=(0, 1)),
 * so bundles made here and models trained on sklearn-scaled data agree.
 *
 * sklearn stores data_min/data_max and applies `x * scale_ + min_` with
 * `scale_ = 1 / data_range` (a range below 10·eps counts as 0 and becomes 1, so a constant
 * feature maps to 0 instead of dividing by zero) and `min_ = -data_min * scale_`.
 * We keep the same arithmetic (in float64, then rounded to float32) rather than (x - min) / range,
 * because the two differ in the last bit and the device must see exactly the training numbers.
 * Values outside the fitted range are not clipped (sklearn's default `clip=False`).
 */
import type { Series } from './csv.js';

/** Serialisable scaler state; this is what bundle.json stores. */
export interface MinMaxScaler {
  /** Feature names, in model-input order. */
  features: string[];
  /** data_min per feature. */
  min: number[];
  /** data_max per feature. */
  max: number[];
}

/** Same threshold as sklearn's `_handle_zeros_in_scale`: ranges this small are treated as constant. */
const CONSTANT_RANGE = 10 * Number.EPSILON;

/** Multiplier per feature (sklearn `scale_`). */
export function scaleOf(s: MinMaxScaler): number[] {
  return s.min.map((lo, j) => {
    const range = s.max[j]! - lo;
    return range < CONSTANT_RANGE ? 1 : 1 / range;
  });
}

/** Offset per feature (sklearn `min_`). */
export function offsetOf(s: MinMaxScaler): number[] {
  const scale = scaleOf(s);
  return s.min.map((lo, j) => -lo * scale[j]!);
}

/**
 * Fit on the given series only — callers pass training series, never validation or test data,
 * or the scaler leaks information about data the model is judged on.
 */
export function fitMinMax(series: readonly Series[], features: readonly string[]): MinMaxScaler {
  if (features.length === 0) throw new Error('fitMinMax: no features');
  const min = features.map(() => Infinity);
  const max = features.map(() => -Infinity);
  let rows = 0;
  for (const s of series) {
    features.forEach((f, j) => {
      const col = s.columns[f];
      if (col === undefined) throw new Error(`fitMinMax: ${s.file} has no column '${f}'`);
      let lo = min[j]!;
      let hi = max[j]!;
      for (let i = 0; i < s.rows; i++) {
        const v = col[i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      min[j] = lo;
      max[j] = hi;
    });
    rows += s.rows;
  }
  if (rows === 0) throw new Error('fitMinMax: no rows to fit on');
  return { features: [...features], min, max };
}

/** `s` widened to hold `cover`'s range of each feature they share too; `s` itself when there is nothing to cover. */
export function widenScaler(s: MinMaxScaler, cover: MinMaxScaler | undefined): MinMaxScaler {
  if (cover === undefined) return s;
  const min = [...s.min];
  const max = [...s.max];
  s.features.forEach((f, j) => {
    const k = cover.features.indexOf(f);
    if (k < 0) return;
    min[j] = Math.min(min[j]!, cover.min[k]!);
    max[j] = Math.max(max[j]!, cover.max[k]!);
  });
  return { features: [...s.features], min, max };
}

/** Validate a scaler read from JSON (e.g. a bundle) before trusting it. */
export function checkScaler(obj: unknown, expectFeatures?: readonly string[]): MinMaxScaler {
  const o = obj as Partial<MinMaxScaler> | null;
  const bad = (why: string): never => {
    throw new Error(`invalid scaler: ${why}`);
  };
  if (o === null || typeof o !== 'object') return bad('not an object');
  const { features, min, max } = o;
  if (!Array.isArray(features) || !features.every((f) => typeof f === 'string')) return bad('features must be an array of strings');
  if (features.length === 0) return bad('no features');
  for (const [k, arr] of [['min', min], ['max', max]] as const) {
    if (!Array.isArray(arr) || arr.length !== features.length) return bad(`${k} must have ${features.length} entries`);
    if (!arr.every((v) => typeof v === 'number' && Number.isFinite(v))) return bad(`${k} must hold finite numbers`);
  }
  min!.forEach((lo, j) => {
    if (lo > max![j]!) bad(`min > max for '${features[j]}'`);
  });
  if (expectFeatures !== undefined && (expectFeatures.length !== features.length || expectFeatures.some((f, j) => f !== features[j]))) {
    bad(`features [${features.join(', ')}] differ from expected [${expectFeatures.join(', ')}]`);
  }
  return { features: [...features], min: [...min!], max: [...max!] };
}

/**
 * Scale rows [from, to) of a series into a row-major Float32Array [rows][f]
 * (into `out` at `outOffset` when given, to reuse buffers on the device).
 */
export function transform(
  s: MinMaxScaler,
  series: Series,
  from = 0,
  to = series.rows,
  out?: Float32Array,
  outOffset = 0,
): Float32Array {
  const f = s.features.length;
  const n = to - from;
  if (from < 0 || to > series.rows || n < 0) throw new RangeError(`transform: rows [${from}, ${to}) outside ${series.file} (${series.rows} rows)`);
  const dst = out ?? new Float32Array(n * f);
  if (dst.length < outOffset + n * f) throw new RangeError('transform: output buffer too small');
  const scale = scaleOf(s);
  const offset = offsetOf(s);
  s.features.forEach((name, j) => {
    const col = series.columns[name];
    if (col === undefined) throw new Error(`transform: ${series.file} has no column '${name}'`);
    const a = scale[j]!;
    const b = offset[j]!;
    for (let i = 0, k = outOffset + j; i < n; i++, k += f) dst[k] = col[from + i]! * a + b;
  });
  return dst;
}

/** Scale row-major values [rows][f] (e.g. one aligned sample per row on the device). */
export function transformRows(s: MinMaxScaler, values: ArrayLike<number>, out?: Float32Array): Float32Array {
  const f = s.features.length;
  if (values.length % f !== 0) throw new RangeError(`transformRows: length ${values.length} is not a multiple of ${f} features`);
  const dst = out ?? new Float32Array(values.length);
  const scale = scaleOf(s);
  const offset = offsetOf(s);
  for (let k = 0; k < values.length; k++) {
    const j = k % f;
    dst[k] = values[k]! * scale[j]! + offset[j]!;
  }
  return dst;
}

/** Undo the scaling of row-major values [rows][f] (sklearn `inverse_transform`: (x - min_) / scale_). */
export function inverse(s: MinMaxScaler, scaled: ArrayLike<number>, out?: Float64Array): Float64Array {
  const f = s.features.length;
  if (scaled.length % f !== 0) throw new RangeError(`inverse: length ${scaled.length} is not a multiple of ${f} features`);
  const dst = out ?? new Float64Array(scaled.length);
  const scale = scaleOf(s);
  const offset = offsetOf(s);
  for (let k = 0; k < scaled.length; k++) {
    const j = k % f;
    dst[k] = (scaled[k]! - offset[j]!) / scale[j]!;
  }
  return dst;
}

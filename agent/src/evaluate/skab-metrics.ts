/**
 * The SKAB leaderboard's two scores, as pure functions of 0/1 series: the pointwise outlier metric
 * (F1, FAR, MAR) and the NAB score for changepoints. Definitions follow SKAB's evaluation code
 * (github.com/waico/SKAB `core/metrics.py`, taken from the tsad library, github.com/waico/tsad
 * `tsad/evaluating/{evaluating,src,univariate_funcs}.py`), called there as
 * `chp_score(true, pred, metric='binary')` and
 * `chp_score(true_cp, pred_cp, metric='nab', window_width='60s', anomaly_window_destination='righter')`.
 *
 * Pointwise, summed over the rows of all files first (one confusion matrix, then the ratios):
 *   F1 = TP / (TP + (FP + FN) / 2),  FAR = FP / (FP + TN),  MAR = FN / (FN + TP).
 *
 * NAB, per file, then summed over files before normalising:
 * - Every true changepoint at time c opens a detection window [c, c + W] (W = 60 s, to the right of
 *   the changepoint). Windows that overlap are cut: the later one starts where the earlier one ends.
 * - Predicted changepoints are the changes of the predicted 0/1 anomaly labels: row i is a predicted
 *   changepoint when pred[i] ≠ pred[i − 1], and row 0 when pred[0] = 1 (SKAB's notebooks:
 *   `abs(prediction.diff())` with the first value set to `prediction[0]`).
 * - A window with at least one predicted changepoint inside (boundaries included) is a true positive
 *   scored by its first one at time d: with r = (d − c_start) / (c_end − c_start) and
 *   k = min(⌊1000·r⌋, 999), x = −π/2 + k·π/999,
 *     score = (A_TP + A_FP)/2 · (1 − tanh(x)/tanh(π/2)) − A_FP
 *   — a scaled sigmoid (tanh form, the tsad "improved" scale) that is A_TP at the window's start and
 *   −A_FP at its end. Later predictions inside the same window cost nothing.
 * - A window without any is a false negative: −A_FN. Every predicted changepoint outside all
 *   windows is a false positive: −A_FP each.
 * - Profiles (weights as magnitudes; SKAB's table stores A_FP and A_FN negated):
 *   standard A_TP 1, A_FP 0.11, A_FN 1; LowFP 1, 0.22, 1; LowFN 1, 0.11, 2 (A_TN is 1 and unused).
 * - Normalised: NAB = 100 · (S − S_null) / (S_perfect − S_null), S_perfect = windows · A_TP,
 *   S_null = −windows · A_FN. A detector that never fires scores 0, a perfect one 100.
 */

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export const ZERO_CONFUSION: Readonly<Confusion> = { tp: 0, fp: 0, tn: 0, fn: 0 };

/** Pointwise confusion counts of a prediction against the truth (1 = anomalous). */
export function confusion(truth: ArrayLike<number>, pred: ArrayLike<number>): Confusion {
  if (truth.length !== pred.length) throw new RangeError(`confusion: ${truth.length} labels but ${pred.length} predictions`);
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i] === 1;
    const p = pred[i] === 1;
    if (t && p) c.tp++;
    else if (p) c.fp++;
    else if (t) c.fn++;
    else c.tn++;
  }
  return c;
}

export function addConfusion(a: Confusion, b: Confusion): Confusion {
  return { tp: a.tp + b.tp, fp: a.fp + b.fp, tn: a.tn + b.tn, fn: a.fn + b.fn };
}

export interface BinaryMetrics {
  /** TP / (TP + (FP + FN)/2); NaN when there is nothing to find and nothing was flagged. */
  f1: number;
  /** False alarm rate FP / (FP + TN), a fraction (NaN without normal rows). */
  far: number;
  /** Missing alarm rate FN / (FN + TP), a fraction (NaN without anomalous rows). */
  mar: number;
}

export function binaryMetrics(c: Confusion): BinaryMetrics {
  return {
    f1: c.tp / (c.tp + (c.fp + c.fn) / 2),
    far: c.fp / (c.fp + c.tn),
    mar: c.fn / (c.fn + c.tp),
  };
}

export interface NabProfile {
  name: string;
  /** Weights as magnitudes: a detection at a window's start earns aTp, a false positive costs aFp, a missed window aFn. */
  aTp: number;
  aFp: number;
  aTn: number;
  aFn: number;
}

export const NAB_PROFILES: readonly NabProfile[] = [
  { name: 'standard', aTp: 1, aFp: 0.11, aTn: 1, aFn: 1 },
  { name: 'LowFP', aTp: 1, aFp: 0.22, aTn: 1, aFn: 1 },
  { name: 'LowFN', aTp: 1, aFp: 0.11, aTn: 1, aFn: 2 },
];

/** SKAB's detection window: 60 s to the right of each changepoint. */
export const NAB_WINDOW_MS = 60_000;

/**
 * What NAB needs from one file, independent of the profile, so files can be pooled before scoring:
 * the number of windows, the false positives, the missed windows and, per detected window, where in
 * it (0 = its start, 1 = its end) the first predicted changepoint fell.
 */
export interface NabCounts {
  windows: number;
  fp: number;
  fn: number;
  /** Relative position r in [0, 1] of the first detection in each detected window. */
  tpPositions: number[];
}

export const EMPTY_NAB: Readonly<NabCounts> = { windows: 0, fp: 0, fn: 0, tpPositions: [] };

export function addNab(a: NabCounts, b: NabCounts): NabCounts {
  return { windows: a.windows + b.windows, fp: a.fp + b.fp, fn: a.fn + b.fn, tpPositions: [...a.tpPositions, ...b.tpPositions] };
}

/** Predicted changepoints from predicted labels: 1 where the label changes, and at row 0 if it starts at 1. */
export function changepointsOf(pred: ArrayLike<number>): Uint8Array {
  const cp = new Uint8Array(pred.length);
  for (let i = 0; i < pred.length; i++) cp[i] = i === 0 ? (pred[0] === 1 ? 1 : 0) : pred[i] !== pred[i - 1] ? 1 : 0;
  return cp;
}

/** Detection windows [c, c + windowMs] of the changepoints at times `cps` (ascending), overlaps cut on the right. */
export function detectionWindows(cps: readonly number[], windowMs: number): [number, number][] {
  const w = cps.map((c): [number, number] => [c, c + windowMs]);
  for (let i = 0; i + 1 < w.length; i++) if (w[i]![1] >= w[i + 1]![0]) w[i + 1]![0] = w[i]![1];
  return w;
}

/**
 * NAB counts of one file. `t` are the rows' times (ms, ascending), `trueCp` the true changepoint
 * labels and `predCp` the predicted changepoints (changepointsOf(pred)), all over the same rows.
 */
export function nabCounts(t: ArrayLike<number>, trueCp: ArrayLike<number>, predCp: ArrayLike<number>, windowMs = NAB_WINDOW_MS): NabCounts {
  if (t.length !== trueCp.length || t.length !== predCp.length) throw new RangeError('nabCounts: times, true and predicted changepoints differ in length');
  const cps: number[] = [];
  const preds: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (trueCp[i] === 1) cps.push(t[i]!);
    if (predCp[i] === 1) preds.push(t[i]!);
  }
  const windows = detectionWindows(cps, windowMs);
  const out: NabCounts = { windows: windows.length, fp: 0, fn: 0, tpPositions: [] };
  for (const d of preds) if (!windows.some(([a, b]) => d >= a && d <= b)) out.fp++;
  for (const [a, b] of windows) {
    const first = preds.find((d) => d >= a && d <= b);
    if (first === undefined) out.fn++;
    else out.tpPositions.push(b > a ? (first - a) / (b - a) : 0);
  }
  return out;
}

/** Score of a detection at relative position r of its window (see the header): aTp at r = 0, −aFp at r = 1. */
export function nabTpScore(r: number, p: NabProfile): number {
  const k = Math.min(Math.floor(1000 * r), 999);
  const x = -Math.PI / 2 + (k * Math.PI) / 999;
  return ((p.aTp + p.aFp) / 2) * (1 - Math.tanh(x) / Math.tanh(Math.PI / 2)) - p.aFp;
}

/** Normalised NAB score (null detector 0, perfect 100); NaN when there are no windows. */
export function nabScore(c: NabCounts, p: NabProfile): number {
  if (c.windows === 0) return NaN;
  let s = -p.aFp * c.fp - p.aFn * c.fn;
  for (const r of c.tpPositions) s += nabTpScore(r, p);
  const perfect = c.windows * p.aTp;
  const nul = -c.windows * p.aFn;
  return (100 * (s - nul)) / (perfect - nul);
}

/**
 * Evaluation metrics for one model over labelled test files. Pure functions, no tfjs: the caller scores
 * the windows (same windower/scorer as the device) and hands us numbers, so the definitions here can be
 * tested on hand-computed examples and the result goes verbatim into bundle.json's `metrics`.
 *
 * Definitions (also exported as text so the report states exactly what was measured):
 * - A window covers the closed time span [startT, endT] (timestamps of its first and last sample).
 *   An episode covers [startMs, endMs). They overlap iff startT < endMs && endT >= startMs.
 * - Window label from `labelFraction` (share of the window's rows with label 1): 0 → normal, 1 → fault,
 *   anything in between → mixed. Mixed windows are left out of the confusion matrix, P/R/F1 and AUC: a
 *   window that holds 3 faulty rows out of 100 may or may not "deserve" an alarm, and counting it either
 *   way would reward or punish the model for an arbitrary choice. They still count for episode detection.
 * - Predicted anomalous ("flagged") = score > threshold (strict, as the device's detector compares).
 * - precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2PR/(P+R); each is defined as 0 when its
 *   denominator is 0, so an empty subset reads as "nothing shown", never as a perfect score.
 *   Other ratios (window recall, false alarm rate, AUC) are null when undefined, because 0 there would
 *   read as a measured failure.
 */
import { FAULT_KINDS, INTENSITIES, type FaultEpisode, type Intensity } from '../core/faults.js';

export const LABELLING_RULE =
  'Each window is labelled from the share of its rows labelled 1 in the CSV `label` column: ' +
  '0 → normal, 1 → fault, anything in between → mixed. Mixed windows (a fault starting or ending ' +
  'inside the window) are excluded from the confusion matrix, precision/recall/F1 and ROC AUC, because ' +
  'whether they should alarm is ambiguous; they do count for episode detection and delay. ' +
  'A window is flagged (predicted anomalous) when its score (reconstruction error relative to normal) is strictly greater ' +
  'than the threshold. Precision, recall and F1 are defined as 0 when their denominator is 0.';

export const DETECTION_RULE =
  'An episode is detected when any flagged window overlaps it (window [startT, endT] with ' +
  'startT < episode end and endT ≥ episode start; such a window ends no later than one window length ' +
  'after the episode end). Detection delay = endT of the earliest such flagged window − episode start. ' +
  'Window recall of an episode = flagged fault windows overlapping it / fault windows overlapping it.';

export const FALSE_ALARM_RULE =
  'False alarm rate = flagged normal windows / normal windows. Hours of normal running = length of the ' +
  'union of the normal windows\' time spans. A false alarm event is a run of consecutive flagged normal ' +
  'windows (consecutive in time, no more than one hop apart), which is closer to what the detector turns ' +
  'into one alert than a count of overlapping windows.';

/** One scored window. */
export interface WindowScore {
  /** ms epoch of the window's first sample. */
  startT: number;
  /** ms epoch of the window's last sample. */
  endT: number;
  /** Reconstruction MSE over all features. */
  score: number;
  /** Reconstruction MSE per feature, when the scorer reports it. */
  perFeature?: Record<string, number>;
  /** Share of the window's rows labelled 1, in [0, 1]. */
  labelFraction: number;
}

/** One scored test file with its fault episodes (from faults.json). */
export interface EvalFile {
  file: string;
  windows: WindowScore[];
  episodes: FaultEpisode[];
}

export type WindowClass = 'normal' | 'fault' | 'mixed';

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
  /** ROC AUC of score, fault vs normal windows of the same subset; null when either class is empty. */
  auc: number | null;
}

export interface EpisodeResult {
  file: string;
  kind: string;
  intensity: string;
  startMs: number;
  endMs: number;
  channels: string[];
  /** Any overlapping window flagged. */
  detected: boolean;
  /** endT of the earliest overlapping flagged window − startMs; null if missed. */
  delayMs: number | null;
  /** Windows overlapping the episode (any label). */
  windows: number;
  /** Fault windows (labelFraction 1) overlapping the episode. */
  faultWindows: number;
  flaggedFaultWindows: number;
  /** flaggedFaultWindows / faultWindows; null when the episode has no fault window (shorter than one window). */
  windowRecall: number | null;
  /** Highest score among overlapping windows; null when none overlap. */
  maxScore: number | null;
  /** Features ranked by mean per-feature MSE over overlapping windows (up to 3); empty when not reported. */
  topFeatures: string[];
}

export interface GroupStats {
  episodes: number;
  detected: number;
  faultWindows: number;
  flaggedFaultWindows: number;
  /** Pooled over the group's episodes: Σ flagged fault windows / Σ fault windows; null when 0/0. */
  windowRecall: number | null;
  /** Over detected episodes only; null when none detected. */
  meanDelayMs: number | null;
  maxDelayMs: number | null;
}

export interface FalseAlarms {
  normalWindows: number;
  flaggedNormalWindows: number;
  /** flaggedNormalWindows / normalWindows; null when there is no normal window. */
  rate: number | null;
  /** Hours covered by normal windows (union of their spans). */
  normalHours: number;
  /** Runs of consecutive flagged normal windows. */
  events: number;
  /** flagged normal windows per hour of normal running; null when normalHours is 0. */
  windowsPerHour: number | null;
  /** false alarm events per hour of normal running; null when normalHours is 0. */
  eventsPerHour: number | null;
}

export interface FileSummary {
  file: string;
  windows: number;
  normal: number;
  fault: number;
  mixed: number;
  flagged: number;
  episodes: number;
  detected: number;
}

export interface EvaluationMetrics {
  threshold: number;
  counts: { files: number; windows: number; normal: number; fault: number; mixed: number };
  /** All fault windows vs all normal windows. */
  overall: Confusion;
  /** The acceptance subset: fault windows of `focus.intensities` episodes + all normal windows. */
  focus: Confusion & { intensities: string[] };
  /** The same restriction for each single intensity present in the data. */
  byIntensityConfusion: Record<string, Confusion>;
  episodes: EpisodeResult[];
  byKind: Record<string, GroupStats>;
  /** Window-level P/R/F1 per fault kind: that kind's fault windows against all normal windows. */
  byKindConfusion: Record<string, Confusion>;
  byIntensity: Record<string, GroupStats>;
  /** kind → intensity → stats; only combinations that occur. */
  byKindIntensity: Record<string, Record<string, GroupStats>>;
  falseAlarms: FalseAlarms;
  files: FileSummary[];
}

export interface MetricsOptions {
  /** Intensities of the acceptance subset; default ['obvious']. */
  focusIntensities?: readonly string[];
}

const MS_PER_HOUR = 3_600_000;

export function classifyWindow(labelFraction: number): WindowClass {
  if (labelFraction === 0) return 'normal';
  if (labelFraction === 1) return 'fault';
  return 'mixed';
}

export function isFlagged(score: number, threshold: number): boolean {
  return score > threshold;
}

export function overlaps(w: Pick<WindowScore, 'startT' | 'endT'>, e: Pick<FaultEpisode, 'startMs' | 'endMs'>): boolean {
  return w.startT < e.endMs && w.endT >= e.startMs;
}

/** 0/0 → 0 for the three classic figures (see header). */
export function precisionRecallF1(tp: number, fp: number, fn: number): { precision: number; recall: number; f1: number } {
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1 };
}

/**
 * ROC AUC = P(score of a random positive > score of a random negative) + ½ P(equal), computed as the
 * Mann–Whitney U with mid-ranks for ties, in O(n log n). null when either side is empty.
 */
export function rocAuc(positives: readonly number[], negatives: readonly number[]): number | null {
  const nP = positives.length;
  const nN = negatives.length;
  if (nP === 0 || nN === 0) return null;
  const all: { s: number; pos: boolean }[] = [];
  for (const s of positives) all.push({ s, pos: true });
  for (const s of negatives) all.push({ s, pos: false });
  all.sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : 0)); // not a.s - b.s: Infinity - Infinity is NaN
  let rankSumPos = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]!.s === all[i]!.s) j++;
    // ranks i+1 … j+1 (1-based) share their mean
    const midRank = (i + 1 + (j + 1)) / 2;
    for (let k = i; k <= j; k++) if (all[k]!.pos) rankSumPos += midRank;
    i = j + 1;
  }
  const u = rankSumPos - (nP * (nP + 1)) / 2;
  return u / (nP * nN);
}

/** Reject inputs that would make every figure silently wrong rather than producing plausible numbers. */
function validate(files: readonly EvalFile[], threshold: number): void {
  if (!Number.isFinite(threshold)) throw new RangeError(`threshold must be finite, got ${threshold}`);
  for (const f of files) {
    for (const [i, w] of f.windows.entries()) {
      if (Number.isNaN(w.score)) throw new RangeError(`${f.file}: window ${i} has a NaN score (broken model?)`);
      if (!(w.labelFraction >= 0 && w.labelFraction <= 1))
        throw new RangeError(`${f.file}: window ${i} labelFraction ${w.labelFraction} outside [0, 1]`);
      if (!(w.endT >= w.startT)) throw new RangeError(`${f.file}: window ${i} ends before it starts`);
    }
    for (const e of f.episodes) {
      if (!(e.endMs > e.startMs)) throw new RangeError(`${f.file}: episode ${e.kind} ends before it starts`);
    }
  }
}

/** Windows sorted by time without touching the caller's array. */
function sortedWindows(windows: readonly WindowScore[]): WindowScore[] {
  return [...windows].sort((a, b) => a.endT - b.endT || a.startT - b.startT);
}

/**
 * Window-level confusion. With `keep`, fault windows count only when they overlap an episode it keeps
 * (one intensity, one kind); normal windows always count, so false alarms weigh on every subset.
 */
export function confusion(files: readonly EvalFile[], threshold: number, keep?: (e: FaultEpisode) => boolean): Confusion {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  const pos: number[] = [];
  const neg: number[] = [];
  for (const f of files) {
    const eps = keep ? f.episodes.filter(keep) : null;
    for (const w of f.windows) {
      const cls = classifyWindow(w.labelFraction);
      if (cls === 'mixed') continue;
      const flagged = isFlagged(w.score, threshold);
      if (cls === 'normal') {
        neg.push(w.score);
        if (flagged) fp++;
        else tn++;
        continue;
      }
      if (eps && !eps.some((e) => overlaps(w, e))) continue;
      pos.push(w.score);
      if (flagged) tp++;
      else fn++;
    }
  }
  return { tp, fp, tn, fn, ...precisionRecallF1(tp, fp, fn), auc: rocAuc(pos, neg) };
}

export function episodeResults(files: readonly EvalFile[], threshold: number): EpisodeResult[] {
  const out: EpisodeResult[] = [];
  for (const f of files) {
    const ws = sortedWindows(f.windows);
    const eps = [...f.episodes].sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs);
    for (const e of eps) {
      let windows = 0;
      let faultWindows = 0;
      let flaggedFaultWindows = 0;
      let delayMs: number | null = null;
      let maxScore: number | null = null;
      const featSum = new Map<string, { sum: number; n: number }>();
      for (const w of ws) {
        if (!overlaps(w, e)) continue;
        windows++;
        maxScore = maxScore === null ? w.score : Math.max(maxScore, w.score);
        const flagged = isFlagged(w.score, threshold);
        if (classifyWindow(w.labelFraction) === 'fault') {
          faultWindows++;
          if (flagged) flaggedFaultWindows++;
        }
        // The brief's window: endT in [startMs, endMs + window length]. overlaps() already implies it
        // (endT = startT + len < endMs + len), the explicit check documents the rule and guards edits.
        const len = w.endT - w.startT;
        if (flagged && delayMs === null && w.endT >= e.startMs && w.endT <= e.endMs + len) {
          delayMs = w.endT - e.startMs; // ws is sorted by endT, so the first hit is the earliest
        }
        if (w.perFeature) {
          for (const [k, v] of Object.entries(w.perFeature)) {
            const acc = featSum.get(k) ?? { sum: 0, n: 0 };
            acc.sum += v;
            acc.n++;
            featSum.set(k, acc);
          }
        }
      }
      const topFeatures = [...featSum.entries()]
        .map(([k, a]) => [k, a.sum / a.n] as const)
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, 3)
        .map(([k]) => k);
      out.push({
        file: f.file,
        kind: e.kind,
        intensity: e.intensity,
        startMs: e.startMs,
        endMs: e.endMs,
        channels: [...e.channels],
        detected: delayMs !== null,
        delayMs,
        windows,
        faultWindows,
        flaggedFaultWindows,
        windowRecall: faultWindows === 0 ? null : flaggedFaultWindows / faultWindows,
        // JSON has no Infinity (it would silently become null); an overflowed score stays "huge" instead.
        maxScore: maxScore === null ? null : Math.min(maxScore, Number.MAX_VALUE),
        topFeatures,
      });
    }
  }
  return out;
}

export function groupStats(eps: readonly EpisodeResult[]): GroupStats {
  const delays = eps.filter((e) => e.delayMs !== null).map((e) => e.delayMs as number);
  const faultWindows = eps.reduce((s, e) => s + e.faultWindows, 0);
  const flaggedFaultWindows = eps.reduce((s, e) => s + e.flaggedFaultWindows, 0);
  return {
    episodes: eps.length,
    detected: delays.length,
    faultWindows,
    flaggedFaultWindows,
    windowRecall: faultWindows === 0 ? null : flaggedFaultWindows / faultWindows,
    meanDelayMs: delays.length === 0 ? null : delays.reduce((a, b) => a + b, 0) / delays.length,
    maxDelayMs: delays.length === 0 ? null : Math.max(...delays),
  };
}

/** Known vocabulary order first (so tables read the same for every model), unknown names after, sorted. */
function orderBy(vocab: readonly string[]): (a: string, b: string) => number {
  return (a, b) => {
    const ia = vocab.indexOf(a);
    const ib = vocab.indexOf(b);
    if (ia !== -1 || ib !== -1) return (ia === -1 ? Infinity : ia) - (ib === -1 ? Infinity : ib);
    return a < b ? -1 : a > b ? 1 : 0;
  };
}
export const compareKinds = orderBy(FAULT_KINDS);
export const compareIntensities = orderBy(INTENSITIES);

function groupBy(eps: readonly EpisodeResult[], key: (e: EpisodeResult) => string, cmp: (a: string, b: string) => number) {
  const m = new Map<string, EpisodeResult[]>();
  for (const e of eps) {
    const k = key(e);
    const list = m.get(k) ?? [];
    list.push(e);
    m.set(k, list);
  }
  return [...m.keys()].sort(cmp).map((k) => [k, m.get(k)!] as const);
}

/** Length of the union of closed intervals, ms. */
function unionLength(spans: [number, number][]): number {
  spans.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let curS = -Infinity;
  let curE = -Infinity;
  for (const [s, e] of spans) {
    if (s > curE) {
      if (curE > curS) total += curE - curS;
      curS = s;
      curE = e;
    } else if (e > curE) curE = e;
  }
  if (curE > curS) total += curE - curS;
  return total;
}

export function falseAlarms(files: readonly EvalFile[], threshold: number): FalseAlarms {
  let normalWindows = 0;
  let flaggedNormalWindows = 0;
  let events = 0;
  let normalMs = 0;
  for (const f of files) {
    const spans: [number, number][] = [];
    const ws = sortedWindows(f.windows);
    // The file's hop (median spacing of window starts): consecutive windows at most one hop apart are
    // contiguous even when they do not overlap (hop = window length); a larger gap is missing data.
    const starts = ws.map((w) => w.startT).sort((a, b) => a - b);
    const diffs = starts.slice(1).map((t, i) => t - starts[i]!).sort((a, b) => a - b);
    const hop = diffs.length ? diffs[Math.floor(diffs.length / 2)]! : 0;
    let prev: WindowScore | null = null; // previous window in time, whatever its label
    let inRun = false;
    for (const w of ws) {
      const normal = classifyWindow(w.labelFraction) === 'normal';
      const flagged = normal && isFlagged(w.score, threshold);
      if (normal) {
        normalWindows++;
        spans.push([w.startT, w.endT]);
      }
      if (flagged) {
        flaggedNormalWindows++;
        // A gap in the data (more than one hop between windows) ends a run too.
        const contiguous = prev !== null && w.startT - prev.endT <= hop;
        if (!inRun || !contiguous) events++;
        inRun = true;
      } else inRun = false;
      prev = w;
    }
    normalMs += unionLength(spans);
  }
  const normalHours = normalMs / MS_PER_HOUR;
  return {
    normalWindows,
    flaggedNormalWindows,
    rate: normalWindows === 0 ? null : flaggedNormalWindows / normalWindows,
    normalHours,
    events,
    windowsPerHour: normalHours === 0 ? null : flaggedNormalWindows / normalHours,
    eventsPerHour: normalHours === 0 ? null : events / normalHours,
  };
}

/** Everything the report and bundle.json need, deterministic and JSON-safe (no Infinity/NaN). */
export function computeMetrics(files: readonly EvalFile[], threshold: number, opts: MetricsOptions = {}): EvaluationMetrics {
  validate(files, threshold);
  const focusIntensities = [...(opts.focusIntensities ?? ['obvious'])];
  const episodes = episodeResults(files, threshold);

  const counts = { files: files.length, windows: 0, normal: 0, fault: 0, mixed: 0 };
  const fileSummaries: FileSummary[] = files.map((f) => {
    const s = { file: f.file, windows: f.windows.length, normal: 0, fault: 0, mixed: 0, flagged: 0, episodes: 0, detected: 0 };
    for (const w of f.windows) {
      s[classifyWindow(w.labelFraction)]++;
      if (isFlagged(w.score, threshold)) s.flagged++;
    }
    const mine = episodes.filter((e) => e.file === f.file);
    s.episodes = mine.length;
    s.detected = mine.filter((e) => e.detected).length;
    counts.windows += s.windows;
    counts.normal += s.normal;
    counts.fault += s.fault;
    counts.mixed += s.mixed;
    return s;
  });

  const byKind: Record<string, GroupStats> = {};
  const byKindConfusion: Record<string, Confusion> = {};
  const byKindIntensity: Record<string, Record<string, GroupStats>> = {};
  for (const [kind, list] of groupBy(episodes, (e) => e.kind, compareKinds)) {
    byKind[kind] = groupStats(list);
    byKindConfusion[kind] = confusion(files, threshold, (e) => e.kind === kind);
    byKindIntensity[kind] = {};
    for (const [int, sub] of groupBy(list, (e) => e.intensity, compareIntensities)) byKindIntensity[kind]![int] = groupStats(sub);
  }
  const byIntensity: Record<string, GroupStats> = {};
  const byIntensityConfusion: Record<string, Confusion> = {};
  for (const [int, list] of groupBy(episodes, (e) => e.intensity, compareIntensities)) {
    byIntensity[int] = groupStats(list);
    byIntensityConfusion[int] = confusion(files, threshold, (e) => e.intensity === int);
  }

  return {
    threshold,
    counts,
    overall: confusion(files, threshold),
    focus: { intensities: focusIntensities, ...confusion(files, threshold, (e) => focusIntensities.includes(e.intensity)) },
    byIntensityConfusion,
    episodes,
    byKind,
    byKindConfusion,
    byIntensity,
    byKindIntensity,
    falseAlarms: falseAlarms(files, threshold),
    files: fileSummaries,
  };
}

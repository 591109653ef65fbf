/**
 * Detector: one per model. Turns the stream of window scores into incidents — one `raised` and one
 * `cleared` alert per episode, never one per window (DESIGN.md, "Detector"; the Alert it returns and
 * its payload: core/alert.ts, core/topics.ts AlertPayload).
 *
 * Rules (a window is "over" when score > threshold, "low" when score < clearRatio × threshold;
 * a score exactly at either level is neither):
 * - Raise: while no incident is open, an over window raises when at least `raiseK` of the last
 *   `raiseN` windows (this one included) were over, that condition has held for `onDelayMs` (window
 *   time from the first over window of the run), and the cooldown has ended. Only an over window
 *   raises, so a `raised` alert's score is always above its threshold. `since` is the windowEnd of the
 *   first over window of the run: when the episode began. A run is the windows through which the
 *   k-of-n condition holds without a break; it ends at the first window where it does not.
 * - On-delay (ISA-18.2's term for the same thing in alarm management): one event — a load step, a
 *   contactor switching — passes through a model's window in one window span, and every window it is
 *   in may score over. A condition lasts longer. An on-delay of a window span or more lets the first
 *   by and raises on the second, at the cost of raising that much later.
 * - Clear: an open incident clears after `clearM` consecutive low windows. Any window that is not low
 *   (over, or in the hysteresis band between the two levels) restarts that count at zero. The
 *   `cleared` alert carries the clearing window (score, threshold, top features), why the episode
 *   ended (the caller's `clearReason`: the pipeline knows whether its baseline moved), and as `peak`
 *   the episode's worst window: its score, the threshold it was judged against and its top features.
 *   The peak is the window with the highest score/threshold ratio from `since` on (the over windows
 *   that led to the raise included); with a fixed threshold that is simply the highest score.
 * - Cooldown: after a clear at window time C, no raise before a window with windowEnd − C ≥ cooldownMs.
 *   Windows during the cooldown are counted into the k-of-n history as usual, so the first over
 *   window at or after the cooldown's end raises if the k-of-n condition holds then (and its `since`
 *   may lie inside the cooldown). The history is emptied at a raise (its windows belong to that
 *   episode) and is not filled while an incident is open, so the next episode counts only windows
 *   seen after the clear.
 * - reset() (the window stream broke): empties the k-of-n history only. An open incident stays open
 *   with its peak and its run of low windows; the cooldown keeps running in window time.
 * - Window time going backwards (a clock step on a gateway without RTC) does not lengthen the
 *   cooldown: the step is taken out of the elapsed time.
 * - A non-finite score (or windowEnd, or per-feature error, or a negative per-feature error) means
 *   the scorer failed: observe() throws DetectorInputError and changes nothing.
 */
import { randomBytes } from 'node:crypto';
import { copyTop, topFeatures, type ModelAlert } from '../core/alert.js';
import type { ModelClearReason } from '../core/payloads.js';
import type { Score } from '../core/score.js';
import type { TopFeature } from '../core/topics.js';

export interface DetectorOptions {
  /** Model type, e.g. 'vibration'; goes into alerts and default ids. */
  model: string;
  /** A window is over when score > threshold. Must be finite and > 0. */
  threshold: number;
  /** Raise when ≥ raiseK of the last raiseN windows are over (1 ≤ raiseK ≤ raiseN, integers). */
  raiseK: number;
  raiseN: number;
  /** Clear after clearM consecutive windows under clearRatio × threshold (integer ≥ 1). */
  clearM: number;
  /** 0 < clearRatio ≤ 1; below 1 gives hysteresis. */
  clearRatio: number;
  /** Minimum window time from a clear to the next raise (≥ 0). */
  cooldownMs: number;
  /** How long the k-of-n condition must have held before it raises, window time (≥ 0; default 0). */
  onDelayMs?: number;
  /** Incident id factory; default `${model}-${base36 ms time}-${8 hex random}` (sortable by time). */
  newId?: () => string;
}

/**
 * The detector as a deployment sets it (config `detector`, SKAB's settings): the on-delay in window
 * spans of the model it judges (seqLen × periodMs), since a transient lasts one span whatever the model.
 */
export type DetectorSettings = Omit<DetectorOptions, 'model' | 'threshold' | 'onDelayMs'> & {
  onDelaySpans?: number;
  /**
   * A window in which the shaft turned slower than this fraction of the profile's nominal speed (its
   * `rpm` channel) while the accelerometer stayed quiet (`stoppedVibration`) is scored but not judged:
   * a stopped machine is not an abnormal one. 0 or absent, or no rpm channel: every window is judged.
   * (pipeline/model-runtime.ts)
   */
  stoppedBelow?: number;
  /** Standard deviation, m/s², under which every accelerometer axis counts as quiet over a window (0: the tachometer alone decides). */
  stoppedVibration?: number;
};

/** A window remembered for the k-of-n rule and as a peak candidate. */
export interface WindowMark {
  windowEnd: number;
  score: number;
  /** The threshold this window was judged against. */
  threshold: number;
  /** Present for over windows (they may become the episode's peak). */
  topFeatures?: TopFeature[];
}

export interface OpenIncident {
  id: string;
  since: number;
  /** windowEnd of the window that raised. */
  raisedAt: number;
  peak: Required<WindowMark>;
  /** Consecutive low windows so far. */
  lowRun: number;
}

/** Serialisable snapshot (JSON round trip safe): enough to carry an episode across a model swap. */
export interface DetectorState {
  v: 1;
  model: string;
  threshold: number;
  open: OpenIncident | null;
  /** Last ≤ raiseN windows since the last raise, clear or reset, oldest first. */
  history: WindowMark[];
  /** windowEnd of the last clear (cooldown start), null if none. */
  clearedAt: number | null;
  /** windowEnd of the last observed window, null if none. */
  lastWindowEnd: number | null;
  /** The k-of-n run under way (on-delay): its first over window's windowEnd and its worst window; absent in older snapshots. */
  run?: { since: number; peak: Required<WindowMark> } | null;
}

/** An option is missing or out of range; `option` names it. */
export class DetectorOptionsError extends RangeError {
  override readonly name = 'DetectorOptionsError';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
  }
}

/** observe() was given something a working scorer does not produce; `field` names it. State is unchanged. */
export class DetectorInputError extends Error {
  override readonly name = 'DetectorInputError';
  constructor(
    readonly model: string,
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** A snapshot passed to the constructor is malformed or belongs to another model. */
export class DetectorStateError extends Error {
  override readonly name = 'DetectorStateError';
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function checkThreshold(model: string, t: unknown): number {
  if (!isNum(t) || t <= 0) throw new DetectorOptionsError('threshold', `detector '${model}': threshold must be a finite number > 0, got ${String(t)}`);
  return t;
}

/** Checks every option; throws DetectorOptionsError naming the first bad one. */
export function validateOptions(o: DetectorOptions): void {
  if (typeof o.model !== 'string' || o.model === '') throw new DetectorOptionsError('model', `detector: model must be a non-empty string, got ${JSON.stringify(o.model)}`);
  const m = o.model;
  checkThreshold(m, o.threshold);
  if (!isInt(o.raiseN) || o.raiseN < 1) throw new DetectorOptionsError('raiseN', `detector '${m}': raiseN must be an integer ≥ 1, got ${String(o.raiseN)}`);
  if (!isInt(o.raiseK) || o.raiseK < 1) throw new DetectorOptionsError('raiseK', `detector '${m}': raiseK must be an integer ≥ 1, got ${String(o.raiseK)}`);
  if (o.raiseK > o.raiseN) throw new DetectorOptionsError('raiseK', `detector '${m}': raiseK (${o.raiseK}) must be ≤ raiseN (${o.raiseN})`);
  if (!isInt(o.clearM) || o.clearM < 1) throw new DetectorOptionsError('clearM', `detector '${m}': clearM must be an integer ≥ 1, got ${String(o.clearM)}`);
  if (!isNum(o.clearRatio) || o.clearRatio <= 0 || o.clearRatio > 1) throw new DetectorOptionsError('clearRatio', `detector '${m}': clearRatio must be in (0, 1], got ${String(o.clearRatio)}`);
  if (!isNum(o.cooldownMs) || o.cooldownMs < 0) throw new DetectorOptionsError('cooldownMs', `detector '${m}': cooldownMs must be a finite number ≥ 0, got ${String(o.cooldownMs)}`);
  if (o.onDelayMs !== undefined && (!isNum(o.onDelayMs) || o.onDelayMs < 0)) throw new DetectorOptionsError('onDelayMs', `detector '${m}': onDelayMs must be a finite number ≥ 0, got ${String(o.onDelayMs)}`);
  if (o.newId !== undefined && typeof o.newId !== 'function') throw new DetectorOptionsError('newId', `detector '${m}': newId must be a function`);
}

/** Default incident id: model, base36 ms time (zero-padded, so ids sort by time as strings), random. */
export function defaultId(model: string, now = Date.now()): string {
  return `${model}-${now.toString(36).padStart(9, '0')}-${randomBytes(4).toString('hex')}`;
}

const ratio = (w: WindowMark) => w.score / w.threshold;

export class Detector {
  readonly model: string;
  private readonly raiseK: number;
  private readonly raiseN: number;
  private readonly clearM: number;
  private readonly clearRatio: number;
  private readonly cooldownMs: number;
  private readonly onDelayMs: number;
  private readonly newId: () => string;

  private threshold: number;
  private open: OpenIncident | null = null;
  private history: WindowMark[] = [];
  private clearedAt: number | null = null;
  private lastWindowEnd: number | null = null;
  private run: { since: number; peak: Required<WindowMark> } | null = null;

  /**
   * @param initial a snapshot from state() — e.g. of the detector of the bundle being replaced — whose
   *   open incident, history and cooldown carry over. The threshold is this detector's (options);
   *   a history longer than raiseN keeps its newest windows.
   */
  constructor(opts: DetectorOptions, initial?: DetectorState) {
    validateOptions(opts);
    this.model = opts.model;
    this.threshold = opts.threshold;
    this.raiseK = opts.raiseK;
    this.raiseN = opts.raiseN;
    this.clearM = opts.clearM;
    this.clearRatio = opts.clearRatio;
    this.cooldownMs = opts.cooldownMs;
    this.onDelayMs = opts.onDelayMs ?? 0;
    const model = opts.model;
    this.newId = opts.newId ?? (() => defaultId(model));
    if (initial !== undefined) this.load(initial);
  }

  /** Current threshold. */
  getThreshold(): number {
    return this.threshold;
  }

  /** Whether an incident is open. */
  isOpen(): boolean {
    return this.open !== null;
  }

  /**
   * New threshold for the windows to come. Windows already seen keep the verdict they had (history
   * and peak remember their own threshold); an open incident stays open.
   */
  setThreshold(t: number): void {
    this.threshold = checkThreshold(this.model, t);
  }

  /** The window stream broke (gap): forget the k-of-n history; an open incident stays open. */
  reset(): void {
    this.history = [];
    this.run = null;
  }

  /** Peak score ÷ threshold of the open episode; null when none is open. */
  peakRatio(): number | null {
    return this.open ? ratio(this.open.peak) : null;
  }

  /**
   * Feeds one window; returns the alert when this window raises or clears an incident, else null.
   * `clearReason` is what a clear at this window says.
   */
  observe(w: Score, clearReason: ModelClearReason = 'back to normal'): ModelAlert | null {
    this.checkInput(w);
    const { windowEnd, score } = w;
    const threshold = this.threshold;

    if (this.lastWindowEnd !== null && windowEnd < this.lastWindowEnd && this.clearedAt !== null) {
      // Time stepped back: keep the cooldown's elapsed time instead of restarting it from the future.
      this.clearedAt += windowEnd - this.lastWindowEnd;
    }
    this.lastWindowEnd = windowEnd;

    const over = score > threshold;
    const open = this.open;
    if (open) {
      const mark: Required<WindowMark> = { windowEnd, score, threshold, topFeatures: topFeatures(w.perFeature) };
      if (ratio(mark) > ratio(open.peak)) open.peak = mark;
      open.lowRun = score < this.clearRatio * threshold ? open.lowRun + 1 : 0;
      if (open.lowRun < this.clearM) return null;
      this.open = null;
      this.clearedAt = windowEnd;
      this.history = [];
      this.run = null;
      const p = open.peak;
      return {
        kind: 'machine',
        id: open.id,
        model: this.model,
        state: 'cleared',
        score,
        threshold,
        topFeatures: mark.topFeatures,
        since: open.since,
        reason: clearReason,
        peak: { score: p.score, threshold: p.threshold, topFeatures: copyTop(p.topFeatures) },
        windowEnd,
      };
    }

    const mark: WindowMark = over ? { windowEnd, score, threshold, topFeatures: topFeatures(w.perFeature) } : { windowEnd, score, threshold };
    this.history.push(mark);
    if (this.history.length > this.raiseN) this.history.splice(0, this.history.length - this.raiseN);
    const overs = this.history.filter((h) => h.score > h.threshold);
    if (overs.length < this.raiseK) {
      this.run = null;
      return null;
    }
    if (!this.run) {
      let peak = overs[0]!;
      for (const h of overs) if (ratio(h) > ratio(peak)) peak = h;
      this.run = { since: overs[0]!.windowEnd, peak: { ...peak, topFeatures: peak.topFeatures ?? [] } };
    } else if (over && ratio(mark) > ratio(this.run.peak)) {
      this.run.peak = { ...mark, topFeatures: mark.topFeatures ?? [] };
    }
    if (!over) return null;
    if (windowEnd - this.run.since < this.onDelayMs) return null;
    if (this.clearedAt !== null && windowEnd - this.clearedAt < this.cooldownMs) return null;

    const id = this.newId();
    if (typeof id !== 'string' || id === '') throw new DetectorOptionsError('newId', `detector '${this.model}': newId returned ${JSON.stringify(id)}, not a non-empty string`);
    const { since, peak } = this.run;
    this.open = { id, since, raisedAt: windowEnd, peak, lowRun: 0 };
    this.history = [];
    this.run = null;
    return { kind: 'machine', id, model: this.model, state: 'raised', score, threshold, topFeatures: copyTop(mark.topFeatures!), since, windowEnd };
  }

  /** A deep copy of the state; JSON.stringify-able; pass it to a new Detector to continue. */
  state(): DetectorState {
    return structuredClone({
      v: 1,
      model: this.model,
      threshold: this.threshold,
      open: this.open,
      history: this.history,
      clearedAt: this.clearedAt,
      lastWindowEnd: this.lastWindowEnd,
      run: this.run,
    } satisfies DetectorState);
  }

  private checkInput(w: Score): void {
    const fail = (field: string, msg: string) => new DetectorInputError(this.model, field, `detector '${this.model}': ${msg}; the window is ignored`);
    if (w === null || typeof w !== 'object') throw fail('window', `window must be an object, got ${String(w)}`);
    if (!isNum(w.score)) throw fail('score', `score ${String(w.score)} is not a finite number (scorer failure)`);
    if (!isNum(w.windowEnd)) throw fail('windowEnd', `windowEnd ${String(w.windowEnd)} is not a finite number`);
    if (w.perFeature === null || typeof w.perFeature !== 'object') throw fail('perFeature', `perFeature must be an object`);
    for (const [k, e] of Object.entries(w.perFeature)) {
      if (!isNum(e) || e < 0) throw fail(`perFeature.${k}`, `error of feature '${k}' is ${String(e)}, not a finite number ≥ 0 (scorer failure)`);
    }
  }

  private load(s: DetectorState): void {
    const bad = (msg: string) => new DetectorStateError(`detector '${this.model}': snapshot refused: ${msg}`);
    const isTop = (t: unknown): t is TopFeature[] =>
      Array.isArray(t) && t.every((f) => f !== null && typeof f === 'object' && typeof f.feature === 'string' && isNum(f.error) && isNum(f.share));
    const isMark = (m: unknown): m is WindowMark => {
      if (m === null || typeof m !== 'object') return false;
      const x = m as WindowMark;
      return isNum(x.windowEnd) && isNum(x.score) && isNum(x.threshold) && x.threshold > 0 && (x.topFeatures === undefined || isTop(x.topFeatures));
    };
    if (s === null || typeof s !== 'object' || s.v !== 1) throw bad(`not a version 1 detector state`);
    if (s.model !== this.model) throw bad(`it is for model '${String(s.model)}'`);
    if (!Array.isArray(s.history) || !s.history.every(isMark)) throw bad('history is malformed');
    if (s.clearedAt !== null && !isNum(s.clearedAt)) throw bad('clearedAt is malformed');
    if (s.lastWindowEnd !== null && !isNum(s.lastWindowEnd)) throw bad('lastWindowEnd is malformed');
    if (s.run !== undefined && s.run !== null && (typeof s.run !== 'object' || !isNum(s.run.since) || !isMark(s.run.peak) || !isTop(s.run.peak.topFeatures))) throw bad('run is malformed');
    const o = s.open;
    if (o !== null) {
      if (typeof o !== 'object' || typeof o.id !== 'string' || o.id === '' || !isNum(o.since) || !isNum(o.raisedAt) || !isInt(o.lowRun) || o.lowRun < 0) throw bad('open incident is malformed');
      if (!isMark(o.peak) || !isTop(o.peak.topFeatures)) throw bad('open incident peak is malformed');
    }
    const c = structuredClone(s);
    // A fresh open episode whose run of low windows would already clear it clears on the next low window.
    if (c.open) c.open.lowRun = Math.min(c.open.lowRun, this.clearM - 1);
    this.open = c.open as OpenIncident | null;
    this.history = c.open ? [] : c.history.slice(-this.raiseN);
    this.clearedAt = c.clearedAt;
    this.lastWindowEnd = c.lastWindowEnd;
    this.run = c.open ? null : (c.run ?? null);
  }
}

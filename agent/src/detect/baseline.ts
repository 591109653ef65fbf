/**
 * A model's notion of normal, after training: where each input's level sits. The autoencoder learned
 * normal at the levels of its training data; a machine drifts away from them (ambient, season,
 * wear-in, a new operating point after maintenance) without being faulty. The baseline moves the
 * model's inputs back by a per-input offset, in training ranges (the MinMax-scaled units the model
 * reads), so that the drift does not look like a fault — and refuses to move where a fault could hide
 * (docs/drift.md: the reasoning and the failure modes).
 *
 * Two ways it moves, both bounded by `maxDrift` from the trained levels:
 * - **Follow**: while the model is healthy (no episode open, the window low), each input whose level
 *   has left the training band [0, 1] is followed back to its edge, at most `followPerHour` training
 *   ranges per hour; a level back inside the band lets the offset return to 0 at the same rate. A
 *   step is never followed: it makes the window high first, and nothing moves while a window is high
 *   or an episode is open.
 * - **Settle**: an open episode whose windows have held steady for `settleMs` — every window at most
 *   `settleFraction` × the episode's peak (score ÷ threshold; or the peak of an episode that cleared
 *   less than PEAK_MEMORY × settleMs ago, when higher: a machine that came back most of the way but
 *   not all often re-raises right after a clear), every input's level within
 *   `steadyRange` — is a machine that moved from one steady state to another and stopped. The
 *   baseline then tries the new level as normal: the offsets are set so that the current levels map
 *   onto the levels before the episode. If the windows under the trial offsets are low enough for the
 *   detector to clear within `trialMs`, the episode clears "settled at a new level"; otherwise the
 *   trial is undone (the fault is not a level) and the episode goes on. A fault that keeps growing
 *   never settles: its windows do not stay under a fraction of the peak.
 *
 * How far it has moved (`drift`, the largest |offset|) is published; an offset held at `maxDrift` is a
 * drift episode of its own (kind `drift`), cleared when the drift falls under `DRIFT_CLEAR` × the limit.
 *
 * Pure: window time only, no clock, no I/O. The pipeline (pipeline/model-runtime.ts) feeds it every
 * scored window and subtracts `offsets` from the inputs of the windows it cuts next.
 */
import { topFeatures, type ModelAlert } from '../core/alert.js';
import { DEFAULTS } from '../core/defaults.js';
import type { ModelClearReason } from '../core/payloads.js';
import { defaultId } from './detector.js';

export interface BaselineOptions {
  /** Fastest follow, training ranges per hour; 0: never follows. */
  followPerHour: number;
  /** Window time of healthy windows whose mean levels become the reference the follower holds the inputs at, ms. */
  referenceMs: number;
  /** A level within this many training ranges of the reference is not followed. */
  deadBand: number;
  /** How long an episode must hold steady before its level is tried as the new normal, ms; 0: never. */
  settleMs: number;
  /**
   * How long an episode whose score stopped rising, levels steady, must last before its level is
   * tried as the new normal even at its peak (a step to a new operating point), ms; 0: never.
   */
  holdMs: number;
  /** Steady: every window of the settle span at most this fraction of the episode's peak (0 < f < 1). */
  settleFraction: number;
  /** Steady: every input's window-mean level within this many training ranges over the settle span. */
  steadyRange: number;
  /** How long a settle trial may take to clear the episode before it is undone, ms. */
  trialMs: number;
  /** Largest offset of any input, training ranges (> 0). */
  maxDrift: number;
}

/**
 * The baseline as the daemon runs it: the configuration's keys (`baseline.*`, default
 * DEFAULTS.config.baseline) and the fixed rest (DEFAULTS.component.baseline). Whatever runs "the
 * daemon's detection" (the daemon, evaluate, the benches) takes its options from here.
 */
export function baselineOptions(c: { followPerHour: number; settleMs: number; holdMs: number; maxDrift: number } = DEFAULTS.config.baseline): BaselineOptions {
  return { ...DEFAULTS.component.baseline, followPerHour: c.followPerHour, settleMs: c.settleMs, holdMs: c.holdMs, maxDrift: c.maxDrift };
}

/** The hold rule's "stopped rising": the newest half of the span peaks at most this much above the oldest. */
export const HOLD_RISE = 1.1;

/** How long (× settleMs) a cleared episode's peak still counts for the settle rule of the next one. */
export const PEAK_MEMORY = 5;

/** A drift episode clears when the drift is under this share of the limit. */
export const DRIFT_CLEAR = 0.8;

/**
 * Time constant of the levels remembered from before an episode, ms of window time: long enough that
 * one noisy window does not set them, short enough that they are the levels just before the fault.
 */
export const BEFORE_TAU_MS = 30_000;

/** What the pipeline tells the baseline about one scored window. */
export interface BaselineWindow {
  windowEnd: number;
  /** The window's score ÷ threshold. */
  ratio: number;
  /** Each feature's mean over the window, scaled, before any offset. */
  levels: ArrayLike<number>;
  /** An episode is open (after the detector judged this window). */
  open: boolean;
  /** Peak score ÷ threshold of the open episode. */
  peakRatio: number | null;
  /** The window is low (under the detector's clear level). */
  low: boolean;
}

export class BaselineOptionsError extends RangeError {
  override readonly name = 'BaselineOptionsError';
}

export function validateBaselineOptions(o: BaselineOptions): void {
  const bad = (k: keyof BaselineOptions, rule: string) => new BaselineOptionsError(`baseline: ${k} must be ${rule}, got ${String(o[k])}`);
  const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  if (!num(o.followPerHour) || o.followPerHour < 0) throw bad('followPerHour', 'a number ≥ 0');
  if (!num(o.settleMs) || o.settleMs < 0) throw bad('settleMs', 'a number ≥ 0');
  if (!num(o.holdMs) || o.holdMs < 0) throw bad('holdMs', 'a number ≥ 0');
  if (!num(o.referenceMs) || o.referenceMs < 0) throw bad('referenceMs', 'a number ≥ 0');
  if (!num(o.deadBand) || o.deadBand < 0) throw bad('deadBand', 'a number ≥ 0');
  if (!num(o.settleFraction) || o.settleFraction <= 0 || o.settleFraction >= 1) throw bad('settleFraction', 'in (0, 1)');
  if (!num(o.steadyRange) || o.steadyRange <= 0) throw bad('steadyRange', 'a number > 0');
  if (!num(o.trialMs) || o.trialMs <= 0) throw bad('trialMs', 'a number > 0');
  if (!num(o.maxDrift) || o.maxDrift <= 0) throw bad('maxDrift', 'a number > 0');
}

interface SpanEntry {
  windowEnd: number;
  ratio: number;
  levels: Float64Array;
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

export class Baseline {
  /** Subtracted from each feature's scaled value before the model reads it. */
  readonly offsets: Float64Array;
  private readonly n: number;
  /** Each feature's level before the episode, as the model saw it (after the offset). */
  private readonly before: Float64Array;
  private haveBefore = false;
  /** The levels the follower holds the inputs at: the mean of the first referenceMs of healthy windows. */
  private readonly reference: Float64Array;
  private referenceSum: Float64Array;
  private referenceWindows = 0;
  private referenceMsSeen = 0;
  /** Windows of the open episode within the settle span, oldest first. */
  private span: SpanEntry[] = [];
  /** Windows of the open episode within the hold span, oldest first. */
  private hold: SpanEntry[] = [];
  private trial: { since: number; undo: Float64Array } | null = null;
  private lastWindowEnd: number | null = null;
  /** The last cleared episode: when, and its peak score ÷ threshold. */
  private lastEpisode: { clearedAt: number; peakRatio: number } | null = null;
  private drifting: { id: string; since: number } | null = null;
  /** How many times the baseline accepted a settled level; undone trials are not counted. */
  settles = 0;

  /** The drift limit. */
  get maxDrift(): number {
    return this.o.maxDrift;
  }

  constructor(
    private readonly model: string,
    readonly features: readonly string[],
    private readonly o: BaselineOptions,
  ) {
    validateBaselineOptions(o);
    this.n = features.length;
    this.offsets = new Float64Array(this.n);
    this.before = new Float64Array(this.n);
    this.reference = new Float64Array(this.n);
    this.referenceSum = new Float64Array(this.n);
  }

  /** How far the baseline has moved from the trained levels: the largest |offset|, training ranges. */
  get drift(): number {
    let d = 0;
    for (let j = 0; j < this.n; j++) d = Math.max(d, Math.abs(this.offsets[j]!));
    return d;
  }

  /** What a clear at the next window means: a settle trial is under way, or the windows are simply back. */
  get clearReason(): ModelClearReason {
    return this.trial ? 'settled at a new level' : 'back to normal';
  }

  /** The window stream broke: the steadiness seen so far proves nothing about what comes next. */
  reset(): void {
    this.span = [];
    this.hold = [];
  }

  /**
   * Learns from one scored window, after the detector judged it; `clearedPeakRatio` is the peak score
   * ÷ threshold of the episode this window cleared, if it cleared one. Returns a drift alert when the
   * drift crosses its limit either way.
   */
  observe(w: BaselineWindow, clearedPeakRatio: number | null = null): ModelAlert | null {
    const dt = this.lastWindowEnd === null ? 0 : Math.max(0, w.windowEnd - this.lastWindowEnd);
    this.lastWindowEnd = w.windowEnd;

    if (clearedPeakRatio !== null) {
      this.lastEpisode = { clearedAt: w.windowEnd, peakRatio: clearedPeakRatio };
      if (this.trial) this.settles++;
      this.trial = null;
      this.span = [];
      this.hold = [];
    } else if (w.open) {
      this.duringEpisode(w);
    } else {
      this.span = [];
      this.hold = [];
      if (w.low) this.follow(w, dt);
    }
    return this.driftAlert(w.windowEnd);
  }

  private follow(w: BaselineWindow, dt: number): void {
    const a = this.haveBefore ? Math.min(1, dt / BEFORE_TAU_MS) : 1;
    for (let j = 0; j < this.n; j++) this.before[j] += a * (w.levels[j]! - this.offsets[j]! - this.before[j]!);
    this.haveBefore = true;
    if (this.referenceMsSeen < this.o.referenceMs || this.referenceWindows === 0) {
      this.referenceWindows++;
      this.referenceMsSeen += dt;
      for (let j = 0; j < this.n; j++) {
        this.referenceSum[j] += w.levels[j]! - this.offsets[j]!;
        this.reference[j] = this.referenceSum[j]! / this.referenceWindows;
      }
      return;
    }
    const step = (this.o.followPerHour * dt) / 3_600_000;
    for (let j = 0; j < this.n; j++) {
      // The offset that holds the (smoothed) level within deadBand of the reference.
      const dev = this.before[j]! + this.offsets[j]! - this.reference[j]!;
      const target = clamp(Math.sign(dev) * Math.max(0, Math.abs(dev) - this.o.deadBand), -this.o.maxDrift, this.o.maxDrift);
      const off = this.offsets[j]!;
      this.offsets[j] = off + clamp(target - off, -step, step);
    }
  }

  private duringEpisode(w: BaselineWindow): void {
    if (this.trial) {
      if (w.windowEnd - this.trial.since > this.o.trialMs) {
        // The new level did not make the windows normal: what is wrong is not a level. Undo.
        this.offsets.set(this.trial.undo);
        this.trial = null;
        this.span = [];
        this.hold = [];
      }
      return;
    }
    if (!this.haveBefore || w.peakRatio === null) return;
    const entry = { windowEnd: w.windowEnd, ratio: w.ratio, levels: Float64Array.from(w.levels) };
    const mean = this.settled(w, entry) ?? this.held(entry);
    if (!mean) return;
    const undo = Float64Array.from(this.offsets);
    for (let j = 0; j < this.n; j++) this.offsets[j] = clamp(mean[j]! - this.before[j]!, -this.o.maxDrift, this.o.maxDrift);
    this.trial = { since: w.windowEnd, undo };
    this.span = [];
    this.hold = [];
  }

  /** The settle rule: settleMs of windows under settleFraction × the peak, levels steady. Their mean levels, or null. */
  private settled(w: BaselineWindow, entry: SpanEntry): Float64Array | null {
    if (this.o.settleMs === 0) return null;
    const recent = this.lastEpisode && w.windowEnd - this.lastEpisode.clearedAt <= PEAK_MEMORY * this.o.settleMs ? this.lastEpisode.peakRatio : 0;
    const limit = this.o.settleFraction * Math.max(w.peakRatio!, recent);
    if (w.ratio > limit) {
      this.span = [];
      return null;
    }
    return this.steadyOver(this.span, entry, this.o.settleMs);
  }

  /**
   * The hold rule: holdMs of windows whose score stopped rising (the newest half of the span peaks no
   * higher than HOLD_RISE × the oldest half), levels steady. A step to a new operating point
   * scores at its peak for as long as it lasts; this is what ends such an episode.
   */
  private held(entry: SpanEntry): Float64Array | null {
    if (this.o.holdMs === 0) return null;
    const mean = this.steadyOver(this.hold, entry, this.o.holdMs);
    if (!mean) return null;
    const mid = this.hold[0]!.windowEnd + (entry.windowEnd - this.hold[0]!.windowEnd) / 2;
    let early = 0;
    let late = 0;
    for (const e of this.hold) {
      if (e.windowEnd < mid) early = Math.max(early, e.ratio);
      else late = Math.max(late, e.ratio);
    }
    return late <= HOLD_RISE * early ? mean : null;
  }

  /**
   * Adds `entry` to `span`, keeps the windows of the last `ms` (and the one just older: it proves the
   * span is full); when the span is full and every input's level stayed within steadyRange, the mean
   * levels over it, else null.
   */
  private steadyOver(span: SpanEntry[], entry: SpanEntry, ms: number): Float64Array | null {
    span.push(entry);
    while (span.length > 2 && entry.windowEnd - span[1]!.windowEnd >= ms) span.shift();
    if (entry.windowEnd - span[0]!.windowEnd < ms) return null;
    const mean = new Float64Array(this.n);
    for (let j = 0; j < this.n; j++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const e of span) {
        lo = Math.min(lo, e.levels[j]!);
        hi = Math.max(hi, e.levels[j]!);
        mean[j]! += e.levels[j]! / span.length;
      }
      if (hi - lo > this.o.steadyRange) return null;
    }
    return mean;
  }

  private driftAlert(windowEnd: number): ModelAlert | null {
    const drift = this.drift;
    const base = { kind: 'drift' as const, model: this.model, score: drift, threshold: this.o.maxDrift, topFeatures: this.moved(), windowEnd };
    if (!this.drifting && drift >= this.o.maxDrift) {
      this.drifting = { id: defaultId(`${this.model}-drift`), since: windowEnd };
      return { ...base, id: this.drifting.id, state: 'raised', since: windowEnd };
    }
    if (this.drifting && drift < DRIFT_CLEAR * this.o.maxDrift) {
      const { id, since } = this.drifting;
      this.drifting = null;
      return { ...base, id, state: 'cleared', since, reason: 'back within limit' };
    }
    return null;
  }

  /** The inputs that moved most, as top features: |offset| and its share of the total. */
  private moved() {
    return topFeatures(Object.fromEntries(this.features.map((feature, j) => [feature, Math.abs(this.offsets[j]!)]))).filter((f) => f.error > 0);
  }
}

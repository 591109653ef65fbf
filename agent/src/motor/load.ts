/**
 * Mechanical load on the motor as a fraction of rated torque (0..1+).
 *
 * A motor on a conveyor, pump or fan does not run at one operating point: the process changes
 * every few minutes (a batch starts, a valve moves). `LoadSchedule` produces that: holds of
 * 2–6 minutes at a level drawn from [min, max], joined by either a step (a clutch engages) or a
 * ramp of 10–90 s (a valve or a VFD setpoint moves). It is built lazily from its own seeded
 * stream, so it can be queried for as long as the simulation runs.
 */
import { Rng } from '../core/rng.js';

export interface LoadScheduleOptions {
  /** Lowest / highest load level, fraction of rated. Defaults 0.3 / 1.0. */
  min?: number;
  max?: number;
  /** Hold duration range between changes, ms. Defaults 2–6 min. */
  holdMinMs?: number;
  holdMaxMs?: number;
  /** Longest ramp, ms (ramps are 10 s .. this). Default 90 s. */
  rampMaxMs?: number;
  /** Probability that a change is a step rather than a ramp. Default 0.4. */
  stepProbability?: number;
}

/** One change: load goes linearly from `from` at t0 to `to` at t1 (t1 = t0 for a step), then holds. */
export interface LoadSegment {
  t0: number;
  t1: number;
  from: number;
  to: number;
}

export class LoadSchedule {
  private readonly rng: Rng;
  private readonly o: Required<LoadScheduleOptions>;
  /** Segments in time order; the last one holds until the next is generated. */
  readonly segments: LoadSegment[] = [];
  private nextChangeMs: number;
  private cursor = 0;

  constructor(seed: number, startMs: number, options: LoadScheduleOptions = {}) {
    this.rng = new Rng(seed);
    this.o = {
      min: options.min ?? 0.3,
      max: options.max ?? 1.0,
      holdMinMs: options.holdMinMs ?? 120_000,
      holdMaxMs: options.holdMaxMs ?? 360_000,
      rampMaxMs: options.rampMaxMs ?? 90_000,
      stepProbability: options.stepProbability ?? 0.4,
    };
    const first = this.rng.range(this.o.min, this.o.max);
    this.segments.push({ t0: startMs, t1: startMs, from: first, to: first });
    // The first change comes after a partial hold, so files cut at startMs do not all begin with
    // a full hold.
    this.nextChangeMs = startMs + this.rng.range(0.3, 1) * this.rng.range(this.o.holdMinMs, this.o.holdMaxMs);
  }

  /** Initial level (the simulator settles its thermal state for it). */
  get initial(): number {
    return (this.segments[0] as LoadSegment).to;
  }

  private extendTo(tMs: number): void {
    while (this.nextChangeMs <= tMs) {
      const prev = this.segments[this.segments.length - 1] as LoadSegment;
      const from = prev.to;
      // Draw a level that differs noticeably from the current one: a "change" of 2 % is not one.
      let to = this.rng.range(this.o.min, this.o.max);
      if (Math.abs(to - from) < 0.1 * (this.o.max - this.o.min)) {
        to = from + (to >= from ? 1 : -1) * 0.25 * (this.o.max - this.o.min);
        to = Math.min(this.o.max, Math.max(this.o.min, to));
      }
      const isStep = this.rng.next() < this.o.stepProbability;
      const rampMs = isStep ? 0 : this.rng.range(10_000, this.o.rampMaxMs);
      const t0 = this.nextChangeMs;
      this.segments.push({ t0, t1: t0 + rampMs, from, to });
      this.nextChangeMs = t0 + rampMs + this.rng.range(this.o.holdMinMs, this.o.holdMaxMs);
    }
  }

  /** Load at tMs. Efficient for non-decreasing queries; correct for any tMs ≥ start. */
  at(tMs: number): number {
    this.extendTo(tMs);
    if (this.cursor >= this.segments.length || (this.segments[this.cursor] as LoadSegment).t0 > tMs) this.cursor = 0;
    while (this.cursor + 1 < this.segments.length && (this.segments[this.cursor + 1] as LoadSegment).t0 <= tMs) {
      this.cursor++;
    }
    return segmentValue(this.segments[this.cursor] as LoadSegment, tMs);
  }
}

export function segmentValue(s: LoadSegment, tMs: number): number {
  if (tMs >= s.t1) return s.to;
  if (tMs <= s.t0) return s.from;
  return s.from + ((s.to - s.from) * (tMs - s.t0)) / (s.t1 - s.t0);
}

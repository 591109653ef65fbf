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
  /**
   * A lighter night shift: levels of changes that fall between `fromHour` and `toHour` (hour of the
   * day, UTC of the simulation's clock; fromHour > toHour wraps past midnight) lie in [min, max] of
   * this band instead. Off by default, so the dataset's schedules are unchanged.
   */
  night?: LoadBand;
}

export interface LoadBand {
  min: number;
  max: number;
  fromHour: number;
  toHour: number;
}

const DAY_MS = 86_400_000;

/** Is tMs within [fromHour, toHour) of its UTC day (wrapping past midnight when fromHour > toHour)? */
export function inHours(tMs: number, fromHour: number, toHour: number): boolean {
  const h = ((((tMs % DAY_MS) + DAY_MS) % DAY_MS) / 3_600_000);
  return fromHour <= toHour ? h >= fromHour && h < toHour : h >= fromHour || h < toHour;
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
  private readonly o: Required<Omit<LoadScheduleOptions, 'night'>>;
  private readonly night: LoadBand | undefined;
  /** The last level as drawn in [min, max], before a night band maps it. */
  private lastDraw: number;
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
    this.night = options.night;
    if (this.night && !(this.night.min >= 0 && this.night.max >= this.night.min)) {
      throw new RangeError(`load schedule: night band needs 0 ≤ min ≤ max, got ${this.night.min}..${this.night.max}`);
    }
    this.lastDraw = this.rng.range(this.o.min, this.o.max);
    const first = this.level(this.lastDraw, startMs);
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
      const drawnFrom = this.lastDraw;
      // Draw a level that differs noticeably from the current one: a "change" of 2 % is not one.
      let to = this.rng.range(this.o.min, this.o.max);
      if (Math.abs(to - drawnFrom) < 0.1 * (this.o.max - this.o.min)) {
        to = drawnFrom + (to >= drawnFrom ? 1 : -1) * 0.25 * (this.o.max - this.o.min);
        to = Math.min(this.o.max, Math.max(this.o.min, to));
      }
      this.lastDraw = to;
      const isStep = this.rng.next() < this.o.stepProbability;
      const rampMs = isStep ? 0 : this.rng.range(10_000, this.o.rampMaxMs);
      const t0 = this.nextChangeMs;
      this.segments.push({ t0, t1: t0 + rampMs, from, to: this.level(to, t0) });
      this.nextChangeMs = t0 + rampMs + this.rng.range(this.o.holdMinMs, this.o.holdMaxMs);
    }
  }

  /** A level drawn in [min, max], moved into the night band when tMs is in the night hours. */
  private level(drawn: number, tMs: number): number {
    const n = this.night;
    if (!n || !inHours(tMs, n.fromHour, n.toHour)) return drawn;
    if (this.o.max === this.o.min) return n.min;
    return n.min + ((drawn - this.o.min) / (this.o.max - this.o.min)) * (n.max - n.min);
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

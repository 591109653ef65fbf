/**
 * Windower: turns the per-sensor rings into the model's input windows (DESIGN.md, data flow:
 * SensorBuffer → Windower → Scorer). One per model.
 *
 * The alignment rule — the device's counterpart of preprocess/sequences.ts, so a model sees here
 * the rows it was trained on:
 * - Rows sit on the grid g = k·periodMs (absolute epoch multiples of the period), so every model
 *   with the same period samples the same instants, whatever the sensors' own rates and phases.
 * - The value of a feature at g is the newest sample of its sensor with t ≤ g (held, never
 *   interpolated: interpolation would invent readings the sensor never made).
 * - Row g is formed only once every sensor the model needs has a sample with t ≥ g; samples arrive
 *   in time order per sensor (SensorBuffer enforces it), so the value held at g can no longer change.
 *   The first row is the first grid point at or after the first sample of the latest-starting
 *   sensor: a sensor that has never reported blocks the start.
 * - A gap breaks the aligned history (no invented data), two ways, both with "longer than
 *   maxGapMs" — exactly maxGapMs is still fine:
 *   · age: at g, a sensor's held sample is older than maxGapMs (g − t > maxGapMs). Row g is stale:
 *     it is dropped, the history is cleared, and g jumps to the first grid point at or after
 *     that sensor's next sample (every point in between would be stale too).
 *   · step: two consecutive samples of a needed sensor are more than maxGapMs apart. This is the
 *     training rule itself (makeWindows cuts where consecutive rows are > maxGapMs apart); the age
 *     test alone would let through steps up to maxGapMs + periodMs, because grid points only see
 *     the age at multiples of the period. The history is cleared and the row that holds the sample
 *     after the step becomes the first row of a new run.
 *   A run of stale rows and the step that ends it count as one gap.
 * - Counting restarts with each run: the first window ends at the run's seqLen-th row, then one
 *   every `hop` rows — the same offsets (0, hop, 2·hop, …) makeWindows uses inside a segment.
 *   Hence for a series already on the grid without gaps (a seed CSV replayed sample by sample)
 *   the windows are exactly makeWindows' windows: same rows, same scaled values, same offsets.
 * - If a ring overwrote samples this windower had not read yet (the ring is too small for the lag
 *   between pushes and advance), continuity cannot be vouched for: the history is cleared, a row
 *   whose held value is gone is dropped, and `overruns` (not `gaps`: the data had none) counts it.
 *   Size each ring for the longest lag between a push and the advance that reads it.
 *
 * Alignment depends only on sample timestamps, never on the wall clock, so replaying a CSV at any
 * speed and sampling live give the same windows.
 *
 * Cost: advance walks each needed sensor's new samples once (a cursor per sensor, by sequence
 * number; O(1) amortised per sample) and writes f values per aligned row; nothing is allocated
 * after construction — the window handed to onWindow is a preallocated view.
 */
import { checkScaler, offsetOf, scaleOf, type MinMaxScaler } from '../preprocess/scaler.js';
import type { SensorBuffer } from './ring.js';

/**
 * One model input. REUSED: `x` is a view into the windower's own buffer and this object is the same
 * every call, both valid only during the onWindow callback — a consumer that keeps the data (the
 * scorer batching windows) copies `x` out before returning.
 */
export interface AlignedWindow {
  /** seqLen × f scaled values, row-major, oldest row first, features in model-input order. */
  readonly x: Float32Array;
  /** Grid time of the first row (ms epoch). */
  startT: number;
  /** Grid time of the last row (ms epoch). */
  endT: number;
}

export interface WindowerOptions {
  /** Channel names in model-input order (the bundle's `features`). */
  features: readonly string[];
  /** Channel → where it lives (core/sample.ts channelIndex). */
  channels: ReadonlyMap<string, { sensor: string; index: number }>;
  /** Sensor → its ring. */
  buffers: ReadonlyMap<string, SensorBuffer>;
  periodMs: number;
  seqLen: number;
  hop: number;
  maxGapMs: number;
  /** The bundle's scaler; its features must equal `features`. */
  scaler: MinMaxScaler;
  /** Called synchronously from advance for each window due; see AlignedWindow for its lifetime. */
  onWindow: (w: AlignedWindow) => void;
}

export class Windower {
  readonly features: readonly string[];
  readonly periodMs: number;
  readonly seqLen: number;
  readonly hop: number;
  readonly maxGapMs: number;

  private readonly onWindow: (w: AlignedWindow) => void;
  /** Distinct sensors the model reads, and per sensor: cursor (seq of the held sample) and its time. */
  private readonly bufs: SensorBuffer[];
  private readonly cursor: Float64Array;
  private readonly heldT: Float64Array;
  /** Per feature: index into bufs, channel in that sensor's row, and the scaler's a, b (x·a + b). */
  private readonly featSensor: Int32Array;
  private readonly featChannel: Int32Array;
  private readonly scale: Float64Array;
  private readonly offset: Float64Array;
  /**
   * Aligned scaled rows, 2·seqLen × f: row r goes to slot r mod seqLen AND to slot + seqLen, so the
   * last seqLen rows are always contiguous (starting at the oldest slot) and a window is a view,
   * not a copy. One view per start slot, made once.
   */
  private readonly rowsBuf: Float32Array;
  private readonly views: Float32Array[];
  private readonly window: { x: Float32Array; startT: number; endT: number };

  private started = false;
  /** Grid index of the next row to form: g = k·periodMs. */
  private k = 0;
  /** Slot the next row is written to. */
  private slot = 0;
  /** Rows still to form before the next window is due. */
  private untilNext: number;
  /** The previous grid row was stale (so a step ending the same gap is not counted twice). */
  private inGap = false;
  /** No row before this time (see resumeAfter). */
  private resumeT = -Infinity;
  private resumedAfter = NaN;

  private windows_ = 0;
  private gaps_ = 0;
  private overruns_ = 0;
  private rows_ = 0;

  constructor(o: WindowerOptions) {
    for (const key of ['seqLen', 'hop'] as const) {
      if (!Number.isInteger(o[key]) || o[key] < 1) throw new RangeError(`windower: ${key} must be a positive integer, got ${o[key]}`);
    }
    if (!(o.periodMs > 0) || !Number.isFinite(o.periodMs)) throw new RangeError(`windower: periodMs must be a positive number, got ${o.periodMs}`);
    if (!(o.maxGapMs > 0)) throw new RangeError(`windower: maxGapMs must be > 0, got ${o.maxGapMs}`);
    if (o.features.length === 0) throw new Error('windower: no features');
    if (new Set(o.features).size !== o.features.length) throw new Error(`windower: duplicate feature in [${o.features.join(', ')}]`);
    // Throws with the differing lists when the scaler was fitted for other features or order.
    checkScaler(o.scaler, o.features);

    const f = o.features.length;
    this.features = [...o.features];
    this.periodMs = o.periodMs;
    this.seqLen = o.seqLen;
    this.hop = o.hop;
    this.maxGapMs = o.maxGapMs;
    this.onWindow = o.onWindow;

    this.bufs = [];
    this.featSensor = new Int32Array(f);
    this.featChannel = new Int32Array(f);
    o.features.forEach((name, j) => {
      const where = o.channels.get(name);
      if (where === undefined) throw new Error(`windower: feature '${name}' is not a channel of any configured sensor`);
      const buf = o.buffers.get(where.sensor);
      if (buf === undefined) throw new Error(`windower: feature '${name}' needs sensor '${where.sensor}', which has no buffer`);
      if (!(where.index >= 0 && where.index < buf.channels)) {
        throw new RangeError(`windower: feature '${name}' is channel ${where.index} of sensor '${where.sensor}', whose buffer has ${buf.channels} channels`);
      }
      let s = this.bufs.indexOf(buf);
      if (s < 0) s = this.bufs.push(buf) - 1;
      this.featSensor[j] = s;
      this.featChannel[j] = where.index;
    });
    this.cursor = new Float64Array(this.bufs.length);
    this.heldT = new Float64Array(this.bufs.length);
    // The scaler module's own numbers, so a row is scaled with exactly the arithmetic of transform().
    this.scale = Float64Array.from(scaleOf(o.scaler));
    this.offset = Float64Array.from(offsetOf(o.scaler));

    this.rowsBuf = new Float32Array(2 * o.seqLen * f);
    this.views = [];
    for (let s = 0; s < o.seqLen; s++) this.views.push(this.rowsBuf.subarray(s * f, (s + o.seqLen) * f));
    this.window = { x: this.views[0]!, startT: NaN, endT: NaN };
    this.untilNext = o.seqLen;
  }

  /** Windows emitted so far. */
  get windows(): number {
    return this.windows_;
  }
  /** Gaps (longer than maxGapMs) that broke the aligned history. */
  get gaps(): number {
    return this.gaps_;
  }
  /** Times a ring overwrote samples before this windower read them. */
  get overruns(): number {
    return this.overruns_;
  }
  /** Aligned rows formed so far (stale grid points excluded). */
  get rows(): number {
    return this.rows_;
  }
  /**
   * Grid time of the last window's last row (ms epoch); before the first window, the `lastEndT` it
   * was resumed after, else NaN.
   */
  get lastWindowEnd(): number {
    return this.windows_ > 0 ? this.window.endT : this.resumedAfter;
  }

  /**
   * Carries on the window stream of the windower this one replaces (a bundle reloaded on SIGHUP):
   * the first window ends one hop after `lastEndT`, the end of the last window the other one
   * emitted, so no window is scored twice and none is skipped. If the rings no longer hold that far
   * back, it starts at the oldest row held, as a new windower does. Call before the first advance.
   */
  resumeAfter(lastEndT: number): void {
    if (this.started) throw new Error('windower: resumeAfter() after the first advance()');
    if (!Number.isFinite(lastEndT)) return;
    this.resumedAfter = lastEndT;
    this.resumeT = lastEndT + (this.hop - this.seqLen + 1) * this.periodMs;
  }

  /** Grid time of the next row to form; NaN until every needed sensor has reported. */
  get nextT(): number {
    return this.started ? this.k * this.periodMs : NaN;
  }

  /**
   * Form every grid row the buffers now allow and call onWindow for each window due; returns the
   * number of windows emitted. Call it after pushing new samples. It takes no "now": alignment
   * depends on sample timestamps only (see top), and an epoch-ms argument would itself be boxed
   * (allocated) on every call. Safe to call as often as wanted; with nothing new it returns at once.
   * If onWindow throws, the error propagates after the windower's state is already consistent,
   * so the next call carries on where this one stopped.
   */
  advance(): number {
    const nS = this.bufs.length;
    const P = this.periodMs;
    const maxGap = this.maxGapMs;
    // Rows up to the newest sample of the least advanced sensor are final.
    // (Times are read straight from the rings' typed arrays with integer slots: see SensorBuffer.times.)
    let minLatest = Infinity;
    for (let s = 0; s < nS; s++) {
      const b = this.bufs[s]!;
      if (b.size === 0) return 0;
      minLatest = Math.min(minLatest, b.times[b.slotOfSeq(b.pushed - 1)]!);
    }

    if (!this.started) {
      let t0 = -Infinity;
      for (let s = 0; s < nS; s++) t0 = Math.max(t0, this.bufs[s]!.oldestT); // once: may allocate
      t0 = Math.max(t0, this.resumeT);
      this.k = Math.ceil(t0 / P);
      for (let s = 0; s < nS; s++) {
        // Just before the sample held at the first row, with no held time: what came before the
        // first row is no gap of ours (the history is empty anyway), so no step is checked.
        const b = this.bufs[s]!;
        this.cursor[s] = b.first + b.indexAtOrBefore(this.k * P) - 1;
        this.heldT[s] = NaN;
      }
      this.started = true;
    }

    let emitted = 0;
    for (;;) {
      const kg = this.k;
      const g = kg * P;
      if (g > minLatest) break;
      let nextK = kg + 1;
      let stale = false;
      let stepGap = false;
      let overrun = false;
      let dropped = false;
      for (let s = 0; s < nS; s++) {
        const b = this.bufs[s]!;
        let c = this.cursor[s]!;
        let ht = this.heldT[s]!;
        const end = b.pushed;
        // Walk this sensor's samples up to g, checking every step on the way (the step rule).
        while (c + 1 < end) {
          if (c + 1 < b.first) {
            // Overwritten before we read it: restart from the oldest sample held, time unknown.
            overrun = true;
            c = b.first - 1;
            ht = NaN;
            continue;
          }
          const tn = b.times[b.slotOfSeq(c + 1)]!;
          if (tn > g) break;
          if (tn - ht > maxGap) stepGap = true; // NaN (no previous) compares false
          ht = tn;
          c++;
        }
        this.cursor[s] = c;
        this.heldT[s] = ht;
        // The value held at g was overwritten, or every sample still held is after g: no value.
        const lost = c < b.first;
        if (lost) overrun = true;
        if (lost || !(g - ht <= maxGap)) {
          if (lost) dropped = true;
          else stale = true; // the age rule
          // A later sample exists (latestT ≥ g > ht): grid points before it hold the same value.
          const kNext = Math.ceil(b.times[b.slotOfSeq(c + 1)]! / P);
          if (kNext > nextK) nextK = kNext;
        }
      }
      this.k = nextK;
      if (overrun) this.overruns_++;
      if (stale || dropped) {
        // The row is not formed; the history restarts after it.
        if (stale) {
          if (!this.inGap) this.gaps_++;
          this.inGap = true;
        }
        this.untilNext = this.seqLen;
        continue;
      }
      if (stepGap && !this.inGap) this.gaps_++;
      if (stepGap || overrun) this.untilNext = this.seqLen;
      this.inGap = false;

      this.writeRow();
      this.rows_++;
      if (--this.untilNext === 0) {
        this.untilNext = this.hop;
        const w = this.window;
        // The slot about to be overwritten next holds the oldest of the last seqLen rows.
        w.x = this.views[this.slot]!;
        w.endT = g;
        w.startT = (kg - this.seqLen + 1) * P;
        this.windows_++;
        emitted++;
        this.onWindow(w);
      }
    }
    return emitted;
  }

  /** Scale the held values at the current cursors into the next slot (and its mirror). */
  private writeRow(): void {
    const f = this.features.length;
    const lo = this.slot * f;
    const hi = lo + this.seqLen * f;
    for (let j = 0; j < f; j++) {
      const s = this.featSensor[j]!;
      // Same expression as preprocess/scaler.ts transform(): float64 x·scale + offset, rounded to float32 on store.
      const b = this.bufs[s]!;
      const v = b.values[b.slotOfSeq(this.cursor[s]!) * b.channels + this.featChannel[j]!]! * this.scale[j]! + this.offset[j]!;
      this.rowsBuf[lo + j] = v;
      this.rowsBuf[hi + j] = v;
    }
    this.slot = this.slot + 1 === this.seqLen ? 0 : this.slot + 1;
  }
}

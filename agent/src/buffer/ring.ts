/**
 * SensorBuffer: the recent history of one sensor (DESIGN.md, data flow: source → SensorBuffer).
 *
 * A preallocated ring of `capacity` rows. Timestamps live in one Float64Array, values in another,
 * row-major (`channels` values per row). Nothing is allocated after construction — a Raspberry Pi
 * sampling vibration at kHz rates must not feed the garbage collector once per sample — so a bad
 * sample is the only thing that costs an allocation (the thrown error). ring.test.ts checks this
 * by counting garbage collections over 1e6 pushes with epoch-ms times.
 *
 * Two ways to name a row:
 * - logical index `i` in [0, size): 0 is the oldest row still held, size − 1 the newest;
 * - sequence number `seq`: the row's position among all samples ever accepted (0 for the first).
 *   It never changes while the row is held, so a reader (the Windower) can keep a cursor across
 *   pushes and notice when the ring has overwritten rows it has not read yet (`seq < first`).
 *   `seq = first + i`.
 *
 * Complexity: push O(channels); every accessor O(1) (slotOf/slotOfSeq + `times`/`values` are the
 * allocation-free way to read in hot loops); indexAtOrBefore O(log size);
 * forEachAfter O(log size + k) for k rows visited. Memory: capacity × (channels + 1) × 8 bytes.
 */

/** Why a sample was refused; the caller counts rejections by reason and drops the sample. */
export type RejectReason = 'arity' | 'non-finite' | 'out-of-order';

/** Thrown by SensorBuffer.push; the buffer is unchanged when it is thrown. */
export class SampleRejectedError extends Error {
  override readonly name = 'SampleRejectedError';
  constructor(
    readonly sensor: string,
    readonly reason: RejectReason,
    readonly t: number,
    detail: string,
  ) {
    super(`sensor '${sensor}': sample at t=${t} rejected (${reason}): ${detail}`);
  }
}

/** push's check codes (numbers, not strings, on the hot path; see push). */
const ARITY = 1;
const BAD_TIME = 2;
const BAD_VALUE = 3;
const OUT_OF_ORDER = 4;

export interface SensorBufferOptions {
  /** Sensor name, used in error messages. */
  sensor: string;
  /** Values per row (the sensor's channel count). */
  channels: number;
  /** Rows held; the oldest row is overwritten when full. */
  capacity: number;
}

export class SensorBuffer {
  readonly sensor: string;
  readonly channels: number;
  readonly capacity: number;
  /**
   * Raw storage by ring slot (see slotOf/slotOfSeq): times[slot], values[slot·channels + ch].
   * READ-ONLY for callers. Exposed for hot loops (the Windower): an epoch-ms time is beyond the
   * small-integer range, so returning it from a call V8 does not inline boxes it — an allocation
   * per read. Reading the typed array directly, with an integer slot from slotOfSeq, never does.
   */
  readonly times: Float64Array;
  readonly values: Float64Array;
  /** Slot the next push writes. */
  private head = 0;
  private count_ = 0;
  /** Total rows ever accepted (= sequence number of the next push). */
  private total = 0;

  constructor(o: SensorBufferOptions) {
    if (!Number.isInteger(o.channels) || o.channels < 1) throw new RangeError(`SensorBuffer '${o.sensor}': channels must be a positive integer, got ${o.channels}`);
    if (!Number.isInteger(o.capacity) || o.capacity < 1) throw new RangeError(`SensorBuffer '${o.sensor}': capacity must be a positive integer, got ${o.capacity}`);
    this.sensor = o.sensor;
    this.channels = o.channels;
    this.capacity = o.capacity;
    this.times = new Float64Array(o.capacity);
    this.values = new Float64Array(o.capacity * o.channels);
  }

  /** Rows held now (≤ capacity). */
  get size(): number {
    return this.count_;
  }

  /** Sequence number of the oldest row held (= number of rows overwritten so far). */
  get first(): number {
    return this.total - this.count_;
  }

  /** Rows ever accepted; also the sequence number the next push will get. */
  get pushed(): number {
    return this.total;
  }

  /** Time of the newest row; −Infinity while empty (so `latestT >= t` is simply false). */
  get latestT(): number {
    return this.count_ === 0 ? -Infinity : this.times[this.head === 0 ? this.capacity - 1 : this.head - 1]!;
  }

  /** Time of the oldest row held; +Infinity while empty. */
  get oldestT(): number {
    return this.count_ === 0 ? Infinity : this.times[this.slot(0)]!;
  }

  /**
   * Append one row, copying `values` (so the caller may reuse its array). Throws
   * SampleRejectedError — leaving the buffer untouched — if the arity is wrong, t or a value is
   * not finite, or t is not strictly after the newest row (time order is what makes the binary
   * search and the Windower's cursors valid).
   */
  push(t: number, values: ArrayLike<number>): void {
    const c = this.channels;
    // Validate everything before writing anything: a full ring's head slot is its oldest row,
    // which must survive a rejected sample. The checks only compute a code, and one cold call
    // builds the error: with several throw sites each using `t`, V8 boxes `t` once ahead of all of
    // them — on every push, an allocation (measured; ring.test.ts rejects samples before its
    // allocation test so that this stays true).
    let why = 0;
    if (values.length !== c) why = ARITY;
    else if (!Number.isFinite(t)) why = BAD_TIME;
    else {
      for (let k = 0; k < c; k++) {
        if (!Number.isFinite(values[k])) {
          why = BAD_VALUE;
          break;
        }
      }
      if (why === 0 && this.count_ > 0 && !(t > this.latestT)) why = OUT_OF_ORDER;
    }
    if (why !== 0) this.reject(why, t, values);
    const h = this.head;
    this.times[h] = t;
    const base = h * c;
    for (let k = 0; k < c; k++) this.values[base + k] = values[k]!;
    this.head = h + 1 === this.capacity ? 0 : h + 1;
    if (this.count_ < this.capacity) this.count_++;
    this.total++;
  }

  /** Time of the row at logical index i (0 = oldest held). */
  timeAt(i: number): number {
    this.check(i);
    return this.times[this.slot(i)]!;
  }

  /** Value of channel ch of the row at logical index i (0 = oldest held). */
  valueAt(i: number, ch: number): number {
    this.check(i);
    if (!(ch >= 0 && ch < this.channels)) throw new RangeError(`SensorBuffer '${this.sensor}': channel ${ch} outside [0, ${this.channels})`);
    return this.values[this.slot(i) * this.channels + ch]!;
  }

  /** Time of the row with sequence number seq (must be held: first ≤ seq < pushed). */
  timeAtSeq(seq: number): number {
    return this.timeAt(seq - this.first);
  }

  /** Value of channel ch of the row with sequence number seq (must be held). */
  valueAtSeq(seq: number, ch: number): number {
    return this.valueAt(seq - this.first, ch);
  }

  /** Ring slot of the row at logical index i (checked); index `times`/`values` with it. */
  slotOf(i: number): number {
    this.check(i);
    return this.slot(i);
  }

  /** Ring slot of the row with sequence number seq (checked: first ≤ seq < pushed). */
  slotOfSeq(seq: number): number {
    return this.slotOf(seq - this.first);
  }

  /** Logical index counted from the newest row: age 0 is the newest, size − 1 the oldest. */
  indexOfAge(age: number): number {
    return this.count_ - 1 - age;
  }

  /**
   * Logical index of the newest row with time ≤ t, or −1 if there is none (empty buffer, or every
   * row held is after t). Binary search over the ring: O(log size).
   */
  indexAtOrBefore(t: number): number {
    let lo = 0;
    let hi = this.count_ - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.times[this.slot(mid)]! <= t) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /**
   * Call fn(i, t) for every row with time strictly after `t`, oldest first (e.g. "everything since
   * the last telemetry batch"). `fn` must not push to this buffer.
   */
  forEachAfter(t: number, fn: (i: number, t: number) => void): void {
    for (let i = this.indexAtOrBefore(t) + 1; i < this.count_; i++) fn(i, this.times[this.slot(i)]!);
  }

  /** Builds and throws the SampleRejectedError for a push that failed check `why` (cold path). */
  private reject(why: number, t: number, values: ArrayLike<number>): never {
    const s = this.sensor;
    if (why === ARITY) throw new SampleRejectedError(s, 'arity', t, `${values.length} values, expected ${this.channels}`);
    if (why === BAD_TIME) throw new SampleRejectedError(s, 'non-finite', t, 'timestamp is not a finite number');
    if (why === BAD_VALUE) {
      let k = 0;
      while (Number.isFinite(values[k])) k++;
      throw new SampleRejectedError(s, 'non-finite', t, `value ${k} is ${values[k]}`);
    }
    throw new SampleRejectedError(s, 'out-of-order', t, `not after the previous sample at t=${this.latestT}`);
  }

  /** Ring slot of logical index i (no bounds check). */
  private slot(i: number): number {
    // oldest slot = head − count (mod capacity). head < capacity and i < count, so the sum lies
    // in (−capacity, capacity): one conditional add replaces a % on the hot path.
    const s = this.head - this.count_ + i;
    return s < 0 ? s + this.capacity : s;
  }

  private check(i: number): void {
    if (!(i >= 0 && i < this.count_)) throw new RangeError(`SensorBuffer '${this.sensor}': index ${i} outside [0, ${this.count_})`);
  }
}

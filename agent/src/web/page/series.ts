/**
 * Bounded time series for the page, and what turns them into something cheap to draw. No DOM here:
 * node tests run this module as it is.
 *
 * - Ring: rows of (t, v0, v1, …) in preallocated Float64Arrays; the oldest row goes when it is full.
 *   A row older than the newest one means the source's timeline started again (an agent restarted
 *   a replay, a device's clock was set): the ring starts over instead of drawing time backwards.
 * - decimate(): at most two points per bucket of an absolute time grid — each column's minimum and
 *   maximum, in the order they occurred — so a 50 Hz signal drawn on 300 pixels keeps its peaks,
 *   and the buckets stay put while the window scrolls.
 * - Follower: a right edge that moves smoothly in sample time although data arrives in batches
 *   (once a second, at whatever speed a replay runs), and never runs ahead of the data.
 */

export class Ring {
  readonly t: Float64Array;
  readonly cols: Float64Array[];
  private head = 0;
  private n = 0;

  constructor(
    readonly width: number,
    readonly capacity: number,
  ) {
    if (!(capacity > 0) || !(width > 0)) throw new Error('ring: width and capacity must be > 0');
    this.t = new Float64Array(capacity);
    this.cols = Array.from({ length: width }, () => new Float64Array(capacity));
  }

  get length(): number {
    return this.n;
  }

  /** Physical slot of the i-th oldest row. */
  private slot(i: number): number {
    return (this.head + i) % this.capacity;
  }

  timeAt(i: number): number {
    return this.t[this.slot(i)]!;
  }

  valueAt(i: number, col: number): number {
    return this.cols[col]![this.slot(i)]!;
  }

  get firstT(): number {
    return this.n ? this.timeAt(0) : NaN;
  }

  get lastT(): number {
    return this.n ? this.timeAt(this.n - 1) : NaN;
  }

  /**
   * Appends a row; returns false (and keeps nothing) for a non-finite time or the wrong width.
   * A time before the newest row's clears the ring first.
   */
  push(t: number, values: ArrayLike<number>): boolean {
    if (!Number.isFinite(t) || values.length !== this.width) return false;
    if (this.n && t < this.lastT) this.clear();
    const s = this.n < this.capacity ? this.slot(this.n) : this.head;
    this.t[s] = t;
    for (let c = 0; c < this.width; c++) this.cols[c]![s] = Number(values[c]);
    if (this.n < this.capacity) this.n++;
    else this.head = (this.head + 1) % this.capacity;
    return true;
  }

  clear(): void {
    this.head = 0;
    this.n = 0;
  }

  /** Index of the first row with t >= x (length when none). */
  lowerBound(x: number): number {
    return this.search((t) => t < x);
  }

  /** Index of the first row with t > x (length when none). */
  upperBound(x: number): number {
    return this.search((t) => t <= x);
  }

  /** The first index whose time fails `before` (rows are in time order). */
  private search(before: (t: number) => boolean): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.timeAt(mid))) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Columns for a chart: x (seconds, as uPlot's time axis wants) then one array per ring column. */
export type Columns = [Float64Array, ...Float64Array[]];

/**
 * Rows with from <= t <= to, at most two per `bucketMs` bucket (buckets on the grid k·bucketMs):
 * per column, the bucket's minimum and maximum in time order, at the times of the bucket's first and
 * last rows. A bucket with one row gives that row. Non-finite values are kept as they are.
 * `bucketMs` <= 0: every row as it is.
 */
export function decimate(r: Ring, from: number, to: number, bucketMs: number): Columns {
  const i0 = r.lowerBound(from);
  const i1 = r.upperBound(to);
  const count = Math.max(0, i1 - i0);
  const w = r.width;
  if (!(bucketMs > 0)) {
    const x = new Float64Array(count);
    const ys = Array.from({ length: w }, () => new Float64Array(count));
    for (let k = 0; k < count; k++) {
      x[k] = r.timeAt(i0 + k) / 1000;
      for (let c = 0; c < w; c++) ys[c]![k] = r.valueAt(i0 + k, c);
    }
    return [x, ...ys];
  }
  // Bucket by bucket, also where the data is sparse (a bucket of one or two rows gives them as they
  // are): deciding for the whole range at once would leave dense stretches undecimated whenever the
  // range also spans a silence.
  const cap = Math.min(count, 2 * (Math.floor(to / bucketMs) - Math.floor(from / bucketMs) + 1));
  const x = new Float64Array(cap);
  const ys = Array.from({ length: w }, () => new Float64Array(cap));
  const lo = new Float64Array(w);
  const hi = new Float64Array(w);
  const loAt = new Int32Array(w);
  const hiAt = new Int32Array(w);
  let out = 0;
  let i = i0;
  while (i < i1) {
    const bucket = Math.floor(r.timeAt(i) / bucketMs);
    const first = i;
    for (let c = 0; c < w; c++) {
      lo[c] = hi[c] = r.valueAt(i, c);
      loAt[c] = hiAt[c] = i;
    }
    i++;
    while (i < i1 && Math.floor(r.timeAt(i) / bucketMs) === bucket) {
      for (let c = 0; c < w; c++) {
        const v = r.valueAt(i, c);
        if (v < lo[c]!) {
          lo[c] = v;
          loAt[c] = i;
        }
        if (v > hi[c]!) {
          hi[c] = v;
          hiAt[c] = i;
        }
      }
      i++;
    }
    const last = i - 1;
    if (last === first) {
      x[out] = r.timeAt(first) / 1000;
      for (let c = 0; c < w; c++) ys[c]![out] = lo[c]!;
      out++;
      continue;
    }
    x[out] = r.timeAt(first) / 1000;
    x[out + 1] = r.timeAt(last) / 1000;
    for (let c = 0; c < w; c++) {
      const minFirst = loAt[c]! <= hiAt[c]!;
      ys[c]![out] = minFirst ? lo[c]! : hi[c]!;
      ys[c]![out + 1] = minFirst ? hi[c]! : lo[c]!;
    }
    out += 2;
  }
  return [x.subarray(0, out), ...ys.map((y) => y.subarray(0, out))];
}

/** Chart data with gaps: plain arrays, a null row wherever two points lie more than gapMs apart. */
export type GappedColumns = [number[], ...(number | null)[][]];

/**
 * `cols` ready for uPlot: where consecutive points are more than `gapMs` apart (in ms; x is in
 * seconds) a row of nulls goes between them, so the line breaks there instead of bridging a silence
 * (a replay's loop seam, a sensor that stopped) with a straight stroke.
 */
export function withGaps(cols: Columns, gapMs: number): GappedColumns {
  const [x, ...ys] = cols;
  const ox: number[] = [];
  const oys: (number | null)[][] = ys.map(() => []);
  const gapS = gapMs / 1000;
  for (let i = 0; i < x.length; i++) {
    if (i > 0 && x[i]! - x[i - 1]! > gapS) {
      ox.push((x[i]! + x[i - 1]!) / 2);
      for (const y of oys) y.push(null);
    }
    ox.push(x[i]!);
    ys.forEach((y, c) => oys[c]!.push(y[i]!));
  }
  return [ox, ...oys];
}

/** Median spacing of the newest `n` rows' times, ms (NaN with fewer than two rows). */
export function recentSpacing(r: Ring, n = 17): number {
  const k = Math.min(n, r.length);
  if (k < 2) return NaN;
  const d: number[] = [];
  for (let i = r.length - k + 1; i < r.length; i++) d.push(r.timeAt(i) - r.timeAt(i - 1));
  d.sort((a, b) => a - b);
  return d[d.length >> 1]!;
}

/**
 * A right edge for a scrolling chart, in sample time. Each batch (its last sample time `last`,
 * arriving at wall time `wall`) re-aims the edge: from where it is now it moves at the rate that
 * brings it to `last` when the next batch is due, so it keeps moving between batches and catches
 * up with a late one, but never passes `last`. Without a second batch the edge is `last`.
 */
export class Follower {
  private base = NaN;
  private baseWall = 0;
  private rate = 0;
  private last = NaN;
  private prevLast = NaN;
  private prevWall = NaN;
  /** Mean wall time between batches, ms. */
  private interval = NaN;

  observe(last: number, wall: number): void {
    if (!Number.isFinite(last)) return;
    if (!Number.isFinite(this.last) || last < this.last) {
      // First batch, or the timeline started again: show it as it is.
      this.base = last;
      this.baseWall = wall;
      this.rate = 0;
      this.last = last;
      this.prevLast = last;
      this.prevWall = wall;
      this.interval = NaN;
      return;
    }
    const gap = wall - this.prevWall;
    if (gap > 0) this.interval = Number.isFinite(this.interval) ? 0.8 * this.interval + 0.2 * gap : gap;
    let base = this.edge(wall);
    const step = last - this.prevLast;
    // Far behind (the tab slept, batches stalled): start again one batch behind.
    if (last - base > 3 * Math.max(step, 1)) base = this.last;
    this.base = base;
    this.baseWall = wall;
    this.prevLast = last;
    this.prevWall = wall;
    this.last = last;
    this.rate = this.interval > 0 ? Math.max(0, last - base) / this.interval : 0;
  }

  /** The edge at wall time `wall` (NaN before any batch). */
  edge(wall: number): number {
    if (!Number.isFinite(this.base)) return NaN;
    return Math.min(this.last, this.base + Math.max(0, wall - this.baseWall) * this.rate);
  }
}

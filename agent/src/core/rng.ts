/**
 * Seeded randomness for the simulator. Nothing in motor/ may use Math.random: a dataset, a test
 * and a no-hardware demo must be reproducible bit for bit from one integer seed.
 *
 * Two kinds of randomness are provided:
 * - `Rng`: a sequential stream (mulberry32 + Box–Muller). Used for white sensor noise and for
 *   discrete random events (impacts, dropouts, schedules). Each purpose gets its own stream so
 *   that, e.g., switching a fault on does not shift the noise of the channels it does not touch.
 * - `SmoothNoise`: a *function of time* (hashed value noise on a fixed time grid, Catmull–Rom
 *   interpolated). Slow physical wander (supply drift, speed fluctuation, load jitter) uses it, so
 *   its value at time t does not depend on how often, or at which instants, somebody sampled the
 *   motor: an ADXL345 emulator at 3200 Hz and a CSV writer at 20 Hz see the same slow processes.
 */

/** 32-bit integer mixer (the finaliser of murmur3): cheap, good avalanche, deterministic. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over a string, so seeds can be derived from names ("rpm_600", "train") stably. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Derive a 32-bit seed from a parent seed and labels. Used to give every profile, file and
 * purpose its own independent stream: `deriveSeed(seed, 'rpm_600', 'train', 2)`.
 */
export function deriveSeed(seed: number, ...parts: Array<number | string>): number {
  let h = fmix32((seed >>> 0) ^ 0x9e3779b9);
  for (const p of parts) {
    let v: number;
    if (typeof p === 'string') v = hashString(p);
    else {
      // Fold numbers beyond 32 bits (epoch ms) in two halves so they are not truncated.
      v = fmix32((p >>> 0) ^ fmix32(Math.floor(p / 4294967296) >>> 0));
    }
    h = fmix32(h ^ (v + 0x6a09e667 + ((h << 6) >>> 0) + (h >>> 2)));
  }
  return h;
}

/** Sequential PRNG: mulberry32 (32-bit state, period 2^32, fine for simulation noise). */
export class Rng {
  private state: number;
  /** Box–Muller yields pairs; the second one is kept for the next call. */
  private spare: number | null = null;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  /** Fisher–Yates, in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** Standard normal (Box–Muller). */
  gauss(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    // 1 - next() is in (0, 1], so the log is finite.
    const u1 = 1 - this.next();
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }
}

/** A standard normal value that is a pure function of (seed, stream, knot index). */
function hashedGauss(seed: number, stream: number, k: number): number {
  const lo = k >>> 0;
  const hi = Math.floor(k / 4294967296) >>> 0;
  const h1 = fmix32(seed ^ fmix32(stream ^ fmix32(lo ^ fmix32(hi + 0x27d4eb2f))));
  const h2 = fmix32(h1 ^ 0x165667b1);
  const u1 = (h1 + 1) / 4294967297; // (0, 1)
  const u2 = h2 / 4294967296;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/**
 * Smooth random process x(t) with unit-ish variance (knots are N(0,1); the Catmull–Rom
 * interpolation between them has a standard deviation of roughly 0.8) and a correlation time
 * of about `knotMs`. Evaluating it is O(1) and depends only on t, never on call history.
 */
export class SmoothNoise {
  private readonly seed: number;
  private readonly stream: number;
  private readonly knotMs: number;
  private cacheK = Number.NaN;
  private readonly cache = [0, 0, 0, 0];

  constructor(seed: number, stream: string, knotMs: number) {
    this.seed = seed >>> 0;
    this.stream = deriveSeed(0, stream);
    this.knotMs = knotMs;
  }

  at(tMs: number): number {
    const x = tMs / this.knotMs;
    const k = Math.floor(x);
    const u = x - k;
    if (k !== this.cacheK) {
      // Reuse the overlapping knots when time moved to the next interval (the common case).
      if (k === this.cacheK + 1) {
        this.cache[0] = this.cache[1] as number;
        this.cache[1] = this.cache[2] as number;
        this.cache[2] = this.cache[3] as number;
        this.cache[3] = hashedGauss(this.seed, this.stream, k + 2);
      } else {
        for (let i = 0; i < 4; i++) this.cache[i] = hashedGauss(this.seed, this.stream, k - 1 + i);
      }
      this.cacheK = k;
    }
    const [p0, p1, p2, p3] = this.cache as [number, number, number, number];
    // Catmull–Rom: passes through the knots, continuous first derivative (no kinks in speed).
    const u2 = u * u;
    const u3 = u2 * u;
    return (
      0.5 *
      (2 * p1 + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u2 + (-p0 + 3 * p1 - 3 * p2 + p3) * u3)
    );
  }
}

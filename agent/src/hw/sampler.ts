/**
 * The sampler: reads every driver once per profile period, on a clock (core/clock.ts), so a test runs
 * an hour of sampling in seconds and the daemon runs it in real time.
 *
 * Timing. Ticks fall on the grid k·periodMs (epoch multiples, the instants the windower aligns rows
 * to). Each tick reads the devices one after the other (they share the bus) and stamps each reading
 * with the clock when its read completed — "timestamps at read". A reading's offset from its tick's
 * grid instant (timer lateness + bus time + the devices read before it) is its jitter, kept per device
 * (`stats()`). The next tick is armed before the reads start, at the next grid instant after now; a
 * tick that finds the previous one still reading is skipped and counted (`overruns`).
 *
 * Failures. A read that rejects with a transfer error (EIO, EREMOTEIO/NACK, ETIMEDOUT) is retried
 * `retries` times, after `retryDelayMs`, then twice that, …, within the period; if every attempt
 * fails the period has no reading for that device (nothing is invented). A device whose last good
 * reading is older than `staleMs` is `stale`, older than `errorMs` `error`; a part that fails its
 * identity check is `error` at once. A driver that reports its part lost its configuration
 * (ChipResetError: replugged, power-cycled) — or one whose init failed — is initialised again, with
 * a back-off from one period doubling up to `reinitMaxMs`. Drivers detect a reset part themselves,
 * so a transfer error alone never forces an init (an init is a dozen transfers, a read one or a few).
 *
 * Logging is per episode: the first failure, each health change and the recovery (with the
 * outage's length and failure count) — not one line per failed read.
 */
import type { Logger } from 'pino';
import type { Clock, Timer } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import type { SensorHealth } from '../core/sample.js';
import { ChipResetError, IdentityError, sleep, type Driver } from './drivers/driver.js';
import { CheckError, errorText, isTransferError } from './i2c.js';

export interface SamplerOptions {
  devices: readonly Driver[];
  clock: Clock;
  log: Logger;
  periodMs: number;
  /** Extra attempts after a failed read. Default: hardware.retries's. */
  retries?: number;
  /** Wait before the first retry, doubled for each next one, ms. Default `DEFAULTS.component.sampler`. */
  retryDelayMs?: number;
  /** No good reading for this long: stale, ms. Default: hardware.staleMs's. */
  staleMs?: number;
  /** No good reading for this long: error, ms. Default: hardware.errorMs's. */
  errorMs?: number;
  /** Longest wait between init attempts, ms. Default `DEFAULTS.component.sampler`. */
  reinitMaxMs?: number;
  /** Each good reading, stamped at read. Its exceptions are logged and do not stop sampling. */
  onReading: (device: Driver, t: number, values: Float64Array) => void;
}

/** The configuration's hardware.* values and the sampler's own, from core/defaults.ts. */
const hw = DEFAULTS.config.hardware;
const SAMPLER_DEFAULTS = { retries: hw.retries, staleMs: hw.staleMs, errorMs: hw.errorMs, ...DEFAULTS.component.sampler };

/** Offsets of readings from their grid instant, ms: exact moments plus a 10 µs histogram for quantiles. */
export class JitterStats {
  private static readonly BIN_MS = 0.01;
  private static readonly BINS = 20_000; // up to 200 ms
  private readonly hist = new Uint32Array(JitterStats.BINS);
  count = 0;
  sum = 0;
  sumSq = 0;
  min = Infinity;
  max = -Infinity;

  add(ms: number): void {
    this.count++;
    this.sum += ms;
    this.sumSq += ms * ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
    const bin = Math.min(JitterStats.BINS - 1, Math.max(0, Math.floor(ms / JitterStats.BIN_MS)));
    this.hist[bin]!++;
  }

  get mean(): number {
    return this.count ? this.sum / this.count : NaN;
  }

  get std(): number {
    if (this.count < 2) return 0;
    return Math.sqrt(Math.max(0, (this.sumSq - (this.sum * this.sum) / this.count) / (this.count - 1)));
  }

  /** The q-quantile, to the histogram's 10 µs (the upper edge of its bin, capped at the max). */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < JitterStats.BINS; i++) {
      seen += this.hist[i]!;
      if (seen >= rank) return Math.min(this.max, (i + 1) * JitterStats.BIN_MS);
    }
    return this.max;
  }

  summary(): { n: number; meanMs: number; stdMs: number; p50Ms: number; p99Ms: number; maxMs: number } {
    const r = (x: number) => Math.round(x * 1000) / 1000;
    return { n: this.count, meanMs: r(this.mean), stdMs: r(this.std), p50Ms: r(this.quantile(0.5)), p99Ms: r(this.quantile(0.99)), maxMs: r(this.max) };
  }
}

export interface DeviceStats {
  reads: number;
  /** Reads that had nothing new (a conversion not finished yet). */
  empty: number;
  /** Periods with no reading because every attempt failed. */
  failedPeriods: number;
  /** Attempts that failed (retried or not). */
  failedAttempts: number;
  inits: number;
  failedInits: number;
  jitter: JitterStats;
  lastError: string | undefined;
}

interface DeviceState {
  driver: Driver;
  log: Logger;
  ready: boolean;
  /** A failed identity check: error until an init succeeds. */
  identityFailed: boolean;
  lastOk: number;
  nextInitAt: number;
  initBackoffMs: number;
  /** Start of the current run of failures (NaN when healthy). */
  failingSince: number;
  failuresInRun: number;
  health: SensorHealth;
  stats: DeviceStats;
}

export class Sampler {
  /** Ticks skipped because the previous one was still reading. */
  overruns = 0;
  ticks = 0;
  private readonly states: DeviceState[];
  private timer: Timer | undefined;
  private running = false;
  private busy = false;
  private startedAt = 0;
  private readonly o: Required<Omit<SamplerOptions, 'devices' | 'onReading' | 'log' | 'clock'>> & SamplerOptions;

  constructor(opts: SamplerOptions) {
    this.o = { ...SAMPLER_DEFAULTS, ...opts };
    const { periodMs, staleMs, errorMs, retries } = this.o;
    if (!(periodMs > 0)) throw new CheckError('sampler-period', `period must be > 0 ms, got ${periodMs}`);
    if (!(staleMs >= periodMs)) throw new CheckError('sampler-stale', `staleMs (${staleMs}) must be at least one period (${periodMs} ms)`);
    if (!(errorMs > staleMs)) throw new CheckError('sampler-error', `errorMs (${errorMs}) must be longer than staleMs (${staleMs})`);
    if (!Number.isInteger(retries) || retries < 0) throw new CheckError('sampler-retries', `retries must be an integer >= 0, got ${retries}`);
    this.states = opts.devices.map((driver) => ({
      driver,
      log: opts.log.child({ device: driver.id }),
      ready: false,
      identityFailed: false,
      lastOk: 0,
      nextInitAt: 0,
      initBackoffMs: periodMs,
      failingSince: NaN,
      failuresInRun: 0,
      health: 'ok',
      stats: { reads: 0, empty: 0, failedPeriods: 0, failedAttempts: 0, inits: 0, failedInits: 0, jitter: new JitterStats(), lastError: undefined },
    }));
  }

  /** Initialises every device (a failure is logged and retried later, never thrown) and starts ticking. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.startedAt = this.o.clock.now();
    for (const s of this.states) {
      s.lastOk = this.startedAt;
      s.nextInitAt = this.startedAt;
      await this.init(s);
    }
    if (!this.running) return;
    this.arm();
  }

  /**
   * Stops ticking and closes the drivers. A read in progress is not waited for (it may be waiting on
   * the clock for a conversion); whatever it returns is dropped.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    for (const s of this.states) {
      try {
        await s.driver.close();
      } catch (err) {
        s.log.warn({ err: errorText(err) }, 'driver did not close cleanly');
      }
    }
  }

  health(): Map<Driver, SensorHealth> {
    const now = this.o.clock.now();
    return new Map(this.states.map((s) => [s.driver, this.healthOf(s, now)]));
  }

  stats(): Map<Driver, DeviceStats> {
    return new Map(this.states.map((s) => [s.driver, s.stats]));
  }

  private healthOf(s: DeviceState, now: number): SensorHealth {
    if (s.identityFailed) return 'error';
    const age = now - s.lastOk;
    if (age > this.o.errorMs) return 'error';
    if (age > this.o.staleMs) return 'stale';
    return 'ok';
  }

  private arm(): void {
    const p = this.o.periodMs;
    const now = this.o.clock.now();
    const next = (Math.floor(now / p) + 1) * p;
    this.timer = this.o.clock.setTimeout(() => this.tick(next), next - now);
  }

  private tick(scheduled: number): void {
    if (!this.running) return;
    this.arm();
    this.ticks++;
    if (this.busy) {
      this.overruns++;
      return;
    }
    this.busy = true;
    void this.cycle(scheduled).finally(() => {
      this.busy = false;
    });
  }

  private async cycle(scheduled: number): Promise<void> {
    for (const s of this.states) {
      if (!this.running) return;
      try {
        if (!s.ready) {
          if (this.o.clock.now() >= s.nextInitAt) await this.init(s);
        } else await this.readDevice(s, scheduled);
      } catch (err) {
        // Nothing in here should throw; if it does, the daemon keeps sampling the other devices.
        s.log.error({ err: errorText(err) }, 'sampling step failed');
      }
      this.noteHealth(s);
    }
  }

  private async init(s: DeviceState): Promise<void> {
    s.stats.inits++;
    try {
      await s.driver.init();
      s.ready = true;
      s.identityFailed = false;
      s.initBackoffMs = this.o.periodMs;
      s.log.info({ channels: s.driver.channels }, `${s.driver.id} ready`);
    } catch (err) {
      if (!this.running) return;
      s.stats.failedInits++;
      s.ready = false;
      s.identityFailed = err instanceof IdentityError || err instanceof CheckError;
      const now = this.o.clock.now();
      s.nextInitAt = now + s.initBackoffMs;
      s.initBackoffMs = Math.min(s.initBackoffMs * 2, this.o.reinitMaxMs);
      this.failed(s, err, 'init');
    }
  }

  private async readDevice(s: DeviceState, scheduled: number): Promise<void> {
    const { retries, retryDelayMs, clock } = this.o;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await sleep(clock, retryDelayMs * 2 ** (attempt - 1));
      if (!this.running) return;
      let values: Float64Array | null;
      try {
        values = await s.driver.read();
      } catch (err) {
        if (!this.running) return;
        s.stats.failedAttempts++;
        if (err instanceof ChipResetError) {
          s.ready = false;
          s.nextInitAt = clock.now();
          this.failed(s, err, 'read');
          return;
        }
        if (attempt < retries && isTransferError(err)) continue;
        s.stats.failedPeriods++;
        this.failed(s, err, 'read');
        return;
      }
      if (!this.running) return;
      const t = clock.now();
      s.stats.reads++;
      if (values === null) {
        s.stats.empty++;
        return;
      }
      s.stats.jitter.add(t - scheduled);
      this.recovered(s, t);
      try {
        this.o.onReading(s.driver, t, values);
      } catch (err) {
        s.log.error({ err: errorText(err) }, 'reading handler threw');
      }
      return;
    }
  }

  private failed(s: DeviceState, err: unknown, what: 'init' | 'read'): void {
    const text = errorText(err);
    s.stats.lastError = text;
    s.failuresInRun++;
    if (Number.isNaN(s.failingSince)) {
      s.failingSince = this.o.clock.now();
      const level = err instanceof IdentityError || err instanceof CheckError ? 'error' : 'warn';
      s.log[level]({ err: text, what }, `${s.driver.id}: ${what} failed: ${err instanceof Error ? err.message : text}`);
    }
  }

  private recovered(s: DeviceState, t: number): void {
    s.lastOk = t;
    if (Number.isNaN(s.failingSince)) return;
    s.log.info({ outageMs: Math.round(t - s.failingSince), failures: s.failuresInRun }, `${s.driver.id}: reading again`);
    s.failingSince = NaN;
    s.failuresInRun = 0;
  }

  private noteHealth(s: DeviceState): void {
    const h = this.healthOf(s, this.o.clock.now());
    if (h === s.health) return;
    const level = h === 'ok' ? 'info' : h === 'stale' ? 'warn' : 'error';
    s.log[level]({ health: h, was: s.health, lastError: s.stats.lastError }, `${s.driver.id} is ${h}`);
    s.health = h;
  }
}

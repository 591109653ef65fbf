/**
 * Shaft speed from a pulse pickup (hall-effect sensor and magnet(s), or a slotted optical sensor) on
 * a GPIO input with edge interrupts (onoff `watch`).
 *
 * Every accepted edge is stamped (with the input's own edge time when it gives one, else the clock
 * at the callback — hw/gpio.ts). An edge closer than `debounceMs` to the previous accepted one is a
 * bounce and is dropped. The speed is measured over the last `averagePulses` pulse periods
 * (default: one revolution's worth):
 *
 *     rpm = 60 000 · k / (pulsesPerRev · (t_last − t_last−k))      (times in ms)
 *
 * When the shaft slows down or stops, the open interval since the last edge bounds the speed from
 * above once it is clearly longer than the measured periods (twice, and 250 ms more than one):
 * rpm ≤ 60 000 / (pulsesPerRev · (now − t_last)); after `timeoutMs` without an edge the speed is 0. A pickup that has not yet seen two edges
 * since start reads nothing (null), not an invented 0 — unless `timeoutMs` has passed.
 *
 * On hardware, onoff reports an edge when its epoll callback runs, so event-loop delays (a scoring
 * batch) show as period noise; averaging over `averagePulses` bounds it. The emulated input passes
 * exact edge times.
 */
import type { Clock } from '../../core/clock.js';
import { CheckError } from '../i2c.js';
import type { BinaryValue, GpioInput } from '../gpio.js';
import type { Driver } from './driver.js';

/**
 * The open interval bounds the speed only once it is clearly longer than the measured period — this
 * many periods, and at least SLOWDOWN_MIN_MS beyond one — so an edge reported late (an event loop
 * busy for a moment) is not taken for a shaft slowing down.
 */
const SLOWDOWN_FACTOR = 2;
const SLOWDOWN_MIN_MS = 250;

export interface RpmPulseOptions {
  input: GpioInput;
  clock: Clock;
  /** Pulses per revolution (magnets, slots), >= 1. */
  pulsesPerRev: number;
  /** Edges closer than this to the previous accepted one are bounces, ms (>= 0). */
  debounceMs: number;
  /** No edge for this long: the shaft stands, rpm 0, ms. */
  timeoutMs: number;
  /** Highest speed to measure, rpm: debounce must leave its pulse period alone. Default 6000. */
  maxRpm?: number;
  /** Pulse periods averaged. Default pulsesPerRev (one revolution). */
  averagePulses?: number;
  /** Where the pickup sits, for the id. */
  label?: string;
  /** Channel name. Default 'rpm'. */
  channel?: string;
}

export class RpmPulse implements Driver {
  readonly id: string;
  readonly channels: readonly string[];
  readonly counters = { edges: 0, bounces: 0, watchErrors: 0 };
  private readonly times: Float64Array;
  private count = 0;
  private head = 0;
  private startedAt = 0;
  private watching = false;
  private readonly averagePulses: number;
  private readonly onEdge = (err: Error | null | undefined, _value: BinaryValue, atMs?: number) => this.edge(err, atMs);

  constructor(private readonly o: RpmPulseOptions) {
    if (!Number.isInteger(o.pulsesPerRev) || o.pulsesPerRev < 1 || o.pulsesPerRev > 1000) {
      throw new CheckError('rpm-pulses-per-rev', `pulses per revolution must be an integer 1..1000, got ${o.pulsesPerRev}`);
    }
    const maxRpm = o.maxRpm ?? 6000;
    const minPeriodMs = 60_000 / (maxRpm * o.pulsesPerRev);
    if (!(o.debounceMs >= 0) || o.debounceMs >= minPeriodMs / 2) {
      throw new CheckError('rpm-debounce', `debounce must be >= 0 and < half the pulse period at ${maxRpm} rpm (${(minPeriodMs / 2).toFixed(3)} ms), got ${o.debounceMs} ms`);
    }
    if (!(o.timeoutMs > minPeriodMs)) throw new CheckError('rpm-timeout', `timeout must be longer than the pulse period at ${maxRpm} rpm (${minPeriodMs.toFixed(3)} ms), got ${o.timeoutMs} ms`);
    this.averagePulses = o.averagePulses ?? o.pulsesPerRev;
    if (!Number.isInteger(this.averagePulses) || this.averagePulses < 1) throw new CheckError('rpm-average', `pulses averaged must be an integer >= 1, got ${this.averagePulses}`);
    this.times = new Float64Array(this.averagePulses + 1);
    this.id = `rpm@${o.label ?? 'gpio'}`;
    this.channels = [o.channel ?? 'rpm'];
  }

  async init(): Promise<void> {
    this.count = 0;
    this.head = 0;
    this.startedAt = this.o.clock.now();
    if (!this.watching) {
      this.o.input.watch(this.onEdge);
      this.watching = true;
    }
  }

  async read(): Promise<Float64Array | null> {
    const now = this.o.clock.now();
    const last = this.count > 0 ? this.at(0) : this.startedAt;
    if (now - last > this.o.timeoutMs) return Float64Array.of(0);
    if (this.count < 2) return null;
    const k = Math.min(this.count - 1, this.averagePulses);
    const span = this.at(0) - this.at(k);
    const ppr = this.o.pulsesPerRev;
    let rpm = (60_000 * k) / (ppr * span);
    const open = now - this.at(0);
    const period = span / k;
    if (open > Math.max(SLOWDOWN_FACTOR * period, period + SLOWDOWN_MIN_MS)) rpm = Math.min(rpm, 60_000 / (ppr * open));
    return Float64Array.of(rpm);
  }

  async close(): Promise<void> {
    if (this.watching) this.o.input.unwatchAll();
    this.watching = false;
  }

  /** The i-th newest accepted edge time. */
  private at(i: number): number {
    const n = this.times.length;
    return this.times[(this.head - 1 - i + 2 * n) % n]!;
  }

  private edge(err: Error | null | undefined, atMs?: number): void {
    if (err) {
      this.counters.watchErrors++;
      return;
    }
    const t = atMs ?? this.o.clock.now();
    if (this.count > 0 && t - this.at(0) < this.o.debounceMs) {
      this.counters.bounces++;
      return;
    }
    if (this.count > 0 && !(t > this.at(0))) return; // out of order: cannot be a later pulse
    this.times[this.head] = t;
    this.head = (this.head + 1) % this.times.length;
    if (this.count < this.times.length) this.count++;
    this.counters.edges++;
  }
}

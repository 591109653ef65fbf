/**
 * One motor, many chips: the emulated chips ask the one MotorSimulator (motor/simulator.ts) for the
 * physical quantity at the instant they sample it. The simulator only moves forward in time, while
 * chips sample at their own instants (the accelerometer at its output data rate whether or not
 * anyone reads it, the ADC when a conversion completes, the tach at shaft edges); the feed puts
 * those requests in time order.
 *
 * - Periodic samplers (a chip's internal conversion clock) register with `every`; before anyone
 *   reads at time t, every periodic instant ≤ t is taken in time order (`sync`).
 * - A one-off read at t (`readingAt`) is taken at max(t, the simulator's time): a chip whose
 *   conversion ended a moment before another chip's instant sees the later instant (≤ one chip's
 *   conversion time apart; nothing it measures changes on that scale).
 */
import type { Clock } from '../../core/clock.js';
import type { MotorReading, MotorSimulator, MotorState } from '../../motor/simulator.js';

export interface PeriodicSampler {
  /** Next instant to sample, ms epoch; NaN while inactive. */
  nextAt: number;
  /** Called with the reading at `nextAt`; must move `nextAt` forward (or set NaN). */
  take(t: number, r: MotorReading): void;
}

export class MotorFeed {
  private readonly samplers: PeriodicSampler[] = [];

  constructor(
    readonly motor: MotorSimulator,
    readonly clock: Clock,
  ) {}

  /** Registers a chip's conversion clock. */
  every(s: PeriodicSampler): void {
    this.samplers.push(s);
  }

  /** Takes every periodic sample due up to `t` (default: the clock's now), in time order. */
  sync(t = this.clock.now()): void {
    for (;;) {
      let next: PeriodicSampler | undefined;
      for (const s of this.samplers) if (s.nextAt <= t && (next === undefined || s.nextAt < next.nextAt)) next = s;
      if (next === undefined) break;
      const at = Math.max(next.nextAt, this.motor.nowMs);
      const before = next.nextAt;
      next.take(at, this.motor.sampleAt(at));
      if (!(next.nextAt > before) && !Number.isNaN(next.nextAt)) throw new Error('a periodic sampler did not move its next instant forward');
    }
  }

  /** All channels at t (see the header for t before the simulator's time). */
  readingAt(t: number): MotorReading {
    this.sync(t);
    return this.motor.sampleAt(Math.max(t, this.motor.nowMs));
  }

  /** The true (noise-free) state at t. */
  stateAt(t: number): MotorState {
    this.sync(t);
    this.motor.advanceTo(Math.max(t, this.motor.nowMs));
    return this.motor.state();
  }
}

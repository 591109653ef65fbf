/**
 * Time as a dependency: samplers, detectors' cooldowns, reconnect back-off and health timers take a
 * Clock, so tests advance a ManualClock and run an hour of sampling in milliseconds.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** ms since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  setInterval(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const h = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(h) };
  },
  setInterval(fn, ms) {
    const h = setInterval(fn, ms);
    return { cancel: () => clearInterval(h) };
  },
};

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  every?: number;
  cancelled: boolean;
}

/** A clock that moves only when told to; timers fire in time order during advance(). */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly pending: Pending[] = [];

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.add(fn, ms);
  }

  setInterval(fn: () => void, ms: number): Timer {
    if (!(ms > 0)) throw new RangeError(`interval must be > 0 ms, got ${ms}`);
    return this.add(fn, ms, ms);
  }

  /** When the next live timer is due (ms epoch), or undefined when none is pending. */
  nextDue(): number | undefined {
    let at: number | undefined;
    for (const p of this.pending) if (!p.cancelled && (at === undefined || p.at < at)) at = p.at;
    return at;
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const live = this.pending.filter((p) => !p.cancelled && p.at <= end);
      if (live.length === 0) break;
      live.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = live[0]!;
      this.t = next.at;
      if (next.every !== undefined) next.at += next.every;
      else next.cancelled = true;
      next.fn();
    }
    this.t = end;
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i]!.cancelled) this.pending.splice(i, 1);
  }

  private add(fn: () => void, ms: number, every?: number): Timer {
    const p: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, every, cancelled: false };
    this.pending.push(p);
    return { cancel: () => (p.cancelled = true) };
  }
}

const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Drives a ManualClock through code that awaits between timers (drivers waiting for a conversion,
 * emulated transfers resolving): time jumps to each due timer in turn and every promise chain that
 * timer set going settles before the next one fires. For tests and benches that run the daemon
 * faster than real time; no daemon code calls it. Returns the timers fired.
 */
export async function runClock(clock: ManualClock, ms: number): Promise<number> {
  const end = clock.now() + ms;
  let fired = 0;
  await drain();
  for (;;) {
    const due = clock.nextDue();
    if (due === undefined || due > end) break;
    clock.advance(Math.max(0, due - clock.now()));
    fired++;
    await drain();
  }
  clock.advance(end - clock.now());
  await drain();
  return fired;
}

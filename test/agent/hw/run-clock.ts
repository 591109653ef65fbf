/**
 * Drives a ManualClock through code that awaits between timers (drivers waiting for a conversion,
 * emulated transfers resolving): time jumps to each due timer in turn and every promise chain that
 * timer set going settles before the next one fires. Test-only (no daemon code imports it).
 */
import type { ManualClock } from '#agent/core/clock.js';

const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Runs the clock forward `ms`, settling promises after every timer; returns the timers fired. */
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

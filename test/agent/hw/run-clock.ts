/** The tests' way to drive a ManualClock through the drivers' awaits: core/clock.ts runClock. */
export { runClock } from '#agent/core/clock.js';

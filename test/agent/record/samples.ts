/**
 * Samples for the recording tests: the four default sensors read once a period, each at its own
 * phase after the grid instant (as the sampler stamps them). Not a test file (see
 * test/agent/sources/contract.ts on file names).
 */
import type { Sample } from '#agent/core/sample.js';
import { DEFAULT_SENSORS } from '#agent/core/sample.js';

export const PHASE: Readonly<Record<string, number>> = { vibration: 1, voltage: 7, rpm: 3, temperature: 13 };

/** A sensor left out over [from, to). */
export interface Silence {
  sensor: string;
  from: number;
  to: number;
}

/**
 * Readings over grid instants [fromMs, toMs) every `periodMs`; `value(t, channel)` gives each
 * channel's value (default: ones float32 cannot hold exactly).
 */
export function readings(fromMs: number, toMs: number, periodMs: number, silent?: Silence, value = (t: number, ch: number) => ((t / 1e3) % 100) + ch + 0.1 + 1e-9): Sample[] {
  const out: Sample[] = [];
  for (let g = fromMs; g < toMs; g += periodMs) {
    for (const [sensor, { channels }] of Object.entries(DEFAULT_SENSORS)) {
      const t = g + PHASE[sensor]!;
      if (silent && silent.sensor === sensor && t >= silent.from && t < silent.to) continue;
      out.push({ sensor, t, values: channels.map((_, i) => value(t, i)) });
    }
  }
  return out;
}

/**
 * A recorded file through the daemon's streaming path, as its controller wires it: a ReplaySource on
 * a ManualClock emits the rows, each sample goes into its sensor's ring, and every runtime that reads
 * that sensor forms the windows it now can (pipeline/model-runtime.ts: windower → scorer → detector →
 * baseline). Shared by the SKAB benchmark (skab.ts) and the alert-level evaluation (alert-eval.ts).
 */
import { SensorBuffer } from '../buffer/ring.js';
import type { ManualClock } from '../core/clock.js';
import type { Sample, SensorSpec } from '../core/sample.js';
import type { ModelRuntime } from '../pipeline/model-runtime.js';
import { ReplaySource, type ReplayOptions } from '../sources/replay.js';

/** Samples a ring holds, as the daemon's: many windows' worth at any profile's rate. */
export const STREAM_RING_CAPACITY = 4096;

/** One ring per sensor, sized as the daemon sizes them. */
export function sensorRings(sensors: SensorSpec): Map<string, SensorBuffer> {
  const buffers = new Map<string, SensorBuffer>();
  for (const [sensor, { channels }] of Object.entries(sensors)) buffers.set(sensor, new SensorBuffer({ sensor, channels: channels.length, capacity: STREAM_RING_CAPACITY }));
  return buffers;
}

/** How fast the replay runs against the manual clock: many rows per tick, the clock costs nothing. */
const SPEED = 1000;
const STEP_MS = 1000;

/**
 * Replays `file` (of `rows` rows, its sample times re-based on `clock.now()` by ReplaySource) into
 * `buffers` and `runtimes`, then scores what is left. `onSample` sees every sample after the runtimes.
 */
export async function streamFile(o: {
  file: string;
  rows: number;
  durationMs: number;
  sensors: SensorSpec;
  clock: ManualClock;
  buffers: ReadonlyMap<string, SensorBuffer>;
  runtimes: readonly ModelRuntime[];
  /** How the CSV is written, for files not in the seed's format. */
  csv?: Pick<ReplayOptions, 'separator' | 'timeColumn' | 'timeFormat' | 'columns'>;
  onSample?: (s: Sample) => void;
}): Promise<void> {
  const source = new ReplaySource({ file: o.file, sensors: o.sensors, clock: o.clock, speed: SPEED, loop: false, ...o.csv });
  let row = 0;
  const rowSensor = Object.keys(o.sensors)[0]!;
  // The controller's onSample, minus telemetry and metrics.
  source.onSample((sample) => {
    o.buffers.get(sample.sensor)!.push(sample.t, sample.values);
    if (sample.sensor === rowSensor) row++;
    for (const r of o.runtimes) if (r.sensors.has(sample.sensor)) r.advance();
    o.onSample?.(sample);
  });
  try {
    await source.start();
    for (let ms = 0; row < o.rows; ms += STEP_MS) {
      if (ms > o.durationMs / SPEED + 10_000) throw new Error(`${o.file}: replay stalled at row ${row} of ${o.rows}`);
      o.clock.advance(STEP_MS);
      await new Promise((r) => setImmediate(r)); // the runtimes score what this turn batched
    }
    for (const r of o.runtimes) r.flush();
  } finally {
    await source.stop();
  }
}

/**
 * `node dist/agent/src/bench/buffer.js [samples]`: the per-sample cost of the hot path on this
 * machine — SensorBuffer.push alone, and the rpm_600 multi-feature set-up (four default sensors,
 * one Windower: seqLen 100, hop 10, 50 ms grid) pushing every sensor and advancing after each row —
 * with the garbage collections seen while timing (0 expected: nothing is allocated per sample).
 */
import { PROFILES, CHANNELS } from '../core/profiles.js';
import { channelIndex, DEFAULT_SENSORS } from '../core/sample.js';
import { leastGc } from '../buffer/gc-probe.js';
import { SensorBuffer } from '../buffer/ring.js';
import { Windower } from '../buffer/windower.js';

const n = Number(process.argv[2] ?? 1_000_000);
if (!(Number.isInteger(n) && n > 0) || process.argv.length > 3) {
  process.stderr.write(`bench:buffer: usage: node dist/agent/src/bench/buffer.js [samples]; samples must be a positive integer, got '${process.argv.slice(2).join(' ')}'\n`);
  process.exit(2);
}

function time(label: string, perRun: number, fn: () => void): void {
  fn(); // warm-up: let the JIT optimise before timing
  const t0 = process.hrtime.bigint();
  const { gcs } = leastGc(fn, 1);
  const ns = Number(process.hrtime.bigint() - t0) / perRun;
  process.stdout.write(`${label.padEnd(48)} ${ns.toFixed(1).padStart(8)} ns   ${(1e9 / ns / 1e6).toFixed(2).padStart(6)} M/s   GC runs ${gcs}\n`);
}

// 1. push alone, one 3-channel sensor.
{
  const b = new SensorBuffer({ sensor: 'vibration', channels: 3, capacity: 4096 });
  const v = new Float64Array(3);
  // Epoch-ms times in a typed array: a loop variable holding such a double would be boxed by the
  // loop itself and charged to the code under test.
  const clock = Float64Array.of(1_705_144_591_000);
  time('SensorBuffer.push (3 channels) per sample', n, () => {
    for (let i = 0; i < n; i++) {
      v[0] = i;
      b.push((clock[0]! += 1), v);
    }
  });
}

// 2. multi-feature: per grid row, push the four sensors and advance.
{
  const p = PROFILES.rpm_600;
  const buffers = new Map(Object.entries(DEFAULT_SENSORS).map(([sensor, { channels }]) => [sensor, new SensorBuffer({ sensor, channels: channels.length, capacity: 1024 })]));
  const features = [...CHANNELS];
  const sink = new Float64Array(1);
  const win = new Windower({
    features,
    channels: channelIndex(DEFAULT_SENSORS),
    buffers,
    periodMs: p.periodMs,
    seqLen: p.seqLen,
    hop: p.hop,
    maxGapMs: 5 * p.periodMs,
    scaler: { features, min: features.map(() => 0), max: features.map(() => 1) },
    onWindow: (w) => {
      sink[0] += w.x[0]!;
    },
  });
  const vib = buffers.get('vibration')!;
  const rest = ['voltage', 'rpm', 'temperature'].map((s) => buffers.get(s)!);
  const v3 = new Float64Array(3);
  const v1 = new Float64Array(1);
  const clock = Float64Array.of(1_705_144_591_000);
  const rows = Math.max(1, Math.floor(n / 4));
  time('4 sensors pushed + Windower.advance, per row', rows, () => {
    for (let i = 0; i < rows; i++) {
      const t = (clock[0]! += p.periodMs);
      v3[0] = i % 13;
      vib.push(t, v3);
      v1[0] = i % 7;
      for (let k = 0; k < rest.length; k++) rest[k]!.push(t, v1);
      win.advance();
    }
  });
  process.stdout.write(`windows ${win.windows}, gaps ${win.gaps}, overruns ${win.overruns}\n`);
}

/**
 * `npm run bench:record`: what recording costs — one hour of the rpm_1200 rate (four sensors read
 * every 20 ms, as the sampler stamps them, values from the motor simulator) through a Recording
 * (record/recording.ts: the aligner, the CSV lines, the writes, rotation and the budget) into a
 * temporary directory, on a ManualClock so the hour takes seconds; the CPU time of this process
 * (every thread: libuv's file writes included) over the hour is the share of a core it costs.
 *
 * Two settings: the defaults (record.*), and a small budget that rotates and deletes all the time.
 * The samples are made before timing (a minute of them, re-stamped for every minute).
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';
import { PROFILES } from '../core/profiles.js';
import { DEFAULT_SENSORS, type Sample } from '../core/sample.js';
import { MotorSimulator } from '../motor/simulator.js';
import { Recording } from '../record/recording.js';

const PROFILE = 'rpm_1200';
const P = PROFILES[PROFILE].periodMs;
const HOUR = 3_600_000;
const T0 = Date.UTC(2024, 0, 8, 6);
/** When in its period each part is read (the sampler's order: a few ms apart). */
const PHASE: Record<string, number> = { vibration: 1, voltage: 9, rpm: 3, temperature: 5 };

/** A minute of readings: each sensor once a period, from the simulated motor. */
function minuteOfSamples(): Sample[] {
  const sim = new MotorSimulator({ profile: PROFILES[PROFILE], seed: 1, startMs: T0 });
  const out: Sample[] = [];
  for (let g = T0; g < T0 + 60_000; g += P) {
    const r = sim.sampleAt(g);
    const values: Record<string, number[]> = { vibration: [r.accel_x, r.accel_y, r.accel_z], voltage: [r.voltage], rpm: [r.rpm], temperature: [r.temperature] };
    for (const sensor of Object.keys(DEFAULT_SENSORS)) out.push({ sensor, t: g + PHASE[sensor]!, values: values[sensor]! });
  }
  return out;
}

async function du(dir: string): Promise<{ bytes: number; files: number }> {
  const names = await readdir(dir);
  let bytes = 0;
  for (const n of names) bytes += (await stat(join(dir, n))).size;
  return { bytes, files: names.filter((n) => n.endsWith('.csv')).length };
}

interface Result {
  label: string;
  cpuMs: number;
  wallMs: number;
  rows: number;
  files: number;
  deleted: number;
  bytes: number;
  maxBytes: number;
  fullest: number;
}

async function hour(label: string, samples: readonly Sample[], budget: { maxBytes: number; rotateBytes: number; rotateMs: number }, minutes = 60): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-record-'));
  try {
    const clock = new ManualClock(T0);
    const rec = new Recording({ dir, device: 'bench', source: { kind: 'sim' }, profile: PROFILE, sensors: DEFAULT_SENSORS, ...budget, clock, log: silentLogger });
    await rec.open();
    const perSecond = samples.length / 60;
    let fullest = 0;
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let minute = 0; minute < minutes; minute++) {
      for (let second = 0; second < 60; second++) {
        for (let i = second * perSecond; i < (second + 1) * perSecond; i++) {
          const s = samples[i]!;
          rec.add({ sensor: s.sensor, t: s.t + minute * 60_000, values: s.values });
        }
        clock.advance(1000); // the flush timer queues the second's rows
        await rec.flush();
      }
      if (budget.maxBytes < DEFAULTS.config.record.maxBytes) fullest = Math.max(fullest, (await du(dir)).bytes); // outside the hot loop, once a minute
    }
    await rec.close();
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - wall0;
    const s = rec.stats();
    const disk = await du(dir);
    return { label, cpuMs: (cpu.user + cpu.system) / 1000, wallMs, rows: s.rows, files: s.files, deleted: s.deletedFiles, bytes: disk.bytes, maxBytes: budget.maxBytes, fullest: Math.max(fullest, disk.bytes) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const out = (line: string) => process.stdout.write(line + '\n');
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

out(`bench:record — ${cpus()[0]?.model ?? 'unknown cpu'}, ${cpus().length} cores, node ${process.version}, load ${loadavg()[0]!.toFixed(2)}`);
out(`one hour of ${PROFILE}: a row every ${P} ms, 4 sensors (vibration, voltage, rpm, temperature), ${(HOUR / P) * 4} samples, into a temporary directory`);
const samples = minuteOfSamples();
const r = DEFAULTS.config.record;
await hour('warm-up', samples, { maxBytes: r.maxBytes, rotateBytes: r.rotateBytes, rotateMs: r.rotateMs }, 5); // let the JIT settle first
const results = [
  await hour(`defaults (budget ${mib(r.maxBytes)}, rotate ${mib(r.rotateBytes)} / ${r.rotateMs / 60_000} min)`, samples, { maxBytes: r.maxBytes, rotateBytes: r.rotateBytes, rotateMs: r.rotateMs }),
  await hour('small budget (4 MiB, rotate 256 KiB): rotating, deleting', samples, { maxBytes: 4 * 1024 * 1024, rotateBytes: 256 * 1024, rotateMs: r.rotateMs }),
];
out(`${'settings'.padEnd(56)}  CPU s   wall s   share of a core     rows   files begun / deleted   on disk (fullest) / budget`);
for (const x of results) {
  out(
    `${x.label.padEnd(56)} ${(x.cpuMs / 1000).toFixed(2).padStart(6)}   ${(x.wallMs / 1000).toFixed(2).padStart(6)}   ${((100 * x.cpuMs) / HOUR).toFixed(3).padStart(10)} %   ${String(x.rows).padStart(6)}   ${String(x.files).padStart(6)} / ${String(x.deleted).padEnd(10)}   ${mib(x.bytes)} (${mib(x.fullest)}) / ${mib(x.maxBytes)}${x.fullest > x.maxBytes ? '  OVER BUDGET' : ''}`,
  );
}
const worst = Math.max(...results.map((x) => (100 * x.cpuMs) / HOUR));
out(`recording one hour at ${PROFILE} costs ${worst.toFixed(2)} % of a core (target ≤ 5 %); the budget held: ${results.every((x) => x.fullest <= x.maxBytes) ? 'yes' : 'NO'}`);

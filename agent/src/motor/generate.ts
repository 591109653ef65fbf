/**
 * Writes a dataset in the seed's format from the motor simulator:
 *
 *   <outDir>/<profile>/train/train_NN.csv   normal running only
 *   <outDir>/<profile>/test/test_NN.csv     normal running with labelled fault episodes (+ `label`)
 *   <outDir>/<profile>/test/faults.json     FaultManifest: file name → FaultEpisode[]
 *
 * Everything is derived from one seed, so the same seed gives byte-identical files. Layout of the
 * test set: every fault kind × intensity appears once per profile, the three intensities of a kind
 * land in different files, episodes last 20–26 s and are separated (and preceded and followed) by
 * at least 30 s of normal running, so a detector can clear between them.
 */
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULTS } from '../core/defaults.js';
import { CHANNELS, PROFILES, type Channel, type ProfileName } from '../core/profiles.js';
import {
  FAULT_KINDS,
  FAULT_MANIFEST_FILE,
  INTENSITIES,
  type FaultEpisode,
  type FaultManifest,
} from '../core/faults.js';
import { FAULT_CHANNELS, OVERHEAT_RECOVER_TAU_S, SENSOR_FAULT_CHANNEL_CHOICES } from './fault-magnitudes.js';
import { MotorSimulator, type MotorReading } from './simulator.js';
import { CSV_DECIMALS, formatCell } from '../preprocess/csv.js';
import { Rng, deriveSeed } from '../core/rng.js';

export const CSV_HEADER = 'timestamp,' + CHANNELS.join(',');
export const CSV_TEST_HEADER = CSV_HEADER + ',label';

/** The committed set's sizes, seed and start (see datas/README.md): small enough to live in git. */
const D = DEFAULTS.dataset;

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Simulated before the first written row so every state (slip, filters) is settled. */
const WARMUP_MS = 30_000;
/** Episode and spacing rules (seconds). */
const EPISODE_S = [15, 20] as const;
const GAP_S = [20, 24] as const;
const LEAD_S = [20, 25] as const;
const TAIL_S = 20;
/**
 * Overheating leaves the motor hotter than its load explains for a while after the cooling is
 * restored: its label covers two cooling time constants of that cool-down. By then the excess is down
 * to e⁻² ≈ 14 % of its peak — under 1 K at every intensity and load in the data, cooling at under
 * 0.1 K/s, the order of what a load change does to the frame: what is left is not told from normal
 * running by any sensor reading, so it is not labelled as fault; the ≥ 20 s of normal running that
 * follow absorb the rest of it.
 */
export const OVERHEAT_LABEL_TAIL_MS = 2 * OVERHEAT_RECOVER_TAU_S * 1000;
/** Plausible indoor ambient range for a plant floor, °C. */
const AMBIENT_C = [15, 35] as const;


/** What to write; what is left out is the committed set's (`DEFAULTS.dataset`). */
export interface GenerateOptions {
  outDir: string;
  seed: number;
  /** Profiles to write. Default: all. */
  profiles?: readonly ProfileName[];
  /** Total minutes of normal (train) data per profile: one number for all, or per profile. */
  trainMinutes?: number | Partial<Record<ProfileName, number>>;
  /** Train files per profile (the minutes are split evenly). */
  trainFiles?: number;
  /** Test files per profile. Must be ≥ 1; ≥ 2 puts every kind in ≥ 2 files. */
  testFiles?: number;
  /** Epoch of the first file, ms. */
  baseMs?: number;
  /** Called after each file is written (progress output). */
  onFile?: (file: GeneratedFile) => void;
}

export interface GeneratedFile {
  profile: ProfileName;
  split: 'train' | 'test';
  path: string;
  name: string;
  rows: number;
  bytes: number;
  startMs: number;
  ambientC: number;
  episodes: FaultEpisode[];
}

export interface GenerateResult {
  files: GeneratedFile[];
  manifests: Partial<Record<ProfileName, FaultManifest>>;
}

/** One planned test file: its start, length and fault episodes (absolute times). */
export interface TestFilePlan {
  name: string;
  startMs: number;
  rows: number;
  ambientC: number;
  seed: number;
  episodes: FaultEpisode[];
}

function alignUp(ms: number, periodMs: number): number {
  return Math.ceil(ms / periodMs) * periodMs;
}

function fileName(prefix: string, i: number): string {
  return `${prefix}_${String(i + 1).padStart(2, '0')}.csv`;
}

/**
 * Plan the test files of one profile: which kind × intensity goes where, and when. Pure function
 * of (profileSeed, periodMs, nFiles, baseMs, dayOffset).
 */
export function planTestFiles(
  profileSeed: number,
  periodMs: number,
  nFiles: number,
  baseMs: number,
  dayOffset: number,
  trainAmbients: readonly number[] = [(AMBIENT_C[0] + AMBIENT_C[1]) / 2],
): TestFilePlan[] {
  if (!Number.isInteger(nFiles) || nFiles < 1) throw new RangeError('testFiles must be an integer ≥ 1');
  const rng = new Rng(deriveSeed(profileSeed, 'test-plan'));
  // Kind k at intensity i goes to file (k + i·shift) mod n: the three intensities of a kind land in
  // three different files whenever n ≥ 3, in two when n = 2.
  const shift = Math.max(1, Math.floor(nFiles / 3));
  const perFile: Array<Array<{ kind: (typeof FAULT_KINDS)[number]; intensity: (typeof INTENSITIES)[number] }>> =
    Array.from({ length: nFiles }, () => []);
  FAULT_KINDS.forEach((kind, k) => {
    INTENSITIES.forEach((intensity, i) => {
      perFile[(k + i * shift) % nFiles]!.push({ kind, intensity });
    });
  });

  return perFile.map((combos, f) => {
    rng.shuffle(combos);
    const startMs = alignUp(baseMs + (dayOffset + f) * DAY_MS + rng.int(10) * HOUR_MS + rng.int(3600) * 1000, periodMs);
    // Another day at one of the training days' ambients: normal test running should be normal
    // running the models have seen (a 30-minute training set cannot cover every climate × load).
    const day = trainAmbients[Math.floor((f * trainAmbients.length) / nFiles)]!;
    const ambientC = Math.round((day + rng.range(-0.5, 0.5)) * 10) / 10;
    let t = startMs + alignUp(rng.range(LEAD_S[0], LEAD_S[1]) * 1000, periodMs);
    const episodes: FaultEpisode[] = [];
    for (const { kind, intensity } of combos) {
      const dur = alignUp(rng.range(EPISODE_S[0], EPISODE_S[1]) * 1000, periodMs) + (kind === 'overheating' ? OVERHEAT_LABEL_TAIL_MS : 0);
      let channels: string[];
      if (kind === 'stuck' || kind === 'dropout') {
        channels = [...rng.pick(SENSOR_FAULT_CHANNEL_CHOICES[kind][intensity])];
      } else {
        channels = [...FAULT_CHANNELS[kind]];
      }
      episodes.push({ kind, intensity, startMs: t, endMs: t + dur, channels });
      t += dur + alignUp(rng.range(GAP_S[0], GAP_S[1]) * 1000, periodMs);
    }
    // The last gap already ran; make sure the tail is at least TAIL_S of normal running.
    const last = episodes[episodes.length - 1];
    const endMs = Math.max(t, last ? last.endMs + TAIL_S * 1000 : startMs + TAIL_S * 1000);
    return {
      name: fileName('test', f),
      startMs,
      rows: Math.round((endMs - startMs) / periodMs),
      ambientC,
      seed: deriveSeed(profileSeed, 'test', f),
      episodes,
    };
  });
}

function csvRow(t: number, r: MotorReading): string {
  return (
    t +
    ',' +
    formatCell(r.accel_x, CSV_DECIMALS.accel_x) +
    ',' +
    formatCell(r.accel_y, CSV_DECIMALS.accel_y) +
    ',' +
    formatCell(r.accel_z, CSV_DECIMALS.accel_z) +
    ',' +
    formatCell(r.voltage, CSV_DECIMALS.voltage) +
    ',' +
    formatCell(r.rpm, CSV_DECIMALS.rpm) +
    ',' +
    formatCell(r.temperature, CSV_DECIMALS.temperature)
  );
}

interface WriteSpec {
  path: string;
  profile: ProfileName;
  seed: number;
  startMs: number;
  rows: number;
  ambientC: number;
  episodes: FaultEpisode[];
  labelled: boolean;
}

/** When the simulated fault stops; the label may run longer (overheating's cool-down). */
function faultEnd(e: FaultEpisode): number {
  return e.kind === 'overheating' ? e.endMs - OVERHEAT_LABEL_TAIL_MS : e.endMs;
}

/** Simulate one file and stream it to disk; returns the bytes written. */
async function writeFile(spec: WriteSpec): Promise<number> {
  const profile = PROFILES[spec.profile];
  const period = profile.periodMs;
  const sim = new MotorSimulator({
    profile,
    seed: spec.seed,
    startMs: spec.startMs - WARMUP_MS,
    ambientC: spec.ambientC,
  });
  const fh = await open(spec.path, 'w');
  let bytes = 0;
  try {
    const lines: string[] = [spec.labelled ? CSV_TEST_HEADER : CSV_HEADER];
    const flush = async (): Promise<void> => {
      const text = lines.join('\n') + '\n';
      lines.length = 0;
      const buf = Buffer.from(text, 'utf8');
      await fh.write(buf);
      bytes += buf.length;
    };
    const eps = spec.episodes;
    let next = 0; // index of the next episode to start
    let active: FaultEpisode | null = null;
    let cleared = false;
    for (let n = 0; n < spec.rows; n++) {
      const t = spec.startMs + n * period;
      if (active && !cleared && t >= faultEnd(active)) {
        sim.advanceTo(faultEnd(active));
        sim.clearFault(active.kind);
        cleared = true;
      }
      if (active && t >= active.endMs) active = null;
      if (!active && next < eps.length && t >= eps[next]!.startMs) {
        const ep = eps[next++]!;
        sim.advanceTo(ep.startMs);
        sim.setFault(ep.kind, ep.intensity, { channels: ep.channels as Channel[] });
        active = ep;
        cleared = false;
      }
      const r = sim.sampleAt(t);
      let line = csvRow(t, r);
      if (spec.labelled) line += active && t >= active.startMs && t < active.endMs ? ',1' : ',0';
      lines.push(line);
      if (lines.length >= 8192) await flush();
    }
    await flush();
  } finally {
    await fh.close();
  }
  return bytes;
}

/** Remove what an earlier run left (CSV and manifest only) so the directory holds exactly this set. */
async function cleanDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const name of await readdir(dir)) {
    if (name.endsWith('.csv') || name === FAULT_MANIFEST_FILE) await rm(join(dir, name));
  }
}

function minutesFor(opt: GenerateOptions['trainMinutes'], profile: ProfileName): number {
  if (typeof opt === 'number') return opt;
  return opt?.[profile] ?? D.trainMinutes[profile];
}

export async function generateDataset(options: GenerateOptions): Promise<GenerateResult> {
  const profiles = options.profiles ?? (Object.keys(PROFILES) as ProfileName[]);
  const trainFiles = options.trainFiles ?? D.trainFiles;
  const testFiles = options.testFiles ?? D.testFiles;
  const baseMs = options.baseMs ?? D.baseMs;
  if (!Number.isInteger(trainFiles) || trainFiles < 1) throw new RangeError('trainFiles must be an integer ≥ 1');

  const result: GenerateResult = { files: [], manifests: {} };
  for (const name of profiles) {
    const profile = PROFILES[name];
    if (!profile) throw new RangeError(`unknown profile ${String(name)}`);
    const period = profile.periodMs;
    // Different profiles are different machines: their own seed, so their noise is unrelated.
    const profileSeed = deriveSeed(options.seed, name);
    const minutes = minutesFor(options.trainMinutes, name);
    if (!(minutes > 0)) throw new RangeError('trainMinutes must be > 0');

    const trainDir = join(options.outDir, name, 'train');
    const testDir = join(options.outDir, name, 'test');
    await cleanDir(trainDir);
    await cleanDir(testDir);

    const rowsPerTrain = Math.max(1, Math.round((minutes * 60_000) / trainFiles / period));
    const trainAmbients: number[] = [];
    for (let i = 0; i < trainFiles; i++) {
      const seed = deriveSeed(profileSeed, 'train', i);
      const rng = new Rng(deriveSeed(seed, 'file'));
      const startMs = alignUp(baseMs + i * DAY_MS + rng.int(10) * HOUR_MS + rng.int(3600) * 1000, period);
      // Spread over the whole plausible range (±1 °C jitter) so "normal" spans the climate the
      // test files, and the plant, will see.
      const spread = trainFiles === 1 ? 0.5 : i / (trainFiles - 1);
      const ambientC = Math.round((AMBIENT_C[0] + (AMBIENT_C[1] - AMBIENT_C[0]) * spread + rng.range(-1, 1)) * 10) / 10;
      trainAmbients.push(ambientC);
      const fname = fileName('train', i);
      const path = join(trainDir, fname);
      const bytes = await writeFile({
        path, profile: name, seed, startMs, rows: rowsPerTrain, ambientC, episodes: [], labelled: false,
      });
      const file: GeneratedFile = {
        profile: name, split: 'train', path, name: fname, rows: rowsPerTrain, bytes, startMs, ambientC, episodes: [],
      };
      result.files.push(file);
      options.onFile?.(file);
    }

    const manifest: FaultManifest = {};
    for (const plan of planTestFiles(profileSeed, period, testFiles, baseMs, trainFiles, trainAmbients)) {
      const path = join(testDir, plan.name);
      const bytes = await writeFile({
        path,
        profile: name,
        seed: plan.seed,
        startMs: plan.startMs,
        rows: plan.rows,
        ambientC: plan.ambientC,
        episodes: plan.episodes,
        labelled: true,
      });
      manifest[plan.name] = plan.episodes;
      const file: GeneratedFile = {
        profile: name, split: 'test', path, name: plan.name, rows: plan.rows, bytes,
        startMs: plan.startMs, ambientC: plan.ambientC, episodes: plan.episodes,
      };
      result.files.push(file);
      options.onFile?.(file);
    }
    const mf = await open(join(testDir, FAULT_MANIFEST_FILE), 'w');
    try {
      await mf.write(JSON.stringify(manifest, null, 2) + '\n');
    } finally {
      await mf.close();
    }
    result.manifests[name] = manifest;
  }
  return result;
}

/**
 * `npm run bench:train`: training windows/s of the fast trainer (one thread, and every thread)
 * against TensorFlow.js on wasm (and tfjs-node when it is installed), for every model of both
 * profiles at their default sizes, on the committed training data; with each run's RSS.
 * Each trainer runs in a child process of its own, so one's memory and JIT state do not colour
 * another's figures. Three epochs run and the faster of the 2nd and 3rd is timed, for every trainer
 * alike: the first pays for start-up (threads, kernels, wasm memory growth), and the better of two
 * keeps a burst of other work on a shared machine from deciding the speed-up.
 *
 * Last line, read by other tools: `fast vs tfjs-wasm: min N.N× (profile/model), all threads`.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../core/defaults.js';
import { MODEL_FEATURES, MODEL_TYPES, PROFILES, PROFILE_NAMES, type ModelType, type ProfileName } from '../core/profiles.js';
import { defaultMaxGapMs, trainingWindows } from '../train/pipeline.js';
import { UsageError } from '../cli/command.js';
import { runBench } from './usage.js';
import type { ProgressSink } from '../train/epochs.js';
import { trainAutoencoder, type TrainerChoice } from '../train/trainer.js';

interface Runner {
  id: string;
  label: string;
  trainer: TrainerChoice;
  /** tfjs backend for the tfjs trainer. */
  backend?: 'wasm' | 'tensorflow';
  /** Windows in the timed epoch: a second or more of work for each runner (at most the data's). */
  windows: number;
}

const THREADS = availableParallelism();
const RUNNERS: Runner[] = [
  { id: 'fast-1', label: 'fast, 1 thread', trainer: { trainer: 'fast', threads: 1 }, windows: 512 },
  { id: 'fast-all', label: `fast, ${THREADS} threads`, trainer: { trainer: 'fast', threads: THREADS }, windows: 512 },
  { id: 'tfjs-wasm', label: 'tfjs wasm', trainer: { trainer: 'tfjs' }, backend: 'wasm', windows: 128 },
  { id: 'tfjs-node', label: 'tfjs-node', trainer: { trainer: 'tfjs' }, backend: 'tensorflow', windows: 128 },
];

interface Row {
  runner: string;
  profile: ProfileName;
  model: ModelType;
  units: string;
  shape: string;
  windowsPerS: number;
  trainWindows: number;
  rssMB: number;
}

/** The training windows of one model, as `train` cuts them (shape inputs included). */
async function windowsOf(dataDir: string, profile: ProfileName, modelType: ModelType) {
  const p = PROFILES[profile];
  return (await trainingWindows(dataDir, profile, [...MODEL_FEATURES[modelType]], p.trainHop, defaultMaxGapMs(p.periodMs))).train;
}

/** Epochs run per measurement; the first is not timed. */
const EPOCHS = 3;

/** Seconds of the fastest epoch after the first. */
function epochTimer(): ProgressSink & { seconds(): number } {
  const ends: number[] = [];
  return {
    batch() {},
    epochEnd() {
      ends.push(performance.now());
    },
    seconds: () => Math.min(...ends.slice(1).map((t, i) => t - ends[i]!)) / 1000,
  };
}

async function child(runner: Runner, dataDir: string, scale: number): Promise<void> {
  const windows = Math.max(1, Math.round(runner.windows * scale));
  if (runner.backend) {
    const { selectBackend } = await import('../model/backend.js');
    await selectBackend(runner.backend);
  }
  for (const profile of PROFILE_NAMES) {
    const p = PROFILES[profile];
    for (const model of MODEL_TYPES) {
      const all = await windowsOf(dataDir, profile, model);
      const n = Math.min(windows, all.n);
      const f = all.f;
      const train = { x: all.x.subarray(0, n * p.seqLen * f), n };
      const timer = epochTimer();
      const fit = { seqLen: p.seqLen, nFeatures: f, maxEpochs: EPOCHS, patience: EPOCHS, batchSize: DEFAULTS.train.batchSize, seed: 1, progress: timer };
      await trainAutoencoder({ seqLen: p.seqLen, nFeatures: f, units: p.units, seed: 1 }, train, { x: train.x, n: 1 }, fit, runner.trainer);
      const row: Row = { runner: runner.id, profile, model, units: p.units.join('/'), shape: `${p.seqLen}×${f}`, windowsPerS: n / timer.seconds(), trainWindows: all.n, rssMB: process.memoryUsage().rss / 1e6 };
      process.stdout.write(JSON.stringify(row) + '\n');
    }
  }
}

function parent(dataDir: string, scale: number): void {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  const sizes = RUNNERS.map((r) => `${r.label} ${Math.max(1, Math.round(r.windows * scale))}`).join(', ');
  console.log(`bench:train — ${cpu}, ${cpus().length} cores, node ${process.version}, load ${loadavg()[0]!.toFixed(2)}; batch ${DEFAULTS.train.batchSize}; the faster of epochs 2 and 3 timed, windows per epoch: ${sizes} (at most the data's)`);
  const rows: Row[] = [];
  const missing: string[] = [];
  for (const runner of RUNNERS) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', runner.id, '--data', dataDir, '--scale', String(scale)], { encoding: 'utf8' });
    if (r.status !== 0) {
      // The thrown message, not the source line Node echoes above it.
      const why = (r.stderr.match(/Error: (backend '[^']+' is not available: [^\n]*)/)?.[1] ?? r.stderr.trim().split('\n').pop() ?? '').replace(/ imported from .*/, '');
      missing.push(`${runner.label}: not available: ${why}`);
      continue;
    }
    for (const line of r.stdout.trim().split('\n')) rows.push(JSON.parse(line) as Row);
  }
  const present = RUNNERS.filter((x) => rows.some((r) => r.runner === x.id));
  console.log(['profile ', 'model        ', 'units', 'T×f    ', ...present.map((x) => x.label.padStart(16)), '  speed-up', '  RSS MB (same order)'].join('  '));
  let min = { ratio: Infinity, what: '' };
  for (const profile of PROFILE_NAMES) {
    for (const model of MODEL_TYPES) {
      const mine = present.map((x) => rows.find((r) => r.runner === x.id && r.profile === profile && r.model === model));
      const first = mine.find((r) => r)!;
      const all = rows.find((r) => r.runner === 'fast-all' && r.profile === profile && r.model === model);
      const wasm = rows.find((r) => r.runner === 'tfjs-wasm' && r.profile === profile && r.model === model);
      const ratio = all && wasm ? all.windowsPerS / wasm.windowsPerS : NaN;
      if (ratio < min.ratio) min = { ratio, what: `${profile}/${model}` };
      console.log(
        [
          profile.padEnd(8),
          model.padEnd(13),
          first.units.padEnd(5),
          first.shape.padEnd(7),
          ...mine.map((r) => (r ? `${r.windowsPerS.toFixed(1)} win/s` : '-').padStart(16)),
          `${Number.isFinite(ratio) ? ratio.toFixed(1) + '×' : '-'}`.padStart(10),
          '  ' + mine.map((r) => (r ? r.rssMB.toFixed(0) : '-')).join(' / '),
        ].join('  '),
      );
    }
  }
  for (const m of missing) console.log(m);
  console.log('speed-up: fast on every thread against tfjs wasm, windows/s; RSS: the child process after the row');
  if (Number.isFinite(min.ratio)) console.log(`fast vs tfjs-wasm: min ${min.ratio.toFixed(1)}× (${min.what}), all threads`);
  else console.log('fast vs tfjs-wasm: not measured (tfjs wasm did not run)');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { child: { type: 'string' }, data: { type: 'string', default: DEFAULTS.cli.dirs.data }, scale: { type: 'string', default: '1' } },
    strict: true,
  });
  // --scale shrinks (or grows) every runner's timed epoch: a quick look, or steadier figures.
  const scale = Number(values.scale);
  if (!(scale > 0)) throw new UsageError(`--scale must be a positive number, got '${values.scale}'`);
  if (values.child) {
    const runner = RUNNERS.find((r) => r.id === values.child);
    if (!runner) throw new UsageError(`unknown runner '${values.child}'`);
    await child(runner, values.data, scale);
  } else parent(values.data, scale);
}

await runBench('bench:train', main);

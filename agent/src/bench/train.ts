/**
 * `npm run bench:train`: seconds per epoch and training windows/s for every TensorFlow.js backend
 * that loads here, on the committed training data of each profile with its default model sizes.
 * Each backend runs in its own child process so one backend's memory and kernels do not colour
 * another's figures.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODEL_FEATURES, PROFILES, PROFILE_NAMES, type ProfileName } from '../core/profiles.js';
import { readCsvDir } from '../preprocess/csv.js';
import { fitMinMax } from '../preprocess/scaler.js';
import { makeWindows, splitEachByTime } from '../preprocess/sequences.js';
import { selectBackend } from '../model/backend.js';
import type { BackendPreference } from '../model/engines.js';
import { buildAutoencoder } from '../model/autoencoder.js';
import { fitAutoencoder } from '../train/fit.js';
import { TRAIN_FRACTION } from '../train/pipeline.js';
import { TRAIN_DEFAULTS } from '../cli/train.js';
import { DEFAULT_DIRS } from '../cli/options.js';

const BACKENDS: Exclude<BackendPreference, 'auto'>[] = ['tensorflow', 'wasm', 'cpu'];
/** Windows timed per measurement: enough for a stable rate, few enough for the cpu backend. */
const BENCH_WINDOWS = 192;

async function child(backend: BackendPreference, dataDir: string): Promise<void> {
  await selectBackend(backend);
  for (const name of PROFILE_NAMES as readonly ProfileName[]) {
    const p = PROFILES[name];
    for (const modelType of ['multi-feature', 'voltage'] as const) {
      const features = [...MODEL_FEATURES[modelType]];
      const series = await readCsvDir(join(dataDir, name, 'train'));
      const scaler = fitMinMax(series, features);
      const train = makeWindows(splitEachByTime(series, TRAIN_FRACTION).train, { features, scaler, seqLen: p.seqLen, hop: p.trainHop, maxGapMs: p.periodMs * 5 });
      const n = Math.min(BENCH_WINDOWS, train.n);
      const sub = { x: train.x.subarray(0, n * p.seqLen * features.length), n };
      const model = buildAutoencoder({ seqLen: p.seqLen, nFeatures: features.length, units: p.units, seed: 1 });
      const opts = { seqLen: p.seqLen, nFeatures: features.length, maxEpochs: 1, patience: 1, batchSize: TRAIN_DEFAULTS.batchSize, seed: 1 };
      await fitAutoencoder(model, { x: sub.x, n: TRAIN_DEFAULTS.batchSize }, { x: sub.x, n: 1 }, opts); // warm-up: kernels, wasm memory growth
      const r = await fitAutoencoder(model, sub, { x: sub.x, n: 1 }, opts);
      model.dispose();
      const wps = n / r.seconds;
      process.stdout.write(
        JSON.stringify({ backend, profile: name, model: modelType, units: p.units.join('/'), seqLen: p.seqLen, features: features.length, windowsPerS: wps, secondsPerEpoch: train.n / wps, trainWindows: train.n, rssMB: process.memoryUsage().rss / 1e6 }) + '\n',
      );
    }
  }
}

function parent(dataDir: string): void {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  console.log(`bench:train — ${cpu}, ${cpus().length} cores, node ${process.version}; batch ${TRAIN_DEFAULTS.batchSize}, ${BENCH_WINDOWS} windows timed per row`);
  console.log('backend     profile   model          units  seqLen×f  windows/s  s/epoch (full set)  RSS MB');
  for (const backend of BACKENDS) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', backend, dataDir], { encoding: 'utf8' });
    if (r.status !== 0) {
      // The thrown message, not the source line Node echoes above it.
      const why = (r.stderr.match(/Error: (backend '[^']+' is not available: [^\n]*)/)?.[1] ?? r.stderr.trim().split('\n').pop() ?? '').replace(/ imported from .*/, '');
      console.log(`${backend.padEnd(10)}  not available: ${why}`);
      continue;
    }
    for (const line of r.stdout.trim().split('\n')) {
      const x = JSON.parse(line);
      console.log(
        `${x.backend.padEnd(10)}  ${x.profile.padEnd(8)}  ${x.model.padEnd(13)}  ${x.units.padEnd(5)}  ${`${x.seqLen}×${x.features}`.padEnd(8)}  ${x.windowsPerS.toFixed(1).padStart(9)}  ${`${x.secondsPerEpoch.toFixed(0)} s (${x.trainWindows} win)`.padStart(18)}  ${x.rssMB.toFixed(0).padStart(6)}`,
      );
    }
  }
}

const args = process.argv.slice(2);
if (args[0] === '--child') await child(args[1] as BackendPreference, args[2]!);
else parent(args[0] ?? DEFAULT_DIRS.data);

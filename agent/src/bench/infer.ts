/**
 * `npm run bench:infer`: the inference engines side by side, one window per call (batch 1, the
 * daemon's case): TensorFlow.js on its cpu backend, TensorFlow.js on wasm, and the fast engine
 * (model/fast-lstm.ts).
 *
 * (a) Latency and throughput on the same models and the same windows for every engine: the
 *     autoencoders of both profiles' sizes (seqLen 100 with LSTM 64/32, seqLen 250 with 32/16) with
 *     1, 3 and 6 features, random weights (seeded), 64 random windows each. Median and p99 of the
 *     per-call wall time, windows/s, the GFLOP/s that makes (model FLOPs: 2 per multiply-add of the
 *     LSTM kernels and the dense layer, the repeated decoder input counted at every step), and the
 *     process CPU time per window (what a loaded machine inflates least).
 * (b) The CPU the five rpm_1200 bundles under models/ (whichever exist and load) cost at their
 *     nominal rate, hop = seqLen/10, on real windows of datas/raw/rpm_1200/test/test_01.csv.
 *
 * Each engine runs in a child process of its own, so one engine's memory and JIT state do not
 * colour another's figures. Takes about two minutes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../cli/command.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { CHANNELS, MODEL_TYPES, PROFILES } from '../core/profiles.js';
import { Rng } from '../core/rng.js';
import { artifactsOf, buildAutoencoder } from '../model/autoencoder.js';
import { selectBackend, tf } from '../model/backend.js';
import { loadBundle, sha256, writeBundle } from '../model/bundle.js';
import type { BackendPreference, Scorer } from '../model/engines.js';
import { FastLstmNetwork, planNetwork } from '../model/fast-lstm.js';
import { createScorer } from '../model/scorer.js';
import { readCsvFile } from '../preprocess/csv.js';
import { makeWindows } from '../preprocess/sequences.js';
import { runBench } from './usage.js';

const MODELS = join(PACKAGE_ROOT, 'models');
const RPM_1200_TEST = join(PACKAGE_ROOT, 'datas', 'raw', 'rpm_1200', 'test', 'test_01.csv');
const WINDOWS = 64;
/** Scores of the first windows each engine reports, to check the engines agree on what they timed. */
const COMPARED = 16;
/** A timed row runs for at least this long and this many calls. */
const MIN_MS = 1500;
const MIN_CALLS = 30;

const ENGINES = [
  { id: 'tfjs-cpu', label: 'tfjs cpu', engine: 'tfjs', backend: 'cpu' },
  { id: 'tfjs-wasm', label: 'tfjs wasm', engine: 'tfjs', backend: 'wasm' },
  { id: 'fast', label: 'fast', engine: 'fast', backend: 'cpu' },
] as const;
type EngineId = (typeof ENGINES)[number]['id'];

interface Shape {
  key: string;
  seqLen: number;
  nFeatures: number;
  units: readonly number[];
}

const SHAPES: Shape[] = [PROFILES.rpm_600, PROFILES.rpm_1200].flatMap((p) =>
  [1, 3, 6].map((f) => ({ key: `${p.seqLen}x${f}`, seqLen: p.seqLen, nFeatures: f, units: p.units })),
);

/** The features a bundle of `f` features reads (bundles name real channels). */
const featuresOf = (f: number) => (f === 1 ? ['voltage'] : f === 3 ? ['accel_x', 'accel_y', 'accel_z'] : [...CHANNELS]);

interface Timing {
  median: number;
  p99: number;
  perS: number;
  cpuMs: number;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Scores window i % n of `x` one at a time for at least MIN_MS and MIN_CALLS calls. */
function timeBatch1(scorer: Scorer, x: Float32Array, n: number): Timing {
  const stride = scorer.seqLen * scorer.nFeatures;
  const one = (i: number) => scorer.score(x.subarray((i % n) * stride, ((i % n) + 1) * stride), 1);
  for (let i = 0; i < 5; i++) one(i); // warm-up: kernels, JIT, wasm memory growth
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let i = 0;
  while (performance.now() - t0 < MIN_MS || i < MIN_CALLS) {
    const a = performance.now();
    one(i++);
    times.push(performance.now() - a);
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  times.sort((a, b) => a - b);
  return { median: percentile(times, 0.5), p99: percentile(times, 0.99), perS: (times.length * 1000) / wall, cpuMs: (cpu.user + cpu.system) / 1000 / times.length };
}

// ---------------------------------------------------------------------------------------------
// Child: one engine

interface ShapeResult {
  kind: 'shape';
  key: string;
  timing: Timing;
  scores: number[];
}

interface FleetResult {
  kind: 'fleet';
  model: string;
  seqLen: number;
  hop: number;
  periodMs: number;
  engine: string;
  timing: Timing;
}

async function child(id: EngineId, dir: string): Promise<void> {
  const e = ENGINES.find((x) => x.id === id)!;
  await selectBackend(e.backend as BackendPreference);
  const emit = (r: ShapeResult | FleetResult) => process.stdout.write(JSON.stringify(r) + '\n');
  for (const s of SHAPES) {
    const bundle = await loadBundle(join(dir, s.key), { knownFeatures: CHANNELS });
    const x = new Float32Array(readFileSync(join(dir, `${s.key}.windows`)).buffer.slice(0));
    const scorer = await createScorer(bundle, e.engine, 1);
    const scores = Array.from({ length: COMPARED }, (_, i) => scorer.score(x.subarray(i * s.seqLen * s.nFeatures, (i + 1) * s.seqLen * s.nFeatures), 1).score[0]!);
    emit({ kind: 'shape', key: s.key, timing: timeBatch1(scorer, x, WINDOWS), scores });
    scorer.dispose();
  }
  if (!existsSync(RPM_1200_TEST)) return;
  const series = await readCsvFile(RPM_1200_TEST);
  for (const model of MODEL_TYPES) {
    const bdir = join(MODELS, 'rpm_1200', model);
    if (!existsSync(join(bdir, 'bundle.json'))) continue;
    let bundle;
    try {
      bundle = await loadBundle(bdir, { knownFeatures: CHANNELS });
    } catch {
      continue; // refused: the daemon would not run it either
    }
    const m = bundle.manifest;
    const w = makeWindows([series], { features: m.features, scaler: m.scaler, seqLen: m.seqLen, hop: m.hop, maxGapMs: m.maxGapMs });
    // As the daemon would: auto, so a bundle the fast engine refuses is timed on tfjs and shown so.
    const scorer = await createScorer(bundle, e.engine === 'fast' ? 'auto' : 'tfjs', 1);
    emit({ kind: 'fleet', model, seqLen: m.seqLen, hop: m.hop, periodMs: m.periodMs, engine: scorer.engine, timing: timeBatch1(scorer, w.x, Math.min(w.n, WINDOWS)) });
    scorer.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Parent: models, windows, children, tables

/** Random-weight bundles of every shape, and their windows, written once for all the children. */
async function prepare(dir: string): Promise<Map<string, number>> {
  await selectBackend('cpu');
  const flops = new Map<string, number>();
  for (const s of SHAPES) {
    const features = featuresOf(s.nFeatures);
    const model = buildAutoencoder({ seqLen: s.seqLen, nFeatures: s.nFeatures, units: s.units, seed: 17 });
    await writeBundle(join(dir, s.key), await artifactsOf(model), {
      name: `bench/${s.key}`,
      profile: s.seqLen === PROFILES.rpm_600.seqLen ? 'rpm_600' : 'rpm_1200',
      modelType: 'bench',
      features,
      seqLen: s.seqLen,
      hop: s.seqLen / 10,
      periodMs: 20,
      maxGapMs: 100,
      scaler: { features, min: features.map(() => 0), max: features.map(() => 1) },
      errorScale: features.map(() => 1),
      threshold: 1,
      thresholdRule: { kind: 'validation-quantile', quantile: 0.995, margin: 1.5, description: 'bench', validationWindows: 0, validationQuantileValue: 0 },
      architecture: { units: [...s.units], recurrentActivation: 'sigmoid', parameters: model.countParams() },
      training: { seed: 17, backend: 'cpu', epochs: 0, bestEpoch: 0, trainLoss: 0, valLoss: 0, trainWindows: 0, valWindows: 0, trainHop: 1, seconds: 0, data: { algorithm: 'sha256', files: [], sha256: sha256('') } },
    });
    model.dispose();
    const rng = new Rng(s.seqLen * 10 + s.nFeatures);
    const x = Float32Array.from({ length: WINDOWS * s.seqLen * s.nFeatures }, () => rng.next());
    writeFileSync(join(dir, `${s.key}.windows`), new Uint8Array(x.buffer));
    const b = await loadBundle(join(dir, s.key), { knownFeatures: CHANNELS });
    flops.set(s.key, new FastLstmNetwork(planNetwork(b.artifacts.modelTopology, b.artifacts.weightSpecs, b.artifacts.weightData, s.seqLen, s.nFeatures)).flops);
  }
  return flops;
}

function runChild(id: EngineId, dir: string): (ShapeResult | FleetResult)[] | { error: string } {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', id, dir], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) {
    const lines = r.stderr.trim().split('\n');
    return { error: lines.filter((l) => /^\w*Error\b/.test(l)).pop() ?? lines.pop() ?? `exit ${r.status} ${r.signal ?? ''}` };
  }
  return r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ShapeResult | FleetResult);
}

async function parent(): Promise<void> {
  const started = Date.now();
  const out = (s = '') => process.stdout.write(s + '\n');
  out(`bench:infer — ${cpus()[0]?.model ?? 'unknown cpu'}, ${cpus().length} cores, node ${process.version}, TensorFlow.js ${tf.version.tfjs}; batch 1`);
  out(`load average at start ${loadavg().map((l) => l.toFixed(1)).join(' ')} (figures are for this machine as loaded now)`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-infer-'));
  try {
    const flops = await prepare(dir);
    const results = new Map<EngineId, (ShapeResult | FleetResult)[]>();
    for (const e of ENGINES) {
      const r = runChild(e.id, dir);
      if ('error' in r) out(`${e.label}: failed: ${r.error}`);
      else results.set(e.id, r);
    }
    const shape = (id: EngineId, key: string) => results.get(id)?.find((r): r is ShapeResult => r.kind === 'shape' && r.key === key);

    out(`\n(a) the same random-weight models and the same ${WINDOWS} random windows for every engine; wall time per call`);
    out('seqLen×f  units  MFLOP/win  engine      median ms   p99 ms     win/s  GFLOP/s  vs tfjs wasm  CPU ms/win');
    for (const s of SHAPES) {
      const mflop = flops.get(s.key)! / 1e6;
      const wasm = shape('tfjs-wasm', s.key);
      ENGINES.forEach((e, i) => {
        const r = shape(e.id, s.key);
        const head = i === 0 ? `${`${s.seqLen}×${s.nFeatures}`.padEnd(8)}  ${s.units.join('/').padEnd(5)}  ${mflop.toFixed(1).padStart(9)}` : ' '.repeat(26);
        if (!r) return out(`${head}  ${e.label.padEnd(10)}  not measured`);
        const t = r.timing;
        const vs = wasm ? `${(wasm.timing.median / t.median).toFixed(1)}×` : '–';
        out(`${head}  ${e.label.padEnd(10)}  ${t.median.toFixed(2).padStart(9)}  ${t.p99.toFixed(2).padStart(7)}  ${t.perS.toFixed(1).padStart(8)}  ${((mflop * t.perS) / 1000).toFixed(2).padStart(7)}  ${vs.padStart(12)}  ${t.cpuMs.toFixed(2).padStart(10)}`);
      });
    }
    const agree = ENGINES.filter((e) => e.id !== 'tfjs-cpu').map((e) => {
      let worst = 0;
      for (const s of SHAPES) {
        const a = shape(e.id, s.key);
        const b = shape('tfjs-cpu', s.key);
        if (!a || !b) continue;
        a.scores.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b.scores[i]!) / Math.abs(b.scores[i]!))));
      }
      return `${e.label} ${worst.toExponential(1)}`;
    });
    out(`scores of the first ${COMPARED} windows of every model, largest relative difference from tfjs cpu: ${agree.join(', ')}`);

    out('\n(b) every rpm_1200 bundle under models/ at its nominal rate (a window every periodMs × hop), batch 1, real windows of test_01.csv');
    const fleet = ENGINES.map((e) => ({ e, rows: (results.get(e.id) ?? []).filter((r): r is FleetResult => r.kind === 'fleet') }));
    const models = fleet[0]!.rows.map((r) => r.model);
    if (models.length === 0) out('    skipped: no usable rpm_1200 bundle or no test_01.csv');
    else {
      const first = fleet[0]!.rows;
      out(`    ${first.map((r) => `${r.model} (seqLen ${r.seqLen}, hop ${r.hop}: ${(1000 / (r.periodMs * r.hop)).toFixed(1)} win/s)`).join('; ')}`);
      out(`engine      CPU ms per window: ${models.map((m) => m.padStart(15)).join('')}   CPU share of one core`);
      for (const { e, rows } of fleet) {
        if (rows.length === 0) continue;
        const share = rows.reduce((a, r) => a + (r.timing.cpuMs * 1000) / (r.periodMs * r.hop), 0) / 1000;
        const fell = rows.filter((r) => e.engine === 'fast' && r.engine !== 'fast').map((r) => r.model);
        out(`${e.label.padEnd(10)}  ${' '.repeat(19)}${rows.map((r) => r.timing.cpuMs.toFixed(2).padStart(15)).join('')}   ${(share * 100).toFixed(1).padStart(5)} %${fell.length ? ` (fast engine refused ${fell.join(', ')}: tfjs)` : ''}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  out(`\nload average at end ${loadavg().map((l) => l.toFixed(1)).join(' ')}; bench took ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

const args = process.argv.slice(2);
if (args[0] === '--child') await child(args[1] as EngineId, args[2]!);
else
  await runBench('bench:infer', async () => {
    if (args.length) throw new UsageError(`takes no options, got '${args[0]}'`);
    await parent();
  });
// tfjs-wasm may keep a handle open.
process.exit(process.exitCode ?? 0);

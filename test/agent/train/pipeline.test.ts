import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDataset } from '#agent/motor/generate.js';
import { silentLogger } from '#agent/core/log.js';
import { ManualClock } from '#agent/core/clock.js';
import { DEFAULT_SENSORS } from '#agent/core/sample.js';
import { Recording } from '#agent/record/recording.js';
import { readings } from '../record/samples.js';
import { CHANNELS } from '#agent/core/profiles.js';
import { selectBackend } from '#agent/model/backend.js';
import { loadBundle, type BundleManifest } from '#agent/model/bundle.js';
import { createScorer } from '#agent/model/scorer.js';
import { evaluateBundle } from '#agent/evaluate/bundle-eval.js';
import { classifyWindow, confusion, overlaps, rocAuc } from '#agent/evaluate/metrics.js';
import { defaultMaxGapMs, trainBundle, trainingWindows } from '#agent/train/pipeline.js';

let root: string;
const tiny = { maxEpochs: 4, patience: 2, batchSize: 32, units: [8, 4], trainHop: 20, seed: 3 };

before(async () => {
  await selectBackend('auto');
  root = await mkdtemp(join(tmpdir(), 'pipeline-test-'));
  await generateDataset({ outDir: join(root, 'data'), seed: 11, profiles: ['rpm_600'], trainMinutes: 3, trainFiles: 1, testFiles: 2 });
});
after(() => rm(root, { recursive: true, force: true }));

test('a tiny model trains in seconds, writes a loadable bundle, and its error separates injected faults from normal running', async () => {
  const started = Date.now();
  const r = await trainBundle({ ...tiny, dataDir: join(root, 'data'), modelsDir: join(root, 'models'), profile: 'rpm_600', modelType: 'vibration', log: silentLogger });
  const seconds = (Date.now() - started) / 1000;
  assert.ok(r.fit.epochs >= 1 && r.fit.epochs <= tiny.maxEpochs);
  assert.ok(r.manifest.threshold > 0);
  assert.equal(r.manifest.training.data.files.length, 1);
  assert.deepEqual(r.manifest.features, ['accel_x', 'accel_y', 'accel_z']);

  const bundle = await loadBundle(r.dir, { knownFeatures: CHANNELS });
  // The fast trainer's bundle is the tfjs layers format: tfjs builds it and scores it as the fast engine does.
  assert.match(r.manifest.training.backend, /^fast \(wasm, \d+ threads?\)$/);
  const n = 8;
  const x = Float32Array.from({ length: n * bundle.manifest.seqLen * 3 }, (_, i) => ((i * 7919) % 1000) / 1000);
  const [tfjs, fast] = [await createScorer(bundle, 'tfjs'), await createScorer(bundle, 'fast')];
  assert.deepEqual([tfjs.engine, fast.engine], ['tfjs', 'fast']);
  const a = tfjs.score(x, n).score;
  const b = fast.score(x, n).score;
  for (let i = 0; i < n; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-4 * Math.abs(a[i]!), `window ${i}: tfjs ${a[i]}, fast ${b[i]}`);
  tfjs.dispose();
  const ev = await evaluateBundle(bundle, join(root, 'data', 'rpm_600', 'test'), join(root, 'data'));
  // Obvious vibration faults (×3.5 imbalance, 6 m/s² bearing impacts, an axis stuck at its rail …)
  // must score above normal windows. ROC AUC is threshold-free, so this holds for a barely trained
  // model that separates at all.
  // Hunting acts on the accelerometer too, but as a slow frequency modulation: a speed fault, for
  // the rpm and multi-feature models to see, not what a barely trained vibration model is judged on.
  const onAccel = (e: { kind: string; intensity: string; channels: string[] }) =>
    e.intensity === 'obvious' && e.kind !== 'hunting' && e.channels.some((c) => c.startsWith('accel_'));
  const obvious = confusion(ev.files, r.manifest.threshold, onAccel);
  assert.ok(obvious.auc !== null && obvious.auc > 0.9, `obvious vibration-fault AUC ${obvious.auc}`);
  const detected = ev.metrics.episodes.filter((e) => onAccel(e) && e.detected).length;
  const total = ev.metrics.episodes.filter(onAccel).length;
  assert.ok(total >= 3 && detected / total >= 0.6, `obvious vibration episodes detected ${detected}/${total}`);
  assert.ok(seconds < 60, `tiny training took ${seconds} s`);
});

test('training is reproducible: the same seed gives the same weights', async () => {
  const a = await trainBundle({ ...tiny, maxEpochs: 1, dataDir: join(root, 'data'), modelsDir: join(root, 'a'), profile: 'rpm_600', modelType: 'voltage', log: silentLogger });
  const b = await trainBundle({ ...tiny, maxEpochs: 1, dataDir: join(root, 'data'), modelsDir: join(root, 'b'), profile: 'rpm_600', modelType: 'voltage', log: silentLogger });
  assert.equal(a.manifest.files['weights.bin'], b.manifest.files['weights.bin']);
  const c = await trainBundle({ ...tiny, seed: 4, maxEpochs: 1, dataDir: join(root, 'data'), modelsDir: join(root, 'c'), profile: 'rpm_600', modelType: 'voltage', log: silentLogger });
  assert.notEqual(a.manifest.files['weights.bin'], c.manifest.files['weights.bin']);
  const m = JSON.parse(await readFile(join(a.dir, 'bundle.json'), 'utf8')) as BundleManifest;
  assert.equal(m.threshold, a.manifest.threshold);
});

test('fine-tuning starts from a trained model: one epoch from it lands far below one from random weights; the manifest names it; another network is refused', async () => {
  const o = { ...tiny, dataDir: join(root, 'data'), profile: 'rpm_600' as const, modelType: 'voltage' as const, log: silentLogger };
  const trained = await trainBundle({ ...o, maxEpochs: 6, patience: 6, modelsDir: join(root, 'ft-base') });
  const base = await loadBundle(trained.dir, { knownFeatures: CHANNELS });
  const from = { name: 'rpm_600/voltage', weightsSha256: base.manifest.files['weights.bin']! };
  const scratch = await trainBundle({ ...o, maxEpochs: 1, modelsDir: join(root, 'ft-scratch') });
  const tuned = await trainBundle({ ...o, maxEpochs: 1, modelsDir: join(root, 'ft-tuned'), startFrom: { artifacts: base.artifacts, scaler: base.manifest.scaler, from } });
  assert.ok(tuned.fit.valLoss < scratch.fit.valLoss / 2, `validation loss after one epoch: fine-tuned ${tuned.fit.valLoss}, from random weights ${scratch.fit.valLoss}`);
  assert.deepEqual(tuned.manifest.training.startedFrom, from);
  // Its scaler holds the starting model's ranges as well as the data's.
  const wide = { features: ['voltage'], min: [base.manifest.scaler.min[0]! - 20], max: [base.manifest.scaler.max[0]! + 20] };
  const widened = await trainBundle({ ...o, maxEpochs: 1, modelsDir: join(root, 'ft-wide'), startFrom: { artifacts: base.artifacts, scaler: wide, from } });
  assert.deepEqual(widened.manifest.scaler, wide);
  assert.equal(scratch.manifest.training.startedFrom, undefined);
  await assert.rejects(
    trainBundle({ ...o, units: [8, 8], maxEpochs: 1, modelsDir: join(root, 'ft-other'), startFrom: { artifacts: base.artifacts, scaler: base.manifest.scaler, from } }),
    /cannot start from these weights: tensors 1×32, 8×32, 32, .*; this network needs 1×32, 8×32, 32, 8×32, 8×32/,
  );
});

test('a temperature model gets the window shape as a second input, and it sees obvious overheating', async () => {
  const r = await trainBundle({ ...tiny, dataDir: join(root, 'data'), modelsDir: join(root, 'temp'), profile: 'rpm_600', modelType: 'temperature', log: silentLogger });
  assert.deepEqual(r.manifest.shape?.features, ['temperature']);
  assert.ok(r.manifest.shape!.gain[0]! > 1, `gain ${r.manifest.shape!.gain[0]}`);
  assert.equal(r.manifest.errorScale.length, 2);
  const bundle = await loadBundle(r.dir, { knownFeatures: CHANNELS });
  const ev = await evaluateBundle(bundle, join(root, 'data', 'rpm_600', 'test'), join(root, 'data'));
  // The shape input's own error, threshold-free: three minutes of training at one ambient leave
  // the level input guessing at other ambients, which is not what this test is about.
  const shapeError = { fault: [] as number[], normal: [] as number[] };
  for (const f of ev.files) {
    const heat = f.episodes.filter((e) => e.kind === 'overheating' && e.intensity === 'obvious');
    for (const w of f.windows) {
      const pf = w.perFeature ?? {};
      assert.deepEqual(Object.keys(pf), ['temperature', 'temperature.shape']);
      const cls = classifyWindow(w.labelFraction);
      if (cls === 'normal') shapeError.normal.push(pf['temperature.shape']!);
      else if (cls === 'fault' && heat.some((e) => overlaps(w, e))) shapeError.fault.push(pf['temperature.shape']!);
    }
  }
  assert.ok(shapeError.fault.length >= 10, `${shapeError.fault.length} obvious overheating windows`);
  const auc = rocAuc(shapeError.fault, shapeError.normal);
  assert.ok(auc !== null && auc > 0.9, `obvious overheating AUC on temperature.shape ${auc}`);
});

test('a gap inside a file ends a segment and is no sampling rate: the spacing check reads the steps within segments, and no window spans the gap', async () => {
  const dir = join(root, 'gappy');
  await mkdir(join(dir, 'rpm_600', 'train'), { recursive: true });
  const lines = (await readFile(join(root, 'data', 'rpm_600', 'train', 'train_01.csv'), 'utf8')).trimEnd().split('\n');
  // Rows 1000–1399 left out: 20 s without data, as a recording leaves a sensor's outage.
  const gappy = [...lines.slice(0, 1001), ...lines.slice(1401)];
  await writeFile(join(dir, 'rpm_600', 'train', 'a.csv'), gappy.join('\n') + '\n');
  const before = Number(lines[1000]!.split(',')[0]);
  const after = Number(lines[1401]!.split(',')[0]);
  const { train, val } = await trainingWindows(dir, 'rpm_600', ['voltage'], 25, defaultMaxGapMs(50));
  assert.ok(train.n > 0 && val.n > 0);
  for (const w of [train, val]) for (let i = 0; i < w.n; i++) assert.ok(!(w.startT[i]! <= before && w.endT[i]! >= after), 'a window spans the gap');

  // Rows 60 ms apart are still not rpm_600's 50 ms, gap or not.
  const slow = lines.slice(1).map((l, i) => [String(1_700_000_000_000 + 60 * i), ...l.split(',').slice(1)].join(','));
  await writeFile(join(dir, 'rpm_600', 'train', 'a.csv'), [lines[0], ...slow].join('\n') + '\n');
  await assert.rejects(trainingWindows(dir, 'rpm_600', ['voltage'], 25, defaultMaxGapMs(50)), /a\.csv: rows are 60\.0 ms apart on average \(steps over 250 ms, gaps, left out\), profile rpm_600 samples every 50 ms/);
});

test('a recording directory is training data of its profile: its files as they are, its columns checked, a model it has no channel for refused naming what is missing', async () => {
  const dir = join(root, 'recording');
  const clock = new ManualClock(Date.UTC(2024, 0, 8, 6));
  const sensors = { vibration: DEFAULT_SENSORS.vibration! };
  const rec = new Recording({ dir, device: 'motor-1', source: { kind: 'sim' }, profile: 'rpm_1200', sensors, maxBytes: 1 << 20, rotateBytes: 1 << 18, rotateMs: 3_600_000, clock, log: silentLogger });
  await rec.open();
  for (const s of readings(clock.now(), clock.now() + 60_000, 20)) if (s.sensor === 'vibration') rec.add(s);
  await rec.close();
  const { train, val } = await trainingWindows(dir, 'rpm_1200', ['accel_x', 'accel_y', 'accel_z'], 75, defaultMaxGapMs(20));
  assert.ok(train.n > 20 && val.n > 0, `${train.n} / ${val.n} windows`);
  await assert.rejects(trainingWindows(dir, 'rpm_1200', ['voltage'], 75, defaultMaxGapMs(20)), new RegExp(`^Error: ${dir}: recorded columns accel_x, accel_y, accel_z; the model needs voltage too$`));
  await assert.rejects(trainingWindows(dir, 'rpm_600', ['accel_x'], 25, defaultMaxGapMs(50)), /is a recording of rpm_1200 \(a row every 20 ms\): it trains rpm_1200 models, not rpm_600 ones/);
});

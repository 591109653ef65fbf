/**
 * The fast engine against tfjs: every committed bundle and randomly configured small models give
 * the same outputs as tfjs predict (cpu backend) to 1e-4, and what it does not implement is
 * refused with the layer and option named.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { artifactsOf } from '#agent/model/autoencoder.js';
import { selectBackend, tf } from '#agent/model/backend.js';
import { bundleInputs, loadBundle, type BundleArtifacts, type WeightSpec } from '#agent/model/bundle.js';
import { FastLstmNetwork, FastScorer, UnsupportedModelError, fastSigmoid, fastTanh, planNetwork } from '#agent/model/fast-lstm.js';
import { TfjsScorer, tfjsModel } from '#agent/model/tfjs-model.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { CHANNELS } from '#agent/core/profiles.js';
import { Rng } from '#agent/core/rng.js';
import { readCsvFile } from '#agent/preprocess/csv.js';
import { makeWindows } from '#agent/preprocess/sequences.js';

const TOLERANCE = 1e-4;

before(async () => {
  await selectBackend('cpu');
});

function tfjsPredict(model: tf.LayersModel, x: Float32Array, n: number, seqLen: number, nFeatures: number): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor3d(x, [n, seqLen, nFeatures])) as tf.Tensor).dataSync() as Float32Array);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = d; // NaN sticks
  }
  return m;
}

/** Largest |a − b| / max(|b|, floor): scores are MSEs divided by small error scales. */
function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(b[i]!), floor);
    if (!(d <= m)) m = d;
  }
  return m;
}

function randomWindows(rng: Rng, n: number, seqLen: number, nFeatures: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n * seqLen * nFeatures }, () => rng.range(lo, hi));
}

test('the tanh and sigmoid approximations are within 5e-8 of Math.tanh and the exact sigmoid', () => {
  let worstTanh = 0;
  let worstSigmoid = 0;
  const check = (x: number) => {
    worstTanh = Math.max(worstTanh, Math.abs(fastTanh(x) - Math.tanh(x)));
    worstSigmoid = Math.max(worstSigmoid, Math.abs(fastSigmoid(x) - 1 / (1 + Math.exp(-x))));
  };
  for (let x = -25; x <= 25; x += 1 / 1024) check(x);
  for (const x of [0, -0, 1e-30, -1e-30, 1e3, -1e3, 1e300, -1e300, Infinity, -Infinity]) check(x);
  assert.ok(worstTanh < 5e-8, `tanh off by ${worstTanh}`);
  assert.ok(worstSigmoid < 5e-8, `sigmoid off by ${worstSigmoid}`);
  assert.equal(fastTanh(0), 0);
  assert.equal(fastSigmoid(0), 0.5);
});

// ---------------------------------------------------------------------------------------------
// Committed bundles

const MODELS = join(PACKAGE_ROOT, 'models');

function committedBundles(): { profile: string; model: string; dir: string }[] {
  if (!existsSync(MODELS)) return [];
  const out: { profile: string; model: string; dir: string }[] = [];
  for (const p of readdirSync(MODELS, { withFileTypes: true })) {
    if (!p.isDirectory()) continue;
    for (const e of readdirSync(join(MODELS, p.name), { withFileTypes: true })) {
      if (e.isDirectory() && existsSync(join(MODELS, p.name, e.name, 'bundle.json'))) out.push({ profile: p.name, model: e.name, dir: join(MODELS, p.name, e.name) });
    }
  }
  return out;
}

test('every committed bundle: fast reconstructions and scores match tfjs on random and real windows', async () => {
  const bundles = committedBundles();
  assert.ok(bundles.length > 0, `no bundle under ${MODELS}`);
  const realByProfile = new Map<string, Awaited<ReturnType<typeof readCsvFile>>>();
  for (const { profile, model, dir } of bundles) {
    const bundle = await loadBundle(dir, { knownFeatures: CHANNELS });
    const m = bundle.manifest;
    const T = m.seqLen;
    const f = bundleInputs(m).length;
    const rng = new Rng(T * 31 + f);
    // Random windows: inside the scaled range, and beyond it as a fault would push them.
    const parts = [randomWindows(rng, 2, T, f, 0, 1), randomWindows(rng, 1, T, f, -0.5, 1.5)];
    let real = 0;
    const csv = join(PACKAGE_ROOT, 'datas', 'raw', profile, 'test', 'test_01.csv');
    if (existsSync(csv)) {
      if (!realByProfile.has(profile)) realByProfile.set(profile, await readCsvFile(csv));
      const w = makeWindows([realByProfile.get(profile)!], { features: m.features, scaler: m.scaler, shape: m.shape, seqLen: T, hop: m.hop, maxGapMs: m.maxGapMs });
      for (const i of [0, Math.floor(w.n / 3), Math.floor((2 * w.n) / 3), w.n - 1]) {
        if (i < 0 || i >= w.n) continue;
        parts.push(w.x.slice(i * T * f, (i + 1) * T * f));
        real++;
      }
    }
    const n = parts.length;
    const x = new Float32Array(n * T * f);
    parts.forEach((p, i) => x.set(p, i * T * f));

    const fast = new FastScorer(bundle, 4);
    const tfjsNet = await tfjsModel(bundle);
    const tfjs = new TfjsScorer(bundle, tfjsNet, 4);
    const label = `${profile}/${model} (${T}×${f}, ${m.architecture.units.join('/')}, ${real} real windows)`;
    const err = maxAbsDiff(fast.network.predict(x, n), tfjsPredict(tfjsNet, x, n, T, f));
    assert.ok(err <= TOLERANCE, `${label}: reconstruction differs from tfjs predict by ${err}`);
    const a = fast.score(x, n);
    const b = tfjs.score(x, n);
    assert.ok(maxRelDiff(a.perFeature, b.perFeature) <= TOLERANCE, `${label}: per-feature errors differ by ${maxRelDiff(a.perFeature, b.perFeature)} (relative)`);
    assert.ok(maxRelDiff(a.score, b.score) <= TOLERANCE, `${label}: scores differ by ${maxRelDiff(a.score, b.score)} (relative)`);
    // One window at a time (the daemon's usual call) gives the same as the batch.
    for (let i = 0; i < n; i++) {
      const one = fast.score(x.subarray(i * T * f, (i + 1) * T * f), 1);
      assert.equal(one.score[0], a.score[i]);
    }
    tfjs.dispose();
  }
});

// ---------------------------------------------------------------------------------------------
// Randomly configured small models

const ACTS = ['tanh', 'sigmoid', 'hardSigmoid', 'relu', 'linear'] as const;
type Act = (typeof ACTS)[number];

interface RandomSpec {
  seqLen: number;
  nFeatures: number;
  units: number[];
  activation: Act;
  recurrentActivation: Act;
  useBias: boolean;
  denseActivation: Act;
  timeDistributed: boolean;
  inputLayer: boolean;
  dropout: boolean;
  /** A Dense on the encoder's vector before RepeatVector. */
  bottleneck: boolean;
  /** A Dense on the repeated vector after RepeatVector. */
  denseOnRepeat: boolean;
  weightScale: number;
}

function randomSpec(rng: Rng, i: number): RandomSpec {
  return {
    seqLen: 2 + rng.int(14),
    nFeatures: 1 + rng.int(4),
    units: Array.from({ length: 1 + rng.int(3) }, () => 1 + rng.int(9)),
    // The first models cover the trainer's pair and each other activation at least once.
    activation: i === 0 ? 'tanh' : ACTS[i % ACTS.length]!,
    recurrentActivation: i === 0 ? 'sigmoid' : (['sigmoid', 'hardSigmoid', 'tanh'] as const)[i % 3]!,
    useBias: i % 4 !== 1,
    denseActivation: i < 2 ? 'linear' : rng.pick(ACTS),
    timeDistributed: i % 3 !== 2,
    inputLayer: i % 5 === 3,
    dropout: i % 4 === 2,
    bottleneck: i % 6 === 4,
    denseOnRepeat: i % 7 === 5,
    weightScale: rng.range(0.3, 1.2),
  };
}

function buildRandom(s: RandomSpec, seed: number): tf.LayersModel {
  let k = seed;
  const init = () => tf.initializers.randomUniform({ minval: -s.weightScale, maxval: s.weightScale, seed: k++ });
  const bias = () => tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: k++ });
  const lstm = (units: number, returnSequences: boolean, first: boolean) =>
    tf.layers.lstm({
      units,
      returnSequences,
      activation: s.activation,
      recurrentActivation: s.recurrentActivation,
      useBias: s.useBias,
      kernelInitializer: init(),
      recurrentInitializer: init(),
      biasInitializer: bias(),
      ...(first && !s.inputLayer ? { inputShape: [s.seqLen, s.nFeatures] } : {}),
    });
  const dense = (units: number, activation: Act, inputShape?: number[]) => tf.layers.dense({ units, activation, kernelInitializer: init(), biasInitializer: bias(), ...(inputShape ? { inputShape } : {}) });
  const m = tf.sequential();
  if (s.inputLayer) m.add(tf.layers.inputLayer({ inputShape: [s.seqLen, s.nFeatures] }));
  s.units.forEach((u, i) => {
    m.add(lstm(u, i < s.units.length - 1, i === 0));
    if (i === 0 && s.dropout) m.add(tf.layers.dropout({ rate: 0.5 }));
  });
  const last = s.units[s.units.length - 1]!;
  if (s.bottleneck) m.add(dense(last, 'tanh'));
  m.add(tf.layers.repeatVector({ n: s.seqLen }));
  if (s.denseOnRepeat) m.add(dense(last + 1, 'relu'));
  [...s.units].reverse().forEach((u) => m.add(lstm(u, true, false)));
  m.add(s.timeDistributed ? tf.layers.timeDistributed({ layer: dense(s.nFeatures, s.denseActivation) }) : dense(s.nFeatures, s.denseActivation));
  return m;
}

test('randomly configured small models: the fast engine matches tfjs predict', async () => {
  const rng = new Rng(20240605);
  for (let i = 0; i < 24; i++) {
    const s = randomSpec(rng, i);
    const model = buildRandom(s, 1000 + i * 50);
    try {
      const a = await artifactsOf(model);
      const net = new FastLstmNetwork(planNetwork(a.modelTopology, a.weightSpecs, a.weightData, s.seqLen, s.nFeatures));
      const n = 3;
      const x = randomWindows(rng, n, s.seqLen, s.nFeatures, -1, 1.5);
      const expected = tfjsPredict(model, x, n, s.seqLen, s.nFeatures);
      const got = net.predict(x, n);
      const err = maxAbsDiff(got, expected);
      assert.ok(err <= TOLERANCE, `model ${i} ${JSON.stringify(s)}: differs from tfjs predict by ${err}`);
      // featureErrors is the MSE of those reconstructions against the input.
      const fe = net.featureErrors(x, n);
      for (let w = 0; w < n; w++) {
        for (let j = 0; j < s.nFeatures; j++) {
          let sum = 0;
          for (let t = 0; t < s.seqLen; t++) {
            const q = (w * s.seqLen + t) * s.nFeatures + j;
            sum += (got[q]! - x[q]!) ** 2;
          }
          assert.ok(Math.abs(fe[w * s.nFeatures + j]! - sum / s.seqLen) <= 1e-6 * Math.max(1, sum / s.seqLen), `model ${i}: featureErrors`);
        }
      }
    } finally {
      model.dispose();
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Refusals

/** A small autoencoder's artifacts, to be edited into something the engine must refuse. */
async function tinyArtifacts(): Promise<BundleArtifacts> {
  const m = tf.sequential();
  m.add(tf.layers.lstm({ units: 3, returnSequences: false, recurrentActivation: 'sigmoid', inputShape: [5, 2] }));
  m.add(tf.layers.repeatVector({ n: 5 }));
  m.add(tf.layers.lstm({ units: 3, returnSequences: true, recurrentActivation: 'sigmoid' }));
  m.add(tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2 }) }));
  const a = await artifactsOf(m);
  m.dispose();
  return a;
}

type Layers = { class_name: string; config: Record<string, unknown> }[];
const layersOf = (a: BundleArtifacts) => (a.modelTopology as { config: { layers: Layers } }).config.layers;

function refusal(a: BundleArtifacts): UnsupportedModelError {
  try {
    planNetwork(a.modelTopology, a.weightSpecs, a.weightData, 5, 2);
  } catch (err) {
    if (err instanceof UnsupportedModelError) return err;
    throw err;
  }
  assert.fail('the fast engine accepted the model');
}

test('the tiny model itself is accepted', async () => {
  const a = await tinyArtifacts();
  const plan = planNetwork(a.modelTopology, a.weightSpecs, a.weightData, 5, 2);
  assert.deepEqual(
    plan.layers.map((l) => l.kind),
    ['lstm', 'repeat', 'lstm', 'dense'],
  );
});

test('unsupported LSTM options are refused, naming the layer and the option', async () => {
  for (const [option, value] of [
    ['go_backwards', true],
    ['stateful', true],
    ['return_state', true],
    ['time_major', true],
    ['activation', 'softmax'],
    ['recurrent_activation', 'swish'],
    ['some_future_option', 3],
  ] as const) {
    const a = await tinyArtifacts();
    const lstm = layersOf(a)[2]!;
    lstm.config[option] = value;
    const err = refusal(a);
    assert.equal(err.layer, lstm.config.name, option);
    assert.equal(err.option, option);
    assert.match(err.message, new RegExp(`layer '${String(lstm.config.name)}'.*${option}`));
  }
});

test('unsupported layers and topologies are refused with the reason', async () => {
  {
    const a = await tinyArtifacts();
    layersOf(a)[0]!.class_name = 'GRU';
    const err = refusal(a);
    assert.equal(err.option, 'class_name');
    assert.equal(err.layer, layersOf(a)[0]!.config.name);
    assert.match(err.message, /'GRU'/);
  }
  {
    const a = await tinyArtifacts();
    (layersOf(a)[3]!.config.layer as { class_name: string }).class_name = 'Conv1D';
    const err = refusal(a);
    assert.equal(err.option, 'layer');
    assert.match(err.message, /Conv1D/);
  }
  {
    const a = await tinyArtifacts();
    ((layersOf(a)[3]!.config.layer as { config: Record<string, unknown> }).config).activation = 'softmax';
    const err = refusal(a);
    assert.equal(err.option, 'activation');
    assert.match(err.message, /softmax/);
  }
  {
    const a = await tinyArtifacts();
    (a.modelTopology as { class_name: string }).class_name = 'Model';
    const err = refusal(a);
    assert.equal(err.layer, 'model');
    assert.match(err.message, /only Sequential/);
  }
  {
    const a = await tinyArtifacts();
    a.weightSpecs = a.weightSpecs.map((w) => (w.name.endsWith('/recurrent_kernel') ? { ...w, name: w.name.replace('recurrent_kernel', 'other_kernel') } : w));
    const err = refusal(a);
    assert.equal(err.option, 'weights');
  }
  {
    const a = await tinyArtifacts();
    a.weightSpecs = [...a.weightSpecs, { name: 'stray/kernel', shape: [1], dtype: 'float32' }];
    a.weightData = new Uint8Array([...a.weightData, 0, 0, 0, 0]);
    const err = refusal(a);
    assert.equal(err.option, 'weights');
    assert.match(err.message, /stray\/kernel/);
  }
  {
    const a = await tinyArtifacts();
    assert.throws(() => planNetwork(a.modelTopology, a.weightSpecs, a.weightData, 7, 2), (e: unknown) => e instanceof UnsupportedModelError && e.option === 'batch_input_shape');
  }
});

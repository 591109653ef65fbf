/**
 * The fast trainer against finite differences and against tfjs: gradients of random small models,
 * Adam steps, initial weights, refusals by name, determinism for a seed and thread count, and the
 * validation loss both trainers reach on the committed data.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { MODEL_FEATURES, PROFILES } from '#agent/core/profiles.js';
import { Rng } from '#agent/core/rng.js';
import { artifactsOf, buildAutoencoder } from '#agent/model/autoencoder.js';
import { selectBackend, tf } from '#agent/model/backend.js';
import { cellOf, FastLstmNetwork, lstmCell, planNetwork, UnsupportedModelError } from '#agent/model/fast-lstm.js';
import { at, KernelArena } from '#agent/model/gemm.js';
import { defaultMaxGapMs, trainingWindows } from '#agent/train/pipeline.js';
import { concatWeights, type BundleArtifacts, type WeightSpec } from '#agent/model/bundle.js';
import { initialAutoencoder } from '#agent/train/autoencoder-init.js';
import { Adam, fitFast } from '#agent/train/fast-fit.js';
import { lstmCellBack, TrainableNetwork } from '#agent/train/fast-network.js';
import { featureErrors, trainAutoencoder } from '#agent/train/trainer.js';

before(async () => {
  await selectBackend('cpu');
});

/** Small random autoencoders of the bundle shape: sizes, depth and inputs vary. */
const SHAPES = [
  { seqLen: 6, nFeatures: 1, units: [4] },
  { seqLen: 7, nFeatures: 3, units: [5, 3] },
  { seqLen: 5, nFeatures: 2, units: [6, 4, 3] },
];

/** The plan's initial weights shaken, so gates sit away from their starting symmetry. */
function shaken(net: TrainableNetwork, rng: Rng, amount = 0.4): Float64Array {
  const p = net.initialParams();
  for (let i = 0; i < p.length; i++) p[i]! += amount * rng.gauss();
  return p;
}

function windows(rng: Rng, n: number, seqLen: number, nFeatures: number): Float32Array {
  return Float32Array.from({ length: n * seqLen * nFeatures }, () => rng.next());
}

/** `init`'s network with the parameter vector `params` as its weights. */
function withParams(init: BundleArtifacts, seqLen: number, nFeatures: number, params: Float64Array): BundleArtifacts {
  const plan = planNetwork(init.modelTopology, init.weightSpecs, init.weightData, seqLen, nFeatures);
  new TrainableNetwork(plan, 1, 'js').exportParams(params);
  return { ...init, weightData: concatWeights(plan.weights) };
}

/** A gradient vector in Keras layout, tensor by tensor, named as model.json names them. */
function kerasTensors(artifacts: BundleArtifacts, seqLen: number, nFeatures: number, vector: Float64Array): Map<string, Float32Array> {
  const plan = planNetwork(artifacts.modelTopology, artifacts.weightSpecs, artifacts.weightData, seqLen, nFeatures);
  new TrainableNetwork(plan, 1, 'js').exportParams(vector);
  return new Map(artifacts.weightSpecs.map((s, i) => [s.name, plan.weights[i]!]));
}

test('gradients match central finite differences on random small models, for the wasm kernel and the JavaScript reference', () => {
  const rng = new Rng(11);
  for (const s of SHAPES) {
    const a = initialAutoencoder({ ...s, seed: 5 });
    const plan = planNetwork(a.modelTopology, a.weightSpecs, a.weightData, s.seqLen, s.nFeatures);
    const n = 5;
    const data = windows(rng, n, s.seqLen, s.nFeatures);
    const idx = [4, 0, 3, 1, 2];
    const scale = 1 / (n * s.seqLen * s.nFeatures);
    for (const kernel of ['wasm', 'js'] as const) {
      // Sized for 2 windows: the 5 run as chunks of 2, 2 and 1, as a thread runs its slice.
      const net = new TrainableNetwork(plan, 2, kernel);
      const p0 = shaken(net, new Rng(3));
      net.setParams(p0);
      net.zeroGrad();
      for (let from = 0; from < n; from += 2) net.gradient(data, idx, from, Math.min(n, from + 2), scale);
      const grad = net.grad.slice();
      const loss = (p: Float64Array) => {
        net.setParams(p);
        let sse = 0;
        for (let from = 0; from < n; from += 2) sse += net.sse(data, idx, from, Math.min(n, from + 2));
        return sse * scale;
      };
      let worst = 0;
      for (let i = 0; i < net.size; i++) {
        const h = 1e-5;
        const p = p0.slice();
        p[i]! += h;
        const up = loss(p);
        p[i]! -= 2 * h;
        const down = loss(p);
        const fd = (up - down) / (2 * h);
        // Tolerance: the tanh/sigmoid approximations (3e-8) and the differences' own rounding.
        const err = Math.abs(fd - grad[i]!) / (1e-6 + 1e-3 * Math.abs(fd));
        worst = Math.max(worst, err);
      }
      assert.ok(worst <= 1, `${kernel} ${s.seqLen}×${s.nFeatures} units ${s.units}: gradient off by ${worst.toFixed(2)} tolerances`);
      assert.equal(net.engine, kernel, 'the wasm kernel is built by npm run build');
    }
  }
});

test('gradients match tfjs autodiff of the mean squared reconstruction error (cpu backend, float32)', async () => {
  const rng = new Rng(12);
  for (const s of SHAPES) {
    const init = initialAutoencoder({ ...s, seed: 9 });
    const net = new TrainableNetwork(planNetwork(init.modelTopology, init.weightSpecs, init.weightData, s.seqLen, s.nFeatures), 4);
    const artifacts = withParams(init, s.seqLen, s.nFeatures, shaken(net, rng));
    const weightData = artifacts.weightData;
    const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: artifacts.modelTopology as tf.io.ModelJSON['modelTopology'], weightSpecs: artifacts.weightSpecs as tf.io.WeightsManifestEntry[], weightData: weightData.slice().buffer }));
    const n = 4;
    const data = windows(rng, n, s.seqLen, s.nFeatures);
    const x = tf.tensor3d(data, [n, s.seqLen, s.nFeatures]);
    const { grads } = tf.variableGrads(() => tf.mean(tf.squaredDifference(model.apply(x) as tf.Tensor, x)) as tf.Scalar, model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
    // Our gradient of the same (float32) weights, exported to Keras layout.
    const same = new TrainableNetwork(planNetwork(artifacts.modelTopology, artifacts.weightSpecs, artifacts.weightData, s.seqLen, s.nFeatures), n);
    same.zeroGrad();
    same.gradient(data, [0, 1, 2, 3], 0, n, 1 / (n * s.seqLen * s.nFeatures));
    const ours = kerasTensors(artifacts, s.seqLen, s.nFeatures, same.grad);
    let compared = 0;
    for (const w of model.trainableWeights) {
      const name = w.originalName;
      const theirs = (grads[(w as unknown as { val: tf.Variable }).val.name] as tf.Tensor).dataSync();
      const mine = ours.get(name);
      assert.ok(mine, `no gradient named ${name} (have ${[...ours.keys()].join(', ')})`);
      let scaleRef = 0;
      for (const v of theirs) scaleRef = Math.max(scaleRef, Math.abs(v));
      for (let i = 0; i < theirs.length; i++) {
        // float32 tfjs against float64 here: 1e-3 of the tensor's largest entry.
        assert.ok(Math.abs(theirs[i]! - mine[i]!) <= 1e-3 * scaleRef + 1e-7, `${name}[${i}]: tfjs ${theirs[i]}, fast ${mine[i]}`);
      }
      compared++;
    }
    assert.equal(compared, artifacts.weightSpecs.length);
    Object.values(grads).forEach((g) => g.dispose());
    x.dispose();
    model.dispose();
  }
});

test('Adam steps as tfjs.train.adam does', () => {
  const rng = new Rng(13);
  const size = 50;
  const start = Float32Array.from({ length: size }, () => rng.gauss());
  const steps = Array.from({ length: 5 }, () => Float32Array.from({ length: size }, () => rng.gauss() * 0.1));
  const ours = Float64Array.from(start);
  const adam = new Adam(size, 0.01);
  for (const g of steps) adam.step(ours, Float64Array.from(g));
  const v = tf.variable(tf.tensor1d(start));
  const opt = tf.train.adam(0.01);
  for (const g of steps) opt.applyGradients([{ name: v.name, tensor: tf.tensor1d(g) }]);
  const theirs = v.dataSync();
  for (let i = 0; i < size; i++) assert.ok(Math.abs(theirs[i]! - ours[i]!) < 1e-5, `param ${i}: tfjs ${theirs[i]}, fast ${ours[i]}`);
  opt.dispose();
  v.dispose();
});

test('initial weights: the topology tfjs builds, Glorot-uniform kernels, orthogonal recurrent kernels, zero biases', async () => {
  const spec = { seqLen: 12, nFeatures: 3, units: [16, 8], seed: 42 };
  const a = initialAutoencoder(spec);
  const reference = buildAutoencoder(spec);
  const ref = await artifactsOf(reference);
  reference.dispose();
  assert.deepEqual(
    a.weightSpecs.map((w) => w.shape),
    ref.weightSpecs.map((w) => w.shape),
  );
  // Same layer classes and options as tfjs writes them, but for tfjs's global name counters.
  const strip = (t: unknown) => JSON.stringify(t).replace(/"name":"[^"]*"/g, '"name":"-"');
  assert.equal(strip(a.modelTopology), strip(ref.modelTopology));
  const loaded = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: a.modelTopology as tf.io.ModelJSON['modelTopology'], weightSpecs: a.weightSpecs as tf.io.WeightsManifestEntry[], weightData: a.weightData.slice().buffer }));
  assert.deepEqual(loaded.outputs[0]!.shape, [null, 12, 3]);
  loaded.dispose();

  const plan = planNetwork(a.modelTopology, a.weightSpecs, a.weightData, spec.seqLen, spec.nFeatures);
  for (const l of plan.layers) {
    if (l.kind === 'repeat') continue;
    const fanOut = l.kind === 'lstm' ? 4 * l.units : l.units;
    const limit = Math.sqrt(6 / (l.inDim + fanOut));
    const k = l.kernel;
    assert.ok(k.every((v) => Math.abs(v) <= limit), `${l.name}: kernel outside ±${limit}`);
    const spread = Math.max(...k) - Math.min(...k);
    assert.ok(spread > limit, `${l.name}: kernel does not span its range (${spread})`);
    assert.ok(l.bias!.every((v) => v === 0), `${l.name}: bias not zero`);
    if (l.kind === 'lstm') {
      // [u][4u] with orthonormal rows: U·Uᵀ = I.
      const u = l.units;
      for (let i = 0; i < u; i++) {
        for (let j = 0; j < u; j++) {
          let dot = 0;
          for (let c = 0; c < 4 * u; c++) dot += l.recurrent[i * 4 * u + c]! * l.recurrent[j * 4 * u + c]!;
          assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-5, `${l.name}: recurrent rows ${i}·${j} = ${dot}`);
        }
      }
    }
  }
  // Seeded: the same spec gives the same bytes, another seed others.
  assert.deepEqual(initialAutoencoder(spec).weightData, a.weightData);
  assert.notDeepEqual(initialAutoencoder({ ...spec, seed: 43 }).weightData, a.weightData);
});

test('what the trainer does not implement is refused, naming the layer and the option', async () => {
  const build = (layers: tf.layers.Layer[]) => {
    const m = tf.sequential();
    layers.forEach((l) => m.add(l));
    return m;
  };
  const cases: { layers: () => tf.layers.Layer[]; option: string }[] = [
    { layers: () => [tf.layers.lstm({ units: 3, inputShape: [4, 2], returnSequences: true, recurrentActivation: 'hardSigmoid' }), tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2 }) })], option: 'recurrent_activation' },
    { layers: () => [tf.layers.lstm({ units: 3, inputShape: [4, 2], returnSequences: true, activation: 'relu', recurrentActivation: 'sigmoid' }), tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2 }) })], option: 'activation' },
    { layers: () => [tf.layers.lstm({ units: 3, inputShape: [4, 2], returnSequences: true, useBias: false, recurrentActivation: 'sigmoid' }), tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2 }) })], option: 'use_bias' },
    { layers: () => [tf.layers.lstm({ units: 3, inputShape: [4, 2], returnSequences: true, recurrentActivation: 'sigmoid' }), tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2, activation: 'tanh' }) })], option: 'activation' },
  ];
  for (const c of cases) {
    const model = build(c.layers());
    const a = await artifactsOf(model);
    model.dispose();
    const plan = planNetwork(a.modelTopology, a.weightSpecs as WeightSpec[], a.weightData, 4, 2);
    assert.throws(
      () => new TrainableNetwork(plan, 2),
      (err: unknown) => err instanceof UnsupportedModelError && err.option === c.option && /trainer/.test(err.message),
    );
  }
});

/** Every k-th of a set's windows, at most `limit`, so a subset spans the whole recording set. */
function spread(set: { x: Float32Array; n: number }, stride: number, limit: number) {
  const step = Math.max(1, Math.floor(set.n / limit));
  const n = Math.min(limit, Math.floor(set.n / step));
  const x = new Float32Array(n * stride);
  for (let i = 0; i < n; i++) x.set(set.x.subarray(i * step * stride, (i * step + 1) * stride), i * stride);
  return { x, n };
}

/** A few hundred windows of the committed rpm_600 data for one model type, cut as `train` cuts them. */
async function committed(modelType: 'voltage' | 'multi-feature', limit: number) {
  const p = PROFILES.rpm_600;
  const { train, val } = await trainingWindows(join(PACKAGE_ROOT, 'datas', 'raw'), 'rpm_600', [...MODEL_FEATURES[modelType]], p.trainHop, defaultMaxGapMs(p.periodMs));
  const stride = p.seqLen * train.f;
  return { train: spread(train, stride, limit), val: spread(val, stride, Math.ceil(val.n / 4)), seqLen: p.seqLen, nFeatures: train.f };
}

test('deterministic for a seed and thread count; the result is a bundle network tfjs and the fast engine run alike', async () => {
  const d = await committed('multi-feature', 96);
  const spec = { seqLen: d.seqLen, nFeatures: d.nFeatures, units: [8, 4], seed: 7 };
  const opts = { seqLen: d.seqLen, nFeatures: d.nFeatures, maxEpochs: 2, patience: 2, batchSize: 32, seed: 7 };
  const a = await fitFast(initialAutoencoder(spec), d.train, d.val, { ...opts, threads: 2 });
  const b = await fitFast(initialAutoencoder(spec), d.train, d.val, { ...opts, threads: 2 });
  assert.equal(a.threads, 2);
  assert.deepEqual(a.artifacts.weightData, b.artifacts.weightData, 'two runs, same seed and threads: same weights');
  assert.deepEqual(a.fit.history, b.fit.history);
  const one = await fitFast(initialAutoencoder(spec), d.train, d.val, { ...opts, threads: 1 });
  // One thread adds the same gradients in another order: the same descent to rounding.
  assert.ok(Math.abs(one.fit.valLoss - a.fit.valLoss) <= 1e-6 * a.fit.valLoss + 1e-9, `1 thread ${one.fit.valLoss}, 2 threads ${a.fit.valLoss}`);
  assert.ok(a.fit.history[1]!.loss < a.fit.history[0]!.loss, 'the loss falls');

  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: a.artifacts.modelTopology as tf.io.ModelJSON['modelTopology'], weightSpecs: a.artifacts.weightSpecs as tf.io.WeightsManifestEntry[], weightData: a.artifacts.weightData.slice().buffer }));
  const n = 8;
  const x = d.val.x.subarray(0, n * d.seqLen * d.nFeatures);
  const theirs = tf.tidy(() => (model.predict(tf.tensor3d(x, [n, d.seqLen, d.nFeatures])) as tf.Tensor).dataSync());
  const fast = new FastLstmNetwork(planNetwork(a.artifacts.modelTopology, a.artifacts.weightSpecs, a.artifacts.weightData, d.seqLen, d.nFeatures)).predict(x, n);
  let worst = 0;
  for (let i = 0; i < fast.length; i++) worst = Math.max(worst, Math.abs(fast[i]! - theirs[i]!));
  assert.ok(worst < 1e-4, `fast engine and tfjs differ by ${worst} on the trained model`);
  model.dispose();
});

test('fast and tfjs trainers reach comparable validation loss on the committed data', async () => {
  const d = await committed('voltage', 96);
  const spec = { seqLen: d.seqLen, nFeatures: d.nFeatures, units: [16, 8], seed: 3 };
  const fit = { seqLen: d.seqLen, nFeatures: d.nFeatures, maxEpochs: 3, patience: 3, batchSize: 32, seed: 3 };
  const fast = await trainAutoencoder(spec, d.train, d.val, fit, { trainer: 'fast', threads: 2 });
  const ref = await trainAutoencoder(spec, d.train, d.val, fit, { trainer: 'tfjs' });
  const start = ref.fit.history[0]!.valLoss;
  // Different initial draws, float64 against float32: the same descent within a quarter.
  assert.ok(fast.fit.valLoss < start && ref.fit.valLoss < start * 1.5, 'both learn');
  const ratio = fast.fit.valLoss / ref.fit.valLoss;
  assert.ok(ratio > 0.75 && ratio < 1.33, `fast val loss ${fast.fit.valLoss.toExponential(3)}, tfjs ${ref.fit.valLoss.toExponential(3)}`);
  assert.match(fast.engine, /^fast \((wasm|js), 2 threads\)$/);
  assert.match(ref.engine, /^tfjs \(cpu\)$/);
});

test('many windows at once (featureErrors) give the one-window engine\'s errors', () => {
  const rng = new Rng(14);
  for (const s of SHAPES) {
    const init = initialAutoencoder({ ...s, seed: 21 });
    const net = new TrainableNetwork(planNetwork(init.modelTopology, init.weightSpecs, init.weightData, s.seqLen, s.nFeatures), 1);
    const artifacts = withParams(init, s.seqLen, s.nFeatures, shaken(net, rng));
    const n = 37; // more than one chunk, and not a multiple of it
    const x = windows(rng, n, s.seqLen, s.nFeatures);
    const many = featureErrors(artifacts, x, n, s.seqLen, s.nFeatures);
    const one = new FastLstmNetwork(planNetwork(artifacts.modelTopology, artifacts.weightSpecs, artifacts.weightData, s.seqLen, s.nFeatures)).featureErrors(x, n);
    for (let i = 0; i < one.length; i++) assert.ok(Math.abs(many[i]! - one[i]!) <= 1e-6 * Math.abs(one[i]!) + 1e-12, `${i}: ${many[i]} vs ${one[i]}`);
  }
});

test('the WebAssembly cell, backward cell and transpose give their JavaScript references\' bits', () => {
  const rng = new Rng(15);
  const arena = new KernelArena(20000, 'wasm');
  assert.ok(arena.kernels, 'the wasm kernels are built by npm run build');
  const k = arena.kernels;
  const cell = cellOf(arena);
  const filled = (n: number, spread: number) => {
    const a = arena.alloc(n);
    for (let i = 0; i < n; i++) a[i] = spread * rng.gauss();
    return a;
  };
  const same = (what: string, a: Float64Array, b: Float64Array) => {
    for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `${what}[${i}]: wasm ${a[i]}, js ${b[i]}`);
  };
  // Unit counts that end on each of the kernels' loops (four, two, one unit at a time).
  for (const n of [1, 2, 3, 5, 7, 64, 67]) {
    // Gate inputs beyond the approximation's ±9 clamp too.
    const z = filled(4 * n, 8);
    const cPrev = filled(n, 2);
    const c = arena.alloc(n);
    const h = arena.alloc(n);
    const zJs = Float64Array.from(z);
    const cJs = new Float64Array(n);
    const hJs = new Float64Array(n);
    cell(z, 0, cPrev, 0, c, 0, h, 0, n);
    lstmCell(zJs, 0, cPrev, 0, cJs, 0, hJs, 0, n);
    same(`cell ${n} gates`, z, zJs);
    same(`cell ${n} c`, c, cJs);
    same(`cell ${n} h`, h, hJs);

    const dh = filled(n, 1);
    const dOut = filled(n, 1);
    const dc = filled(n, 1);
    const dcJs = Float64Array.from(dc);
    k.cellBack(at(z, 0), at(c, 0), at(cPrev, 0), at(dh, 0), at(dOut, 0), at(dc, 0), n);
    lstmCellBack(zJs, 0, c, 0, cPrev, 0, dh, 0, dOut, 0, dcJs, 0, n);
    same(`cellBack ${n} dz`, z, zJs);
    same(`cellBack ${n} dc`, dc, dcJs);
  }
  for (const [rows, cols] of [[1, 1], [2, 3], [3, 2], [5, 7], [16, 9]] as const) {
    const m = filled(rows * cols, 1);
    const out = arena.alloc(rows * cols);
    k.transpose(at(out, 0), at(m, 0), rows, cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) assert.equal(out[c * rows + r], m[r * cols + c], `transpose ${rows}×${cols} [${r}][${c}]`);
  }
});

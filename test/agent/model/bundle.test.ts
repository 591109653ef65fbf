import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend, tf } from '#agent/model/backend.js';
import { artifactsOf, buildAutoencoder, reconstructionErrors } from '#agent/model/autoencoder.js';
import { BundleError, loadBundle, sha256, writeBundle, type BundleManifest } from '#agent/model/bundle.js';
import { UnsupportedModelError } from '#agent/model/fast-lstm.js';
import { createScorer } from '#agent/model/scorer.js';
import { tfjsModel } from '#agent/model/tfjs-model.js';

const FEATURES = ['voltage', 'rpm'];
const KNOWN = ['accel_x', 'accel_y', 'accel_z', 'voltage', 'rpm', 'temperature'];
let root: string;
let good: string;
let input: Float32Array;
let expectedScore: Float32Array;

before(async () => {
  await selectBackend('auto');
  root = await mkdtemp(join(tmpdir(), 'bundle-test-'));
  good = join(root, 'good');
  const model = buildAutoencoder({ seqLen: 8, nFeatures: 2, units: [4, 2], seed: 7 });
  input = Float32Array.from({ length: 3 * 8 * 2 }, (_, i) => Math.sin(i / 3) * 0.5 + 0.5);
  expectedScore = reconstructionErrors(model, input, 3, 8, 2).score;
  await write(good, model);
  model.dispose();
  return async () => rm(root, { recursive: true, force: true });
});

/** Writes `model` as a bundle of the two FEATURES, windows of 8. */
async function write(dir: string, model: tf.LayersModel): Promise<void> {
  await writeBundle(dir, await artifactsOf(model), {
    name: 'test/tiny',
    profile: 'rpm_600',
    modelType: 'tiny',
    features: FEATURES,
    seqLen: 8,
    hop: 2,
    periodMs: 50,
    maxGapMs: 250,
    scaler: { features: FEATURES, min: [200, 500], max: [240, 620] },
    errorScale: [0.01, 0.02],
    threshold: 0.01,
    thresholdRule: { kind: 'validation-quantile', quantile: 0.995, margin: 1.5, description: 'test', validationWindows: 3, validationQuantileValue: 0.0067 },
    architecture: { units: [4, 2], recurrentActivation: 'sigmoid', parameters: model.countParams() },
    training: { seed: 7, backend: tf.getBackend(), epochs: 0, bestEpoch: 0, trainLoss: 0, valLoss: 0, trainWindows: 0, valWindows: 0, trainHop: 2, seconds: 0, data: { algorithm: 'sha256', files: [], sha256: sha256('') } },
  });
}

/** A copy of the good bundle, changed by `mutate`, for one tamper case. */
async function tampered(name: string, mutate: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(root, name);
  await cp(good, dir, { recursive: true });
  await mutate(dir);
  return dir;
}

async function editManifest(dir: string, edit: (m: BundleManifest) => void): Promise<void> {
  const p = join(dir, 'bundle.json');
  const m = JSON.parse(await readFile(p, 'utf8')) as BundleManifest;
  edit(m);
  await writeFile(p, JSON.stringify(m));
}

/** Replace a model file and re-sign its hash, so a deeper check than sha256 must catch it. */
async function replaceHashed(dir: string, file: string, data: Uint8Array | string): Promise<void> {
  await writeFile(join(dir, file), data);
  await editManifest(dir, (m) => (m.files[file] = sha256(data)));
}

/** `loading` (loadBundle by default) rejects with BundleError `check`, its message matching `pattern`. */
async function refusedWith(dir: string, check: string, pattern: RegExp, loading: Promise<unknown> = loadBundle(dir, { knownFeatures: KNOWN })): Promise<void> {
  await assert.rejects(loading, (err: unknown) => {
    assert.ok(err instanceof BundleError, `expected BundleError, got ${err}`);
    assert.equal(err.check, check);
    assert.match(err.message, pattern);
    assert.match(err.message, new RegExp(`check '${check}' failed`));
    return true;
  });
}

test('a written bundle loads and predicts exactly what the saved model predicted', async () => {
  const b = await loadBundle(good, { knownFeatures: KNOWN });
  assert.deepEqual(b.manifest.features, FEATURES);
  const model = await tfjsModel(b);
  const score = reconstructionErrors(model, input, 3, 8, 2).score;
  assert.deepEqual(Array.from(score), Array.from(expectedScore));
  model.dispose();
});

test('bundle.json records the installed TensorFlow.js version', async () => {
  const m = JSON.parse(await readFile(join(good, 'bundle.json'), 'utf8')) as BundleManifest;
  assert.equal(m.tfjsVersion, tf.version.tfjs);
});

test('a changed weight byte is refused by the sha256 check', async () => {
  const dir = await tampered('byte', async (d) => {
    const w = await readFile(join(d, 'weights.bin'));
    w[17] ^= 0x01;
    await writeFile(join(d, 'weights.bin'), w);
  });
  await refusedWith(dir, 'sha256', /weights\.bin has sha256 [0-9a-f]{64}/);
});

test('a missing file is refused by the files-present check', async () => {
  const dir = await tampered('missing', (d) => rm(join(d, 'model.json')));
  await refusedWith(dir, 'files-present', /model\.json cannot be read \(ENOENT\)/);
});

test('weights of the wrong size are refused by the weights-shape check', async () => {
  const dir = await tampered('short', async (d) => {
    const w = await readFile(join(d, 'weights.bin'));
    await replaceHashed(d, 'weights.bin', w.subarray(0, w.length - 4));
  });
  await refusedWith(dir, 'weights-shape', /describes \d+ bytes of weights, weights\.bin has \d+/);
});

test('a tensor of the wrong shape is refused by the engine that builds the network: tfjs with the weights-shape check, the fast engine naming the tensor', async () => {
  const dir = await tampered('shape', async (d) => {
    const mj = JSON.parse(await readFile(join(d, 'model.json'), 'utf8'));
    const specs = mj.weightsManifest[0].weights;
    // Same byte count, different shape: swap the two dims of the first kernel.
    specs[0].shape = [...specs[0].shape].reverse();
    await replaceHashed(d, 'model.json', JSON.stringify(mj));
  });
  // loadBundle reads no tensor into a layer; each engine checks the shapes its layers need.
  const b = await loadBundle(dir, { knownFeatures: KNOWN });
  await refusedWith(dir, 'weights-shape', /tfjs could not build the model/, tfjsModel(b));
  await refusedWith(dir, 'weights-shape', /tfjs could not build the model/, createScorer(b, 'tfjs'));
  await assert.rejects(createScorer(b, 'fast'), (err: unknown) => err instanceof UnsupportedModelError && err.option === 'weights' && /has shape \[16, 2\], expected \[2, 16\]/.test(err.message));
});

test('a feature list that does not match the model is refused by the topology check', async () => {
  const dir = await tampered('features3', (d) =>
    editManifest(d, (m) => {
      m.features = ['voltage', 'rpm', 'temperature'];
      m.scaler = { features: m.features, min: [0, 0, 0], max: [1, 1, 1] };
      m.errorScale = [1, 1, 1];
    }),
  );
  await refusedWith(dir, 'topology', /bundle needs \[null,8,3\]/);
});

test('a seqLen that does not match the model is refused by the topology check', async () => {
  const dir = await tampered('seqlen', (d) => editManifest(d, (m) => (m.seqLen = 9)));
  await refusedWith(dir, 'topology', /model maps \[null,8,2\]/);
});

test('a bundle only tfjs can run (a GRU) loads and is scored with tfjs under auto; one whose shapes only tfjs can follow is refused by the topology check when tfjs builds it', async () => {
  const gru = tf.sequential();
  gru.add(tf.layers.gru({ units: 3, inputShape: [8, 2] }));
  gru.add(tf.layers.repeatVector({ n: 8 }));
  gru.add(tf.layers.gru({ units: 3, returnSequences: true }));
  gru.add(tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2 }) }));
  await write(join(root, 'gru'), gru);
  gru.dispose();
  const scorer = await createScorer(await loadBundle(join(root, 'gru'), { knownFeatures: KNOWN }), 'auto');
  assert.equal(scorer.engine, 'tfjs');
  assert.equal(scorer.score(input, 3).score.length, 3);
  scorer.dispose();

  // A convolution loadBundle does not follow: it maps [null,8,2] → [null,8,3], which tfjs sees.
  const conv = tf.sequential();
  conv.add(tf.layers.conv1d({ filters: 3, kernelSize: 1, inputShape: [8, 2] }));
  await write(join(root, 'conv'), conv);
  conv.dispose();
  const b = await loadBundle(join(root, 'conv'), { knownFeatures: KNOWN });
  await refusedWith(b.dir, 'topology', /model maps \[null,8,2\] → \[null,8,3\]; bundle needs \[null,8,2\] → \[null,8,2\]/, createScorer(b, 'auto'));
});

test('features unknown to the device are refused by the features check', async () => {
  const dir = await tampered('unknown', (d) =>
    editManifest(d, (m) => {
      m.features = ['voltage', 'pressure'];
      m.scaler.features = m.features;
    }),
  );
  await refusedWith(dir, 'features', /unknown to this device: pressure/);
});

test('a scaler that does not match the features is refused by the features check', async () => {
  const dir = await tampered('scaler', (d) => editManifest(d, (m) => (m.scaler.min = [200])));
  await refusedWith(dir, 'features', /min must have 2 entries/);
});

test('bundle.json that is not JSON is refused by the bundle-json check', async () => {
  const dir = await tampered('json', (d) => writeFile(join(d, 'bundle.json'), '{"format": "anomaly-agent-bundle",'));
  await refusedWith(dir, 'bundle-json', /not valid JSON/);
});

test('an error scale that does not fit the features is refused by the features check', async () => {
  const dir = await tampered('errorscale', (d) => editManifest(d, (m) => (m.errorScale = [0.01, 0])));
  await refusedWith(dir, 'features', /errorScale must hold one positive finite number per model input \(2: voltage, rpm\)/);
});

test('shape inputs naming a channel the bundle does not read are refused by the features check', async () => {
  const dir = await tampered('shape-unknown', (d) => editManifest(d, (m) => (m.shape = { features: ['temperature'], gain: [4] })));
  await refusedWith(dir, 'features', /invalid shape inputs: temperature not among the features \[voltage, rpm\]/);
});

test('a shape input the model was not built for is refused: the error scale no longer fits the inputs', async () => {
  const dir = await tampered('shape-extra', (d) => editManifest(d, (m) => (m.shape = { features: ['rpm'], gain: [4] })));
  await refusedWith(dir, 'features', /per model input \(3: voltage, rpm, rpm\.shape\)/);
  const widened = await tampered('shape-widened', (d) => editManifest(d, (m) => ((m.shape = { features: ['rpm'], gain: [4] }), (m.errorScale = [0.01, 0.02, 0.03]))));
  await refusedWith(widened, 'topology', /bundle needs \[null,8,3\] → \[null,8,3\] \(seqLen 8, inputs voltage, rpm, rpm\.shape\)/);
});

test('a non-positive threshold is refused by the bundle-json check', async () => {
  const dir = await tampered('threshold', (d) => editManifest(d, (m) => (m.threshold = 0)));
  await refusedWith(dir, 'bundle-json', /threshold must be a positive finite number/);
});

test("a bundle with aggregate 'max' scores each window by its worst input; an unknown aggregate is refused", async () => {
  const dir = await tampered('aggregate-max', (d) => editManifest(d, (m) => (m.aggregate = 'max')));
  const b = await loadBundle(dir, { knownFeatures: KNOWN });
  const model = await tfjsModel(b);
  const raw = reconstructionErrors(model, input, 3, 8, 2).perFeature;
  model.dispose();
  const scorer = await createScorer(b, 'tfjs');
  const { score, perFeature } = scorer.score(input, 3);
  for (let i = 0; i < 3; i++) {
    const e = [raw[i * 2]! / 0.01, raw[i * 2 + 1]! / 0.02];
    assert.deepEqual([perFeature[i * 2], perFeature[i * 2 + 1]], e.map(Math.fround));
    assert.equal(score[i], Math.fround(Math.max(...e)));
  }
  scorer.dispose();
  const mean = await loadBundle(good, { knownFeatures: KNOWN });
  assert.equal(mean.manifest.aggregate, undefined, 'absent means mean');
  const meanScorer = await createScorer(mean, 'tfjs');
  const m = meanScorer.score(input, 3);
  for (let i = 0; i < 3; i++) assert.equal(m.score[i], Math.fround((m.perFeature[i * 2]! + m.perFeature[i * 2 + 1]!) / 2));
  meanScorer.dispose();
  const bad = await tampered('aggregate-bad', (d) => editManifest(d, (m) => ((m as unknown as Record<string, unknown>).aggregate = 'median')));
  await refusedWith(bad, 'bundle-json', /aggregate must be one of mean, max \(or absent for mean\), got "median"/);
});

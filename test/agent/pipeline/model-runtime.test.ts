/**
 * Engine selection per bundle: `auto` scores a bundle the fast engine supports with it and falls
 * back to tfjs, with a warning naming the layer and option, for one it does not; `fast` refuses
 * that bundle; `tfjs` always uses tfjs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SensorBuffer } from '#agent/buffer/ring.js';
import { channelIndex, DEFAULT_SENSORS } from '#agent/core/sample.js';
import { selectBackend, tf } from '#agent/model/backend.js';
import { artifactsOf, buildAutoencoder } from '#agent/model/autoencoder.js';
import { loadBundle, sha256, writeBundle, type LoadedBundle } from '#agent/model/bundle.js';
import type { ScorerEngine } from '#agent/model/engines.js';
import { UnsupportedModelError } from '#agent/model/fast-lstm.js';
import { createScorer } from '#agent/model/scorer.js';
import { ModelRuntime, type ModelRuntimeOptions } from '#agent/pipeline/model-runtime.js';

const FEATURES = ['voltage', 'rpm'];
const KNOWN = ['accel_x', 'accel_y', 'accel_z', 'voltage', 'rpm', 'temperature'];
const SEQ = 8;
let root: string;
let supported: string;
let unsupported: string;
let backwardsLayer: string;

async function write(dir: string, model: tf.LayersModel): Promise<void> {
  await writeBundle(dir, await artifactsOf(model), {
    name: `test/${dir.split('/').pop()}`,
    profile: 'rpm_600',
    modelType: 'voltage',
    features: FEATURES,
    seqLen: SEQ,
    hop: 2,
    periodMs: 50,
    maxGapMs: 250,
    scaler: { features: FEATURES, min: [200, 500], max: [240, 620] },
    errorScale: [0.01, 0.02],
    threshold: 1,
    thresholdRule: { kind: 'validation-quantile', quantile: 0.995, margin: 1.5, description: 'test', validationWindows: 1, validationQuantileValue: 1 },
    architecture: { units: [4, 2], recurrentActivation: 'sigmoid', parameters: model.countParams() },
    training: { seed: 1, backend: tf.getBackend(), epochs: 0, bestEpoch: 0, trainLoss: 0, valLoss: 0, trainWindows: 0, valWindows: 0, trainHop: 2, seconds: 0, data: { algorithm: 'sha256', files: [], sha256: sha256('') } },
  });
  model.dispose();
}

before(async () => {
  await selectBackend('auto');
  root = await mkdtemp(join(tmpdir(), 'engine-test-'));
  supported = join(root, 'supported');
  unsupported = join(root, 'backwards');
  await write(supported, buildAutoencoder({ seqLen: SEQ, nFeatures: 2, units: [4, 2], seed: 3 }));
  // An LSTM reading its input backwards: tfjs runs it, the fast engine does not.
  const m = tf.sequential();
  const backwards = tf.layers.lstm({ units: 3, goBackwards: true, recurrentActivation: 'sigmoid', inputShape: [SEQ, 2] });
  backwardsLayer = backwards.name;
  m.add(backwards);
  m.add(tf.layers.repeatVector({ n: SEQ }));
  m.add(tf.layers.lstm({ units: 3, returnSequences: true, recurrentActivation: 'sigmoid' }));
  m.add(tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2 }) }));
  await write(unsupported, m);
});

after(() => rm(root, { recursive: true, force: true }));

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { log: pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }), lines };
}

const load = (dir: string) => loadBundle(dir, { knownFeatures: KNOWN });

function runtime(
  bundle: LoadedBundle,
  engine: ScorerEngine,
  log: pino.Logger,
  more: Partial<Pick<ModelRuntimeOptions, 'detector' | 'buffers' | 'onScore' | 'onAlert'>> = {},
): Promise<ModelRuntime> {
  const channels = channelIndex(DEFAULT_SENSORS);
  const buffers = new Map(Object.entries(DEFAULT_SENSORS).map(([sensor, s]) => [sensor, new SensorBuffer({ sensor, channels: s.channels.length, capacity: 64 })]));
  return ModelRuntime.create({
    bundle,
    channels,
    buffers,
    detector: { raiseK: 1, raiseN: 1, clearM: 1, clearRatio: 1, cooldownMs: 0 },
    maxBatch: 4,
    engine,
    log,
    now: () => 0,
    onScore: () => {},
    onAlert: () => {},
    onScored: () => {},
    ...more,
  });
}

test('auto and fast score a supported bundle with the fast engine, tfjs with tfjs; the numbers agree', async () => {
  const x = Float32Array.from({ length: 3 * SEQ * 2 }, (_, i) => 0.5 + 0.4 * Math.sin(i / 5));
  const scores: Record<string, Float32Array> = {};
  for (const engine of ['auto', 'fast', 'tfjs'] as const) {
    const { log, lines } = capture();
    const s = await createScorer(await load(supported), engine, 4, log);
    assert.equal(s.engine, engine === 'tfjs' ? 'tfjs' : 'fast');
    assert.deepEqual(lines.filter((l) => (l.level as number) >= 40), [], 'nothing to warn about');
    scores[engine] = s.score(x, 3).score;
    s.dispose();
  }
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(scores.fast![i]! - scores.tfjs![i]!) <= 1e-4 * scores.tfjs![i]!, `window ${i}: fast ${scores.fast![i]} vs tfjs ${scores.tfjs![i]}`);
});

test('auto falls back to tfjs for a bundle the fast engine does not support, and says why', async () => {
  const { log, lines } = capture();
  const s = await createScorer(await load(unsupported), 'auto', 4, log);
  assert.equal(s.engine, 'tfjs');
  const warned = lines.filter((l) => (l.level as number) >= 40);
  assert.equal(warned.length, 1);
  assert.equal(warned[0]!.level, 40);
  assert.equal(warned[0]!.layer, backwardsLayer);
  assert.equal(warned[0]!.option, 'go_backwards');
  assert.match(String(warned[0]!.msg), new RegExp(`layer '${backwardsLayer}': go_backwards .*scoring this bundle with TensorFlow\\.js`));
  assert.ok(lines.some((l) => l.level === 30 && String(l.msg).startsWith('TensorFlow.js backend: ')), 'the backend it scores on is logged');
  assert.equal(s.score(new Float32Array(SEQ * 2).fill(0.5), 1).score.length, 1);
  s.dispose();
});

test('engine fast refuses a bundle it does not support with the layer and option named', async () => {
  const bundle = await load(unsupported);
  await assert.rejects(
    createScorer(bundle, 'fast', 4),
    (err: unknown) => err instanceof UnsupportedModelError && err.layer === backwardsLayer && err.option === 'go_backwards' && /go_backwards = true is not supported/.test(err.message),
  );
});

test('the model runtime: auto falls back to tfjs (logged), fast refuses, a supported bundle runs fast', async () => {
  {
    const { log, lines } = capture();
    const r = await runtime(await load(unsupported), 'auto', log);
    assert.equal(r.engine, 'tfjs');
    assert.ok(lines.some((l) => l.level === 40 && l.option === 'go_backwards'), 'fallback logged');
    r.dispose();
  }
  {
    await assert.rejects(runtime(await load(unsupported), 'fast', capture().log), UnsupportedModelError);
  }
  {
    const { log, lines } = capture();
    const r = await runtime(await load(supported), 'auto', log);
    assert.equal(r.engine, 'fast');
    assert.equal(lines.length, 0);
    r.dispose();
  }
});

test('the stop gate: windows in which the shaft turned under stoppedBelow × nominal speed are scored, not judged; judging resumes a window after it runs again', async () => {
  // The test network is untrained: every window scores far over its threshold of 1, so every judged window raises.
  const feed = async (stoppedBelow: number, rpmAt: (i: number) => number, rows: number, accelAt?: (i: number) => number, stoppedVibration = 0) => {
    const { log, lines } = capture();
    const buffers = new Map(Object.entries(DEFAULT_SENSORS).map(([sensor, s]) => [sensor, new SensorBuffer({ sensor, channels: s.channels.length, capacity: 64 })]));
    const scored: number[] = [];
    const raised: number[] = [];
    const r = await runtime(await load(supported), 'fast', log, {
      buffers,
      detector: { raiseK: 1, raiseN: 1, clearM: 1000, clearRatio: 1, cooldownMs: 0, stoppedBelow, stoppedVibration },
      onScore: (_m, p) => void scored.push(p.windowEnd),
      onAlert: (e) => void (e.state === 'raised' && raised.push(e.windowEnd)),
    });
    for (let i = 0; i < rows; i++) {
      buffers.get('voltage')!.push(i * 50, [220]);
      buffers.get('rpm')!.push(i * 50, [rpmAt(i)]);
      if (accelAt) buffers.get('vibration')!.push(i * 50, [accelAt(i), accelAt(i + 7), 9.81 + accelAt(i + 3)]);
      r.advance();
      r.flush();
    }
    r.dispose();
    return { scored, raised, lines };
  };
  // stopped (0 rpm, then coasting at 250 < 0.5 × 600) for rows 0–29, running at 560 from row 30 (1500 ms)
  const rpm = (i: number) => (i < 20 ? 0 : i < 30 ? 250 : 560);
  const gated = await feed(0.5, rpm, 60);
  assert.ok(gated.scored.some((t) => t < 1500), 'windows of the stopped machine are still scored (and published)');
  // the first window judged is the first one whose samples all ran: its first row at 1500 ms, SEQ rows
  assert.deepEqual(gated.raised, [1500 + (SEQ - 1) * 50]);
  assert.deepEqual(gated.lines.filter((l) => String(l.msg).startsWith('machine')).map((l) => [l.msg, l.belowRpm]), [
    ['machine stopped: windows are not judged until it runs again', 300],
    ['machine running: windows are judged again', undefined],
  ]);
  // without the gate the first window raises, stopped or not
  const ungated = await feed(0, rpm, 60);
  assert.deepEqual(ungated.raised, [gated.scored[0]]);

  // With the accelerometer as the second witness: a quiet one (sensor noise) agrees that the machine
  // stands; one that vibrates as a running machine does overrules a tachometer reading 0 (a dead one).
  const noise = (i: number) => 0.03 * Math.sin(i * 2.3);
  const running = (i: number) => 0.4 * Math.sin(i * 1.1);
  const quiet = await feed(0.5, rpm, 60, noise, 0.1);
  assert.deepEqual(quiet.raised, gated.raised, 'standing and quiet: not judged');
  const deadTach = await feed(0.5, () => 0, 40, running, 0.1);
  assert.deepEqual(deadTach.raised, [deadTach.scored[0]], 'a vibrating machine whose tachometer reads 0 is judged');
});

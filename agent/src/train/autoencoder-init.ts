/**
 * The seed's LSTM autoencoder as a fresh, untrained bundle network, without TensorFlow.js: the
 * model.json topology tfjs writes for model/autoencoder.ts buildAutoencoder (same layers, options
 * and initializer seeds) and initial weights drawn as its initializers draw them — Glorot uniform
 * kernels, orthogonal recurrent kernels, zero biases. The numbers come from our own seeded stream
 * (core/rng.ts), so they are equal in distribution to tfjs's, not bit for bit.
 */
import { Rng } from '../core/rng.js';
import type { AutoencoderSpec } from '../model/autoencoder.js';
import { concatWeights, tfjsVersion, type BundleArtifacts, type WeightSpec } from '../model/bundle.js';

/** Glorot (fan_avg) uniform in [-limit, limit), limit = √(6 / (fanIn + fanOut)). */
function glorotUniform(rng: Rng, fanIn: number, fanOut: number, out: Float32Array): void {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  for (let i = 0; i < out.length; i++) out[i] = rng.range(-limit, limit);
}

/**
 * An orthogonal [rows][cols] matrix (Keras's Orthogonal): QR of a standard normal matrix of the
 * taller orientation, Q's columns signed by R's diagonal, transposed back when rows < cols.
 * Modified Gram–Schmidt is exact enough at these sizes (≤ a few hundred).
 */
function orthogonal(rng: Rng, rows: number, cols: number, out: Float32Array): void {
  const tall = rows >= cols;
  const n = tall ? rows : cols; // length of each vector
  const k = tall ? cols : rows; // number of orthonormal vectors
  const q: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = rng.gauss();
    let diag = 0;
    for (const prev of q) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += prev[i]! * v[i]!;
      for (let i = 0; i < n; i++) v[i]! -= dot * prev[i]!;
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[i]! * v[i]!;
    norm = Math.sqrt(norm);
    diag = norm; // R's diagonal entry is the norm left after projection: positive, so no sign flip
    for (let i = 0; i < n; i++) v[i]! /= diag;
    q.push(v);
  }
  // tall: out[i][j] = q_j[i]; wide: out[j][i] = q_j[i].
  for (let j = 0; j < k; j++) for (let i = 0; i < n; i++) out[tall ? i * cols + j : j * cols + i] = q[j]![i]!;
}

function lstmConfig(name: string, units: number, returnSequences: boolean, seed: number, inputShape?: [number, number]) {
  return {
    class_name: 'LSTM',
    config: {
      name,
      trainable: true,
      ...(inputShape ? { batch_input_shape: [null, ...inputShape], dtype: 'float32' } : {}),
      units,
      activation: 'tanh',
      recurrent_activation: 'sigmoid',
      use_bias: true,
      kernel_initializer: { class_name: 'VarianceScaling', config: { scale: 1, mode: 'fan_avg', distribution: 'uniform', seed } },
      recurrent_initializer: { class_name: 'Orthogonal', config: { gain: 1, seed: seed + 1 } },
      bias_initializer: { class_name: 'Zeros', config: {} },
      unit_forget_bias: null,
      kernel_regularizer: null,
      recurrent_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      recurrent_constraint: null,
      bias_constraint: null,
      dropout: 0,
      recurrent_dropout: 0,
      implementation: null,
      return_sequences: returnSequences,
      return_state: false,
      go_backwards: false,
      stateful: false,
      unroll: false,
    },
  };
}

/**
 * The untrained autoencoder: LSTM(units[0], seq) → … → LSTM(units[last]) → RepeatVector(seqLen)
 * → the LSTMs mirrored (seq) → TimeDistributed(Dense(nFeatures)), as buildAutoencoder makes it.
 */
export function initialAutoencoder(spec: AutoencoderSpec): BundleArtifacts {
  const { seqLen, nFeatures, units, seed } = spec;
  if (units.length === 0) throw new Error('autoencoder needs at least one LSTM size');
  const layers: unknown[] = [];
  const weights: { spec: WeightSpec; data: Float32Array }[] = [];
  let layerSeed = seed;
  let n = 0;
  const addLstm = (u: number, inDim: number, returnSequences: boolean, inputShape?: [number, number]) => {
    const name = `lstm_LSTM${++n}`;
    const s = layerSeed;
    layerSeed += 2;
    layers.push(lstmConfig(name, u, returnSequences, s, inputShape));
    const kernel = new Float32Array(inDim * 4 * u);
    glorotUniform(new Rng(s), inDim, 4 * u, kernel);
    const recurrent = new Float32Array(u * 4 * u);
    orthogonal(new Rng(s + 1), u, 4 * u, recurrent);
    weights.push(
      { spec: { name: `${name}/kernel`, shape: [inDim, 4 * u], dtype: 'float32' }, data: kernel },
      { spec: { name: `${name}/recurrent_kernel`, shape: [u, 4 * u], dtype: 'float32' }, data: recurrent },
      { spec: { name: `${name}/bias`, shape: [4 * u], dtype: 'float32' }, data: new Float32Array(4 * u) },
    );
  };
  let dim = nFeatures;
  units.forEach((u, i) => {
    addLstm(u, dim, i < units.length - 1, i === 0 ? [seqLen, nFeatures] : undefined);
    dim = u;
  });
  layers.push({ class_name: 'RepeatVector', config: { n: seqLen, name: 'repeat_vector_RepeatVector1', trainable: true } });
  [...units].reverse().forEach((u) => {
    addLstm(u, dim, true);
    dim = u;
  });
  const denseSeed = layerSeed;
  layers.push({
    class_name: 'TimeDistributed',
    config: {
      layer: {
        class_name: 'Dense',
        config: {
          units: nFeatures,
          activation: 'linear',
          use_bias: true,
          kernel_initializer: { class_name: 'VarianceScaling', config: { scale: 1, mode: 'fan_avg', distribution: 'uniform', seed: denseSeed } },
          bias_initializer: { class_name: 'Zeros', config: {} },
          kernel_regularizer: null,
          bias_regularizer: null,
          activity_regularizer: null,
          kernel_constraint: null,
          bias_constraint: null,
          name: 'dense_Dense1',
          trainable: true,
        },
      },
      name: 'time_distributed_TimeDistributed1',
      trainable: true,
    },
  });
  const kernel = new Float32Array(dim * nFeatures);
  glorotUniform(new Rng(denseSeed), dim, nFeatures, kernel);
  weights.push(
    { spec: { name: 'time_distributed_TimeDistributed1/kernel', shape: [dim, nFeatures], dtype: 'float32' }, data: kernel },
    { spec: { name: 'time_distributed_TimeDistributed1/bias', shape: [nFeatures], dtype: 'float32' }, data: new Float32Array(nFeatures) },
  );
  return {
    modelTopology: {
      class_name: 'Sequential',
      config: { name: 'lstm_autoencoder', layers },
      keras_version: `tfjs-layers ${tfjsVersion()}`,
      backend: 'tensor_flow.js',
    },
    weightSpecs: weights.map((w) => w.spec),
    weightData: concatWeights(weights.map((w) => w.data)),
  };
}

import { tf } from './backend.js';
import { concatWeights, type BundleArtifacts } from './bundle.js';

export interface AutoencoderSpec {
  seqLen: number;
  nFeatures: number;
  /** Encoder LSTM sizes, outermost first (seed: [64, 32]); the decoder mirrors them. */
  units: readonly number[];
  /** Seeds every initializer so two runs build identical starting weights. */
  seed: number;
  learningRate?: number;
}

/**
 * The seed's LSTM autoencoder: LSTM(64, seq) → LSTM(32) → RepeatVector(seqLen) → LSTM(32, seq)
 * → LSTM(64, seq) → TimeDistributed(Dense(nFeatures)).
 * The recurrent activation is said explicitly: tfjs defaults to hardSigmoid, Keras (the seed's
 * framework) to sigmoid, and the two do not give the same model.
 */
export function buildAutoencoder(spec: AutoencoderSpec): tf.LayersModel {
  const { seqLen, nFeatures, units, seed } = spec;
  if (units.length === 0) throw new Error('autoencoder needs at least one LSTM size');
  let layerSeed = seed;
  const lstm = (n: number, returnSequences: boolean, inputShape?: [number, number]) =>
    tf.layers.lstm({
      units: n,
      returnSequences,
      activation: 'tanh',
      recurrentActivation: 'sigmoid',
      kernelInitializer: tf.initializers.glorotUniform({ seed: layerSeed++ }),
      recurrentInitializer: tf.initializers.orthogonal({ seed: layerSeed++ }),
      ...(inputShape ? { inputShape } : {}),
    });

  const model = tf.sequential({ name: 'lstm_autoencoder' });
  // tfjs warns on every orthogonal initialisation above 2000 elements; it is a one-off cost at build.
  const warn = console.warn;
  console.warn = () => {};
  try {
    units.forEach((n, i) => model.add(lstm(n, i < units.length - 1, i === 0 ? [seqLen, nFeatures] : undefined)));
    model.add(tf.layers.repeatVector({ n: seqLen }));
    [...units].reverse().forEach((n) => model.add(lstm(n, true)));
    model.add(
      tf.layers.timeDistributed({
        layer: tf.layers.dense({ units: nFeatures, kernelInitializer: tf.initializers.glorotUniform({ seed: layerSeed++ }) }),
      }),
    );
  } finally {
    console.warn = warn;
  }
  model.compile({ optimizer: tf.train.adam(spec.learningRate ?? 1e-3), loss: 'meanSquaredError' });
  return model;
}

/** What writeBundle writes for `model`: its topology, weight specs and weights, as tfjs saves them. */
export async function artifactsOf(model: tf.LayersModel): Promise<BundleArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!saved?.weightData || !saved.weightSpecs) throw new Error('tfjs returned no weights to save');
  const parts = Array.isArray(saved.weightData) ? saved.weightData : [saved.weightData];
  return { modelTopology: saved.modelTopology, weightSpecs: saved.weightSpecs, weightData: concatWeights(parts) };
}

/**
 * Raw reconstruction error per window (mean over steps and features) and per feature (mean over
 * steps), predicted in batches so memory stays bounded. Scores compared with a bundle's threshold are
 * these divided by the bundle's errorScale (model/error-scale.ts, model/scorer.ts).
 */
export function reconstructionErrors(
  model: tf.LayersModel,
  x: Float32Array,
  n: number,
  seqLen: number,
  nFeatures: number,
  batchSize = 64,
): { score: Float32Array; perFeature: Float32Array } {
  const score = new Float32Array(n);
  const perFeature = new Float32Array(n * nFeatures);
  const stride = seqLen * nFeatures;
  for (let b = 0; b < n; b += batchSize) {
    const m = Math.min(batchSize, n - b);
    const input = x.subarray(b * stride, (b + m) * stride);
    const y = tf.tidy(() => {
      const xt = tf.tensor3d(input, [m, seqLen, nFeatures]);
      const pred = model.predict(xt) as tf.Tensor;
      return tf.mean(tf.squaredDifference(pred, xt), 1); // [m, nFeatures]
    });
    const fe = y.dataSync() as Float32Array;
    y.dispose();
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < nFeatures; j++) {
        const v = fe[i * nFeatures + j];
        perFeature[(b + i) * nFeatures + j] = v;
        s += v;
      }
      score[b + i] = s / nFeatures;
    }
  }
  return { score, perFeature };
}

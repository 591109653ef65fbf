/**
 * A bundle on TensorFlow.js: its tfjs model, built from the files loadBundle verified, and the scorer
 * that runs it. Importing this module loads TensorFlow.js, about 100 MB of RSS the fast engine does
 * not need: model/scorer.ts imports it only when a bundle is to be scored with tfjs; the
 * workstation's training and evaluation import it directly.
 */
import { reconstructionErrors } from './autoencoder.js';
import { selectBackend, tf } from './backend.js';
import { BundleError, bundleInputs, checkTopology, type LoadedBundle } from './bundle.js';
import { normalizeErrors } from './error-scale.js';
import type { Scorer } from './engines.js';

/**
 * The bundle's tfjs model, on the backend selected for this process (`auto` if none was yet). A model
 * tfjs cannot build from its weights (a tensor of the wrong shape) is refused with BundleError
 * 'weights-shape', one that does not map the bundle's windows with 'topology'. The caller disposes it.
 */
export async function tfjsModel(bundle: LoadedBundle): Promise<tf.LayersModel> {
  await selectBackend();
  const { dir, manifest, artifacts: a } = bundle;
  let model: tf.LayersModel;
  try {
    const w = a.weightData;
    const buf = w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer;
    // loadBundle admits float32 weights only, the dtype tfjs's manifest entry names.
    const weightSpecs = a.weightSpecs as tf.io.WeightsManifestEntry[];
    model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: a.modelTopology as tf.io.ModelJSON['modelTopology'], weightSpecs, weightData: buf }));
  } catch (err) {
    throw new BundleError(dir, 'weights-shape', `tfjs could not build the model from its weights: ${(err as Error).message}`);
  }
  try {
    // loadBundle checked what it could follow without tfjs; tfjs knows every layer.
    checkTopology(dir, manifest, model.inputs[0]?.shape, model.outputs[0]?.shape);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** The bundle's own tfjs model, on whichever backend was selected. */
export class TfjsScorer implements Scorer {
  readonly engine = 'tfjs';
  readonly seqLen: number;
  readonly nFeatures: number;

  constructor(
    private readonly bundle: LoadedBundle,
    /** Built by tfjsModel(bundle); the scorer owns it. */
    private readonly model: tf.LayersModel,
    private readonly maxBatch = 32,
  ) {
    this.seqLen = bundle.manifest.seqLen;
    this.nFeatures = bundleInputs(bundle.manifest).length;
  }

  score(x: Float32Array, n: number): { score: Float32Array; perFeature: Float32Array } {
    if (x.length < n * this.seqLen * this.nFeatures) throw new RangeError(`scorer got ${x.length} values for ${n} windows of ${this.seqLen}×${this.nFeatures}`);
    const raw = reconstructionErrors(this.model, x, n, this.seqLen, this.nFeatures, this.maxBatch);
    return normalizeErrors(raw.perFeature, n, this.bundle.manifest.errorScale, this.bundle.manifest.aggregate);
  }

  dispose(): void {
    this.model.dispose();
  }
}

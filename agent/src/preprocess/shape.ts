/**
 * Window-shape inputs: a slow channel's movement inside one window, level removed.
 *
 * Frame temperature changes with a time constant of minutes, so within a five-second window it is a
 * flat line whose level spans the whole MinMax range of the training data (ambient × load). An
 * autoencoder reproduces that level to about a kelvin, which hides a temperature that climbs a
 * kelvin in those five seconds — the signature of lost cooling. For such a channel the model gets,
 * beside its MinMax level, a second input: the window minus its own mean, times a gain fitted so the
 * training windows span [-1, 1]. The level input still carries what the level says (a dead sensor
 * reading 0, a value never seen in training); the shape input shows a rise no healthy motor makes.
 *
 * One implementation for training (preprocess/sequences.ts) and the device (pipeline/model-runtime.ts),
 * like the scaler; a bundle records which channels have a shape input and their gains.
 */

/** Serialisable state; bundle.json stores it as `shape`. */
export interface ShapeInputs {
  /** Channels (a subset of the bundle's features) that get a shape input, in input order. */
  features: string[];
  /** Multiplier per shape input, applied to (scaled value − window mean). */
  gain: number[];
}

/** Name of the model input that carries a channel's window shape. */
export function shapeInputName(feature: string): string {
  return `${feature}.shape`;
}

/** The model's inputs in order: every feature's level, then the shape inputs. */
export function inputNames(features: readonly string[], shape?: ShapeInputs): string[] {
  return [...features, ...(shape?.features ?? []).map(shapeInputName)];
}

/** Validate shape inputs read from JSON (e.g. a bundle) against the bundle's features. */
export function checkShape(obj: unknown, features: readonly string[]): ShapeInputs | undefined {
  if (obj === undefined) return undefined;
  const o = obj as Partial<ShapeInputs> | null;
  const bad = (why: string): never => {
    throw new Error(`invalid shape inputs: ${why}`);
  };
  if (o === null || typeof o !== 'object') return bad('not an object');
  if (!Array.isArray(o.features) || !o.features.every((f) => typeof f === 'string')) return bad('features must be an array of strings');
  if (!Array.isArray(o.gain) || o.gain.length !== o.features.length) return bad(`gain must have ${o.features.length} entries`);
  if (!o.gain.every((g) => typeof g === 'number' && Number.isFinite(g) && g > 0)) return bad('gain must hold positive finite numbers');
  const unknown = o.features.filter((f) => !features.includes(f));
  if (unknown.length) return bad(`${unknown.join(', ')} not among the features [${features.join(', ')}]`);
  if (new Set(o.features).size !== o.features.length) return bad(`duplicate feature in ${o.features.join(', ')}`);
  return { features: [...o.features], gain: [...o.gain] };
}

/**
 * Fit the gains on scaled training windows ([n][seqLen][f] over `features`): 1 / the largest
 * deviation from its window mean a shape channel shows anywhere in them.
 */
export function fitShape(x: Float32Array, n: number, seqLen: number, features: readonly string[], shapeFeatures: readonly string[]): ShapeInputs {
  const f = features.length;
  const gain = shapeFeatures.map((name) => {
    const j = features.indexOf(name);
    if (j < 0) throw new Error(`fitShape: '${name}' is not among the features [${features.join(', ')}]`);
    let largest = 0;
    for (let w = 0; w < n; w++) {
      const base = w * seqLen * f + j;
      let sum = 0;
      for (let t = 0; t < seqLen; t++) sum += x[base + t * f]!;
      const mean = sum / seqLen;
      for (let t = 0; t < seqLen; t++) largest = Math.max(largest, Math.abs(x[base + t * f]! - mean));
    }
    // A channel that never moved inside a window in training: any movement at all is news.
    return largest > 1e-9 ? 1 / largest : 1;
  });
  return { features: [...shapeFeatures], gain };
}

/**
 * Lays scaled windows of the features out as model inputs. Built once per bundle; `write` does no
 * allocation, so the device calls it for every window.
 */
export class InputLayout {
  readonly names: string[];
  /** Values per time step of the model input. */
  readonly width: number;
  private readonly f: number;
  private readonly cols: Int32Array;
  private readonly gain: Float64Array;

  constructor(features: readonly string[], shape?: ShapeInputs) {
    this.f = features.length;
    this.names = inputNames(features, shape);
    this.width = this.names.length;
    this.cols = Int32Array.from(shape?.features ?? [], (name) => {
      const j = features.indexOf(name);
      if (j < 0) throw new Error(`shape input '${name}' is not among the features [${features.join(', ')}]`);
      return j;
    });
    this.gain = Float64Array.from(shape?.gain ?? []);
  }

  /**
   * Copy one window `src[srcOff…]` ([seqLen][f]) into `dst[dstOff…]` as [seqLen][width]; `offsets`
   * (one per feature) are subtracted from the level inputs (detect/baseline.ts). A shape input has no
   * level, so no offset.
   */
  write(src: Float32Array, srcOff: number, seqLen: number, dst: Float32Array, dstOff: number, offsets?: ArrayLike<number>): void {
    const { f, width } = this;
    if (width === f && offsets === undefined) {
      dst.set(src.subarray(srcOff, srcOff + seqLen * f), dstOff);
      return;
    }
    for (let t = 0; t < seqLen; t++) {
      for (let j = 0; j < f; j++) dst[dstOff + t * width + j] = src[srcOff + t * f + j]! - (offsets ? offsets[j]! : 0);
    }
    for (let k = 0; k < this.cols.length; k++) {
      const j = this.cols[k]!;
      let sum = 0;
      for (let t = 0; t < seqLen; t++) sum += src[srcOff + t * f + j]!;
      const mean = sum / seqLen;
      const g = this.gain[k]!;
      for (let t = 0; t < seqLen; t++) dst[dstOff + t * width + f + k] = (src[srcOff + t * f + j]! - mean) * g;
    }
  }
}

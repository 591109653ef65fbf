import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { SCORE_AGGREGATES, type ScoreAggregate } from './error-scale.js';
import { checkScaler, type MinMaxScaler } from '../preprocess/scaler.js';
import { checkShape, inputNames, type ShapeInputs } from '../preprocess/shape.js';
import { signatureProblem, type Trust } from './signature.js';

/**
 * The model bundle: the contract between workstation and device (DESIGN.md, "Model bundle").
 * A directory holding model.json + weights.bin (tfjs layers format) and bundle.json, which describes
 * what the model reads and lists the sha256 of every model file.
 *
 * Writing and loading a bundle does not import TensorFlow.js: the daemon's fast engine scores from
 * the verified files alone, and tfjs (most of the daemon's memory) is loaded only for a bundle
 * scored with it (model/tfjs-model.ts builds its model).
 */
export const BUNDLE_FORMAT = 'anomaly-agent-bundle';
export const BUNDLE_FORMAT_VERSION = 1;
export const BUNDLE_FILE = 'bundle.json';
export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

export interface ThresholdRule {
  /** threshold = quantile(validation errors, q) × margin */
  kind: 'validation-quantile';
  quantile: number;
  margin: number;
}

/** The baseline a bundle learned on the device was trained on, and why it was learned. */
export interface BundleBaseline {
  /** The learn run (the `id` of the `learn` topic), shared by the bundles it made. */
  id: string;
  /** ms epoch the bundle was learned. */
  learnedAt: number;
  /** Why (re)learned, as the learn command said ("bearing replaced"); absent when it gave none. */
  reason?: string;
  device: string;
  /** First and last row of the baseline, ms epoch, and its rows. */
  t0: number;
  t1: number;
  rows: number;
  /** Vibration velocity of the baseline, mm/s RMS (train/baseline-check.ts), when it has accelerometer channels. */
  velocityMmS?: number;
}

/** For the status topic and /healthz: which baseline a bundle learned on the device was learned on, when, why; nothing for a workstation's bundle. */
export function learnedOf(m: Pick<BundleManifest, 'baseline'>): { learned?: { baseline: string; at: number; reason?: string } } {
  const b = m.baseline;
  return b ? { learned: { baseline: b.id, at: b.learnedAt, ...(b.reason !== undefined ? { reason: b.reason } : {}) } } : {};
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  name: string;
  profile: string;
  modelType: string;
  features: string[];
  seqLen: number;
  hop: number;
  periodMs: number;
  maxGapMs: number;
  scaler: MinMaxScaler;
  /** Window-shape inputs the model gets after the features (preprocess/shape.ts); absent = none. */
  shape?: ShapeInputs;
  /**
   * Per model input (features, then shape inputs), the mean reconstruction MSE over the normal validation windows: scores are
   * mean(MSE_feature / errorScale_feature) (model/error-scale.ts). With `aggregate: 'max'`, each input's
   * thresholdRule.quantile of its validation MSE instead, and scores are max(MSE_feature / errorScale_feature).
   */
  errorScale: number[];
  /** How per-input errors make the score (model/error-scale.ts ScoreAggregate); absent = 'mean'. */
  aggregate?: ScoreAggregate;
  threshold: number;
  thresholdRule: ThresholdRule & { description: string; validationWindows: number; validationQuantileValue: number };
  architecture: { units: number[]; recurrentActivation: 'sigmoid'; parameters: number };
  training: {
    seed: number;
    backend: string;
    epochs: number;
    bestEpoch: number;
    trainLoss: number;
    valLoss: number;
    trainWindows: number;
    valWindows: number;
    trainHop: number;
    seconds: number;
    data: DataDigest;
    /** Fine-tuned from this trained model (a learn run starts from the installed one); absent when trained from random weights. */
    startedFrom?: { name: string; weightsSha256: string };
    /** Validation blocks through each recording (train/pipeline.ts); absent: each recording's tail. */
    validationSpread?: number;
  };
  /** Filled by `anomaly-agent evaluate --write`; absent until a bundle has been evaluated. */
  metrics?: Record<string, unknown>;
  /** Learned on the device itself (daemon/learner.ts); absent for a bundle trained on a workstation. */
  baseline?: BundleBaseline;
  tfjsVersion: string;
  /** sha256 (hex) of every model file in the bundle, keyed by file name. */
  files: Record<string, string>;
}

export interface DataDigest {
  algorithm: 'sha256';
  /** Files (relative to the data directory) in the order hashed. */
  files: string[];
  sha256: string;
}

/** Names the check a bundle failed, so the operator knows what to fix. */
export class BundleError extends Error {
  override name = 'BundleError';
  constructor(
    readonly dir: string,
    readonly check: string,
    detail: string,
  ) {
    super(`bundle ${dir} refused: check '${check}' failed: ${detail}`);
  }
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function digestFiles(baseDir: string, relFiles: string[]): Promise<DataDigest> {
  const h = createHash('sha256');
  for (const f of relFiles) {
    h.update(f + '\n');
    h.update(await readFile(join(baseDir, f)));
  }
  return { algorithm: 'sha256', files: relFiles, sha256: h.digest('hex') };
}

/** One tensor of weights.bin as model.json's weightsManifest describes it. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype?: string;
  quantization?: unknown;
}

/**
 * A tfjs layers model as a bundle holds it: model.json's topology and weight specs, and the
 * weights.bin bytes. writeBundle takes it (model/autoencoder.ts artifactsOf makes it from a tfjs
 * model), loadBundle returns it verified, and every engine builds from it.
 */
export interface BundleArtifacts {
  modelTopology: unknown;
  weightSpecs: WeightSpec[];
  weightData: Uint8Array;
}

/** Weight tensors (or tfjs's weight buffers) back to back, as weights.bin holds them. */
export function concatWeights(parts: readonly (ArrayBufferView | ArrayBuffer)[]): Uint8Array {
  const bytes = parts.map((p) => (ArrayBuffer.isView(p) ? new Uint8Array(p.buffer, p.byteOffset, p.byteLength) : new Uint8Array(p)));
  const out = new Uint8Array(bytes.reduce((s, b) => s + b.byteLength, 0));
  let off = 0;
  for (const b of bytes) {
    out.set(b, off);
    off += b.byteLength;
  }
  return out;
}

/** The installed TensorFlow.js version, from its package.json: importing tfjs to ask would load all of it. */
export function tfjsVersion(): string {
  return (createRequire(import.meta.url)('@tensorflow/tfjs/package.json') as { version: string }).version;
}

/**
 * Writes a bundle atomically: into `<dir>.tmp-<pid>` first, then renamed over `dir`, so a reader
 * never sees half a bundle.
 */
export async function writeBundle(
  dir: string,
  artifacts: BundleArtifacts,
  manifest: Omit<BundleManifest, 'files' | 'format' | 'formatVersion' | 'tfjsVersion'>,
): Promise<BundleManifest> {
  const version = tfjsVersion();
  const weights = artifacts.weightData;
  const modelJson = JSON.stringify({
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${version}`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
  });
  const full: BundleManifest = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    ...manifest,
    tfjsVersion: version,
    files: { [MODEL_FILE]: sha256(modelJson), [WEIGHTS_FILE]: sha256(weights) },
  };
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await writeFile(join(tmp, MODEL_FILE), modelJson);
  await writeFile(join(tmp, WEIGHTS_FILE), weights);
  await writeFile(join(tmp, BUNDLE_FILE), JSON.stringify(full, null, 2) + '\n');
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return full;
}

/** Rewrites bundle.json only (e.g. to record evaluation metrics); model files are untouched. */
export async function updateManifest(dir: string, manifest: BundleManifest): Promise<void> {
  const tmp = join(dir, `${BUNDLE_FILE}.tmp-${process.pid}`);
  await writeFile(tmp, JSON.stringify(manifest, null, 2) + '\n');
  await rename(tmp, join(dir, BUNDLE_FILE));
}

/** The model's input names in order: the features' scaled levels, then their shape inputs. */
export function bundleInputs(m: Pick<BundleManifest, 'features' | 'shape'>): string[] {
  return inputNames(m.features, m.shape);
}

export interface LoadedBundle {
  dir: string;
  manifest: BundleManifest;
  /** sha256 of bundle.json: the bundle's identity (it holds every model file's hash, the threshold, the scaler). */
  sha256: string;
  /** The model as verified; an engine builds its network from it (model/fast-lstm.ts, model/tfjs-model.ts). */
  artifacts: BundleArtifacts;
}

export interface LoadOptions {
  /** Channels this device can feed; a bundle asking for anything else is refused. */
  knownFeatures: readonly string[];
  /** Trusted signing keys and whether a signature is required (model/signature.ts). */
  trust?: Trust;
}

const REQUIRED: [keyof BundleManifest, string][] = [
  ['name', 'string'],
  ['profile', 'string'],
  ['modelType', 'string'],
  ['features', 'object'],
  ['seqLen', 'number'],
  ['hop', 'number'],
  ['periodMs', 'number'],
  ['maxGapMs', 'number'],
  ['scaler', 'object'],
  ['threshold', 'number'],
  ['files', 'object'],
];

async function readManifest(dir: string): Promise<{ m: BundleManifest; bytes: Buffer }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, BUNDLE_FILE));
  } catch (err) {
    throw new BundleError(dir, 'files-present', `${BUNDLE_FILE} cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  let m: BundleManifest;
  try {
    m = JSON.parse(bytes.toString('utf8')) as BundleManifest;
  } catch (err) {
    throw new BundleError(dir, 'bundle-json', `${BUNDLE_FILE} is not valid JSON: ${(err as Error).message}`);
  }
  if (m.format !== BUNDLE_FORMAT || m.formatVersion !== BUNDLE_FORMAT_VERSION) {
    throw new BundleError(dir, 'format', `expected ${BUNDLE_FORMAT} v${BUNDLE_FORMAT_VERSION}, found ${m.format} v${m.formatVersion}`);
  }
  for (const [key, type] of REQUIRED) {
    if (typeof m[key] !== type || m[key] === null) throw new BundleError(dir, 'bundle-json', `field '${key}' must be a ${type}`);
  }
  for (const key of ['seqLen', 'hop', 'periodMs'] as const) {
    if (!Number.isInteger(m[key]) || m[key] <= 0) throw new BundleError(dir, 'bundle-json', `field '${key}' must be a positive integer, got ${m[key]}`);
  }
  if (!(m.threshold > 0) || !Number.isFinite(m.threshold)) throw new BundleError(dir, 'bundle-json', `threshold must be a positive finite number, got ${m.threshold}`);
  if (m.aggregate !== undefined && !(SCORE_AGGREGATES as readonly unknown[]).includes(m.aggregate)) {
    throw new BundleError(dir, 'bundle-json', `aggregate must be one of ${SCORE_AGGREGATES.join(', ')} (or absent for mean), got ${JSON.stringify(m.aggregate)}`);
  }
  return { m, bytes };
}

function checkFeatures(dir: string, m: BundleManifest, known: readonly string[]): void {
  if (!Array.isArray(m.features) || m.features.length === 0) throw new BundleError(dir, 'features', 'features must be a non-empty list');
  const unknown = m.features.filter((f) => !known.includes(f));
  if (unknown.length) throw new BundleError(dir, 'features', `features unknown to this device: ${unknown.join(', ')} (known: ${known.join(', ')})`);
  if (new Set(m.features).size !== m.features.length) throw new BundleError(dir, 'features', `duplicate feature in ${m.features.join(', ')}`);
  try {
    checkScaler(m.scaler, m.features);
  } catch (err) {
    throw new BundleError(dir, 'features', (err as Error).message);
  }
  try {
    checkShape(m.shape, m.features);
  } catch (err) {
    throw new BundleError(dir, 'features', (err as Error).message);
  }
  const inputs = bundleInputs(m);
  const es = m.errorScale;
  if (!Array.isArray(es) || es.length !== inputs.length || es.some((v) => typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))) {
    throw new BundleError(dir, 'features', `errorScale must hold one positive finite number per model input (${inputs.length}: ${inputs.join(', ')})`);
  }
}

async function readHashed(dir: string, m: BundleManifest, file: string): Promise<Buffer> {
  const expected = m.files[file];
  if (typeof expected !== 'string') throw new BundleError(dir, 'files-present', `${BUNDLE_FILE} lists no sha256 for ${file}`);
  let data: Buffer;
  try {
    data = await readFile(join(dir, file));
  } catch (err) {
    throw new BundleError(dir, 'files-present', `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  const actual = sha256(data);
  if (actual !== expected) throw new BundleError(dir, 'sha256', `${file} has sha256 ${actual}, ${BUNDLE_FILE} says ${expected}`);
  return data;
}

interface ModelJson {
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * What a Sequential topology (model.json's modelTopology) maps, read without tfjs: the input shape is
 * the first layer's batch_input_shape (tfjs always writes it), the output shape follows from the
 * layers. Undefined for a topology with a layer (or a model class) not followed here: only tfjs can
 * tell what that maps, and it checks when it builds the model (model/tfjs-model.ts). Every layer the
 * fast engine runs is followed here, so a bundle it scores is checked at load.
 */
function topologyShapes(topology: unknown): { input: unknown; output: unknown } | undefined {
  const top = isObj(topology) && isObj(topology.model_config) ? topology.model_config : topology;
  if (!isObj(top) || top.class_name !== 'Sequential') return undefined;
  const layers: unknown[] | undefined = Array.isArray(top.config) ? top.config : isObj(top.config) && Array.isArray(top.config.layers) ? top.config.layers : undefined;
  if (!layers?.length) return undefined;
  const input = isObj(layers[0]) && isObj(layers[0].config) ? layers[0].config.batch_input_shape : undefined;
  if (!Array.isArray(input)) return undefined;
  let shape: unknown[] = input;
  for (const l of layers) {
    if (!isObj(l) || !isObj(l.config)) return undefined;
    const c = l.config;
    switch (l.class_name) {
      case 'InputLayer':
      case 'Dropout':
        break;
      case 'LSTM':
      case 'GRU':
      case 'SimpleRNN':
        if (c.return_state === true) return undefined;
        shape = c.return_sequences === true ? [shape[0], shape[1], c.units] : [shape[0], c.units];
        break;
      case 'RepeatVector':
        shape = [shape[0], c.n, ...shape.slice(1)];
        break;
      case 'Dense':
        shape = [...shape.slice(0, -1), c.units];
        break;
      case 'TimeDistributed':
        if (!isObj(c.layer) || c.layer.class_name !== 'Dense' || !isObj(c.layer.config)) return undefined;
        shape = [...shape.slice(0, -1), c.layer.config.units];
        break;
      default:
        return undefined;
    }
  }
  return { input, output: shape };
}

/**
 * The model must map windows to windows of the bundle's shape: [null, seqLen, inputs] → the same.
 * `input` and `output` are the model's shapes as tfjs reports them (null for the batch).
 */
export function checkTopology(dir: string, m: BundleManifest, input: unknown, output: unknown): void {
  const inputs = bundleInputs(m);
  const expect = JSON.stringify([null, m.seqLen, inputs.length]);
  const inShape = JSON.stringify(input);
  const outShape = JSON.stringify(output);
  if (inShape !== expect || outShape !== expect) {
    throw new BundleError(dir, 'topology', `model maps ${inShape} → ${outShape}; bundle needs ${expect} → ${expect} (seqLen ${m.seqLen}, inputs ${inputs.join(', ')})`);
  }
}

/**
 * Loads and verifies a bundle; every failure is a BundleError naming the check:
 * files-present, bundle-json, format, signature, features, sha256, topology, weights-shape.
 * Whether each tensor has the shape its layer needs is checked by the engine that builds the network
 * (model/fast-lstm.ts refuses the bundle; model/tfjs-model.ts throws BundleError 'weights-shape').
 */
export async function loadBundle(dir: string, opts: LoadOptions): Promise<LoadedBundle> {
  const { m, bytes } = await readManifest(dir);
  if (opts.trust) {
    const why = await signatureProblem(dir, bytes, opts.trust);
    if (why) throw new BundleError(dir, 'signature', why);
  }
  checkFeatures(dir, m, opts.knownFeatures);
  const modelBytes = await readHashed(dir, m, MODEL_FILE);
  const weights = await readHashed(dir, m, WEIGHTS_FILE);
  let mj: ModelJson;
  try {
    mj = JSON.parse(modelBytes.toString('utf8')) as ModelJson;
  } catch (err) {
    throw new BundleError(dir, 'topology', `${MODEL_FILE} is not valid JSON: ${(err as Error).message}`);
  }
  const specs = (mj.weightsManifest ?? []).flatMap((g) => g.weights);
  const paths = (mj.weightsManifest ?? []).flatMap((g) => g.paths);
  if (paths.length !== 1 || paths[0] !== WEIGHTS_FILE) throw new BundleError(dir, 'weights-shape', `${MODEL_FILE} must reference exactly ${WEIGHTS_FILE}, found [${paths.join(', ')}]`);
  const expectedBytes = specs.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
  if (specs.some((w) => w.dtype !== 'float32')) throw new BundleError(dir, 'weights-shape', 'only float32 weights are supported');
  if (expectedBytes !== weights.byteLength) {
    throw new BundleError(dir, 'weights-shape', `${MODEL_FILE} describes ${expectedBytes} bytes of weights, ${WEIGHTS_FILE} has ${weights.byteLength}`);
  }
  const shapes = topologyShapes(mj.modelTopology);
  if (shapes) checkTopology(dir, m, shapes.input, shapes.output);
  return { dir, manifest: m, sha256: sha256(bytes), artifacts: { modelTopology: mj.modelTopology, weightSpecs: specs, weightData: new Uint8Array(weights) } };
}

/** A device's model stores: the one installs go to, and the read-only one shipped with the package. */
export interface ModelStores {
  dir: string;
  shippedDir: string;
  profile: string;
}

/**
 * Where `modelType`'s bundle is read from: the device's store (models.dir) when it holds one, else the
 * bundles shipped with the package (models.shippedDir), which nothing ever writes.
 */
export function bundleDir(m: ModelStores, modelType: string): string {
  const installed = join(m.dir, m.profile, modelType);
  if (!m.shippedDir || existsSync(join(installed, BUNDLE_FILE))) return installed;
  return join(m.shippedDir, m.profile, modelType);
}

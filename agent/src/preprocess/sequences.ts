/**
 * Sliding windows over scaled series, and the time-ordered train/validation split.
 *
 * Windows are cut inside unbroken segments only: a segment ends at a file boundary or where two
 * consecutive rows are more than `maxGapMs` apart. That is the same rule the device's windower
 * applies, so a model is never trained on a sequence the device would refuse to form.
 */
import type { Series } from './csv.js';
import { transform, type MinMaxScaler } from './scaler.js';
import { InputLayout, type ShapeInputs } from './shape.js';

export interface WindowOptions {
  /** Features in model-input order; must equal `scaler.features`. */
  features: readonly string[];
  scaler: MinMaxScaler;
  /** Rows per window. */
  seqLen: number;
  /** Rows between consecutive window starts within a segment. */
  hop: number;
  /** A step between consecutive rows longer than this breaks the segment. */
  maxGapMs: number;
  /** Window-shape inputs appended after the features (preprocess/shape.ts); none when omitted. */
  shape?: ShapeInputs;
}

/** Time span of one input series, kept so the split can reason about the timeline. */
export interface FileSpan {
  file: string;
  rows: number;
  /** First and last row timestamp (ms epoch). */
  t0: number;
  t1: number;
}

export interface Windows {
  /** Model inputs, row-major [n][seqLen][f]: the scaled features, then any shape inputs. */
  x: Float32Array;
  n: number;
  seqLen: number;
  /** Inputs per time step (features + shape inputs). */
  f: number;
  /** Input names, in order. */
  features: string[];
  /** Timestamp of each window's first and last row (both inclusive). */
  startT: Float64Array;
  endT: Float64Array;
  /** Index into `files` of the series each window comes from. */
  fileIndex: Uint32Array;
  /** Row in that series where the window starts. */
  startRow: Uint32Array;
  /** Share of rows labelled 1 in each window; present when every series has labels. */
  labelFraction?: Float32Array;
  /** The input series' spans, in input order. */
  files: FileSpan[];
}

function checkOptions(o: WindowOptions): void {
  if (!Number.isInteger(o.seqLen) || o.seqLen < 1) throw new RangeError(`seqLen must be a positive integer, got ${o.seqLen}`);
  if (!Number.isInteger(o.hop) || o.hop < 1) throw new RangeError(`hop must be a positive integer, got ${o.hop}`);
  if (!(o.maxGapMs > 0)) throw new RangeError(`maxGapMs must be > 0, got ${o.maxGapMs}`);
  const sf = o.scaler.features;
  if (sf.length !== o.features.length || sf.some((f, j) => f !== o.features[j])) {
    throw new Error(`scaler features [${sf.join(', ')}] differ from window features [${o.features.join(', ')}]`);
  }
}

/** Window start rows of one series: offsets 0, hop, 2·hop, … inside each unbroken segment. */
export function windowStarts(t: Float64Array, rows: number, seqLen: number, hop: number, maxGapMs: number): number[] {
  const starts: number[] = [];
  let seg = 0;
  for (let i = 1; i <= rows; i++) {
    if (i === rows || t[i]! - t[i - 1]! > maxGapMs) {
      for (let s = seg; s + seqLen <= i; s += hop) starts.push(s);
      seg = i;
    }
  }
  return starts;
}

/** Cut all windows of all series (never across files or gaps) and materialise them scaled. */
export function makeWindows(series: readonly Series[], opts: WindowOptions): Windows {
  checkOptions(opts);
  const { seqLen, hop, maxGapMs } = opts;
  const f = opts.features.length;
  const layout = new InputLayout(opts.features, opts.shape);
  const withLabels = series.length > 0 && series.every((s) => s.label !== undefined);

  const perFile = series.map((s) => {
    for (let i = 1; i < s.rows; i++) {
      // Series from the CSV reader are already strictly increasing; others (simulator, replay) may not be.
      if (!(s.t[i]! > s.t[i - 1]!)) throw new Error(`${s.file}: timestamps not strictly increasing at row ${i}`);
    }
    return windowStarts(s.t, s.rows, seqLen, hop, maxGapMs);
  });
  const n = perFile.reduce((a, st) => a + st.length, 0);

  const win = seqLen * layout.width;
  const x = new Float32Array(n * win);
  const startT = new Float64Array(n);
  const endT = new Float64Array(n);
  const fileIndex = new Uint32Array(n);
  const startRow = new Uint32Array(n);
  const labelFraction = withLabels ? new Float32Array(n) : undefined;

  let w = 0;
  series.forEach((s, fi) => {
    const starts = perFile[fi]!;
    if (starts.length === 0) return;
    // Scale each file once; windows overlap, so scaling per window would redo most rows hop-fold.
    const scaled = transform(opts.scaler, s);
    for (const st of starts) {
      layout.write(scaled, st * f, seqLen, x, w * win);
      startT[w] = s.t[st]!;
      endT[w] = s.t[st + seqLen - 1]!;
      fileIndex[w] = fi;
      startRow[w] = st;
      if (labelFraction !== undefined) {
        let ones = 0;
        for (let i = st; i < st + seqLen; i++) ones += s.label![i]!;
        labelFraction[w] = ones / seqLen;
      }
      w++;
    }
  });

  const out: Windows = {
    x,
    n,
    seqLen,
    f: layout.width,
    features: layout.names,
    startT,
    endT,
    fileIndex,
    startRow,
    files: series.map((s) => ({ file: s.file, rows: s.rows, t0: s.t[0]!, t1: s.t[s.rows - 1]! })),
  };
  if (labelFraction !== undefined) out.labelFraction = labelFraction;
  return out;
}

/**
 * Copy the windows at `indices` (in that order) into one row-major [k][seqLen][f] buffer —
 * a training batch. Pass `out` to reuse a buffer across batches.
 */
export function gatherX(w: Windows, indices: ArrayLike<number>, out?: Float32Array): Float32Array {
  const win = w.seqLen * w.f;
  const dst = out ?? new Float32Array(indices.length * win);
  if (dst.length < indices.length * win) throw new RangeError('gatherX: output buffer too small');
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (!(i >= 0 && i < w.n && Number.isInteger(i))) throw new RangeError(`gatherX: window index ${i} out of range [0, ${w.n})`);
    dst.set(w.x.subarray(i * win, (i + 1) * win), k * win);
  }
  return dst;
}

/** A Windows holding only the windows at `indices` (in that order); `files` is shared. */
export function selectWindows(w: Windows, indices: ArrayLike<number>): Windows {
  const k = indices.length;
  const pick = <T extends Float64Array | Float32Array | Uint32Array>(a: T, make: (n: number) => T): T => {
    const r = make(k);
    for (let j = 0; j < k; j++) r[j] = a[indices[j]!]!;
    return r;
  };
  const out: Windows = {
    x: gatherX(w, indices),
    n: k,
    seqLen: w.seqLen,
    f: w.f,
    features: w.features,
    startT: pick(w.startT, (n) => new Float64Array(n)),
    endT: pick(w.endT, (n) => new Float64Array(n)),
    fileIndex: pick(w.fileIndex, (n) => new Uint32Array(n)),
    startRow: pick(w.startRow, (n) => new Uint32Array(n)),
    files: w.files,
  };
  if (w.labelFraction !== undefined) out.labelFraction = pick(w.labelFraction, (n) => new Float32Array(n));
  return out;
}

/**
 * Time-ordered train/validation split of each recording: the first `trainFraction` of a file's
 * time span (rows with t < t0 + trainFraction·(t1 − t0)) trains, the rest validates. Nothing is
 * shuffled across the boundary and windows are cut from each part separately, so no row is in both
 * sets. Splitting every recording, rather than holding out the last recordings, puts every operating
 * condition the training set has (each day's ambient, load, supply) into validation too: early
 * stopping and the threshold are judged on all of normal, not on the last day's.
 */
export function splitEachByTime(series: readonly Series[], trainFraction: number, spread = 1): { train: Series[]; val: Series[] } {
  if (!(trainFraction > 0 && trainFraction < 1)) throw new RangeError(`trainFraction must be in (0, 1), got ${trainFraction}`);
  if (!(Number.isInteger(spread) && spread >= 1)) throw new RangeError(`spread must be an integer ≥ 1, got ${spread}`);
  if (spread > 1) return splitSpread(series, trainFraction, spread);
  const train: Series[] = [];
  const val: Series[] = [];
  for (const s of series) {
    if (s.rows === 0) continue;
    const boundaryT = s.t[0]! + trainFraction * (s.t[s.rows - 1]! - s.t[0]!);
    let b = 0;
    while (b < s.rows && s.t[b]! < boundaryT) b++;
    train.push(sliceSeries(s, 0, b));
    val.push(sliceSeries(s, b, s.rows));
  }
  return { train, val };
}

/**
 * The same split with the validation share in `spread` blocks through each recording instead of
 * its tail: its span cut into spread·n equal blocks (n = 1 / (1 − trainFraction), 10 at 0.9), the
 * last of every n validates. A baseline recorded on a gateway is one stretch of a machine's running:
 * its tail is one or two operating points, while blocks throughout hold the loads it went through,
 * for the threshold to be judged on.
 */
function splitSpread(series: readonly Series[], trainFraction: number, spread: number): { train: Series[]; val: Series[] } {
  const every = Math.max(2, Math.round(1 / (1 - trainFraction)));
  const blocks = spread * every;
  const train: Series[] = [];
  const val: Series[] = [];
  for (const s of series) {
    const t0 = s.t[0]!;
    const span = s.t[s.rows - 1]! - t0 || 1;
    // Runs of rows in one part (consecutive training blocks make one run): each run is one slice.
    let from = 0;
    let part: Series[] | undefined;
    for (let i = 0; i <= s.rows; i++) {
      const block = i === s.rows ? -1 : Math.min(blocks - 1, Math.floor(((s.t[i]! - t0) / span) * blocks));
      const p = block < 0 ? undefined : block % every === every - 1 ? val : train;
      if (p === part) continue;
      if (part !== undefined) part.push(sliceSeries(s, from, i));
      from = i;
      part = p;
    }
  }
  return { train, val };
}

/** Rows [from, to) of a series, sharing its memory. */
export function sliceSeries(s: Series, from: number, to: number): Series {
  const columns: Record<string, Float64Array> = {};
  for (const [k, v] of Object.entries(s.columns)) columns[k] = v.subarray(from, to);
  const out: Series = { file: s.file, name: s.name, rows: to - from, t: s.t.subarray(from, to), columns };
  if (s.label) out.label = s.label.subarray(from, to);
  return out;
}

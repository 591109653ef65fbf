import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Series } from '#agent/preprocess/csv.js';
import { fitMinMax, type MinMaxScaler } from '#agent/preprocess/scaler.js';
import { gatherX, makeWindows, selectWindows, splitEachByTime, windowStarts } from '#agent/preprocess/sequences.js';

function series(file: string, t: number[], columns: Record<string, number[]>, label?: number[]): Series {
  const cols: Record<string, Float64Array> = {};
  for (const [k, v] of Object.entries(columns)) cols[k] = Float64Array.from(v);
  const s: Series = { file, name: file, rows: t.length, t: Float64Array.from(t), columns: cols };
  if (label) s.label = Uint8Array.from(label);
  return s;
}
const range = (n: number, f: (i: number) => number = (i) => i) => Array.from({ length: n }, (_, i) => f(i));
/** min 0, max 1: scale 1, offset 0, so scaled values equal raw ones and can be written by hand. */
const identity = (features: string[]): MinMaxScaler => ({ features, min: features.map(() => 0), max: features.map(() => 1) });

test('10 rows, seqLen 4, hop 3 → windows at rows 0, 3, 6 with exact row-major values', () => {
  const s = series('a.csv', range(10, (i) => 1000 + 50 * i), { a: range(10), b: range(10, (i) => 100 + i) });
  const w = makeWindows([s], { features: ['a', 'b'], scaler: identity(['a', 'b']), seqLen: 4, hop: 3, maxGapMs: 50 });
  assert.equal(w.n, 3);
  assert.equal(w.seqLen, 4);
  assert.equal(w.f, 2);
  assert.deepEqual([...w.startRow], [0, 3, 6]);
  assert.deepEqual([...w.startT], [1000, 1150, 1300]);
  assert.deepEqual([...w.endT], [1150, 1300, 1450]);
  assert.deepEqual([...w.fileIndex], [0, 0, 0]);
  assert.equal(w.x.length, 3 * 4 * 2);
  // [n][seqLen][f]
  assert.deepEqual([...w.x], [
    0, 100, 1, 101, 2, 102, 3, 103,
    3, 103, 4, 104, 5, 105, 6, 106,
    6, 106, 7, 107, 8, 108, 9, 109,
  ]);
  assert.equal(w.labelFraction, undefined);
});

test('windows carry the fitted scaling', () => {
  const s = series('a.csv', range(5), { a: [2, 4, 6, 8, 10] });
  const sc = fitMinMax([s], ['a']);
  const w = makeWindows([s], { features: ['a'], scaler: sc, seqLen: 3, hop: 2, maxGapMs: 1 });
  assert.deepEqual([...w.x], [0, 0.25, 0.5, 0.5, 0.75, 1]);
});

test('a gap longer than maxGapMs breaks the sequence; a gap equal to it does not', () => {
  // rows 0..4 at 0..40, then a 60 ms gap, rows 5..10 at 100..150
  const t = [0, 10, 20, 30, 40, 100, 110, 120, 130, 140, 150];
  assert.deepEqual(windowStarts(Float64Array.from(t), t.length, 3, 2, 20), [0, 2, 5, 7]);
  assert.deepEqual(windowStarts(Float64Array.from(t), t.length, 3, 2, 60), [0, 2, 4, 6, 8]);
  const s = series('g.csv', t, { a: range(11) });
  const w = makeWindows([s], { features: ['a'], scaler: identity(['a']), seqLen: 3, hop: 2, maxGapMs: 20 });
  assert.deepEqual([...w.startRow], [0, 2, 5, 7]);
  assert.deepEqual([...w.x], [0, 1, 2, 2, 3, 4, 5, 6, 7, 7, 8, 9]);
  for (let i = 0; i < w.n; i++) assert.ok(w.endT[i]! - w.startT[i]! === 20, 'no window spans the gap');
  // Segment shorter than seqLen yields nothing.
  assert.deepEqual(windowStarts(Float64Array.from([0, 1, 50, 51, 52]), 5, 3, 1, 10), [2]);
});

test('two files are never joined, even when contiguous in time', () => {
  const a = series('a.csv', [0, 10, 20, 30, 40], { a: [1, 2, 3, 4, 5] });
  const b = series('b.csv', [50, 60, 70, 80, 90], { a: [6, 7, 8, 9, 10] });
  const w = makeWindows([a, b], { features: ['a'], scaler: identity(['a']), seqLen: 3, hop: 1, maxGapMs: 1000 });
  assert.equal(w.n, 6);
  assert.deepEqual([...w.fileIndex], [0, 0, 0, 1, 1, 1]);
  assert.deepEqual([...w.startRow], [0, 1, 2, 0, 1, 2]);
  assert.deepEqual([...w.x], [1, 2, 3, 2, 3, 4, 3, 4, 5, 6, 7, 8, 7, 8, 9, 8, 9, 10]);
  assert.deepEqual(w.files.map((f) => [f.file, f.t0, f.t1]), [['a.csv', 0, 40], ['b.csv', 50, 90]]);
});

test('labelFraction is the share of label-1 rows per window', () => {
  const s = series('l.csv', range(6), { a: range(6) }, [0, 0, 1, 1, 1, 0]);
  const w = makeWindows([s], { features: ['a'], scaler: identity(['a']), seqLen: 4, hop: 1, maxGapMs: 1 });
  assert.deepEqual([...w.labelFraction!], [0.5, 0.75, 0.75]);
});

test('bad options and unordered timestamps are refused', () => {
  const s = series('a.csv', [0, 1, 2], { a: [0, 1, 2] });
  const o = { features: ['a'], scaler: identity(['a']), seqLen: 2, hop: 1, maxGapMs: 5 };
  assert.throws(() => makeWindows([s], { ...o, hop: 0 }), RangeError);
  assert.throws(() => makeWindows([s], { ...o, seqLen: 1.5 }), RangeError);
  assert.throws(() => makeWindows([s], { ...o, features: ['b'] }), /differ/);
  assert.throws(() => makeWindows([series('u.csv', [0, 2, 1], { a: [0, 1, 2] })], o), /u\.csv.*strictly increasing/);
});

test('gatherX and selectWindows materialise subsets in the given order', () => {
  const s = series('a.csv', range(8), { a: range(8), b: range(8, (i) => -i) });
  const w = makeWindows([s], { features: ['a', 'b'], scaler: identity(['a', 'b']), seqLen: 2, hop: 2, maxGapMs: 1 });
  assert.equal(w.n, 4);
  assert.deepEqual([...gatherX(w, [3, 0])], [6, -6, 7, -7, 0, -0, 1, -1]);
  const buf = new Float32Array(8);
  assert.equal(gatherX(w, [1, 2], buf), buf);
  assert.deepEqual([...buf], [2, -2, 3, -3, 4, -4, 5, -5]);
  assert.throws(() => gatherX(w, [4]), RangeError);
  const sub = selectWindows(w, [2, 1]);
  assert.equal(sub.n, 2);
  assert.deepEqual([...sub.startRow], [4, 2]);
  assert.deepEqual([...sub.startT], [4, 2]);
  assert.deepEqual([...sub.x], [4, -4, 5, -5, 2, -2, 3, -3]);
});

test('splitEachByTime: every file splits at 90 % of its own span, rows in order, none in both sets', () => {
  const ta = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
  const tb = [1000, 1100, 1200, 1300, 1400];
  const a = series('a', ta, { voltage: ta });
  const b = series('b', tb, { voltage: tb });
  const { train, val } = splitEachByTime([a, b], 0.9);
  // a: boundary at 0 + 0.9·100 = 90 → rows with t < 90 train (0…80), t ≥ 90 validate (90, 100)
  assert.deepEqual(Array.from(train[0]!.t), [0, 10, 20, 30, 40, 50, 60, 70, 80]);
  assert.deepEqual(Array.from(val[0]!.t), [90, 100]);
  // b: boundary at 1000 + 0.9·400 = 1360 → 1000…1300 train, 1400 validates
  assert.deepEqual(Array.from(train[1]!.t), [1000, 1100, 1200, 1300]);
  assert.deepEqual(Array.from(val[1]!.t), [1400]);
  assert.deepEqual(Array.from(val[0]!.columns.voltage!), [90, 100], 'columns are sliced with the rows');
  assert.equal(train[0]!.rows + val[0]!.rows, a.rows);
  assert.throws(() => splitEachByTime([a], 1), RangeError);
  assert.throws(() => splitEachByTime([a], 0), RangeError);
});

test('splitEachByTime with a spread: the validation share in blocks through each file (the last of every ten), training runs between them one slice each', () => {
  const t = range(61, (i) => i * 10); // 0 … 600: 30 blocks of 20 ms at spread 3
  const a = series('a', t, { voltage: t });
  const { train, val } = splitEachByTime([a], 0.9, 3);
  // Blocks 9, 19, 29 validate: t in [180, 200), [380, 400), [580, 600] (the last row joins the last block).
  assert.deepEqual(val.map((s) => Array.from(s.t)), [[180, 190], [380, 390], [580, 590, 600]]);
  assert.deepEqual(train.map((s) => [s.t[0], s.t[s.rows - 1]]), [[0, 170], [200, 370], [400, 570]]);
  assert.equal(train.reduce((n, s) => n + s.rows, 0) + val.reduce((n, s) => n + s.rows, 0), a.rows);
  assert.deepEqual(Array.from(val[1]!.columns.voltage!), [380, 390], 'columns are sliced with the rows');
  // A spread of 1 is the tail.
  assert.deepEqual(splitEachByTime([a], 0.9, 1).val.map((s) => Array.from(s.t)), splitEachByTime([a], 0.9).val.map((s) => Array.from(s.t)));
  assert.throws(() => splitEachByTime([a], 0.9, 2.5), /spread must be an integer/);
});

test('windows cut from the two parts never cross the boundary', () => {
  const t = range(50, (i) => i * 10);
  const a = series('a', t, { voltage: t });
  const { train, val } = splitEachByTime([a], 0.9);
  const opts = { features: ['voltage'], scaler: { features: ['voltage'], min: [0], max: [490] }, seqLen: 4, hop: 1, maxGapMs: 100 };
  const tw = makeWindows(train, opts);
  const vw = makeWindows(val, opts);
  const boundary = val[0]!.t[0]!;
  for (let i = 0; i < tw.n; i++) assert.ok(tw.endT[i]! < boundary);
  for (let i = 0; i < vw.n; i++) assert.ok(vw.startT[i]! >= boundary);
  assert.equal(tw.n, 45 - 4 + 1);
  assert.equal(vw.n, 5 - 4 + 1);
});

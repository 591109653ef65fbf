import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Series } from '#agent/preprocess/csv.js';
import { checkScaler, fitMinMax, inverse, transform, transformRows, widenScaler } from '#agent/preprocess/scaler.js';

function series(file: string, t: number[], columns: Record<string, number[]>): Series {
  const cols: Record<string, Float64Array> = {};
  for (const [k, v] of Object.entries(columns)) cols[k] = Float64Array.from(v);
  return { file, name: file, rows: t.length, t: Float64Array.from(t), columns: cols };
}

test('fit/transform matches hand-computed sklearn MinMaxScaler values', () => {
  const s = series('a', [0, 1, 2], { a: [2, 4, 6], b: [-1, 0, 3], c: [5, 5, 5] });
  const sc = fitMinMax([s], ['a', 'b', 'c']);
  assert.deepEqual(sc, { features: ['a', 'b', 'c'], min: [2, -1, 5], max: [6, 3, 5] });
  const x = transform(sc, s);
  assert.ok(x instanceof Float32Array);
  // Row-major [rows][f]; b: (v+1)/4; constant c: scale 1, offset -5 → 0.
  assert.deepEqual([...x], [0, 0, 0, 0.5, 0.25, 0, 1, 1, 0]);
});

test('fit spans all given series; order of features is the caller\'s', () => {
  const s1 = series('a', [0, 1], { p: [10, 20], q: [1, 1] });
  const s2 = series('b', [5, 6], { p: [0, 15], q: [3, 2] });
  const sc = fitMinMax([s1, s2], ['q', 'p']);
  assert.deepEqual(sc.min, [1, 0]);
  assert.deepEqual(sc.max, [3, 20]);
  assert.deepEqual([...transform(sc, s2)], [1, 0, 0.5, 0.75]);
});

test('out-of-range values are not clipped (sklearn clip=False)', () => {
  const sc = fitMinMax([series('a', [0, 1, 2], { a: [2, 4, 6] })], ['a']);
  const y = transformRows(sc, [0, 10, 4]);
  assert.deepEqual([...y], [-0.5, 2, 0.5]);
  assert.ok(y[0]! < 0 && y[1]! > 1);
  // Constant feature: anything else moves by its raw difference (scale 1).
  const c = fitMinMax([series('c', [0, 1], { c: [7, 7] })], ['c']);
  assert.deepEqual([...transformRows(c, [7, 9, 6])], [0, 2, -1]);
});

test('near-constant range below 10·eps is treated as constant, like sklearn', () => {
  const sc = { features: ['a'], min: [1], max: [1 + 2 * Number.EPSILON] };
  assert.deepEqual([...transformRows(sc, [1 + 2 * Number.EPSILON])], [2 * Number.EPSILON].map(Math.fround));
});

test('inverse undoes transform', () => {
  const s = series('a', [0, 1, 2, 3], { a: [2, 4, 6, 3], b: [100, -50, 25, 0], c: [5, 5, 5, 5] });
  const sc = fitMinMax([s], ['a', 'b', 'c']);
  const back = inverse(sc, transform(sc, s));
  const orig = [2, 100, 5, 4, -50, 5, 6, 25, 5, 3, 0, 5];
  back.forEach((v, k) => assert.ok(Math.abs(v - orig[k]!) < 1e-4 * Math.max(1, Math.abs(orig[k]!)), `${k}: ${v} vs ${orig[k]}`));
  // sklearn's inverse is (x - min_) / scale_, which can miss by one ulp (1 → 99.99999999999999 here).
  const inv = inverse(sc, [0, 0, 0, 1, 1, 3]);
  [2, -50, 5, 6, 100, 8].forEach((v, k) => assert.ok(Math.abs(inv[k]! - v) < 1e-12 * Math.max(1, Math.abs(v)), `${k}: ${inv[k]} vs ${v}`));
});

test('transform of a row range into a reused buffer', () => {
  const s = series('a', [0, 1, 2, 3], { a: [0, 1, 2, 4] });
  const sc = fitMinMax([s], ['a']);
  const buf = new Float32Array(4).fill(-9);
  transform(sc, s, 1, 3, buf, 1);
  assert.deepEqual([...buf], [-9, 0.25, 0.5, -9]);
  assert.throws(() => transform(sc, s, 2, 5), RangeError);
});

test('scaler survives JSON and is validated on load', () => {
  const sc = fitMinMax([series('a', [0, 1], { a: [0.1, 0.7], b: [3, -2] })], ['a', 'b']);
  assert.deepEqual(checkScaler(JSON.parse(JSON.stringify(sc)), ['a', 'b']), sc);
  assert.throws(() => checkScaler({ features: ['a'], min: [0, 1], max: [1] }), /min must have 1/);
  assert.throws(() => checkScaler({ features: ['a'], min: [2], max: [1] }), /min > max/);
  assert.throws(() => checkScaler({ features: ['a'], min: [null], max: [1] }), /finite/);
  assert.throws(() => checkScaler(sc, ['b', 'a']), /differ/);
  assert.throws(() => fitMinMax([series('a', [0], { a: [1] })], ['zz']), /no column 'zz'/);
});

test('widenScaler holds the covered ranges of the features both have, and leaves the rest as fitted', () => {
  const fitted = { features: ['voltage', 'temperature'], min: [228, 64], max: [235, 73] };
  const cover = { features: ['temperature', 'rpm'], min: [31.5, 1143], max: [70.4, 1190] };
  assert.deepEqual(widenScaler(fitted, cover), { features: ['voltage', 'temperature'], min: [228, 31.5], max: [235, 73] });
  assert.equal(widenScaler(fitted, undefined), fitted);
  assert.deepEqual(fitted.min, [228, 64], 'the fitted scaler is not changed');
});

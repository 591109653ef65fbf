import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Series } from '#agent/preprocess/csv.js';
import { fitMinMax } from '#agent/preprocess/scaler.js';
import { makeWindows } from '#agent/preprocess/sequences.js';
import { checkShape, fitShape, InputLayout, inputNames } from '#agent/preprocess/shape.js';

const close = (a: ArrayLike<number>, b: number[]) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-6, `[${i}] ${a[i]} ≠ ${b[i]}`);
};

test('inputs are the features, then one shape input per shape channel', () => {
  assert.deepEqual(inputNames(['a', 'b']), ['a', 'b']);
  assert.deepEqual(inputNames(['a', 'b'], { features: ['b'], gain: [1] }), ['a', 'b', 'b.shape']);
});

test('a window is laid out as levels, then each shape channel minus its window mean, times its gain', () => {
  const layout = new InputLayout(['a', 'b'], { features: ['b'], gain: [2] });
  assert.equal(layout.width, 3);
  // Rows (a, b): (1, 0.1) (2, 0.1) (3, 0.4): b's mean 0.2 → deviations −0.1, −0.1, 0.2 → ×2.
  const src = Float32Array.from([9, 9, 1, 0.1, 2, 0.1, 3, 0.4]);
  const dst = new Float32Array(1 + 9).fill(-7);
  layout.write(src, 2, 3, dst, 1);
  close(dst, [-7, 1, 0.1, -0.2, 2, 0.1, -0.2, 3, 0.4, 0.4]);
  // Without shape inputs a window is copied as it is.
  const plain = new InputLayout(['a', 'b']);
  const out = new Float32Array(6);
  plain.write(src, 2, 3, out, 0);
  assert.deepEqual([...out], [...src.subarray(2)]);
});

test('the gain is 1 / the largest deviation from a window mean in the training windows', () => {
  // Two windows of 2 steps × features (a, b): b deviates by ±0.05 then ±0.25; a is ignored.
  const x = Float32Array.from([0, 0.5, 1, 0.6, 0, 0.0, 1, 0.5]);
  const s = fitShape(x, 2, 2, ['a', 'b'], ['b']);
  assert.deepEqual(s.features, ['b']);
  assert.ok(Math.abs(s.gain[0]! - 4) < 1e-6, `gain ${s.gain[0]}`);
  // A channel that never moves gets gain 1 rather than a division by zero.
  assert.deepEqual(fitShape(Float32Array.from([1, 1, 1, 1]), 1, 2, ['a', 'b'], ['a']).gain, [1]);
  assert.throws(() => fitShape(x, 2, 2, ['a', 'b'], ['c']), /'c' is not among the features \[a, b\]/);
});

test('shape inputs from a bundle are checked with messages that name the fault', () => {
  assert.equal(checkShape(undefined, ['a']), undefined);
  assert.throws(() => checkShape({ features: ['c'], gain: [1] }, ['a', 'b']), /c not among the features \[a, b\]/);
  assert.throws(() => checkShape({ features: ['a'], gain: [0] }, ['a']), /gain must hold positive finite numbers/);
  assert.throws(() => checkShape({ features: ['a', 'a'], gain: [1, 1] }, ['a']), /duplicate feature/);
  assert.throws(() => checkShape({ features: ['a'] }, ['a']), /gain must have 1 entries/);
  assert.throws(() => checkShape('x', ['a']), /not an object/);
});

test('makeWindows appends the shape inputs to every window and names them', () => {
  const t = Array.from({ length: 6 }, (_, i) => i * 50);
  const s: Series = {
    file: 'f',
    name: 'f',
    rows: 6,
    t: Float64Array.from(t),
    columns: { temperature: Float64Array.from([40, 40, 40, 41, 44, 50]), rpm: Float64Array.from([590, 600, 610, 600, 590, 600]) },
  };
  const features = ['rpm', 'temperature'];
  const scaler = fitMinMax([s], features);
  const w = makeWindows([s], { features, scaler, shape: { features: ['temperature'], gain: [10] }, seqLen: 3, hop: 3, maxGapMs: 250 });
  assert.deepEqual(w.features, ['rpm', 'temperature', 'temperature.shape']);
  assert.equal(w.f, 3);
  assert.equal(w.n, 2);
  // Temperature scaled by (v − 40)/10: second window 0.1, 0.4, 1.0, mean 0.5 → deviations ×10.
  close(w.x.subarray(9), [0.5, 0.1, -4, 0, 0.4, -1, 0.5, 1, 5]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addConfusion,
  addNab,
  binaryMetrics,
  changepointsOf,
  confusion,
  detectionWindows,
  NAB_PROFILES,
  nabCounts,
  nabScore,
  nabTpScore,
  type NabCounts,
} from '#agent/evaluate/skab-metrics.js';

const [STANDARD, LOW_FP, LOW_FN] = NAB_PROFILES as [(typeof NAB_PROFILES)[0], (typeof NAB_PROFILES)[0], (typeof NAB_PROFILES)[0]];
const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} ≠ ${b}`);

test('pointwise confusion and the leaderboard formulas, by hand', () => {
  // truth 0 0 1 1 1 1, pred 0 1 1 1 0 0 → TN 1, FP 1, TP 2, FN 2
  const c = confusion([0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 0, 0]);
  assert.deepEqual(c, { tp: 2, fp: 1, tn: 1, fn: 2 });
  const m = binaryMetrics(c);
  close(m.f1, 2 / (2 + 3 / 2)); // 0.5714…
  close(m.far, 1 / 2);
  close(m.mar, 2 / 4);
  // Pooled over files before the ratios, not averaged per file.
  const pooled = addConfusion(c, confusion([0, 0, 0, 0], [1, 1, 1, 1]));
  assert.deepEqual(pooled, { tp: 2, fp: 5, tn: 1, fn: 2 });
  close(binaryMetrics(pooled).f1, 2 / (2 + 7 / 2));
  // Flag everything: FAR 100 %, MAR 0.
  const all = binaryMetrics(confusion([0, 1, 1, 0], [1, 1, 1, 1]));
  assert.deepEqual([all.far, all.mar], [1, 0]);
  close(all.f1, 2 / 3);
  assert.throws(() => confusion([0, 1], [0]), /2 labels but 1 predictions/);
});

test('predicted changepoints are the changes of the predicted labels (and row 0 when it starts raised)', () => {
  assert.deepEqual([...changepointsOf([0, 0, 1, 1, 0, 1])], [0, 0, 1, 0, 1, 1]);
  assert.deepEqual([...changepointsOf([1, 1, 0])], [1, 0, 1]);
  assert.deepEqual([...changepointsOf([])], []);
});

test('detection windows: 60 s to the right of each changepoint; an overlapping later window starts where the earlier ends', () => {
  assert.deepEqual(detectionWindows([100, 300], 60), [
    [100, 160],
    [300, 360],
  ]);
  assert.deepEqual(detectionWindows([100, 130], 60), [
    [100, 160],
    [160, 190],
  ]);
});

test('the scaled sigmoid: A_TP at the window start, −A_FP at its end, hand value in the middle', () => {
  close(nabTpScore(0, STANDARD), 1);
  close(nabTpScore(1, STANDARD), -0.11);
  close(nabTpScore(0.9999, LOW_FP), -0.22);
  // r = 0.5 → k = 500, x = π/1998; tanh(π/1998) = 0.0015723674, tanh(π/2) = 0.9171523357
  const ratio = 0.0015723674 / 0.9171523357;
  close(nabTpScore(0.5, STANDARD), 0.555 * (1 - ratio) - 0.11, 1e-9);
  close(nabTpScore(0.5, LOW_FN), 0.555 * (1 - ratio) - 0.11, 1e-9);
  // Decreasing through the window.
  for (let r = 0; r < 1; r += 0.01) assert.ok(nabTpScore(r, STANDARD) >= nabTpScore(r + 0.01, STANDARD));
});

/** 200 rows one second apart, a true changepoint at row 100 (window [100 s, 160 s]). */
const T = Array.from({ length: 200 }, (_, i) => i * 1000);
const TRUE_CP = T.map((_, i) => (i === 100 ? 1 : 0));
const pred = (from: number, to: number) => T.map((_, i) => (i >= from && i < to ? 1 : 0));
const counts = (p: number[]) => nabCounts(T, TRUE_CP, changepointsOf(p));

test('NAB on hand cases: perfect, null, early alarm, late detection', () => {
  // Raised exactly at the changepoint and never cleared: one TP at r = 0.
  const perfect = counts(pred(100, 200));
  assert.deepEqual(perfect, { windows: 1, fp: 0, fn: 0, tpPositions: [0] });
  for (const p of NAB_PROFILES) close(nabScore(perfect, p), 100);
  // Nothing predicted: the null detector.
  const none = counts(pred(0, 0));
  assert.deepEqual(none, { windows: 1, fp: 0, fn: 1, tpPositions: [] });
  for (const p of NAB_PROFILES) close(nabScore(none, p), 0);
  // An alarm before the changepoint (rows 40–59: changepoints at 40 and 60, both false positives), the window missed.
  const early = counts(pred(40, 60));
  assert.deepEqual(early, { windows: 1, fp: 2, fn: 1, tpPositions: [] });
  close(nabScore(early, STANDARD), (100 * (-0.22 - 1 + 1)) / 2); // −11
  close(nabScore(early, LOW_FP), (100 * (-0.44 - 1 + 1)) / 2); // −22
  close(nabScore(early, LOW_FN), (100 * (-0.22 - 2 + 2)) / 3); // −7.33
  // One row flagged 30 s into the window: its rise (r = 0.5) scores, its fall a row later is inside the window and costs nothing.
  const mid = counts(pred(130, 131));
  assert.deepEqual(mid, { windows: 1, fp: 0, fn: 0, tpPositions: [0.5] });
  close(nabScore(mid, STANDARD), (100 * (nabTpScore(0.5, STANDARD) + 1)) / 2);
  // Cleared after the window: the fall is a false positive.
  const long = counts(pred(130, 170));
  assert.deepEqual(long, { windows: 1, fp: 1, fn: 0, tpPositions: [0.5] });
  close(nabScore(long, STANDARD), (100 * (nabTpScore(0.5, STANDARD) - 0.11 + 1)) / 2);
});

test('NAB pools files before normalising; a file without changepoints only adds false positives', () => {
  const a = counts(pred(100, 200)); // +1 of a possible 1
  const b: NabCounts = nabCounts([0, 1000, 2000], [0, 0, 0], [0, 1, 1]); // no windows, two false positives
  assert.deepEqual(b, { windows: 0, fp: 2, fn: 0, tpPositions: [] });
  const pooled = addNab(a, b);
  close(nabScore(pooled, STANDARD), (100 * (1 - 0.22 + 1)) / 2);
  assert.ok(Number.isNaN(nabScore(b, STANDARD)), 'no windows: undefined, not 0');
});

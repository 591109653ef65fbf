/** The score chart's axis (page/charts.ts), run in node: whole decades, labels only inside the range. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decadeRange, decades } from '#agent/web/page/charts.js';

test('score axis: spans whole decades around the data, so its ends are labelled', () => {
  assert.deepEqual(decadeRange(0.37, 3.31), [0.1, 10]);
  assert.deepEqual(decadeRange(0.1, 10), [0.1, 10]);
  assert.deepEqual(decadeRange(2, 8), [1, 10]);
  assert.deepEqual(decadeRange(1.2e-3, 240), [1e-3, 1000]);
  // A score of 0 is drawn at the floor of the log scale; no data: no range.
  assert.deepEqual(decadeRange(0, 1), [1e-9, 1]);
  assert.deepEqual(decadeRange(null, null), [null, null]);
});

test('score axis: decade labels lie within the range (one outside is drawn off the plot and cut by the canvas)', () => {
  // uPlot's own log range for scores 0.37…3.31 is [0.3, 10]: 0.1 is no label of it.
  assert.deepEqual(decades(0.3, 10), [1, 10]);
  assert.deepEqual(decades(0.4, 10), [1, 10]);
  assert.deepEqual(decades(0.1, 10), [0.1, 1, 10]);
  assert.deepEqual(decades(1, 10), [1, 10]);
  assert.deepEqual(decades(2, 8), []);
  for (const [min, max] of [
    [0.3, 10],
    [0.004, 2],
    [1e-9, 1e4],
    [0.05, 0.5],
  ] as const) {
    for (const d of decades(min, max)) assert.ok(d >= min * (1 - 1e-9) && d <= max * (1 + 1e-9), `${d} in [${min}, ${max}]`);
  }
});

test('score axis: at most `most` labels over many decades, the top one always labelled', () => {
  const many = decades(1e-9, 1e4);
  assert.ok(many.length <= 6, String(many));
  assert.equal(many.at(-1), 1e4);
  assert.deepEqual(decades(1e-9, 1e4, 14), Array.from({ length: 14 }, (_, i) => 10 ** (i - 9)));
  assert.deepEqual(decades(1e-3, 1e3, 4), [1e-3, 0.1, 10, 1e3]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_SCALE_FLOOR, fitErrorScale, normalizeErrors } from '#agent/model/error-scale.js';

// Five windows × two features, [n][f] row-major: feature 0 takes 1…5, feature 1 is 0.5 except one 4.5.
const PER_FEATURE = Float32Array.from([1, 0.5, 2, 0.5, 3, 4.5, 4, 0.5, 5, 0.5]);

test('error scale: each feature\'s mean normal error, or its quantile, floored', () => {
  assert.deepEqual(fitErrorScale(PER_FEATURE, 5, 2), [3, 1.3]);
  // Linear interpolation: q 0.5 is the middle value; q 0.9 of 1…5 is 4 + 0.6·1.
  assert.deepEqual(fitErrorScale(PER_FEATURE, 5, 2, 0.5), [3, 0.5]);
  const q9 = fitErrorScale(PER_FEATURE, 5, 2, 0.9);
  assert.ok(Math.abs(q9[0]! - 4.6) < 1e-12 && Math.abs(q9[1]! - (0.5 + 0.6 * 4)) < 1e-12, String(q9));
  assert.deepEqual(fitErrorScale(new Float32Array(4), 2, 2, 0.99), [ERROR_SCALE_FLOOR, ERROR_SCALE_FLOOR]);
  assert.throws(() => fitErrorScale(PER_FEATURE, 0, 2), /zero windows/);
  assert.throws(() => fitErrorScale(PER_FEATURE, 5, 2, 1.5), /quantile must be in \[0, 1\]/);
});

test("a window's score is the mean of its normalised errors, or with 'max' the worst one", () => {
  const raw = Float32Array.from([2, 1, 6, 0.5]);
  const scale = [2, 0.5];
  const mean = normalizeErrors(raw, 2, scale);
  assert.deepEqual([...mean.perFeature], [1, 2, 3, 1]);
  assert.deepEqual([...mean.score], [1.5, 2]);
  const max = normalizeErrors(raw, 2, scale, 'max');
  assert.deepEqual([...max.perFeature], [1, 2, 3, 1]);
  assert.deepEqual([...max.score], [2, 3]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topFeatures } from '#agent/core/alert.js';
import { Rng } from '#agent/core/rng.js';

test('topFeatures: top 3 by error, sorted desc, shares of the window total summing ≤ 1', () => {
  const t = topFeatures({ a: 1, b: 4, c: 2, d: 3 });
  assert.deepEqual(t, [
    { feature: 'b', error: 4, share: 0.4 },
    { feature: 'd', error: 3, share: 0.3 },
    { feature: 'c', error: 2, share: 0.2 },
  ]);
  assert.deepEqual(topFeatures({ x: 2 }), [{ feature: 'x', error: 2, share: 1 }]);
  assert.deepEqual(topFeatures({ x: 0, y: 0 }), [
    { feature: 'x', error: 0, share: 0 },
    { feature: 'y', error: 0, share: 0 },
  ]);
  assert.deepEqual(topFeatures({}), []);
  assert.deepEqual(topFeatures({ b: 1, a: 1, c: 1, d: 1 }).map((f) => f.feature), ['a', 'b', 'c'], 'ties by name');
  // rounding: shares of windows with ≤ 3 features must still add up to ≤ 1
  const rng = new Rng(42);
  for (let i = 0; i < 20_000; i++) {
    const n = 1 + rng.int(4);
    const p: Record<string, number> = {};
    for (let j = 0; j < n; j++) p[`f${j}`] = rng.next() * 10 ** rng.range(-6, 3);
    const top = topFeatures(p);
    const sum = top.reduce((s, f) => s + f.share, 0);
    assert.ok(sum <= 1, `shares sum ${sum} for ${JSON.stringify(p)}`);
    for (let j = 1; j < top.length; j++) assert.ok(top[j - 1]!.error >= top[j]!.error);
    for (const f of top) assert.ok(f.share >= 0 && f.share <= 1);
    if (n <= 3) assert.ok(sum > 1 - 1e-12);
  }
});

/** The page's bounded series, decimation, gaps and scrolling edge (page/series.ts), run in node. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decimate, Follower, recentSpacing, Ring, withGaps } from '#agent/web/page/series.js';

function filled(n: number, periodMs = 20, f = (i: number) => [i, -i]): Ring {
  const r = new Ring(2, 10_000);
  for (let i = 0; i < n; i++) r.push(1000 + i * periodMs, f(i));
  return r;
}

test('ring: keeps the newest `capacity` rows in order; a row back in time starts it over', () => {
  const r = new Ring(1, 4);
  for (let i = 0; i < 6; i++) assert.equal(r.push(i * 10, [i]), true);
  assert.equal(r.length, 4);
  assert.deepEqual(
    Array.from({ length: r.length }, (_, i) => [r.timeAt(i), r.valueAt(i, 0)]),
    [
      [20, 2],
      [30, 3],
      [40, 4],
      [50, 5],
    ],
  );
  assert.equal(r.firstT, 20);
  assert.equal(r.lastT, 50);
  assert.equal(r.lowerBound(30), 1);
  assert.equal(r.upperBound(30), 2);
  assert.equal(r.lowerBound(99), 4);
  // The same time again is kept (two rows may share a millisecond); an earlier one restarts.
  assert.equal(r.push(50, [6]), true);
  assert.equal(r.push(5, [7]), true);
  assert.equal(r.length, 1);
  assert.equal(r.firstT, 5);
  // Refused: non-finite time, wrong width.
  assert.equal(r.push(NaN, [1]), false);
  assert.equal(r.push(60, [1, 2]), false);
  assert.equal(r.length, 1);
});

test('decimate: few rows come back as they are, in seconds', () => {
  const r = filled(10);
  const [x, a, b] = decimate(r, 1000, 1180, 20);
  assert.deepEqual(Array.from(x), [1, 1.02, 1.04, 1.06, 1.08, 1.1, 1.12, 1.14, 1.16, 1.18]);
  assert.deepEqual(Array.from(a!), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(Array.from(b!), [-0, -1, -2, -3, -4, -5, -6, -7, -8, -9]);
  // Bounds are inclusive and outside rows are left out.
  assert.deepEqual(Array.from(decimate(r, 1040, 1080, 20)[0]), [1.04, 1.06, 1.08]);
  assert.equal(decimate(r, 5000, 6000, 100)[0].length, 0);
});

test('decimate: many rows become at most two a bucket, with every bucket’s extremes in time order', () => {
  // 50 Hz for 20 s with a one-sample spike up and one down: 1000 rows onto 100 buckets of 200 ms.
  const n = 1000;
  const r = filled(n, 20, (i) => [i === 503 ? 100 : Math.sin(i / 7), i === 777 ? -100 : Math.cos(i / 5)]);
  const [x, a, b] = decimate(r, r.firstT, r.lastT, 200);
  assert.ok(x.length <= 2 * 101, `${x.length} points`);
  assert.ok(x.length >= 2 * 100 - 2);
  assert.equal(Math.max(...a!), 100, 'a one-sample spike survives');
  assert.equal(Math.min(...b!), -100);
  for (let i = 1; i < x.length; i++) assert.ok(x[i]! >= x[i - 1]!, 'x ascending');
  // The bucket grid is absolute: a window one row later has the same buckets inside it.
  const later = decimate(r, r.firstT + 20, r.lastT, 200)[0];
  assert.deepEqual(Array.from(later.slice(2, 50)), Array.from(x.slice(2, 50)));
});

test('decimate: a dense stretch is decimated even when the range also spans a long silence', () => {
  const r = new Ring(1, 4096);
  for (let i = 0; i < 1000; i++) r.push(i * 20, [i % 7]); // 20 s at 50 Hz
  for (let i = 0; i < 1000; i++) r.push(600_000 + i * 20, [i % 5]); // then 10 minutes of silence, then 20 s more
  const bucket = 20_000 / 456;
  const [x] = decimate(r, 0, r.lastT, bucket);
  const inFirst = Array.from(x).filter((t) => t <= 20).length;
  assert.ok(inFirst <= 2 * Math.ceil(20_000 / bucket + 1), `${inFirst} points for 20 s on 456 buckets`);
  assert.ok(x.length <= 2 * 2 * 458);
});

test('withGaps: a null row where points lie further apart than the gap, none elsewhere', () => {
  const cols = decimate(filled(5, 100), 0, 1e9, 0);
  const shifted = new Ring(2, 16);
  for (const t of [0, 100, 200, 5000, 5100]) shifted.push(t, [t, 1]);
  const [x, a] = withGaps(decimate(shifted, 0, 1e9, 0), 1000);
  assert.deepEqual(x, [0, 0.1, 0.2, 2.6, 5, 5.1]);
  assert.deepEqual(a, [0, 100, 200, null, 5000, 5100]);
  assert.equal(withGaps(cols, 1000)[0].length, 5);
  assert.equal(recentSpacing(shifted), 100);
  assert.ok(Number.isNaN(recentSpacing(new Ring(1, 2))));
});

test('follower: moves smoothly between one-second batches, never past the data, and starts over when time goes back', () => {
  const f = new Follower();
  assert.ok(Number.isNaN(f.edge(0)));
  // A replay at ×20: each second of wall time brings 20 s of samples.
  f.observe(20_000, 1000);
  assert.equal(f.edge(1500), 20_000, 'one batch: its end');
  f.observe(40_000, 2000);
  const e = [2000, 2250, 2500, 2750, 3000, 3500].map((w) => f.edge(w));
  assert.equal(e[0], 20_000, 'continues from where it was');
  assert.ok(e[1]! > e[0]! && e[2]! > e[1]! && e[3]! > e[2]!, `moves between batches: ${e}`);
  assert.equal(e[4], 40_000, 'reaches the batch end when the next batch is due');
  assert.equal(e[5], 40_000, 'and waits there for it');
  f.observe(60_000, 3000);
  assert.ok(f.edge(3500) > 40_000 && f.edge(3500) < 60_000);
  // The source restarted: its new timeline is shown as it comes.
  f.observe(5000, 4000);
  assert.equal(f.edge(4500), 5000);
});

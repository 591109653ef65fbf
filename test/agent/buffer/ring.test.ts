import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '#agent/core/rng.js';
import { leastGc } from '#agent/buffer/gc-probe.js';
import { SampleRejectedError, SensorBuffer } from '#agent/buffer/ring.js';

const rows = (b: SensorBuffer) =>
  Array.from({ length: b.size }, (_, i) => [b.timeAt(i), ...Array.from({ length: b.channels }, (_, ch) => b.valueAt(i, ch))]);

test('hand-worked ring: fill, wrap around twice, index by position, age and sequence number', () => {
  const b = new SensorBuffer({ sensor: 'v', channels: 2, capacity: 4 });
  assert.equal(b.size, 0);
  assert.equal(b.latestT, -Infinity);
  assert.equal(b.oldestT, Infinity);
  assert.equal(b.indexAtOrBefore(1e9), -1);

  b.push(10, [1, 2]);
  b.push(20, [3, 4]);
  b.push(30, [5, 6]);
  assert.deepEqual(rows(b), [[10, 1, 2], [20, 3, 4], [30, 5, 6]]);
  assert.equal(b.first, 0);
  assert.equal(b.latestT, 30);

  // capacity 4: the 5th push overwrites t=10. Slots now hold [50, 20, 30, 40]; head = 1.
  b.push(40, [7, 8]);
  b.push(50, [9, 10]);
  assert.equal(b.size, 4);
  assert.equal(b.capacity, 4);
  assert.equal(b.pushed, 5);
  assert.equal(b.first, 1, 'one row overwritten');
  assert.deepEqual(rows(b), [[20, 3, 4], [30, 5, 6], [40, 7, 8], [50, 9, 10]]);
  assert.equal(b.oldestT, 20);
  assert.equal(b.latestT, 50);
  // by age: 0 is the newest
  assert.equal(b.timeAt(b.indexOfAge(0)), 50);
  assert.equal(b.timeAt(b.indexOfAge(3)), 20);
  // by sequence number: seq 1 is t=20 (the second push), seq 0 is gone
  assert.equal(b.timeAtSeq(1), 20);
  assert.equal(b.valueAtSeq(4, 1), 10);
  assert.throws(() => b.timeAtSeq(0), RangeError);
  // raw access for hot loops: slot of seq 1 (t=20) is 1, of seq 4 (t=50) is 0
  assert.equal(b.slotOfSeq(1), 1);
  assert.equal(b.slotOfSeq(4), 0);
  assert.equal(b.times[b.slotOfSeq(4)], 50);
  assert.equal(b.values[b.slotOf(3) * 2 + 1], 10);
  assert.throws(() => b.slotOfSeq(5), RangeError);
  assert.throws(() => b.timeAt(4), RangeError);
  assert.throws(() => b.valueAt(0, 2), RangeError);

  // indexAtOrBefore across the wrap (oldest at slot 1, newest at slot 0)
  assert.equal(b.indexAtOrBefore(19), -1);
  assert.equal(b.indexAtOrBefore(20), 0);
  assert.equal(b.indexAtOrBefore(45), 2);
  assert.equal(b.indexAtOrBefore(50), 3);
  assert.equal(b.indexAtOrBefore(1e9), 3);

  // three more: slots [50, 60, 70, 80], head back to 0 — the ring has gone fully around
  b.push(60, [11, 12]);
  b.push(70, [13, 14]);
  b.push(80, [15, 16]);
  assert.deepEqual(rows(b), [[50, 9, 10], [60, 11, 12], [70, 13, 14], [80, 15, 16]]);
  assert.equal(b.first, 4);
  assert.equal(b.indexAtOrBefore(65), 1);

  const seen: number[] = [];
  b.forEachAfter(60, (i, t) => seen.push(i, t));
  assert.deepEqual(seen, [2, 70, 3, 80], 'strictly after t, oldest first');
  seen.length = 0;
  b.forEachAfter(-Infinity, (_i, t) => seen.push(t));
  assert.deepEqual(seen, [50, 60, 70, 80]);
});

test('indexAtOrBefore agrees with a linear scan at every fill level and wrap position', () => {
  const rng = new Rng(7);
  for (const cap of [1, 2, 3, 5, 8]) {
    const b = new SensorBuffer({ sensor: 's', channels: 1, capacity: cap });
    let t = 0;
    for (let n = 0; n < 3 * cap + 2; n++) {
      t += 1 + rng.int(5);
      b.push(t, [n]);
      for (let q = b.oldestT - 2; q <= b.latestT + 2; q += 0.5) {
        let want = -1;
        for (let i = 0; i < b.size; i++) if (b.timeAt(i) <= q) want = i;
        assert.equal(b.indexAtOrBefore(q), want, `cap ${cap}, after ${n + 1} pushes, t=${q}`);
      }
    }
  }
});

test('push rejects wrong arity, non-finite values or time, and time not after the previous one; the buffer is unchanged', () => {
  const b = new SensorBuffer({ sensor: 'vibration', channels: 3, capacity: 8 });
  b.push(100, [1, 2, 3]);
  const cases: [number, number[], string][] = [
    [200, [1, 2], 'arity'],
    [200, [1, 2, 3, 4], 'arity'],
    [200, [1, NaN, 3], 'non-finite'],
    [200, [1, 2, Infinity], 'non-finite'],
    [NaN, [1, 2, 3], 'non-finite'],
    [100, [1, 2, 3], 'out-of-order'],
    [99, [1, 2, 3], 'out-of-order'],
  ];
  for (const [t, v, reason] of cases) {
    assert.throws(
      () => b.push(t, v),
      (err: unknown) => err instanceof SampleRejectedError && err.name === 'SampleRejectedError' && err.reason === reason && err.sensor === 'vibration' && err.message.startsWith(`sensor 'vibration': sample at t=${t} rejected (${reason})`),
      `${t} ${v} → ${reason}`,
    );
  }
  assert.equal(b.size, 1);
  assert.equal(b.pushed, 1);
  assert.deepEqual(rows(b), [[100, 1, 2, 3]]);
  assert.throws(() => new SensorBuffer({ sensor: 'x', channels: 0, capacity: 4 }), /channels must be a positive integer/);
  assert.throws(() => new SensorBuffer({ sensor: 'x', channels: 1, capacity: 2.5 }), /capacity must be a positive integer/);
});

test('push copies values: the caller may reuse its array', () => {
  const b = new SensorBuffer({ sensor: 's', channels: 2, capacity: 4 });
  const v = [1, 2];
  b.push(1, v);
  v[0] = 99;
  b.push(2, Float32Array.of(5, 6));
  assert.deepEqual(rows(b), [[1, 1, 2], [2, 5, 6]]);
});

// Runs after the tests above on purpose: they construct bad buffers and make push throw, which is
// when V8 once re-optimised push into a version that allocated on every call (see push).
test('push allocates nothing: 1e6 pushes trigger no garbage collection and leave the heap flat', () => {
  const b = new SensorBuffer({ sensor: 'vibration', channels: 3, capacity: 4096 });
  const v = new Float64Array(3);
  // Epoch-ms times, as live (see windower.test.ts: the clock is a typed array so the loop's own
  // time variable is not boxed and blamed on push).
  const clock = Float64Array.of(1_705_144_591_000);
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      v[0] = i * 0.5;
      v[1] = -i;
      v[2] = 9.81;
      b.push((clock[0]! += 1), v);
    }
  };
  run(100_000); // warm-up: let the JIT optimise push
  const { gcs, grown } = leastGc(() => run(1_000_000));
  // 1e6 allocations of even 16 bytes would be 16 MB: more than the young generation holds, so at
  // least one scavenge would run, and heapUsed would grow by megabytes.
  assert.equal(gcs, 0, `${gcs} GC runs during 1e6 pushes`);
  assert.ok(grown < 256 * 1024, `heap grew by ${grown} bytes`);
  assert.equal(b.latestT, clock[0]);

  // The check can fail: the same loop keeping a fresh array per push does trigger collections.
  let sink: number[] = [];
  const control = leastGc(() => {
    for (let i = 0; i < 1_000_000; i++) {
      sink = [i, -i, 9.81];
      b.push((clock[0]! += 1), sink);
    }
  });
  assert.ok(control.gcs > 0, 'control: allocating pushes are detected');
  assert.equal(sink.length, 3);
});

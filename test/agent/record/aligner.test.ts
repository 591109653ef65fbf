/**
 * record/aligner.ts: rows on the profile's grid by the windower's rule, exact values, gaps left as a
 * jump in time that training reads as the end of a segment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SENSORS, type SensorSpec } from '#agent/core/sample.js';
import { windowStarts } from '#agent/preprocess/sequences.js';
import { columnsOf, RowAligner } from '#agent/record/aligner.js';
import { readings, type Silence } from './samples.js';

const P = 20;
const MAX_GAP = 5 * P;
const T0 = Date.UTC(2024, 0, 8, 6);

interface Row {
  t: number;
  values: number[];
  gapAfter: number;
}

function aligner(sensors: SensorSpec = DEFAULT_SENSORS) {
  const rows: Row[] = [];
  const a = new RowAligner({ sensors, periodMs: P, maxGapMs: MAX_GAP, onRow: (t, v, gapAfter) => rows.push({ t, values: [...v], gapAfter }) });
  return { a, rows };
}

/** Readings whose values float32 cannot hold exactly (the aligner must not round them). */
const stream = (from: number, to: number, silent?: Silence) => readings(from, to, P, silent, (t, ch) => t / 1e3 + ch + 0.1 + 1e-9);

test('columns: the seed channels in the seed order, then the others as configured', () => {
  assert.deepEqual(columnsOf(DEFAULT_SENSORS), ['accel_x', 'accel_y', 'accel_z', 'voltage', 'rpm', 'temperature']);
  assert.deepEqual(columnsOf({ t: { channels: ['temperature'] }, v: { channels: ['accel_z', 'accel_x_rms', 'accel_x'] } }), ['accel_x', 'accel_z', 'temperature', 'accel_x_rms']);
});

test('one row per period on the grid, each holding the newest reading of every sensor at or before it, exactly (float64)', () => {
  const { a, rows } = aligner();
  for (const s of stream(T0, T0 + 2000)) assert.ok(a.push(s));
  // The first row: the first grid instant at or after every sensor's first reading (temperature's at +13 ms).
  assert.equal(rows[0]!.t, T0 + P);
  // The last: a row is final once every sensor has read at or past it (the last readings: T0+1981 … T0+1993).
  assert.equal(rows.at(-1)!.t, T0 + 1980);
  for (let i = 1; i < rows.length; i++) assert.equal(rows[i]!.t - rows[i - 1]!.t, P);
  for (const r of rows) {
    // Every sensor read at g − P + phase: the reading held at g is the previous period's.
    const expect = (phase: number, channel: number) => (r.t - P + phase) / 1e3 + channel + 0.1 + 1e-9;
    assert.deepEqual(r.values, [expect(1, 0), expect(1, 1), expect(1, 2), expect(7, 0), expect(3, 0), expect(13, 0)]);
    assert.ok(Number.isNaN(r.gapAfter));
  }
  assert.equal(a.gaps, 0);
});

test('the rows do not depend on how the sensors interleave: a second of each sensor at a time (telemetry batches) gives the same rows', () => {
  const together = aligner();
  for (const s of stream(T0, T0 + 5000)) together.a.push(s);
  const batched = aligner();
  const all = stream(T0, T0 + 5000);
  for (let second = 0; second < 5; second++) {
    for (const sensor of Object.keys(DEFAULT_SENSORS)) {
      for (const s of all) if (s.sensor === sensor && s.t >= T0 + second * 1000 && s.t < T0 + (second + 1) * 1000) batched.a.push(s);
    }
  }
  assert.ok(together.rows.length > 200);
  // The batched run is behind by the samples still waiting for the last sensor's next batch.
  assert.deepEqual(batched.rows, together.rows.slice(0, batched.rows.length));
  assert.ok(together.rows.length - batched.rows.length < 1000 / P);
});

test('a sensor silent for longer than maxGap: no row across the gap, and the rows on either side are more than maxGap apart', () => {
  const { a, rows } = aligner();
  for (const s of stream(T0, T0 + 4000, { sensor: 'temperature', from: T0 + 1000, to: T0 + 1500 })) a.push(s);
  const jumps = rows.slice(1).map((r, i) => [rows[i]!.t, r.t] as const).filter(([x, y]) => y - x > P);
  assert.equal(jumps.length, 1);
  const [before, after] = jumps[0]!;
  assert.ok(after - before > MAX_GAP, `${before - T0} → ${after - T0}`);
  // Held for at most maxGap: the last row holds the temperature read at T0+993.
  assert.ok(before - (T0 + 993) <= MAX_GAP);
  assert.equal(rows.find((r) => r.t === after)!.gapAfter, before);
  assert.equal(a.gaps, 1);
  // Training (preprocess/sequences.ts) cuts no window across it.
  const t = Float64Array.from(rows.map((r) => r.t));
  for (const s of windowStarts(t, t.length, 10, 1, MAX_GAP)) assert.ok(!(t[s]! <= before && t[s + 9]! >= after), 'a window spans the gap');
});

test('a step just over maxGap that leaves no stale row (the step rule) still shows as a jump in time', () => {
  const { a, rows } = aligner();
  // rpm reads at g+3: silent over [1000, 1110) leaves readings at 983 and 1123, 140 ms apart, while
  // every grid row up to 1080 still holds 983 within maxGap (1080 − 983 = 97).
  for (const s of stream(T0, T0 + 3000, { sensor: 'rpm', from: T0 + 1000, to: T0 + 1110 })) a.push(s);
  const times = rows.map((r) => r.t - T0);
  const i = times.findIndex((t, k) => k > 0 && t - times[k - 1]! > P);
  assert.ok(i > 0, 'a jump');
  assert.ok(times[i]! - times[i - 1]! > MAX_GAP, `rows ${times[i - 1]} → ${times[i]}`);
  assert.ok(a.skipped > 0, 'rows after the step were left out to make the jump');
  assert.equal(a.gaps, 1);
});

test('samples it cannot take are counted, not thrown: an unknown sensor, a wrong arity, time going back', () => {
  const { a } = aligner();
  assert.equal(a.push({ sensor: 'pressure', t: T0, values: [1] }), false);
  assert.equal(a.push({ sensor: 'vibration', t: T0, values: [1, 2] }), false);
  assert.equal(a.push({ sensor: 'voltage', t: T0, values: [230] }), true);
  assert.equal(a.push({ sensor: 'voltage', t: T0 - 1, values: [230] }), false);
  assert.equal(a.push({ sensor: 'voltage', t: T0 + 1, values: [NaN] }), false);
  assert.deepEqual(a.rejected, { unknown_sensor: 1, arity: 1, 'out-of-order': 1, 'non-finite': 1 });
});

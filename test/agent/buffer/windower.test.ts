import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { CHANNELS } from '#agent/core/profiles.js';
import { Rng } from '#agent/core/rng.js';
import { channelIndex, DEFAULT_SENSORS, type SensorSpec } from '#agent/core/sample.js';
import { readCsvFile, type Series } from '#agent/preprocess/csv.js';
import { fitMinMax, type MinMaxScaler } from '#agent/preprocess/scaler.js';
import { makeWindows } from '#agent/preprocess/sequences.js';
import { SensorBuffer } from '#agent/buffer/ring.js';
import { leastGc } from '#agent/buffer/gc-probe.js';
import { Windower, type AlignedWindow, type WindowerOptions } from '#agent/buffer/windower.js';

interface Got {
  startT: number;
  endT: number;
  x: number[];
}

/** min 0, max 1: scale 1, offset 0, so scaled values equal raw ones (rounded to float32). */
const identity = (features: readonly string[]): MinMaxScaler => ({ features: [...features], min: features.map(() => 0), max: features.map(() => 1) });

type Opts = Pick<WindowerOptions, 'periodMs' | 'seqLen' | 'hop' | 'maxGapMs'> & { scaler?: MinMaxScaler; capacity?: number };

/** Rings for every sensor of `spec` and a windower over `features`, collecting copies of its windows. */
function setup(spec: SensorSpec, features: readonly string[], o: Opts) {
  const buffers = new Map<string, SensorBuffer>();
  for (const [sensor, { channels }] of Object.entries(spec)) buffers.set(sensor, new SensorBuffer({ sensor, channels: channels.length, capacity: o.capacity ?? 4096 }));
  const got: Got[] = [];
  const win = new Windower({
    features,
    channels: channelIndex(spec),
    buffers,
    periodMs: o.periodMs,
    seqLen: o.seqLen,
    hop: o.hop,
    maxGapMs: o.maxGapMs,
    scaler: o.scaler ?? identity(features),
    // The window is reused: copy it, as the scorer does.
    onWindow: (w: AlignedWindow) => got.push({ startT: w.startT, endT: w.endT, x: Array.from(w.x) }),
  });
  const push = (sensor: string, t: number, values: number[]) => buffers.get(sensor)!.push(t, values);
  return { buffers, win, got, push };
}

type Event = [sensor: string, t: number, values: number[]];
/** Push the events in time order (stable for equal times), advancing after each, like a live daemon. */
function replay(events: Event[], push: (s: string, t: number, v: number[]) => void, win: Windower): void {
  const sorted = events.map((e, i) => [e, i] as const).sort((a, b) => a[0][1] - b[0][1] || a[1] - b[1]);
  for (const [[s, t, v]] of sorted) {
    push(s, t, v);
    win.advance();
  }
}

type Stream = { t: number[]; v: number[][] };

/**
 * The alignment rule written the slow, obvious way (windower.ts header): every grid point from the
 * first one all sensors cover to the last one they all reached; per sensor the last sample ≤ g;
 * a stale row (age > maxGap) is dropped and clears the history; a step > maxGap between samples
 * read since the previous grid point clears it before the row; a run of stale rows and the step
 * ending it is one gap; windows at run offsets seqLen, seqLen + hop, …
 */
function reference(streams: Record<string, Stream>, spec: SensorSpec, features: readonly string[], o: Opts): { windows: Got[]; gaps: number } {
  const where = channelIndex(spec);
  const names = [...new Set(features.map((f) => where.get(f)!.sensor))];
  const P = o.periodMs;
  const k0 = Math.ceil(Math.max(...names.map((n) => streams[n]!.t[0]!)) / P);
  const k1 = Math.floor(Math.min(...names.map((n) => streams[n]!.t.at(-1)!)) / P);
  const prev = new Map(names.map((n) => [n, -1]));
  const held = new Map<string, number>();
  let run: { g: number; row: number[] }[] = [];
  const windows: Got[] = [];
  let gaps = 0;
  let inGap = false;
  for (let k = k0; k <= k1; k++) {
    const g = k * P;
    let stale = false;
    let step = false;
    for (const n of names) {
      const ts = streams[n]!.t;
      let idx = -1;
      for (let i = 0; i < ts.length && ts[i]! <= g; i++) idx = i;
      const p = prev.get(n)!;
      if (p >= 0) for (let i = p + 1; i <= idx; i++) if (ts[i]! - ts[i - 1]! > o.maxGapMs) step = true;
      prev.set(n, idx);
      held.set(n, idx);
      if (g - ts[idx]! > o.maxGapMs) stale = true;
    }
    if (stale) {
      if (!inGap) gaps++;
      inGap = true;
      run = [];
      continue;
    }
    if (step) {
      if (!inGap) gaps++;
      run = [];
    }
    inGap = false;
    run.push({ g, row: features.map((f) => Math.fround(streams[where.get(f)!.sensor]!.v[held.get(where.get(f)!.sensor)!]![where.get(f)!.index]!)) });
    if (run.length >= o.seqLen && (run.length - o.seqLen) % o.hop === 0) {
      const last = run.slice(-o.seqLen);
      windows.push({ startT: last[0]!.g, endT: g, x: last.flatMap((r) => r.row) });
    }
  }
  return { windows, gaps };
}

function toEvents(streams: Record<string, Stream>): Event[] {
  return Object.entries(streams).flatMap(([s, { t, v }]) => t.map((ti, i): Event => [s, ti, v[i]!]));
}

/**
 * A sensor's samples: nominal period, jitter as a fraction of it, optional dropouts. Value k is
 * (t − base)·(k+1), so a held value tells which sample was held (base keeps it float32-exact enough).
 */
function stream(rng: Rng, o: { t0: number; t1: number; period: number; jitter: number; channels: number; dropP?: number; dropMaxMs?: number; base?: number }): Stream {
  const s: Stream = { t: [], v: [] };
  let skipUntil = -Infinity;
  for (let nominal = o.t0; nominal <= o.t1; nominal += o.period) {
    if (nominal < skipUntil) continue;
    if (o.dropP !== undefined && rng.next() < o.dropP) {
      skipUntil = nominal + rng.range(0, o.dropMaxMs ?? 0);
      continue;
    }
    const t = nominal + rng.range(-o.jitter, o.jitter) * o.period;
    s.t.push(t);
    s.v.push(Array.from({ length: o.channels }, (_, k) => (t - (o.base ?? 0)) * (k + 1)));
  }
  return s;
}

const TWO: SensorSpec = { fast: { channels: ['a'] }, slow: { channels: ['b'] } };

test('hand example: a 10 ms and a 50 ms sensor on a 50 ms grid hold the last sample at or before each grid point', () => {
  const { win, got, push } = setup(TWO, ['a', 'b'], { periodMs: 50, seqLen: 3, hop: 1, maxGapMs: 100 });
  const events: Event[] = [];
  for (let t = 3; t <= 253; t += 10) events.push(['fast', t, [t]]); // 3, 13, …, 253
  for (let t = 20; t <= 270; t += 50) events.push(['slow', t, [1000 + t]]); // 20, 70, …, 270
  replay(events, push, win);
  // First row: both sensors have reported by g = ceil(20 / 50)·50 = 50 (fast alone could start at 50 too,
  // slow's first sample at 20 blocks g = 0). At g: fast holds g − 7 (its samples are at …3), slow holds g − 30.
  // Last row: min(latest) = min(253, 270) → g = 250. Rows 50, 100, …, 250 → windows ending at 150, 200, 250.
  assert.deepEqual(got, [
    { startT: 50, endT: 150, x: [43, 1020, 93, 1070, 143, 1120] },
    { startT: 100, endT: 200, x: [93, 1070, 143, 1120, 193, 1170] },
    { startT: 150, endT: 250, x: [143, 1120, 193, 1170, 243, 1220] },
  ]);
  assert.equal(win.windows, 3);
  assert.equal(win.rows, 5);
  assert.equal(win.gaps, 0);
  assert.equal(win.nextT, 300);
});

test('a sensor that has never reported blocks the start; the first row is the first grid point at or after its first sample', () => {
  const { win, got, push } = setup(TWO, ['a', 'b'], { periodMs: 50, seqLen: 1, hop: 1, maxGapMs: 500 });
  for (let t = 0; t <= 400; t += 10) {
    push('fast', t, [t]);
    win.advance();
  }
  assert.equal(win.rows, 0);
  assert.ok(Number.isNaN(win.nextT));
  push('slow', 333, [7]);
  win.advance();
  // The first row is g = ceil(333 / 50)·50 = 350; it waits until slow has reported at or after 350.
  assert.equal(win.rows, 0);
  assert.equal(win.nextT, 350);
  push('slow', 383, [8]);
  win.advance();
  assert.deepEqual(got, [{ startT: 350, endT: 350, x: [350, 7] }]);
});

test('a window every hop aligned rows, from the seqLen-th row on', () => {
  const { win, got, push } = setup({ s: { channels: ['a'] } }, ['a'], { periodMs: 50, seqLen: 4, hop: 3, maxGapMs: 50 });
  for (let i = 0; i < 20; i++) {
    push('s', 1000 + 50 * i, [i]);
    win.advance();
  }
  // rows 0..19; windows start at rows 0, 3, 6, 9, 12, 15 (16 + 4 > 20)
  assert.deepEqual(got.map((w) => w.x), [0, 3, 6, 9, 12, 15].map((r) => [r, r + 1, r + 2, r + 3]));
  assert.deepEqual(got.map((w) => w.endT), [0, 3, 6, 9, 12, 15].map((r) => 1000 + 50 * (r + 3)));
  assert.deepEqual(got.map((w) => w.startT), [0, 3, 6, 9, 12, 15].map((r) => 1000 + 50 * r));
});

test('a gap longer than maxGapMs breaks the history: no window holds data from both sides, stale rows are dropped', () => {
  const { win, got, push } = setup({ s: { channels: ['a'] } }, ['a'], { periodMs: 50, seqLen: 3, hop: 1, maxGapMs: 100 });
  const ts = [...Array.from({ length: 11 }, (_, i) => 50 * i), ...Array.from({ length: 9 }, (_, i) => 800 + 50 * i)]; // 0..500, 800..1200
  for (const t of ts) {
    push('s', t, [t]);
    win.advance();
  }
  assert.equal(win.gaps, 1);
  // 550 and 600 hold the sample at 500 (ages 50 and 100 ≤ maxGap) — allowed, and nothing else is known yet.
  // 650 is 150 ms after it: stale, dropped, history cleared. The next row is 800.
  assert.deepEqual(got.map((w) => w.endT), [100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 600, 900, 950, 1000, 1050, 1100, 1150, 1200]);
  assert.deepEqual(got.find((w) => w.endT === 600)!.x, [500, 500, 500]);
  assert.deepEqual(got.find((w) => w.endT === 900)!.x, [800, 850, 900]);
  for (const w of got) {
    assert.ok(!(w.x.some((v) => v <= 500) && w.x.some((v) => v >= 800)), `window ending ${w.endT} mixes both sides of the gap`);
    assert.equal(w.endT - w.startT, 100);
  }
  assert.equal(win.rows, 13 + 9);
});

test('a step longer than maxGapMs breaks the history even when no grid point sees the held value that old', () => {
  // Grid 50, maxGap 100; samples 0..500 then 640: the ages at 550, 600 are 50, 100 (never > 100),
  // but 140 ms passed between two samples — makeWindows would cut there, so the device does too.
  const { win, got, push } = setup({ s: { channels: ['a'] } }, ['a'], { periodMs: 50, seqLen: 3, hop: 1, maxGapMs: 100 });
  const ts = [...Array.from({ length: 11 }, (_, i) => 50 * i), 640, 690, 740, 790, 840];
  for (const t of ts) {
    push('s', t, [t]);
    win.advance();
  }
  assert.equal(win.gaps, 1);
  for (const w of got) assert.ok(!(w.x.some((v) => v <= 500) && w.x.some((v) => v >= 640)), `window ending ${w.endT} spans the step`);
  // New run: 650 (holds 640), 700, 750 → first window ends at 750.
  assert.deepEqual(got.filter((w) => w.endT > 600), [
    { startT: 650, endT: 750, x: [640, 690, 740] },
    { startT: 700, endT: 800, x: [690, 740, 790] },
  ]);
});

test('a gap of exactly maxGapMs does not break the history', () => {
  const { win, got, push } = setup({ s: { channels: ['a'] } }, ['a'], { periodMs: 50, seqLen: 4, hop: 2, maxGapMs: 100 });
  const ts = [0, 50, 100, 150, 250, 300, 350, 400]; // 150 → 250 is exactly maxGap
  for (const t of ts) {
    push('s', t, [t]);
    win.advance();
  }
  assert.equal(win.gaps, 0);
  // rows 0, 50, 100, 150, 200 (holds 150, age 50), 250, …, 400: one run of 9 rows → windows end at rows 3, 5, 7
  assert.deepEqual(got, [
    { startT: 0, endT: 150, x: [0, 50, 100, 150] },
    { startT: 100, endT: 250, x: [100, 150, 150, 250] },
    { startT: 200, endT: 350, x: [150, 250, 300, 350] },
  ]);
});

test('timestamps jittered by ±20 % of the period still align: held values match the reference, no gaps', () => {
  const rng = new Rng(20);
  const spec: SensorSpec = { vib: { channels: ['x', 'y'] }, volt: { channels: ['v'] }, temp: { channels: ['c'] } };
  const t0 = 1_705_144_591_000;
  const streams: Record<string, Stream> = {
    vib: stream(rng, { t0: t0 + 3, t1: t0 + 20_000, period: 10, jitter: 0.2, channels: 2, base: t0 }),
    volt: stream(rng, { t0, t1: t0 + 20_000, period: 50, jitter: 0.2, channels: 1, base: t0 }),
    temp: stream(rng, { t0: t0 + 17, t1: t0 + 20_000, period: 50, jitter: 0.2, channels: 1, base: t0 }),
  };
  const features = ['v', 'x', 'c', 'y'];
  const o = { periodMs: 50, seqLen: 20, hop: 5, maxGapMs: 250 };
  const { win, got, push } = setup(spec, features, o);
  replay(toEvents(streams), push, win);
  const ref = reference(streams, spec, features, o);
  assert.equal(win.gaps, 0);
  assert.equal(ref.gaps, 0);
  // ~400 rows in one run: (rows − seqLen) / hop + 1 windows
  assert.equal(got.length, Math.floor((win.rows - o.seqLen) / o.hop) + 1);
  assert.ok(got.length > 70);
  assert.deepEqual(got, ref.windows);
  for (const w of got) {
    assert.equal(w.endT % 50, 0, 'rows on the grid');
    // volt's held value is its sample time − t0: at or before g, and at most one period + 20 % old
    for (let r = 0; r < o.seqLen; r++) {
      const g = w.startT + 50 * r - t0;
      const held = w.x[r * 4]!;
      assert.ok(held <= g + 0.01 && g - held <= 60 + 0.01, `volt held ${held} at ${g}`);
    }
  }
});

test('random rates, jitter and dropouts: same windows and gap count as the reference, fed live or all at once', () => {
  const spec: SensorSpec = { vib: { channels: ['x', 'y', 'z'] }, volt: { channels: ['v'] }, rpm: { channels: ['r'] } };
  for (let seed = 1; seed <= 6; seed++) {
    const rng = new Rng(seed);
    const t0 = 1_000_000 + rng.int(1000);
    const streams: Record<string, Stream> = {
      vib: stream(rng, { t0, t1: t0 + 12_000, period: 10, jitter: 0.3, channels: 3, dropP: 0.002, dropMaxMs: 400 }),
      volt: stream(rng, { t0: t0 + rng.int(100), t1: t0 + 12_000, period: 50, jitter: 0.2, channels: 1, dropP: 0.01, dropMaxMs: 400 }),
      rpm: stream(rng, { t0: t0 + rng.int(100), t1: t0 + 12_000, period: 30, jitter: 0.2, channels: 1, dropP: 0.01, dropMaxMs: 300 }),
    };
    const features = ['r', 'x', 'v', 'z'];
    const o = { periodMs: 50, seqLen: 6, hop: 2, maxGapMs: 150 };
    const ref = reference(streams, spec, features, o);
    assert.ok(ref.gaps > 0 && ref.windows.length > 20, `seed ${seed}: the data has gaps and windows (${ref.gaps}, ${ref.windows.length})`);

    const live = setup(spec, features, o);
    replay(toEvents(streams), live.push, live.win);
    assert.equal(live.win.gaps, ref.gaps, `seed ${seed}: gaps`);
    assert.deepEqual(live.got, ref.windows, `seed ${seed}: live`);

    const batch = setup(spec, features, o);
    for (const [s, { t, v }] of Object.entries(streams)) t.forEach((ti, i) => batch.push(s, ti, v[i]!));
    batch.win.advance();
    assert.equal(batch.win.gaps, ref.gaps, `seed ${seed}: gaps (batch)`);
    assert.deepEqual(batch.got, ref.windows, `seed ${seed}: batch`);
    assert.equal(batch.win.overruns, 0);
  }
});

test('samples overwritten before the windower read them: counted as an overrun, history restarts after them', () => {
  const { win, got, push } = setup({ s: { channels: ['a'] } }, ['a'], { periodMs: 50, seqLen: 2, hop: 1, maxGapMs: 100, capacity: 8 });
  for (let t = 0; t <= 350; t += 50) push('s', t, [t]);
  win.advance();
  assert.equal(got.at(-1)!.endT, 350);
  // 13 more pushes into a ring of 8 before the next advance: 400..600 are gone.
  for (let t = 400; t <= 1000; t += 50) push('s', t, [t]);
  win.advance();
  assert.equal(win.overruns, 1);
  assert.equal(win.gaps, 0, 'not a gap in the data');
  const after = got.filter((w) => w.endT > 350);
  assert.deepEqual(after[0], { startT: 650, endT: 700, x: [650, 700] });
  assert.equal(after.length, 7); // windows ending 700..1000
});

test('scaling is the scaler module’s arithmetic and the window follows the model’s feature order', () => {
  const scaler: MinMaxScaler = { features: ['b', 'a'], min: [1000, -1], max: [1003, 0.7] };
  const { win, got, push } = setup(TWO, ['b', 'a'], { periodMs: 50, seqLen: 1, hop: 1, maxGapMs: 100, scaler });
  push('fast', 0, [0.1]);
  push('slow', 0, [1001.5]);
  win.advance();
  // scale_ = 1/range, min_ = −min·scale_, x·scale_ + min_ rounded to float32 (preprocess/scaler.ts)
  const sb = 1 / 3;
  const sa = 1 / (0.7 - -1);
  assert.deepEqual(got, [{ startT: 0, endT: 0, x: [Math.fround(1001.5 * sb + -1000 * sb), Math.fround(0.1 * sa + 1 * sa)] }]);
});

test('bad configuration is refused with a message naming the problem', () => {
  const buffers = new Map([['fast', new SensorBuffer({ sensor: 'fast', channels: 1, capacity: 4 })]]);
  const base: WindowerOptions = { features: ['a'], channels: channelIndex(TWO), buffers, periodMs: 50, seqLen: 2, hop: 1, maxGapMs: 100, scaler: identity(['a']), onWindow: () => {} };
  assert.throws(() => new Windower({ ...base, features: ['a', 'q'], scaler: identity(['a', 'q']) }), /feature 'q' is not a channel/);
  assert.throws(() => new Windower({ ...base, features: ['b'], scaler: identity(['b']) }), /needs sensor 'slow', which has no buffer/);
  assert.throws(() => new Windower({ ...base, scaler: identity(['b']) }), /differ from expected/);
  assert.throws(() => new Windower({ ...base, hop: 0 }), /hop must be a positive integer/);
  assert.throws(() => new Windower({ ...base, seqLen: 1.5 }), /seqLen must be a positive integer/);
  assert.throws(() => new Windower({ ...base, maxGapMs: 0 }), /maxGapMs must be > 0/);
});

test('an onWindow that throws leaves the windower consistent: the next advance carries on', () => {
  let calls = 0;
  const ends: number[] = [];
  const buffers = new Map([['s', new SensorBuffer({ sensor: 's', channels: 1, capacity: 64 })]]);
  const win = new Windower({
    features: ['a'], channels: channelIndex({ s: { channels: ['a'] } }), buffers, periodMs: 10, seqLen: 2, hop: 1, maxGapMs: 10, scaler: identity(['a']),
    onWindow: (w) => {
      ends.push(w.endT);
      if (++calls === 2) throw new Error('scorer failed');
    },
  });
  for (let t = 0; t <= 50; t += 10) buffers.get('s')!.push(t, [t]);
  assert.throws(() => win.advance(), /scorer failed/);
  win.advance();
  assert.deepEqual(ends, [10, 20, 30, 40, 50], 'no window lost or repeated');
});

test('advance allocates nothing per sample or per window', () => {
  const spec: SensorSpec = { vib: { channels: ['x', 'y', 'z'] }, volt: { channels: ['v'] } };
  const vib = new SensorBuffer({ sensor: 'vib', channels: 3, capacity: 1024 });
  const volt = new SensorBuffer({ sensor: 'volt', channels: 1, capacity: 256 });
  const buffers = new Map([['vib', vib], ['volt', volt]]);
  // A consumer that keeps nothing (setup's collector copies every window, which allocates). The sum
  // lives in a typed array: a captured `let` holding a double would box it on every update.
  const sum = new Float64Array(1);
  const w2 = new Windower({
    features: ['x', 'y', 'z', 'v'], channels: channelIndex(spec), buffers, periodMs: 50, seqLen: 100, hop: 10, maxGapMs: 250, scaler: identity(['x', 'y', 'z', 'v']),
    onWindow: (w) => {
      sum[0] += w.x[0]! + w.endT;
    },
  });
  const v3 = new Float64Array(3);
  const v1 = new Float64Array(1);
  // Epoch-ms times, as live: beyond the small-integer range, such a number is boxed (allocated)
  // wherever it crosses a call V8 does not inline; small test times would hide that. The clock lives
  // in a typed array because this loop's own `let t` would be boxed too, and blamed on the windower.
  const clock = Float64Array.of(1_705_144_591_000);
  const run = (n: number): void => {
    // vib every 25 ms, volt every 50 ms: a grid row per two pushes.
    for (let i = 0; i < n; i++) {
      const t = (clock[0]! += 25);
      v3[0] = i % 7;
      v3[1] = -i;
      v3[2] = 9.81;
      vib.push(t, v3);
      if ((i & 1) === 1) {
        v1[0] = 230 + (i % 3);
        volt.push(t, v1);
      }
      w2.advance();
    }
  };
  run(20_000); // warm-up
  const windows0 = w2.windows;
  const { gcs, grown } = leastGc(() => run(400_000)); // 400 000 + 200 000 pushes, 200 000 rows, 20 000 windows
  assert.equal(gcs, 0, `${gcs} GC runs`);
  // Without a collection, heapUsed grows by whatever was allocated: even 16 bytes a row would be 3 MB.
  assert.ok(grown < 256 * 1024, `heap grew by ${grown} bytes`);
  assert.ok(w2.windows - windows0 >= 20_000, `${w2.windows - windows0} windows`);
  assert.ok(sum[0] !== 0);
});

test('seed CSV replayed sample by sample through the four default sensors gives exactly makeWindows’ windows', async () => {
  const full = await readCsvFile(join(PACKAGE_ROOT, 'datas', 'raw', 'rpm_600', 'test', 'test_01.csv'));
  const N = 3000;
  const columns: Record<string, Float64Array> = {};
  for (const [k, c] of Object.entries(full.columns)) columns[k] = c.subarray(0, N);
  const s: Series = { file: full.file, name: full.name, rows: N, t: full.t.subarray(0, N), columns };
  const periodMs = 50; // rpm_600
  // Phase: the windower's first row is the first grid point at or after the latest first sample; the
  // file's first row is on the grid (t % 50 = 0) and carries all four sensors, so both start counting
  // at file row 0, and both then emit at offsets 0, hop, 2·hop, … — for any hop, no adjustment needed.
  assert.equal(s.t[0]! % periodMs, 0, 'precondition: the file starts on the 50 ms grid');
  const features = [...CHANNELS]; // multi-feature, in model-input order
  // Fitted on the first half only, so the second half also exercises values outside [0, 1] (no clipping).
  const scaler = fitMinMax([{ ...s, rows: 1500 }], features);
  const col = (ch: string) => columns[ch]!;

  for (const { seqLen, hop } of [{ seqLen: 100, hop: 10 }, { seqLen: 37, hop: 7 }]) {
    const o = { periodMs, seqLen, hop, maxGapMs: 5 * periodMs, scaler }; // 5·period: train/pipeline.ts defaultMaxGapMs
    const expected = makeWindows([s], { features, scaler, seqLen, hop, maxGapMs: o.maxGapMs });
    const { win, got, push } = setup(DEFAULT_SENSORS, features, { ...o, capacity: 512 });
    const row: Record<string, number[]> = {};
    for (const [sensor, { channels }] of Object.entries(DEFAULT_SENSORS)) row[sensor] = channels.map(() => 0);
    for (let i = 0; i < N; i++) {
      for (const [sensor, { channels }] of Object.entries(DEFAULT_SENSORS)) {
        channels.forEach((ch, k) => (row[sensor]![k] = col(ch)[i]!));
        push(sensor, s.t[i]!, row[sensor]!);
      }
      win.advance();
    }
    assert.equal(got.length, expected.n, `seqLen ${seqLen} hop ${hop}: window count`);
    assert.equal(win.gaps, 0);
    let maxDiff = 0;
    const win_ = seqLen * features.length;
    for (let w = 0; w < expected.n; w++) {
      assert.equal(got[w]!.startT, expected.startT[w]!, `window ${w} startT`);
      assert.equal(got[w]!.endT, expected.endT[w]!, `window ${w} endT`);
      const ex = expected.x.subarray(w * win_, (w + 1) * win_);
      for (let k = 0; k < win_; k++) maxDiff = Math.max(maxDiff, Math.abs(got[w]!.x[k]! - ex[k]!));
    }
    assert.ok(maxDiff < 1e-6, `max abs diff ${maxDiff}`);
    assert.equal(maxDiff, 0, 'same arithmetic as preprocess/scaler.ts: bit-identical');
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '#agent/core/clock.js';
import { DEFAULTS } from '#agent/core/defaults.js';
import { SKAB_COLUMNS, SKAB_SENSORS } from '#agent/evaluate/skab.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { DEFAULT_SENSORS, type Sample, type SensorSpec } from '#agent/core/sample.js';
import { assertValidSamples, sourceContract } from './contract.js';
import { LOOP_SEAM_MS, ReplaySource, type ReplayOptions } from '#agent/sources/replay.js';

const SEED_FILE = join(PACKAGE_ROOT, 'datas/raw/rpm_600/test/test_01.csv');
/** Only valve1/ and anomaly-free/ of SKAB may be read. */
// SKAB (GPL-3.0) is not part of this repository: the test reads valve1/0.csv under SKAB_DIR
// (default ../shared/skab from the package root) and is skipped when it is not there.
const SKAB_FILE = join(process.env.SKAB_DIR ?? join(PACKAGE_ROOT, '..', 'shared', 'skab'), 'valve1/0.csv');
const START = Date.UTC(2024, 4, 1, 12, 0, 0);

/** The seed file split by hand (an oracle independent of preprocess/csv.ts): t and the six channels per row. */
function seedRows(): number[][] {
  const lines = readFileSync(SEED_FILE, 'utf8').trim().split('\n');
  assert.equal(lines[0], 'timestamp,accel_x,accel_y,accel_z,voltage,rpm,temperature,label');
  return lines.slice(1).map((l) => l.split(',').slice(0, 7).map(Number));
}

interface Run {
  clock: ManualClock;
  source: ReplaySource;
  /** Samples with the clock time at which each was emitted. */
  got: { s: Sample; at: number }[];
  of(sensor: string): Sample[];
}

/** One pass over the file unless `opts` asks to loop (the source's default, source.replay.loop's, loops). */
async function startReplay(opts: Partial<ReplayOptions> & { file: string; sensors?: SensorSpec }): Promise<Run> {
  const clock = new ManualClock(START);
  const source = new ReplaySource({ sensors: DEFAULT_SENSORS, clock, loop: false, ...opts });
  const got: Run['got'] = [];
  source.onSample((s) => got.push({ s, at: clock.now() }));
  await source.start();
  return { clock, source, got, of: (sensor) => got.filter((g) => g.s.sensor === sensor).map((g) => g.s) };
}

test('replay of the seed file at speed 1: 60 s of clock emit exactly the first 1200 rows per sensor, t re-based, spaced 50 ms', async () => {
  const rows = seedRows();
  const r = await startReplay({ file: SEED_FILE });
  try {
    r.clock.advance(60_000);
    for (const [sensor, { channels }] of Object.entries(DEFAULT_SENSORS)) {
      const got = r.of(sensor);
      assert.equal(got.length, 1200, sensor);
      got.forEach((s, i) => {
        assert.equal(s.t, START + i * 50, `${sensor} row ${i} t`);
        const want = channels.map((ch) => rows[i]![1 + ['accel_x', 'accel_y', 'accel_z', 'voltage', 'rpm', 'temperature'].indexOf(ch)]!);
        assert.deepEqual(s.values, want, `${sensor} row ${i} values`);
      });
    }
    assertValidSamples(r.got.map((g) => g.s), DEFAULT_SENSORS);
    // Batched: emitted by ticks, each row by the first tick after its due time.
    assert.ok(new Set(r.got.map((g) => g.at)).size <= 60_000 / 25);
    for (const { s, at } of r.got) assert.ok(at > s.t && at <= s.t + 25, `row at ${s.t - START} emitted at ${at - START}`);
    assert.deepEqual(r.source.health(), { vibration: 'ok', voltage: 'ok', rpm: 'ok', temperature: 'ok' });
  } finally {
    await r.source.stop();
  }
});

test('replay at speed 10 emits ten times as fast in clock time; sample t keep the file spacing', async () => {
  const r = await startReplay({ file: SEED_FILE, speed: 10 });
  try {
    r.clock.advance(6_000);
    const rpm = r.of('rpm');
    assert.equal(rpm.length, 1200);
    rpm.forEach((s, i) => assert.equal(s.t, START + i * 50));
    for (const { s, at } of r.got) {
      const due = START + (s.t - START) / 10;
      assert.ok(at > due && at <= due + 25, `row due at ${due - START} emitted at ${at - START}`);
    }
    r.clock.advance(6_000);
    assert.equal(r.of('rpm').length, 2400);
  } finally {
    await r.source.stop();
  }
});

test('looping continues forward: each pass shifted by duration + one period + the seam silence, values repeat, t keeps increasing', async () => {
  const rows = seedRows();
  const n = rows.length;
  const passMs = (rows[n - 1]![0]! - rows[0]![0]!) + 50;
  assert.equal(passMs, n * 50);
  const r = await startReplay({ file: SEED_FILE, speed: 100, loop: true });
  try {
    const ms = Math.ceil((2.5 * passMs) / 100 / 25) * 25; // ends on a tick (every 25 ms)
    r.clock.advance(ms);
    const volt = r.of('voltage');
    assert.equal(volt.length, (ms * 100) / 50);
    assert.ok(volt.length > 2 * n);
    volt.forEach((s, i) => {
      assert.equal(s.t, START + i * 50 + Math.floor(i / n) * LOOP_SEAM_MS, `sample ${i}`);
      assert.deepEqual(s.values, [rows[i % n]![4]!], `sample ${i} values`);
    });
    assert.equal(volt[n]!.t - volt[n - 1]!.t, 50 + LOOP_SEAM_MS, 'the seam is a silence no window spans');
    assert.ok(LOOP_SEAM_MS > 5 * 50 && LOOP_SEAM_MS > 5 * 20, "longer than the shipped bundles' maxGapMs");
    assertValidSamples(r.got.map((g) => g.s), DEFAULT_SENSORS);
  } finally {
    await r.source.stop();
  }
});

test('without loop, replay stops at the last row and the sensors go stale', async () => {
  const n = seedRows().length;
  const r = await startReplay({ file: SEED_FILE, speed: 100, loop: false, staleMs: 2000 });
  try {
    r.clock.advance(10_000);
    assert.equal(r.of('temperature').length, n);
    const count = r.got.length;
    r.clock.advance(60_000);
    assert.equal(r.got.length, count);
    assert.deepEqual(r.source.health(), { vibration: 'stale', voltage: 'stale', rpm: 'stale', temperature: 'stale' });
  } finally {
    await r.source.stop();
  }
});

test("options left out are the configuration's source.replay.* (core/defaults.ts): real time, looping", async () => {
  const n = seedRows().length;
  const clock = new ManualClock(START);
  const source = new ReplaySource({ file: SEED_FILE, sensors: { voltage: { channels: ['voltage'] } }, clock });
  let got = 0;
  source.onSample(() => got++);
  await source.start();
  try {
    assert.equal(DEFAULTS.config.source.replay.speed, 1);
    clock.advance(1000);
    assert.equal(got, 1000 / 50, 'speed 1: a 50 ms row per 50 ms of clock');
    assert.equal(DEFAULTS.config.source.replay.loop, true);
    clock.advance(n * 50 + LOOP_SEAM_MS + 1000);
    assert.ok(got > n, `looped: ${got} samples from a file of ${n} rows`);
  } finally {
    await source.stop();
  }
});

test('a restart replays from the first row without sending t backwards (sample time runs ahead at speed > 1)', async () => {
  const r = await startReplay({ file: SEED_FILE, speed: 10 });
  r.clock.advance(1000);
  await r.source.stop();
  const first = r.of('rpm');
  assert.equal(first.length, 200);
  const lastT = first.at(-1)!.t;
  assert.ok(lastT > r.clock.now(), 'at ×10 sample time is ahead of the clock');
  await r.source.start();
  r.clock.advance(100);
  await r.source.stop();
  const second = r.of('rpm').slice(200);
  assert.equal(second.length, 20);
  assert.equal(second[0]!.t, lastT + 50);
  assert.deepEqual(second[0]!.values, first[0]!.values, 'from the first row again');
  assertValidSamples(r.got.map((g) => g.s), DEFAULT_SENSORS);
});

// The testbed's layout, as the SKAB benchmark harness maps it.
const SKAB_FORMAT = { separator: ';', timeColumn: 'datetime', timeFormat: 'iso', columns: SKAB_COLUMNS, sensors: SKAB_SENSORS } as const;

test('replays a SKAB file (valve1/0.csv): `;`, datetime column, renamed columns, the file\'s irregular spacing kept', { skip: !existsSync(SKAB_FILE) && `no ${SKAB_FILE}` }, async () => {
  const lines = readFileSync(SKAB_FILE, 'utf8').trim().split('\n').slice(1).map((l) => l.split(';'));
  const fileT = lines.map((c) => Date.parse(c[0]!.replace(' ', 'T') + 'Z'));
  const r = await startReplay({ file: SKAB_FILE, ...SKAB_FORMAT });
  try {
    r.clock.advance(120_000);
    const due = fileT.filter((t) => t - fileT[0]! < 120_000).length;
    const accel = r.of('accel');
    assert.equal(accel.length, due);
    assert.deepEqual(accel[0]!.values, [0.0265878, 0.0401113]);
    assert.deepEqual(r.of('voltage')[1]!.values, [236.04]);
    accel.forEach((s, i) => {
      assert.equal(s.t - START, fileT[i]! - fileT[0]!, `row ${i}`);
      assert.deepEqual(s.values, [Number(lines[i]![1]), Number(lines[i]![2])]);
      assert.deepEqual(r.of('flow')[i]!.values, [Number(lines[i]![8])]);
    });
    assertValidSamples(r.got.map((g) => g.s), SKAB_SENSORS);
    // The whole file at ×1000.
    const fast = await startReplay({ file: SKAB_FILE, ...SKAB_FORMAT, speed: 1000 });
    fast.clock.advance(fileT.at(-1)! - fileT[0]! + 1000);
    assert.equal(fast.of('thermocouple').length, lines.length);
    assert.equal(fast.of('thermocouple').at(-1)!.values[0], Number(lines.at(-1)![6]));
    await fast.source.stop();
  } finally {
    await r.source.stop();
  }
});

test('a missing column is an error naming the file, the column and the sensor', { skip: !existsSync(SKAB_FILE) && `no ${SKAB_FILE}` }, async () => {
  const clock = new ManualClock(START);
  // Mapped, but the file calls it 'Volume Flow RateRMS'.
  const { 'Volume Flow RateRMS': _, ...withoutFlow } = SKAB_COLUMNS;
  const mapped = new ReplaySource({ ...SKAB_FORMAT, file: SKAB_FILE, clock, columns: { ...withoutFlow, 'Volume Flow Rate': 'flow' } });
  await assert.rejects(mapped.start(), (e: Error) => {
    assert.ok(e.message.includes(SKAB_FILE), e.message);
    assert.ok(e.message.includes("column 'Volume Flow Rate'"), e.message);
    assert.ok(e.message.includes("sensor 'flow'"), e.message);
    assert.ok(!e.message.includes("'accel"), `only the missing column is named: ${e.message}`);
    return true;
  });
  // Not mapped at all: the channel name is looked up as a column.
  const unmapped = new ReplaySource({ ...SKAB_FORMAT, file: SKAB_FILE, clock, sensors: { ...SKAB_SENSORS, rpm: { channels: ['rpm'] } } });
  await assert.rejects(unmapped.start(), /valve1\/0\.csv: column 'rpm' is missing; sensor 'rpm' needs it/);
  // Wrong separator: the CSV reader's hint survives.
  const comma = new ReplaySource({ ...SKAB_FORMAT, file: SKAB_FILE, clock, separator: ',' });
  await assert.rejects(comma.start(), /time column 'datetime' is missing.*is the separator ";"\?/);
  assert.deepEqual(Object.values(mapped.health()), Array(7).fill('stale'));
});

test('options are checked; stop() during start() wins; a channel declared twice is refused', async () => {
  const clock = new ManualClock(START);
  await assert.rejects(new ReplaySource({ file: SEED_FILE, sensors: DEFAULT_SENSORS, clock, speed: 0 }).start(), /replay speed must be a finite number > 0, got 0/);
  await assert.rejects(new ReplaySource({ file: SEED_FILE, sensors: DEFAULT_SENSORS, clock, tickMs: NaN }).start(), /tickMs/);
  await assert.rejects(
    new ReplaySource({ file: SEED_FILE, sensors: { a: { channels: ['rpm'] }, b: { channels: ['rpm'] } }, clock }).start(),
    /channel 'rpm' is declared by both sensor 'a' and sensor 'b'/,
  );
  const dir = await mkdtemp(join(tmpdir(), 'replay-'));
  try {
    const one = join(dir, 'one.csv');
    await writeFile(one, 'timestamp,rpm\n1000,600\n');
    await assert.rejects(new ReplaySource({ file: one, sensors: { rpm: { channels: ['rpm'] } }, clock, loop: true }).start(), /looping needs at least 2 rows/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const s = new ReplaySource({ file: SEED_FILE, sensors: DEFAULT_SENSORS, clock });
  let n = 0;
  s.onSample(() => n++);
  const starting = s.start();
  await s.stop();
  await starting;
  clock.advance(10_000);
  assert.equal(n, 0);
});

sourceContract('replay', async () => {
  const clock = new ManualClock(START);
  const source = new ReplaySource({ file: SEED_FILE, sensors: DEFAULT_SENSORS, clock, speed: 4, loop: true });
  return {
    source,
    sensors: DEFAULT_SENSORS,
    produce: async () => clock.advance(500),
    settle: async () => {},
    close: async () => {},
  };
});

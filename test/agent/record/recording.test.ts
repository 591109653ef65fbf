/**
 * record/recording.ts on a ManualClock and a real directory: rotation by time and by size, the disk
 * budget (exactly, oldest first), gaps, the manifest, carrying a recording on (and finishing a file
 * a crash left), and what it says when it cannot record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '#agent/core/clock.js';
import { silentLogger } from '#agent/core/log.js';
import { CHANNELS } from '#agent/core/profiles.js';
import { DEFAULT_SENSORS } from '#agent/core/sample.js';
import { readCsvDir, readCsvFile } from '#agent/preprocess/csv.js';
import { makeWindows } from '#agent/preprocess/sequences.js';
import { fitMinMax } from '#agent/preprocess/scaler.js';
import { isRecordingFile, MANIFEST_FILE, readRecordingManifest, recordingFileName } from '#agent/record/manifest.js';
import { Recording, RecordingError, type RecordingOptions } from '#agent/record/recording.js';
import { readings, type Silence } from './samples.js';

const T0 = Date.UTC(2024, 0, 8, 6);
const P = 20; // rpm_1200
const MAX_GAP = 5 * P;

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'recording-'));
}

function make(dir: string, o: Partial<RecordingOptions> = {}, clock = new ManualClock(T0)) {
  const rec = new Recording({
    dir,
    device: 'motor-1',
    source: { kind: 'sim' },
    profile: 'rpm_1200',
    sensors: DEFAULT_SENSORS,
    maxBytes: 1024 * 1024,
    rotateBytes: 256 * 1024,
    rotateMs: 3_600_000,
    clock,
    log: silentLogger,
    ...o,
  });
  return { rec, clock };
}

/** Feeds [from, to) a second at a time, flushing after each; `each` runs after every flush. */
async function feed(rec: Recording, clock: ManualClock, from: number, to: number, o: { silent?: Silence; each?: () => void } = {}) {
  for (let s = from; s < to; s += 1000) {
    for (const x of readings(s, Math.min(s + 1000, to), P, o.silent)) rec.add(x);
    clock.advance(Math.max(0, s + 1000 - clock.now()));
    await rec.flush();
    o.each?.();
  }
}

/** Bytes of the directory's files, as the disk has them. */
function du(dir: string): number {
  return readdirSync(dir).reduce((sum, n) => sum + statSync(join(dir, n)).size, 0);
}

const manifest = async (dir: string) => (await readRecordingManifest(dir))!;
const csvNames = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.csv')).sort();

test('time rotation: a file per rotateMs of sample time, seed-format CSV that readCsvDir takes as one timeline; the manifest follows every rotation', async () => {
  const dir = await tempDir();
  try {
    const { rec, clock } = make(dir, { rotateMs: 10_000 });
    await rec.open();
    const first = await manifest(dir);
    assert.equal(first.span, null);
    assert.deepEqual(first.files, []);
    await feed(rec, clock, T0, T0 + 12_000);
    // One rotation so far: the manifest was rewritten with the finished file (the next one, begun
    // since, is a .part that no reader takes for a finished file).
    const mid = await manifest(dir);
    assert.equal(mid.files.length, 1);
    assert.equal(mid.files[0]!.open, undefined);
    assert.ok(mid.files[0]!.t1 - mid.files[0]!.t0 < 10_000);
    assert.ok(readdirSync(dir).some((n) => n.endsWith('.csv.part')), 'the file being written is a .part');
    await feed(rec, clock, T0 + 12_000, T0 + 35_000);
    await rec.close();

    const m = await manifest(dir);
    const names = csvNames(dir);
    assert.equal(names.length, 4);
    assert.ok(names.every(isRecordingFile));
    assert.ok(!readdirSync(dir).some((n) => n.endsWith('.part')), 'every file finished at close');
    assert.deepEqual(m.files.map((f) => f.name), names);
    const series = await readCsvDir(dir);
    let rows = 0;
    for (const [i, s] of series.entries()) {
      const f = m.files[i]!;
      assert.equal(s.name, f.name);
      assert.ok(s.t[s.rows - 1]! - s.t[0]! < 10_000, `${f.name} spans less than rotateMs`);
      assert.deepEqual([s.t[0], s.t[s.rows - 1], s.rows, statSync(join(dir, f.name)).size], [f.t0, f.t1, f.rows, f.bytes]);
      for (let r = 1; r < s.rows; r++) assert.equal(s.t[r]! - s.t[r - 1]!, P);
      rows += s.rows;
    }
    // Files follow each other a period apart: one unbroken timeline split at rotations.
    for (let i = 1; i < series.length; i++) assert.equal(series[i]!.t[0]! - series[i - 1]!.t[series[i - 1]!.rows - 1]!, P);
    const text = await readFile(join(dir, names[0]!), 'utf8');
    assert.equal(text.split('\n')[0], `timestamp,${CHANNELS.join(',')}`);
    assert.match(text.split('\n')[1]!, /^\d{13},-?\d+\.\d{2},-?\d+\.\d{2},-?\d+\.\d{2},-?\d+\.\d{2},-?\d+\.\d,-?\d+\.\d{4}$/, 'cells written with the seed decimals');
    assert.deepEqual(m.span && [m.span.t0, m.span.t1, m.span.rows, m.span.gaps], [m.files[0]!.t0, m.files[3]!.t1, rows, 0]);
    assert.equal(m.span!.from, new Date(m.span!.t0).toISOString());
    assert.deepEqual([m.kind, m.version, m.device, m.profile, m.periodMs, m.maxGapMs, m.source.kind], ['anomaly-agent recording', 1, 'motor-1', 'rpm_1200', P, MAX_GAP, 'sim']);
    assert.deepEqual(m.columns, [...CHANNELS]);
    assert.deepEqual(m.sensors, DEFAULT_SENSORS);
    assert.equal(m.budget.bytes, du(dir));
    assert.equal(rec.stats().rows, rows);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('size rotation: no file over rotateBytes, each filled to within a row of it', async () => {
  const dir = await tempDir();
  try {
    const rotateBytes = 8 * 1024;
    const { rec, clock } = make(dir, { rotateBytes });
    await rec.open();
    await feed(rec, clock, T0, T0 + 20_000);
    await rec.close();
    const sizes = csvNames(dir).map((n) => statSync(join(dir, n)).size);
    assert.ok(sizes.length >= 5, `${sizes.length} files`);
    for (const [i, size] of sizes.entries()) {
      assert.ok(size <= rotateBytes, `file ${i}: ${size} bytes`);
      if (i < sizes.length - 1) assert.ok(size > rotateBytes - 80, `file ${i}: ${size} bytes, closed early`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the budget holds exactly: files and manifest never exceed maxBytes, the oldest file goes first, and the directory stays nearly full', async () => {
  const dir = await tempDir();
  try {
    const maxBytes = 48 * 1024;
    const rotateBytes = 8 * 1024;
    const { rec, clock } = make(dir, { maxBytes, rotateBytes });
    await rec.open();
    const seen: string[] = [];
    let fullest = 0;
    await feed(rec, clock, T0, T0 + 120_000, {
      each: () => {
        const used = du(dir);
        assert.ok(used <= maxBytes, `${used} bytes on disk, budget ${maxBytes}`);
        assert.equal(rec.stats().bytes, used, 'the accounting is the disk');
        fullest = Math.max(fullest, used);
        for (const n of readdirSync(dir).filter(isRecordingFile).map((x) => x.replace(/\.part$/, ''))) if (!seen.includes(n)) seen.push(n);
      },
    });
    await rec.close();
    assert.ok(du(dir) <= maxBytes);
    assert.ok(fullest > maxBytes - rotateBytes - 2 * 2048, `at most ${fullest} of ${maxBytes} bytes used`);
    const m = await manifest(dir);
    const kept = csvNames(dir);
    // The oldest went first: what is left is the newest run of files, in order, without a hole.
    assert.deepEqual(kept, seen.slice(seen.length - kept.length));
    assert.ok(m.budget.deletedFiles >= seen.length - kept.length && m.budget.deletedFiles > 5, `${m.budget.deletedFiles} deleted`);
    assert.equal(m.budget.deletedFiles, rec.stats().deletedFiles);
    assert.deepEqual(m.files.map((f) => f.name), kept);
    assert.equal(m.span!.t0, m.files[0]!.t0);
    assert.equal(m.budget.bytes, du(dir));
    // And what is left still reads as one timeline.
    const series = await readCsvDir(dir);
    assert.equal(series.length, kept.length);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('gaps: a sensor silent for a second leaves a jump in time inside the file, listed in the manifest; training cuts no window across it', async () => {
  const dir = await tempDir();
  try {
    const { rec, clock } = make(dir);
    await rec.open();
    await feed(rec, clock, T0, T0 + 30_000, { silent: { sensor: 'voltage', from: T0 + 10_000, to: T0 + 11_000 } });
    await rec.close();
    const m = await manifest(dir);
    assert.equal(m.files.length, 1);
    const f = m.files[0]!;
    assert.equal(f.gapCount, 1);
    const [before, after] = f.gaps[0]!;
    assert.ok(after - before > MAX_GAP, `gap ${before - T0} → ${after - T0} ms`);
    assert.ok(before >= T0 + 10_000 - P && after <= T0 + 11_000 + 7 * P, `gap at ${before - T0} → ${after - T0} ms`);
    assert.equal(m.span!.gaps, 1);
    assert.equal(rec.stats().gaps, 1);
    const s = await readCsvFile(join(dir, f.name));
    const steps = [...s.t.slice(1)].map((t, i) => t - s.t[i]!);
    assert.deepEqual([...new Set(steps)].sort((a, b) => a - b), [P, after - before]);
    const features = ['voltage'];
    const w = makeWindows([s], { features, scaler: fitMinMax([s], features), seqLen: 250, hop: 25, maxGapMs: MAX_GAP });
    assert.ok(w.n > 0);
    for (let i = 0; i < w.n; i++) assert.ok(!(w.startT[i]! <= before && w.endT[i]! >= after), `window ${i} spans the gap`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('recording into the same directory again carries it on: one budget over all files, a file a crash left finished, another device refused', async () => {
  const dir = await tempDir();
  try {
    const a = make(dir, { rotateMs: 10_000 });
    await a.rec.open();
    await feed(a.rec, a.clock, T0, T0 + 25_000);
    await a.rec.close();
    const after1 = await manifest(dir);

    // A crash in a later session: a .part cut in the middle of a row, no manifest entry for it.
    const crashed = `rec-20240108T060100.000Z.csv.part`;
    const rows = readings(T0 + 60_000, T0 + 61_000, P).filter((s) => s.sensor === 'vibration');
    const body = `timestamp,${CHANNELS.join(',')}\n` + rows.map((s, i) => `${s.t - 1},1.00,2.00,3.00,230.00,1200.0,40.${String(i).padStart(4, '0')}`).join('\n');
    await writeFile(join(dir, crashed), body.slice(0, body.length - 7));

    const b = make(dir, { rotateMs: 10_000 }, new ManualClock(T0 + 120_000));
    await b.rec.open();
    const repaired = (await readCsvFile(join(dir, crashed.replace('.part', '')))).rows;
    assert.equal(repaired, rows.length - 1, 'the cut row dropped, the rest kept');
    await feed(b.rec, b.clock, T0 + 120_000, T0 + 135_000);
    await b.rec.close();
    const m = await manifest(dir);
    assert.deepEqual(m.files.slice(0, after1.files.length), after1.files, 'the earlier files as they were');
    assert.equal(m.files[after1.files.length]!.name, crashed.replace('.part', ''));
    assert.equal(m.files[after1.files.length]!.rows, repaired);
    assert.equal(m.files.length, after1.files.length + 1 + 2);
    assert.equal(m.budget.bytes, du(dir));
    assert.equal((await readCsvDir(dir)).length, m.files.length, 'disjoint files, one timeline');

    const other = make(dir, { device: 'press-3' });
    await assert.rejects(other.rec.open(), (err: Error) => err instanceof RecordingError && /holds a recording of device 'motor-1', not 'press-3': record into another directory/.test(err.message));
    const slower = make(dir, { profile: 'rpm_600' });
    await assert.rejects(slower.rec.open(), /a row every 20 ms \(rpm_1200\), not every 50 ms \(rpm_600\)/);
    const fewer = make(dir, { sensors: { vibration: DEFAULT_SENSORS.vibration! } });
    await assert.rejects(fewer.rec.open(), /the columns accel_x,accel_y,accel_z,voltage,rpm,temperature, not accel_x,accel_y,accel_z/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('what it cannot do it says, naming the directory or the key: a path it cannot create, a budget too small, a manifest not its own', async () => {
  const dir = await tempDir();
  try {
    await writeFile(join(dir, 'a-file'), 'x');
    const under = make(join(dir, 'a-file', 'recordings'));
    await assert.rejects(under.rec.open(), (err: Error) => err instanceof RecordingError && err.message === `record.dir ${join(dir, 'a-file', 'recordings')}: cannot record there: a part of the path is not a directory (ENOTDIR)`);

    const tiny = make(join(dir, 'tiny'), { maxBytes: 16 * 1024, rotateBytes: 16 * 1024 });
    await assert.rejects(tiny.rec.open(), /^RecordingError: record\.maxBytes \(16384 bytes\) cannot hold one file of record\.rotateBytes \(16384\) and the manifest twice \(\d+ bytes each, old and new while it is replaced\): raise record\.maxBytes to at least \d+ or lower record\.rotateBytes$/);
    // Nothing was written into the directory it refused to record in.
    assert.deepEqual(readdirSync(join(dir, 'tiny')), []);

    await writeFile(join(dir, 'tiny', MANIFEST_FILE), JSON.stringify({ kind: 'something else' }));
    await assert.rejects(make(join(dir, 'tiny')).rec.open(), /manifest\.json: not a recording manifest: 'kind' must be 'anomaly-agent recording': move it away or record into another directory/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('one writer per directory: a second recording is refused while the first runs, naming it; a lock left by a process that is gone is taken over', async () => {
  const dir = await tempDir();
  try {
    const a = make(dir);
    await a.rec.open();
    await assert.rejects(make(dir).rec.open(), /is being recorded already, by this process: record into another directory/);
    await a.rec.close();
    assert.ok(!readdirSync(dir).includes('recording.lock'), 'the lock goes at close');

    // Another process's lock: refused while it runs, taken over once it has gone.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      await writeFile(join(dir, 'recording.lock'), `${child.pid}\n`);
      await assert.rejects(make(dir).rec.open(), new RegExp(`is being recorded by process ${child.pid} \\(.*recording\\.lock\\): stop it, or record into another directory`));
    } finally {
      child.kill();
      await once(child, 'exit');
    }
    const b = make(dir);
    await b.rec.open();
    assert.equal(readFileSync(join(dir, 'recording.lock'), 'utf8'), `${process.pid}\n`);
    assert.equal(b.rec.stats().bytes, du(dir), 'the lock counts against the budget');
    await b.rec.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a full disk: the first write fails with ENOSPC (the file being written is /dev/full), and the recording stops saying so', async () => {
  const dir = await tempDir();
  try {
    const failures: Error[] = [];
    const { rec, clock } = make(dir, { onFail: (e) => failures.push(e) });
    await rec.open();
    // The first row is at T0 + 20 ms (the first grid instant after every sensor's first reading).
    await symlink('/dev/full', join(dir, `${recordingFileName(T0 + P)}.part`));
    await feed(rec, clock, T0, T0 + 3000);
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.message, `recording stopped: ${dir}: no space left on device (ENOSPC)`);
    await rec.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a recording that fails while running (its directory removed) stops with one error and drops samples quietly from then on', async () => {
  const dir = await tempDir();
  try {
    const failures: Error[] = [];
    const { rec, clock } = make(join(dir, 'rec'), { rotateBytes: 4096, onFail: (e) => failures.push(e) });
    await rec.open();
    await feed(rec, clock, T0, T0 + 3000);
    await rm(join(dir, 'rec'), { recursive: true });
    await feed(rec, clock, T0 + 3000, T0 + 10_000);
    assert.equal(failures.length, 1);
    assert.match(failures[0]!.message, new RegExp(`^recording stopped: ${join(dir, 'rec')}: no such file or directory \\(ENOENT\\)$`));
    assert.equal(rec.failed, failures[0]);
    for (const x of readings(T0 + 10_000, T0 + 11_000, P)) rec.add(x); // no throw
    await rec.close();
    await rec.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

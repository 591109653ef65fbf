/**
 * The daemon's background recording (daemon/recorder.ts, record.*) in the whole daemon, in process,
 * on a ManualClock: the Controller with its real components replaying a seed recording; what it
 * records is that recording, row for row. And a recording that cannot start or fails later is
 * logged with its reason while the daemon runs on.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '#agent/config/load.js';
import { ManualClock } from '#agent/core/clock.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { Controller } from '#agent/daemon/controller.js';
import { readRecordingManifest, recordingFileName } from '#agent/record/manifest.js';

const FILE = join(PACKAGE_ROOT, 'datas', 'raw', 'rpm_600', 'test', 'test_01.csv');
const LINES = readFileSync(FILE, 'utf8').trimEnd().split('\n');
/** The recording's first timestamp: with the clock started there, sample times are the file's own. */
const T0 = Number(LINES[1]!.split(',')[0]);

const turn = () => new Promise<void>((r) => setImmediate(r));

function capture() {
  const lines: { level: number; msg: string; module?: string }[] = [];
  return { log: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }), lines };
}

async function daemon(dir: string, flags: string[]) {
  const clock = new ManualClock(T0);
  // prettier-ignore
  const config = loadConfig({ argv: [
    '--device-id', 'press-3', '--broker-port', '0', '--broker-ws-port', '0', '--http-port', '0', '--outbox-dir', join(dir, 'outbox'), '--models-dir', join(dir, 'models'),
    '--models-profile', 'rpm_600', '--models-enabled', 'vibration',
    '--source-kind', 'replay', '--source-replay-file', FILE, '--source-replay-speed', '1',
    ...flags,
  ] });
  const { log, lines } = capture();
  const c = new Controller({ config, log, version: 'test', clock, threads: false });
  await c.start();
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 1000) {
      clock.advance(1000);
      await turn();
      await turn();
    }
  };
  return { c, clock, lines, run };
}

const scored = async (c: Controller) => (await c.metrics.windowsScored.get()).values.find((v) => v.labels.model === 'vibration')?.value ?? 0;

test('record.enabled: the daemon records what it reads, row for row the replayed recording, within the budget; the manifest names the replay', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'recorder-'));
  try {
    const rec = join(dir, 'recordings');
    const d = await daemon(dir, ['--record-enabled', 'true', '--record-dir', rec, '--record-rotate-ms', '20000']);
    await d.run(50_000);
    assert.equal(d.c.recording()?.failed, undefined);
    await d.c.stop();
    const m = (await readRecordingManifest(rec))!;
    assert.deepEqual([m.device, m.profile, m.periodMs, m.source.kind, m.source.detail?.file], ['press-3', 'rpm_600', 50, 'replay', 'test_01.csv']);
    assert.ok(m.files.length >= 3, `${m.files.length} files (rotated every 20 s)`);
    const names = (await readdir(rec)).filter((n) => n.endsWith('.csv')).sort();
    assert.deepEqual(names, m.files.map((f) => f.name));
    const recorded: string[] = [];
    for (const n of names) recorded.push(...(await readFile(join(rec, n), 'utf8')).trimEnd().split('\n').slice(1));
    // Exactly the file's rows, from its first, without the label column: the same times, the same cells.
    const original = LINES.slice(1, 1 + recorded.length).map((l) => l.split(',').slice(0, 7).join(','));
    assert.ok(recorded.length >= 45_000 / 50, `${recorded.length} rows`);
    assert.deepEqual(recorded, original);
    assert.equal(m.span!.rows, recorded.length);
    assert.equal(m.span!.gaps, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a recording that cannot start (a path it cannot create, a budget too small) or that fails while running (a full disk, its directory removed) is logged with its reason; the daemon runs on', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'recorder-'));
  try {
    await writeFile(join(dir, 'a-file'), 'x');
    const cases: [string[], RegExp][] = [
      [['--record-dir', join(dir, 'a-file', 'recordings')], /^not recording: record\.dir .*a-file\/recordings: cannot record there: a part of the path is not a directory \(ENOTDIR\)$/],
      [['--record-dir', join(dir, 'small'), '--record-max-bytes', '4096'], /^not recording: record\.maxBytes \(4096 bytes\) cannot hold one file of record\.rotateBytes \(16777216\) and the manifest twice/],
    ];
    for (const [flags, message] of cases) {
      const d = await daemon(dir, ['--record-enabled', 'true', ...flags]);
      try {
        await d.run(10_000);
        const errors = d.lines.filter((l) => l.level >= 50);
        assert.equal(errors.length, 1, JSON.stringify(errors));
        assert.equal(errors[0]!.module, 'recorder');
        assert.match(errors[0]!.msg, message);
        assert.equal(d.c.recording(), undefined);
        assert.ok((await scored(d.c)) > 0, 'windows scored');
        assert.deepEqual(d.c.health().reasons, []);
      } finally {
        await d.c.stop();
      }
    }

    // Started on a full disk (the file it writes first is /dev/full): one error, the daemon scores on.
    const full = join(dir, 'full');
    const f = await daemon(dir, ['--record-enabled', 'true', '--record-dir', full]);
    try {
      await symlink('/dev/full', join(full, `${recordingFileName(T0)}.part`));
      await f.run(10_000);
      const errors = f.lines.filter((l) => l.level >= 50);
      assert.deepEqual(errors.map((e) => e.msg), [`recording stopped: ${full}: no space left on device (ENOSPC)`]);
      assert.ok((await scored(f.c)) > 0, 'windows scored');
      assert.deepEqual(f.c.health().reasons, []);
    } finally {
      await f.c.stop();
    }

    // Started, then its directory goes away: one error, the daemon scores on.
    const rec = join(dir, 'gone');
    const d = await daemon(dir, ['--record-enabled', 'true', '--record-dir', rec, '--record-rotate-bytes', '4096', '--record-max-bytes', '65536']);
    try {
      await d.run(5_000);
      // The recorder may be writing into it at this very moment: rm retries what appeared meanwhile.
      await rm(rec, { recursive: true, maxRetries: 10, retryDelay: 10 });
      await d.run(5_000);
      const before = await scored(d.c);
      await d.run(10_000);
      const errors = d.lines.filter((l) => l.level >= 50);
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.match(errors[0]!.msg, /^recording stopped: .*gone: no such file or directory \(ENOENT\)$/);
      assert.ok(d.c.recording()?.failed);
      assert.ok((await scored(d.c)) > before, 'windows still scored after the recording failed');
      assert.deepEqual(d.c.health().reasons, []);
    } finally {
      await d.c.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

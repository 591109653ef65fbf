/**
 * bench:drift on a short simulated span (a few minutes of the plant day, then wear): the last line's
 * format, and that detection comes from the detectors' own alerts. Its figures are for the full run.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const bench = fileURLToPath(new URL(import.meta.resolve('#agent/bench/drift.js'), import.meta.url));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [bench, ...args], { encoding: 'utf8', timeout: 300_000 });
  const lines = r.stdout.trimEnd().split('\n');
  return { code: r.status, out: r.stdout, err: r.stderr, lines, last: lines[lines.length - 1] ?? '' };
}

test('wear that is obvious a second after its onset: seen by a vibration-reading model at once, but not before obvious, so "slow wear missed"', () => {
  const r = run(['--profile', 'rpm_600', '--days', '0.002', '--wear-hours', '0.0003', '--seed', '3']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.last, 'slow wear missed');
  const verdict = r.lines.find((l) => l.startsWith('rpm_600: '));
  assert.ok(verdict, r.out);
  const m = /slow wear missed: first seen (\d+\.\d\d) h after onset, past obvious \(0\.00 h\), by (vibration|multi-feature)$/.exec(verdict);
  assert.ok(m, verdict);
  assert.ok(Number(m[1]) < 0.05, `seen ${m[1]} h after an obvious onset`);
  // The table says which models saw it: only those that read the accelerometer can.
  for (const model of ['voltage', 'rpm', 'temperature']) assert.match(r.out, new RegExp(`^rpm_600 +${model} .*cannot see it$`, 'm'));
  assert.match(r.out, /^rpm_600 +vibration .* h \(obvious\)$/m);
});

test('wear growing over minutes: the last line gives false alerts per day and the hours to detection', () => {
  const r = run(['--profile', 'rpm_600', '--days', '0.002', '--wear-hours', '0.05', '--seed', '1', '--list']);
  assert.equal(r.code, 0, r.err);
  const m = /^false alerts\/day (\d+\.\d); slow wear detected after (\d+\.\d\d) h$/.exec(r.last);
  assert.ok(m, r.last);
  const verdict = r.lines.find((l) => l.startsWith('rpm_600: '))!;
  const v = /(\d+) false alerts \((\d+\.\d)\/day\); slow wear detected after (\d+\.\d\d) h \((subtle|moderate); obvious at 0\.05 h\) by (vibration|multi-feature)$/.exec(verdict);
  assert.ok(v, verdict);
  assert.equal(v[2], m[1]);
  assert.equal(v[3], m[2]);
  assert.ok(Number(m[2]) < 0.05);
  // Every false alert counted in the table is listed with its time, phase and features.
  const counted = [...r.out.matchAll(/^rpm_600 +\S+ +\d+ +\d+ +\d+ +(\d+) \(/gm)].reduce((s, x) => s + Number(x[1]), 0);
  const listed = r.lines.filter((l) => /^ {4}\d\d:\d\d day 1 (running|warm-up|stopped): (machine|drift), score/.test(l)).length;
  assert.equal(counted, Number(v[1]));
  assert.equal(listed, counted);
});

test('--models runs those models only; without one that sees the wear, the last line says it was not judged', () => {
  const r = run(['--profile', 'rpm_600', '--days', '0.002', '--wear-hours', '0.05', '--models', 'rpm,voltage']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.lines.filter((l) => /^rpm_600 {3}\S/.test(l)).map((l) => l.split(/ +/)[1]), ['voltage', 'rpm']);
  assert.match(r.last, /^false alerts\/day \d+\.\d; slow wear not judged \(--models voltage,rpm\)$/);
  assert.match(r.out, /^rpm_600: .* for the 2 models .*wear not judged: none of these models reads a channel it acts on$/m);
});

test('bad flags: one line naming the flag, exit 2', () => {
  for (const [args, want] of [
    [['--days', '0'], /^bench:drift: --days must be a positive number, got '0'$/],
    [['--profile', 'rpm_900'], /^bench:drift: --profile must be one of rpm_600, rpm_1200, both; got 'rpm_900'$/],
    [['--wear-hours', 'x'], /^bench:drift: --wear-hours must be a positive number, got 'x'$/],
    [['--models', 'vibration,pressure'], /^bench:drift: --models takes a comma list of vibration, voltage, rpm, temperature, multi-feature; got 'vibration,pressure'$/],
    [['--bogus'], /^bench:drift: Unknown option '--bogus'/],
  ] as const) {
    const r = run([...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.equal(r.out, '');
    assert.match(r.err.trim(), want);
  }
});

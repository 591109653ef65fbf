import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CsvError, parseCsv, readCsvDir, readCsvFile, type Series } from '#agent/preprocess/csv.js';

const HEADER = 'timestamp,accel_x,accel_y,accel_z,voltage,rpm,temperature';
const row = (t: number, v = 1) => `${t},${v},${v + 0.5},${-v},230.5,600,41.25`;

/** Run parseCsv expecting a CsvError; return it. */
function parseFails(text: string, opts: Parameters<typeof parseCsv>[1] = {}): CsvError {
  try {
    parseCsv(text, { file: 'bad.csv', ...opts });
  } catch (e) {
    assert.ok(e instanceof CsvError, `expected CsvError, got ${String(e)}`);
    return e;
  }
  assert.fail('parseCsv accepted a malformed file');
}

/** Exactly one issue, on `line`, whose message contains every fragment; the error message names file and line. */
function assertOneIssue(err: CsvError, line: number | undefined, ...fragments: string[]): void {
  assert.equal(err.issues.length, 1, err.message);
  assert.equal(err.total, 1);
  const issue = err.issues[0]!;
  assert.equal(issue.file, 'bad.csv');
  assert.equal(issue.line, line, err.message);
  for (const f of fragments) assert.ok(issue.message.includes(f), `'${issue.message}' lacks '${f}'`);
  assert.ok(err.message.includes(line === undefined ? 'bad.csv' : `bad.csv:${line}:`), err.message);
  assert.equal(err.name, 'CsvError');
}

test('valid seed CSV parses into typed columns', () => {
  const s = parseCsv([HEADER, row(1000, 1), row(1050, 2), row(1100, 3)].join('\n'), { file: 'ok.csv' });
  assert.equal(s.rows, 3);
  assert.equal(s.file, 'ok.csv');
  assert.deepEqual([...s.t], [1000, 1050, 1100]);
  assert.deepEqual([...s.columns.accel_x!], [1, 2, 3]);
  assert.deepEqual([...s.columns.accel_y!], [1.5, 2.5, 3.5]);
  assert.deepEqual([...s.columns.accel_z!], [-1, -2, -3]);
  assert.deepEqual([...s.columns.temperature!], [41.25, 41.25, 41.25]);
  assert.equal(s.label, undefined);
  assert.ok(s.t instanceof Float64Array);
});

test('CRLF, blank lines, trailing newline and BOM are accepted', () => {
  const text = '\uFEFF' + [HEADER, row(1, 1), '', row(2, 2), '   ', row(3, 3), '', ''].join('\r\n');
  const s = parseCsv(text);
  assert.equal(s.rows, 3);
  assert.deepEqual([...s.t], [1, 2, 3]);
  assert.deepEqual([...s.columns.temperature!], [41.25, 41.25, 41.25]);
});

test('label column: 0/1 parsed, other values rejected with line number', () => {
  const ok = parseCsv([`${HEADER},label`, `${row(1)},0`, `${row(2)},1`, `${row(3)},1.0`].join('\n'), { labelColumn: 'label' });
  assert.deepEqual([...ok.label!], [0, 1, 1]);
  const err = parseFails([`${HEADER},label`, `${row(1)},0`, `${row(2)},2`].join('\n'), { labelColumn: 'label' });
  assertOneIssue(err, 3, "'label'", "'2'", '0 or 1');
});

test('non-numeric cell: names file, line, column and quotes the cell', () => {
  const err = parseFails([HEADER, row(1), '2,1,1,1,230,abc,40', row(3)].join('\n'));
  assertOneIssue(err, 3, "'rpm'", "'abc'", 'not a number');
});

test('empty cell is an error, not a zero', () => {
  const err = parseFails([HEADER, row(1), '2,1,1,1,,600,40'].join('\n'));
  assertOneIssue(err, 3, "'voltage'", 'empty');
});

for (const bad of ['NaN', 'Infinity', '-Infinity', 'inf', 'nan']) {
  test(`non-finite value '${bad}' is rejected`, () => {
    const err = parseFails([HEADER, row(1), row(2), `3,1,1,1,230,600,${bad}`].join('\n'));
    assertOneIssue(err, 4, "'temperature'", `'${bad}'`, 'not finite');
  });
}

test('too few and too many cells', () => {
  const few = parseFails([HEADER, row(1), '2,1,1,1,230,600'].join('\n'));
  assertOneIssue(few, 3, 'expected 7 cells, found 6', "'temperature'");
  const many = parseFails([HEADER, `${row(1)},9`, row(2)].join('\n'));
  assertOneIssue(many, 2, 'expected 7 cells, found 8', '1 extra');
});

test('missing required header column', () => {
  const err = parseFails(['timestamp,accel_x,accel_y,accel_z,voltage,temperature', '1,1,1,1,230,40'].join('\n'));
  assertOneIssue(err, 1, "'rpm'", 'header');
  const noLabel = parseFails([HEADER, row(1)].join('\n'), { labelColumn: 'label' });
  assertOneIssue(noLabel, 1, "'label'");
});

test('wrong separator gets a hint', () => {
  const err = parseFails([HEADER.replaceAll(',', ';'), row(1).replaceAll(',', ';')].join('\n'));
  assertOneIssue(err, 1, 'separator ";"');
});

test('duplicate timestamp names both lines', () => {
  const err = parseFails([HEADER, row(1000), row(1050), row(1050)].join('\n'));
  assertOneIssue(err, 4, 'duplicate timestamp 1050', 'line 3');
});

test('backwards timestamp states both values', () => {
  const err = parseFails([HEADER, row(1000), row(1050), row(1020), row(1100)].join('\n'));
  // 1100 after 1020 is fine: the reference stays at the last good row (1050), so one mistake = one message.
  assertOneIssue(err, 4, '1020', '1050', 'backwards', 'line 3');
});

test('all problems of a file are reported at once, in line order', () => {
  const err = parseFails([HEADER, row(1), '2,x,1,1,230,600,40', row(3), '4,1,1', row(3), `5,1,1,1,230,600,NaN`].join('\n'));
  assert.equal(err.total, 4);
  assert.deepEqual(
    err.issues.map((i) => i.line),
    [3, 5, 6, 7],
  );
  assert.match(err.message, /^bad\.csv: 4 problems/);
});

test('problem list is capped with a count of the rest', () => {
  const lines = [HEADER];
  for (let i = 0; i < 30; i++) lines.push(`${i},1,1,1,230,oops,40`);
  const err = parseFails(lines.join('\n'));
  assert.equal(err.issues.length, 20);
  assert.equal(err.total, 30);
  assert.equal(err.issues[19]!.line, 21);
  assert.ok(err.message.includes('and 10 more'), err.message);
  const err5 = parseFails(lines.join('\n'), { maxErrors: 5 });
  assert.equal(err5.issues.length, 5);
  assert.ok(err5.message.includes('and 25 more'));
});

test('empty file and header-only file are errors', () => {
  assertOneIssue(parseFails(''), undefined, 'no header');
  assertOneIssue(parseFails(HEADER + '\n'), undefined, 'no data rows');
});

test('ISO timestamps with a space are read as UTC; auto mode takes both forms', () => {
  const s = parseCsv([HEADER, '2020-03-09 10:14:33,1,1,1,230,600,40', '2020-03-09T10:14:33.050Z,1,1,1,230,600,40'].join('\n'));
  assert.deepEqual([...s.t], [Date.UTC(2020, 2, 9, 10, 14, 33), Date.UTC(2020, 2, 9, 10, 14, 33, 50)]);
  const err = parseFails([HEADER, 'yesterday,1,1,1,230,600,40'].join('\n'));
  assertOneIssue(err, 2, "'timestamp'", "'yesterday'");
  const secs = parseCsv([HEADER, '1.5,1,1,1,230,600,40'].join('\n'), { parseTime: 's' });
  assert.equal(secs.t[0], 1500);
});

test('SKAB-style file: separator, time column, ISO times and renames', () => {
  const text = [
    'datetime;Accelerometer1RMS;Accelerometer2RMS;Voltage;anomaly;changepoint',
    '2020-03-09 10:14:33;0.0273;0.0404;229.0;0.0;0.0',
    '2020-03-09 10:14:34;0.0277;0.0403;231.5;1.0;0.0',
  ].join('\n');
  const s = parseCsv(text, {
    separator: ';',
    timeColumn: 'datetime',
    parseTime: 'iso',
    rename: { Accelerometer1RMS: 'accel_x', Accelerometer2RMS: 'accel_y', Voltage: 'voltage' },
    requiredColumns: ['accel_x', 'accel_y', 'voltage'],
    labelColumn: 'anomaly',
  });
  assert.equal(s.t[1]! - s.t[0]!, 1000);
  assert.deepEqual([...s.columns.voltage!], [229, 231.5]);
  assert.deepEqual([...s.label!], [0, 1]);
  assert.deepEqual(Object.keys(s.columns), ['accel_x', 'accel_y', 'voltage']);
});

function toCsv(s: Series): string {
  const cols = Object.keys(s.columns);
  const lines = [['timestamp', ...cols, ...(s.label ? ['label'] : [])].join(',')];
  for (let i = 0; i < s.rows; i++) {
    lines.push([s.t[i], ...cols.map((c) => s.columns[c]![i]), ...(s.label ? [s.label[i]] : [])].join(','));
  }
  return lines.join('\n') + '\n';
}

test('real files: readCsvFile round-trips, errors name the path; readCsvDir orders and rejects overlaps', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'preprocess-csv-'));
  try {
    const rows = [`${HEADER},label`];
    for (let i = 0; i < 50; i++) rows.push(`${1_700_000_000_000 + i * 50},${Math.sin(i) / 3},${i * 0.1},${-i},${230 + (i % 7)},${600 + i},${40 + i / 8},${i % 5 === 0 ? 1 : 0}`);
    const a = join(dir, 'b-first.csv');
    await writeFile(a, rows.join('\r\n') + '\r\n');
    const s = await readCsvFile(a, { labelColumn: 'label' });
    assert.equal(s.rows, 50);
    assert.equal(s.file, a);
    assert.equal(s.name, 'b-first.csv');
    assert.equal(s.columns.accel_x![7], Math.sin(7) / 3);
    assert.equal(s.label![10], 1);
    // Round trip: writing the parsed series back and parsing again gives identical arrays.
    const again = parseCsv(toCsv(s), { labelColumn: 'label' });
    assert.deepEqual(again.t, s.t);
    assert.deepEqual(again.columns, s.columns);
    assert.deepEqual(again.label, s.label);

    // A later file whose name sorts first: readCsvDir must order by time, not name.
    const later = [HEADER, row(1_700_000_010_000), row(1_700_000_010_050)];
    await writeFile(join(dir, 'a-later.csv'), later.join('\n'));
    await writeFile(join(dir, 'notes.txt'), 'not a csv');
    const all = await readCsvDir(dir);
    assert.deepEqual(
      all.map((x) => x.name),
      ['b-first.csv', 'a-later.csv'],
    );

    // Overlap with b-first.csv's range.
    await writeFile(join(dir, 'c-overlap.csv'), [HEADER, row(1_700_000_000_100), row(1_700_000_000_125)].join('\n'));
    await assert.rejects(readCsvDir(dir), (e: unknown) => {
      assert.ok(e instanceof CsvError);
      assert.ok(e.message.includes('c-overlap.csv') && e.message.includes('b-first.csv') && e.message.includes('overlaps'), e.message);
      return true;
    });
    await rm(join(dir, 'c-overlap.csv'));

    // A malformed real file: message carries its path and line; readCsvDir reports it too.
    const bad = join(dir, 'd-bad.csv');
    await writeFile(bad, [HEADER, row(1_800_000_000_000), '1800000000050,1,1,1,230,six hundred,40'].join('\n'));
    await assert.rejects(readCsvFile(bad), (e: unknown) => {
      assert.ok(e instanceof CsvError);
      assert.ok(e.message.includes(`${bad}:3:`) && e.message.includes("'six hundred'"), e.message);
      return true;
    });
    await assert.rejects(readCsvDir(dir), (e: unknown) => e instanceof CsvError && e.issues.length === 1 && e.issues[0]!.file === bad);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

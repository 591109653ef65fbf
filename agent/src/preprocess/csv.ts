/**
 * CSV history → typed-array series. One reader for training, evaluation and replay, so every
 * consumer rejects the same malformed files with the same messages.
 *
 * Defaults follow the seed format (`timestamp,accel_x,…,temperature[,label]`, ms epoch or ISO
 * times); the options exist so other datasets (e.g. SKAB: `;`-separated, `datetime` column,
 * `2020-03-09 10:14:33`) can be replayed without a conversion step.
 */
import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DEFAULTS } from '../core/defaults.js';
import { CHANNELS, type Channel } from '../core/profiles.js';

/**
 * Decimals written per channel: enough to keep everything the sensor resolves, no more.
 * accel: the ADXL345 LSB at ±16 g full resolution is 0.038 m/s², below 0.01 nothing is real;
 * voltage: 10 mV, under the ripple and noise; rpm: 0.1 rpm, under the tach noise;
 * temperature: the MCP9808 step is 0.0625 °C, which needs 4 decimals to be written exactly.
 * The dataset generator (motor/generate.ts) and recordings (record/) write cells with these.
 */
export const CSV_DECIMALS: Readonly<Record<Channel, number>> = {
  accel_x: 2,
  accel_y: 2,
  accel_z: 2,
  voltage: 2,
  rpm: 1,
  temperature: 4,
};

/**
 * One cell as the seed's files write it: `decimals` fixed, or, for a channel without a table entry,
 * the shortest text that reads back as exactly `v`.
 */
export function formatCell(v: number, decimals?: number): string {
  if (decimals === undefined) return String(v); // shortest round trip; String(-0) is "0"
  const s = v.toFixed(decimals);
  // toFixed keeps the sign of tiny negatives ("-0.00"); a reader would see a different token for
  // the same number, and it costs a byte.
  return s.charCodeAt(0) === 45 /* - */ && Number(s) === 0 ? s.slice(1) : s;
}

/** One file's data, column-oriented so windowing and scaling work on contiguous typed arrays. */
export interface Series {
  /** Path (or name) as given by the caller; used in every message. */
  file: string;
  /** Base name of `file`: the key used by sidecars such as faults.json. */
  name: string;
  /** Number of data rows. */
  rows: number;
  /** Row timestamps, ms epoch, strictly increasing. */
  t: Float64Array;
  /** Required columns (after renaming), each `rows` long. */
  columns: Record<string, Float64Array>;
  /** Present when `labelColumn` was requested: 1 = anomalous row. */
  label?: Uint8Array;
}

/**
 * How timestamps are read.
 * - `ms`: number, ms epoch.  - `s`: number, seconds epoch (fractions allowed).
 * - `iso`: ISO-8601 date-time; a space instead of `T` is accepted and a time without a zone is
 *   read as UTC, so a file means the same thing on every machine whatever its TZ.
 * - `auto` (default): a number is ms epoch, anything else is tried as `iso`.
 */
export type TimeFormat = 'auto' | 'ms' | 's' | 'iso';

export interface CsvOptions {
  /** Name used in messages and `Series.file` (readCsvFile/readCsvDir fill it in). */
  file?: string;
  /** Cell separator, default the seed's (`DEFAULTS.csv`: `,`). */
  separator?: string;
  /** Timestamp column, default the seed's (`timestamp`). */
  timeColumn?: string;
  /** Timestamp format, default `auto`. */
  parseTime?: TimeFormat;
  /** Columns that must be in the header and numeric in every row; default the six seed channels. Others are ignored. */
  requiredColumns?: readonly string[];
  /** When set, this column must exist and hold 0/1 (`0.0`/`1.0` accepted); it becomes `Series.label`. */
  labelColumn?: string;
  /** Header renames applied before anything else: name in the file → name used here. */
  rename?: Readonly<Record<string, string>>;
  /** Problems listed in the error message (all are counted). Default `DEFAULTS.csv.maxErrors`. */
  maxErrors?: number;
}

export interface CsvIssue {
  file: string;
  /** 1-based line in the file; absent for problems about the file as a whole. */
  line?: number;
  message: string;
}

/** Everything wrong with one file (or a directory of files), reported at once so it can be fixed in one go. */
export class CsvError extends Error {
  override readonly name = 'CsvError';
  /** The listed problems (at most `maxErrors` per file). */
  readonly issues: readonly CsvIssue[];
  /** All problems found, listed or not. */
  readonly total: number;

  constructor(issues: readonly CsvIssue[], total = issues.length) {
    super(formatIssues(issues, total));
    this.issues = issues;
    this.total = total;
  }
}

function formatIssues(issues: readonly CsvIssue[], total: number): string {
  const files = [...new Set(issues.map((i) => i.file))];
  const head = `${files.join(', ')}: ${total} problem${total === 1 ? '' : 's'}`;
  const lines = issues.map((i) => `  ${i.file}${i.line !== undefined ? `:${i.line}` : ''}: ${i.message}`);
  if (total > issues.length) lines.push(`  … and ${total - issues.length} more`);
  return [head, ...lines].join('\n');
}

/** Collects issues up to a cap but keeps counting, so the message says how many remain. */
class IssueList {
  readonly list: CsvIssue[] = [];
  total = 0;
  constructor(
    private readonly file: string,
    private readonly cap: number,
  ) {}
  add(line: number | undefined, message: string): void {
    this.total++;
    if (this.list.length < this.cap) this.list.push(line === undefined ? { file: this.file, message } : { file: this.file, line, message });
  }
}

function unquote(s: string): string {
  s = s.trim();
  return s.length >= 2 && s.charCodeAt(0) === 34 && s.charCodeAt(s.length - 1) === 34 ? s.slice(1, -1) : s;
}

const NON_FINITE_WORD = /^[+-]?(?:nan|inf|infinity)$/i;

/**
 * Number() is the fast path; the slower checks only run when it fails or yields 0, because
 * Number('') and Number('  ') are 0 and Number('Infinity') is a "number" we must not accept.
 * Returns the value, or a message saying what is wrong.
 */
function parseNumberCell(raw: string): number | string {
  let v = +raw;
  if (v === v && v !== Infinity && v !== -Infinity) {
    if (v !== 0 || raw.trim() !== '') return v;
    return 'empty cell';
  }
  const s = unquote(raw);
  if (s !== raw.trim()) {
    // A quoted number is still a number; re-check the unquoted text.
    v = s === '' ? NaN : +s;
    if (v === v && v !== Infinity && v !== -Infinity) return v;
  }
  if (v === Infinity || v === -Infinity || NON_FINITE_WORD.test(s)) return `'${s}' is not finite (NaN/Infinity are not allowed)`;
  return `'${s}' is not a number`;
}

const HAS_ZONE = /(?:[zZ]|[+-]\d\d:?\d\d)$/;

function parseIsoCell(raw: string): number {
  let s = unquote(raw);
  if (s.length > 10 && s.charCodeAt(10) === 32) s = s.slice(0, 10) + 'T' + s.slice(11);
  if (s.includes('T') && !HAS_ZONE.test(s)) s += 'Z';
  return Date.parse(s);
}

function parseTimeCell(raw: string, fmt: TimeFormat): number | string {
  if (fmt === 'iso') {
    const v = parseIsoCell(raw);
    return Number.isFinite(v) ? v : `timestamp '${unquote(raw)}' is not an ISO date-time`;
  }
  const n = parseNumberCell(raw);
  if (typeof n === 'number') return fmt === 's' ? n * 1000 : n;
  if (fmt === 'auto') {
    const v = parseIsoCell(raw);
    if (Number.isFinite(v)) return v;
    return `timestamp '${unquote(raw)}' is neither a number (ms epoch) nor an ISO date-time`;
  }
  return n;
}

function fmtTime(v: number, raw: string): string {
  const s = unquote(raw);
  return String(v) === s ? s : `'${s}' (${v})`;
}

/**
 * Parse one CSV text. Throws CsvError listing every problem (capped) with file and 1-based line.
 * Empty lines, a trailing newline, `\r\n` and a UTF-8 BOM are accepted.
 */
export function parseCsv(text: string, opts: CsvOptions = {}): Series {
  const file = opts.file ?? '<csv>';
  const sep = opts.separator ?? DEFAULTS.csv.separator;
  const timeColumn = opts.timeColumn ?? DEFAULTS.csv.timeColumn;
  const fmt = opts.parseTime ?? DEFAULTS.csv.timeFormat;
  const required = opts.requiredColumns ?? CHANNELS;
  const labelColumn = opts.labelColumn;
  const issues = new IssueList(file, opts.maxErrors ?? DEFAULTS.csv.maxErrors);
  if (sep.length === 0) throw new Error('separator must not be empty');

  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');

  let h = 0;
  while (h < lines.length && lines[h]!.trim() === '') h++;
  if (h === lines.length) {
    issues.add(undefined, 'empty file: no header line');
    throw new CsvError(issues.list, issues.total);
  }
  const headerLine = stripCr(lines[h]!);
  const header = headerLine.split(sep).map((c) => {
    const name = unquote(c);
    return opts.rename?.[name] ?? name;
  });
  const ncol = header.length;

  const index = new Map<string, number>();
  header.forEach((name, i) => {
    if (index.has(name)) issues.add(h + 1, `duplicate column '${name}' in header`);
    else index.set(name, i);
  });
  const wanted = [timeColumn, ...required, ...(labelColumn !== undefined ? [labelColumn] : [])];
  const missing = wanted.filter((c) => !index.has(c));
  if (missing.length > 0) {
    let hint = '';
    if (ncol === 1) {
      const other = [',', ';', '\t', '|'].find((s) => s !== sep && headerLine.includes(s));
      if (other !== undefined) hint = ` (header has a single column — is the separator ${JSON.stringify(other)}?)`;
    }
    issues.add(h + 1, `header lacks required column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `'${c}'`).join(', ')}${hint}`);
  }
  if (issues.total > 0) throw new CsvError(issues.list, issues.total);

  // Upper bound on rows; trimmed with subarray-free copies at the end.
  const cap = lines.length - h - 1;
  const t = new Float64Array(cap);
  const colIdx = required.map((c) => index.get(c)!);
  const cols = required.map(() => new Float64Array(cap));
  const timeIdx = index.get(timeColumn)!;
  const labelIdx = labelColumn !== undefined ? index.get(labelColumn)! : -1;
  const label = labelIdx >= 0 ? new Uint8Array(cap) : undefined;

  let rows = 0;
  let prevT = NaN;
  let prevRaw = '';
  let prevLine = 0;
  for (let li = h + 1; li < lines.length; li++) {
    let line = lines[li]!;
    if (line.length === 0) continue;
    if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    if (line.length === 0 || line.trim() === '') continue;
    const lineNo = li + 1;
    const cells = line.split(sep);
    if (cells.length !== ncol) {
      const detail =
        cells.length < ncol
          ? `missing ${header.slice(cells.length).map((c) => `'${c}'`).join(', ')}`
          : `${cells.length - ncol} extra`;
      issues.add(lineNo, `expected ${ncol} cells, found ${cells.length} (${detail})`);
      continue;
    }
    let ok = true;
    const rawT = cells[timeIdx]!;
    const tv = parseTimeCell(rawT, fmt);
    if (typeof tv === 'string') {
      issues.add(lineNo, `column '${timeColumn}': ${tv}`);
      ok = false;
    } else if (prevLine > 0) {
      if (tv === prevT) {
        issues.add(lineNo, `duplicate timestamp ${fmtTime(tv, rawT)} (same as line ${prevLine})`);
        ok = false;
      } else if (tv < prevT) {
        issues.add(lineNo, `timestamp goes backwards: ${fmtTime(tv, rawT)} after ${fmtTime(prevT, prevRaw)} (line ${prevLine}); rows must be strictly increasing in time`);
        ok = false;
      }
    }
    for (let j = 0; j < colIdx.length; j++) {
      const v = parseNumberCell(cells[colIdx[j]!]!);
      if (typeof v === 'string') {
        issues.add(lineNo, `column '${required[j]}': ${v}`);
        ok = false;
      } else cols[j]![rows] = v;
    }
    if (label !== undefined) {
      const raw = cells[labelIdx]!;
      const v = +raw;
      if ((v === 0 || v === 1) && raw.trim() !== '') label[rows] = v;
      else {
        issues.add(lineNo, `column '${labelColumn}': label must be 0 or 1, got '${unquote(raw)}'`);
        ok = false;
      }
    }
    // A row with a bad timestamp does not move the ordering reference: the next good row is
    // compared with the last good one, so one typo yields one message, not two.
    if (typeof tv === 'number' && (prevLine === 0 || tv > prevT)) {
      prevT = tv;
      prevRaw = rawT;
      prevLine = lineNo;
    }
    if (ok && issues.total === 0) {
      t[rows] = tv as number;
      rows++;
    }
  }
  if (rows === 0 && issues.total === 0) issues.add(undefined, 'no data rows after the header');
  if (issues.total > 0) throw new CsvError(issues.list, issues.total);

  const columns: Record<string, Float64Array> = {};
  required.forEach((c, j) => (columns[c] = cols[j]!.slice(0, rows)));
  const series: Series = { file, name: basename(file), rows, t: t.slice(0, rows), columns };
  if (label !== undefined) series.label = label.slice(0, rows);
  return series;
}

function stripCr(s: string): string {
  return s.charCodeAt(s.length - 1) === 13 ? s.slice(0, -1) : s;
}

/** Read and parse one file; `opts.file` defaults to `path`. */
export async function readCsvFile(path: string, opts: CsvOptions = {}): Promise<Series> {
  const text = await readFile(path, 'utf8');
  return parseCsv(text, { ...opts, file: opts.file ?? path });
}

/**
 * Read every `*.csv` directly in `dir`, ordered by first timestamp. Files whose time ranges
 * overlap are rejected: the windowing and the time-based train/validation split treat the
 * files as one timeline, which only makes sense if they do not interleave.
 * All files' problems are reported together in one CsvError.
 */
export async function readCsvDir(dir: string, opts: Omit<CsvOptions, 'file'> = {}): Promise<Series[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isFile() && d.name.toLowerCase().endsWith('.csv'))
    .map((d) => d.name)
    .sort();
  if (names.length === 0) throw new Error(`${dir}: no .csv files`);
  const series: Series[] = [];
  const issues: CsvIssue[] = [];
  let total = 0;
  for (const name of names) {
    const path = join(dir, name);
    try {
      series.push(await readCsvFile(path, opts));
    } catch (e) {
      if (!(e instanceof CsvError)) throw e;
      issues.push(...e.issues);
      total += e.total;
    }
  }
  series.sort((a, b) => a.t[0]! - b.t[0]!);
  // Compare with the file reaching furthest so far, not just the previous one: a long file can
  // overlap several later ones.
  let reach: Series | undefined;
  for (const b of series) {
    if (reach !== undefined && b.t[0]! <= last(reach)) {
      issues.push({
        file: b.file,
        message: `time range ${b.t[0]}..${last(b)} overlaps ${reach.file} (${reach.t[0]}..${last(reach)}); files must cover disjoint time spans`,
      });
      total++;
    }
    if (reach === undefined || last(b) > last(reach)) reach = b;
  }
  if (total > 0) throw new CsvError(issues, total);
  return series;
}

function last(s: Series): number {
  return s.t[s.rows - 1]!;
}

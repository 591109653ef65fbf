/**
 * The writer of a recording (record/manifest.ts has the directory's layout): samples in, rows on the
 * profile's grid (record/aligner.ts) out to seed-format CSV files, which rotate by size or by time,
 * under a disk budget that deletes the oldest file first. `anomaly-agent record` and the daemon's
 * recorder (daemon/recorder.ts) both write through this class.
 *
 * - add() is synchronous and cheap (a ring push, and per row one line of text); rows are written
 *   every `flushMs` of clock time, or sooner when 64 KiB are waiting, by one queue of file operations
 *   that runs one at a time, so sizes are known exactly when the budget is checked.
 * - Rotation: a file is closed before a row `rotateMs` (sample time) after its first row, or one
 *   that would take it over `rotateBytes`. The file being written is `….csv.part`; closing it
 *   syncs it and renames it to `….csv`, so a reader (train) never sees half a file. The manifest is
 *   rewritten on every rotation, when the budget deletes a file, at open and at close.
 * - The budget: the recording's files plus its manifest never exceed `maxBytes`, not even while the
 *   manifest is replaced (the new one is written beside the old, then renamed over it). Before any
 *   write the oldest finished file is deleted until the write fits. Only this recording's files
 *   (rec-*.csv, manifest.json, recording.lock) are counted, and only its CSV files ever deleted.
 * - Continuing: opening a directory that holds a recording of the same device, period and columns
 *   carries it on (new files after the old ones, one budget over all); a `.part` left by a crash is
 *   cut after its last whole line and finished. Anything else is refused, naming what differs.
 * - One writer per directory (recording.lock, the writer's process id): the daemon and the command
 *   never write into the same recording at once; a lock left by a crashed process is taken over.
 * - Failure: a write that fails (disk full, permission, the directory removed) stops the recording
 *   with one error naming the directory and the reason; add() then drops samples. It never throws
 *   into the caller, so the daemon keeps running.
 */
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, readFile, rename, stat, truncate, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Clock, Timer } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';
import { defaultMaxGapMs, PROFILES, type ProfileName } from '../core/profiles.js';
import type { Sample, SensorSpec } from '../core/sample.js';
import { CSV_DECIMALS, formatCell } from '../preprocess/csv.js';
import { RowAligner } from './aligner.js';
import {
  GAPS_LISTED,
  isRecordingFile,
  MANIFEST_FILE,
  readRecordingManifest,
  RECORDING_KIND,
  RECORDING_VERSION,
  recordingFileName,
  type RecordedFile,
  type RecordingManifest,
  type RecordingSource,
} from './manifest.js';

export interface RecordingOptions {
  dir: string;
  /** The machine's device id (the `<dev>` of its topics). */
  device: string;
  source: RecordingSource;
  /** Rows are on this profile's period. */
  profile: ProfileName;
  sensors: SensorSpec;
  /** The directory's budget: this recording's files and manifest, bytes. */
  maxBytes: number;
  /** A file is closed before it would grow past this, bytes. */
  rotateBytes: number;
  /** A file is closed before a row this long (sample time) after its first, ms. */
  rotateMs: number;
  clock: Clock;
  log?: Logger;
  /** How often waiting rows are written, ms of clock time. Default `DEFAULTS.component.record`. */
  flushMs?: number;
  /** Called once if the recording stops on an error after open() (the error is also logged). */
  onFail?: (err: RecordingError) => void;
}

/** A recording that cannot start or carry on; the message names the directory or key and the reason. */
export class RecordingError extends Error {
  override name = 'RecordingError';
}

/** The writer's process id (see lock()); counted against the budget like the rest. */
const LOCK_FILE = 'recording.lock';
/** Directories this process records into (a lock file's pid cannot tell two writers of one process apart). */
const LOCKED = new Set<string>();

/** Whether a process with this id runs (signal 0 only checks; EPERM: it runs as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Rows waiting beyond this many bytes are written without waiting for the flush timer. */
const FLUSH_BYTES = 64 * 1024;

interface FileState extends RecordedFile {
  /** Rows given to this file (written or waiting). */
  assignedBytes: number;
  /** On disk, as of the last write. */
  diskBytes: number;
  handle?: FileHandle;
  /** Renamed to .csv: finished, and the budget may delete it. */
  finished: boolean;
}

/** The counters of a recording since open(). */
export interface RecordingStats {
  rows: number;
  gaps: number;
  /** Rows left out after a gap so it shows in the file, and rows not after an earlier session's. */
  skipped: number;
  /** Samples refused by the aligner (an unknown sensor, a wrong arity, time going back). */
  rejected: number;
  /** Files begun. */
  files: number;
  /** Bytes of this recording on disk (files and manifest). */
  bytes: number;
  /** Files the budget deleted. */
  deletedFiles: number;
}

const FS_REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'exists and is not a directory',
};

/** "permission denied (EACCES)" rather than Node's "EACCES: permission denied, open '…'". */
export function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && FS_REASONS[code] ? `${FS_REASONS[code]} (${code})` : (err as Error).message;
}

export class Recording {
  readonly columns: readonly string[];
  readonly periodMs: number;
  readonly maxGapMs: number;
  private readonly aligner: RowAligner;
  private readonly decimals: (number | undefined)[];
  private readonly header: string;
  private readonly log: Logger;
  private state: 'new' | 'open' | 'closing' | 'closed' | 'failed' = 'new';
  private failure: Error | undefined;
  private timer: Timer | undefined;
  /** Every file of the recording on disk or about to be, oldest first. */
  private files: FileState[] = [];
  private current: FileState | undefined;
  private pending = '';
  /** The last row's time, this session's or an earlier one's: a row must come after it. */
  private lastT = -Infinity;
  private manifestBytes = 0;
  private lockBytes = 0;
  private used = 0;
  private deletedFiles = 0;
  private deletedRows = 0;
  private chain: Promise<void> = Promise.resolve();
  /** Per open file: rows, last row and gap count on disk so far (rows given to it run ahead); the manifest shows these. */
  private readonly onDisk = new Map<FileState, { rows: number; t1: number; gapCount: number }>();
  private readonly counters = { skippedOld: 0, files: 0, deletedFiles: 0 };
  private warnedOld = false;

  constructor(private readonly o: RecordingOptions) {
    this.periodMs = PROFILES[o.profile].periodMs;
    this.maxGapMs = defaultMaxGapMs(this.periodMs);
    this.aligner = new RowAligner({ sensors: o.sensors, periodMs: this.periodMs, maxGapMs: this.maxGapMs, onRow: (t, v, gap) => this.onRow(t, v, gap) });
    this.columns = this.aligner.columns;
    this.decimals = this.columns.map((c) => (CSV_DECIMALS as Record<string, number>)[c]);
    this.header = `timestamp,${this.columns.join(',')}\n`;
    this.log = (o.log ?? silentLogger).child({ module: 'recorder' });
  }

  /** Why the recording stopped, once it has. */
  get failed(): Error | undefined {
    return this.failure;
  }

  stats(): RecordingStats {
    const a = this.aligner;
    return {
      rows: a.rows - this.counters.skippedOld,
      gaps: a.gaps,
      skipped: a.skipped + this.counters.skippedOld,
      rejected: Object.values(a.rejected).reduce((s, n) => s + (n ?? 0), 0),
      files: this.counters.files,
      bytes: this.used,
      deletedFiles: this.counters.deletedFiles,
    };
  }

  /**
   * Creates the directory (and its parents) or carries on the recording in it, applies the budget,
   * writes the manifest and starts the flush timer. Throws RecordingError naming what is wrong.
   */
  async open(): Promise<void> {
    if (this.state !== 'new') throw new Error('recording: open() twice');
    const o = this.o;
    for (const [key, v] of [['record.maxBytes', o.maxBytes], ['record.rotateBytes', o.rotateBytes], ['record.rotateMs', o.rotateMs]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RecordingError(`${key} must be a positive integer, got ${String(v)}`);
    }
    try {
      await mkdir(o.dir, { recursive: true });
      await access(o.dir, constants.W_OK);
    } catch (err) {
      throw new RecordingError(`record.dir ${o.dir}: cannot record there: ${fsReason(err)}`);
    }
    await this.lock();
    try {
      await this.prepare();
    } catch (err) {
      await this.unlock();
      throw err;
    }
    this.timer = o.clock.setInterval(() => this.writePending(), o.flushMs ?? DEFAULTS.component.record.flushMs);
    this.log.info(
      { dir: o.dir, source: o.source.kind, device: o.device, profile: o.profile, periodMs: this.periodMs, columns: this.columns, files: this.files.length, bytes: this.used, maxBytes: o.maxBytes },
      `recording ${o.source.kind} into ${o.dir}: a row every ${this.periodMs} ms`,
    );
  }

  /** Takes stock of the directory, checks the budget can work, writes the manifest. */
  private async prepare(): Promise<void> {
    const o = this.o;
    const previous = await readRecordingManifest(o.dir).catch((err: Error) => {
      throw new RecordingError(`${err.message}: move it away or record into another directory`);
    });
    if (previous) this.carryOn(previous);
    await this.scan(previous);

    // Room for the file being written and two manifests (the old and its replacement) is the least
    // the budget must hold, or the recording could fill it with no finished file left to delete.
    const probe = this.render([this.largestFile()]);
    const least = o.rotateBytes + 2 * Buffer.byteLength(probe);
    if (least > o.maxBytes) {
      throw new RecordingError(
        `record.maxBytes (${o.maxBytes} bytes) cannot hold one file of record.rotateBytes (${o.rotateBytes}) and the manifest twice (${Buffer.byteLength(probe)} bytes each, old and new while it is replaced): raise record.maxBytes to at least ${least} or lower record.rotateBytes`,
      );
    }
    this.state = 'open';
    try {
      await this.writeManifest();
    } catch (err) {
      this.state = 'failed';
      throw new RecordingError(err instanceof RecordingError ? err.message : `record.dir ${o.dir}: cannot write the manifest: ${fsReason(err)}`);
    }
  }

  /**
   * One writer per directory: `recording.lock` holds the writer's process id, made with O_EXCL. A
   * lock whose process is gone (a crash) is taken over; a live one is refused, naming its process.
   */
  private async lock(): Promise<void> {
    const path = join(this.o.dir, LOCK_FILE);
    const key = resolve(this.o.dir);
    const text = `${process.pid}\n`;
    if (LOCKED.has(key)) throw new RecordingError(`${this.o.dir} is being recorded already, by this process: record into another directory`);
    try {
      await writeFile(path, text, { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new RecordingError(`record.dir ${this.o.dir}: cannot record there: ${fsReason(err)}`);
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new RecordingError(`${this.o.dir} is being recorded by process ${pid} (${path}): stop it, or record into another directory`);
      }
      this.log.warn({ file: path, pid }, `took over ${path}, left by process ${pid}, which is gone`);
      await writeFile(path, text);
    }
    LOCKED.add(key);
    this.lockBytes = Buffer.byteLength(text);
    this.used += this.lockBytes;
  }

  private async unlock(): Promise<void> {
    if (this.lockBytes === 0) return;
    LOCKED.delete(resolve(this.o.dir));
    await unlink(join(this.o.dir, LOCK_FILE)).catch(() => {});
    this.used -= this.lockBytes;
    this.lockBytes = 0;
  }

  /** One sample from the source; never throws (a refused sample is counted). */
  add(s: Sample): void {
    if (this.state !== 'open') return;
    this.aligner.push(s);
  }

  /** Writes every row waiting, and waits for the file operations queued so far. */
  async flush(): Promise<void> {
    this.writePending();
    await this.chain;
  }

  /** Writes what waits, finishes the file being written and the manifest. Safe to call twice. */
  async close(): Promise<void> {
    if (this.state === 'new') {
      this.state = 'closed';
      return;
    }
    if (this.state === 'closing' || this.state === 'closed') return this.chain;
    const wasOpen = this.state === 'open';
    this.state = 'closing';
    this.timer?.cancel();
    if (wasOpen) {
      this.writePending();
      const f = this.current;
      this.current = undefined;
      if (f) this.enqueue(() => this.finish(f));
      this.enqueue(() => this.writeManifest());
    }
    await this.chain;
    for (const f of this.files) await f.handle?.close().catch(() => {});
    await this.unlock();
    if (this.state === 'closing') this.state = 'closed';
    const s = this.stats();
    this.log.info({ dir: this.o.dir, ...s }, `recording stopped: ${s.rows} rows, ${s.gaps} gaps, ${s.files} file(s) begun, ${s.bytes} bytes in ${this.o.dir}`);
  }

  // --------------------------------------------------------------------------------------------
  // Rows (synchronous)

  private onRow(t: number, values: Float64Array, gapAfter: number): void {
    if (!(t > this.lastT)) {
      // Rows an earlier session already covers (a clock set back): train needs disjoint files.
      this.counters.skippedOld++;
      if (!this.warnedOld) {
        this.warnedOld = true;
        this.log.warn({ t, last: this.lastT }, `rows before ${new Date(this.lastT).toISOString()}, the end of what ${this.o.dir} already holds, are left out`);
      }
      return;
    }
    let line = String(t);
    for (let j = 0; j < values.length; j++) line += ',' + formatCell(values[j]!, this.decimals[j]);
    line += '\n';
    const n = line.length; // digits, signs, dots and commas: one byte each
    let f = this.current;
    if (f && f.rows > 0 && (t - f.t0 >= this.o.rotateMs || f.assignedBytes + n > this.o.rotateBytes)) {
      this.rotate(f);
      f = undefined;
    } else if (f && gapAfter === gapAfter) {
      f.gapCount++;
      if (f.gaps.length < GAPS_LISTED) f.gaps.push([gapAfter, t]);
    }
    if (!f) f = this.begin(t);
    this.pending += line;
    f.assignedBytes += n;
    f.rows++;
    f.t1 = t;
    this.lastT = t;
    if (this.pending.length >= FLUSH_BYTES) this.writePending();
  }

  private begin(t: number): FileState {
    const f: FileState = { name: recordingFileName(t), source: this.o.source.kind, t0: t, t1: t, rows: 0, bytes: 0, gaps: [], gapCount: 0, open: true, assignedBytes: 0, diskBytes: 0, finished: false };
    this.pending += this.header;
    f.assignedBytes += Buffer.byteLength(this.header);
    this.files.push(f);
    this.current = f;
    this.counters.files++;
    return f;
  }

  private rotate(f: FileState): void {
    this.writePending();
    this.current = undefined;
    this.enqueue(() => this.finish(f));
    this.enqueue(() => this.writeManifest());
  }

  /** Queues the rows waiting for the file being written. */
  private writePending(): void {
    const f = this.current;
    if (this.pending === '' || f === undefined || this.failure) return;
    const text = this.pending;
    const snapshot = { rows: f.rows, t1: f.t1, gapCount: f.gapCount };
    this.pending = '';
    this.enqueue(() => this.write(f, text, snapshot));
  }

  // --------------------------------------------------------------------------------------------
  // File operations (one at a time, in order)

  private enqueue(op: () => Promise<void>): void {
    this.chain = this.chain.then(() => (this.failure ? undefined : op())).catch((err: unknown) => this.fail(err));
  }

  private fail(err: unknown): void {
    if (this.failure) return;
    this.state = 'failed';
    this.timer?.cancel();
    this.pending = '';
    const why = err instanceof RecordingError ? err.message : `${this.o.dir}: ${fsReason(err)}`;
    this.failure = new RecordingError(`recording stopped: ${why}`);
    this.log.error({ dir: this.o.dir }, this.failure.message);
    try {
      this.o.onFail?.(this.failure);
    } catch {
      // the caller's reaction must not turn into an unhandled rejection of the queue
    }
  }

  private partPath(f: FileState): string {
    return join(this.o.dir, f.finished ? f.name : `${f.name}.part`);
  }

  private async write(f: FileState, text: string, snapshot: { rows: number; t1: number; gapCount: number }): Promise<void> {
    const n = Buffer.byteLength(text);
    const deleted = await this.makeRoom(n);
    f.handle ??= await open(this.partPath(f), 'a');
    await f.handle.appendFile(text);
    f.diskBytes += n;
    this.used += n;
    f.bytes = f.diskBytes;
    this.onDisk.set(f, snapshot);
    if (deleted) await this.writeManifest();
  }

  private async finish(f: FileState): Promise<void> {
    if (f.handle) {
      await f.handle.datasync();
      await f.handle.close();
      f.handle = undefined;
    }
    if (f.diskBytes === 0) {
      // Nothing was written (closed before its first flush could run): no file to keep.
      this.files = this.files.filter((x) => x !== f);
      return;
    }
    await rename(this.partPath(f), join(this.o.dir, f.name));
    f.finished = true;
    delete f.open;
    this.onDisk.delete(f);
  }

  /** Deletes the oldest finished files until `n` more bytes fit; true when it deleted any. */
  private async makeRoom(n: number): Promise<boolean> {
    let deleted = false;
    while (this.used + n > this.o.maxBytes) {
      if (!(await this.deleteOldest())) {
        const open = this.files.filter((f) => !f.finished).reduce((s, f) => s + f.diskBytes, 0);
        throw new RecordingError(
          `record.maxBytes (${this.o.maxBytes} bytes) is full: ${this.o.dir} holds ${this.used} bytes of this recording (${open} in the file being written, ${this.manifestBytes} in the manifest, no finished file left to delete) and ${n} more do not fit; raise record.maxBytes or lower record.rotateBytes`,
        );
      }
      deleted = true;
    }
    return deleted;
  }

  private async deleteOldest(): Promise<boolean> {
    const i = this.files.findIndex((f) => f.finished);
    if (i < 0) return false;
    const f = this.files[i]!;
    await unlink(join(this.o.dir, f.name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    this.files.splice(i, 1);
    this.used -= f.diskBytes;
    this.deletedFiles++;
    this.deletedRows += f.rows;
    this.counters.deletedFiles++;
    this.log.info({ file: f.name, bytes: f.diskBytes, rows: f.rows }, `budget: deleted the oldest file, ${f.name}`);
    return true;
  }

  /** Replaces the manifest, the new one beside the old until the rename: both count against the budget. */
  private async writeManifest(): Promise<void> {
    let text: string;
    for (;;) {
      text = this.renderWithSize(this.files);
      if (this.used + Buffer.byteLength(text) <= this.o.maxBytes) break;
      if (!(await this.deleteOldest())) {
        throw new RecordingError(
          `record.maxBytes (${this.o.maxBytes} bytes) is full: ${this.o.dir} holds ${this.used} bytes of this recording and the new manifest (${Buffer.byteLength(text)} bytes) does not fit beside the old one; raise record.maxBytes or lower record.rotateBytes`,
        );
      }
    }
    const n = Buffer.byteLength(text);
    const path = join(this.o.dir, MANIFEST_FILE);
    await writeFile(`${path}.tmp`, text);
    this.used += n;
    await rename(`${path}.tmp`, path);
    this.used -= this.manifestBytes;
    this.manifestBytes = n;
  }

  // --------------------------------------------------------------------------------------------
  // The manifest

  /**
   * The manifest as it will be on disk: its `budget.bytes` (the files and the manifest; not the lock,
   * which goes with the writer) counts its own size — a fixed point, found in a step or two.
   */
  private renderWithSize(files: readonly FileState[]): string {
    const others = this.used - this.manifestBytes - this.lockBytes;
    let size = this.manifestBytes;
    for (;;) {
      const text = this.render(files, others + size);
      const n = Buffer.byteLength(text);
      if (n === size) return text;
      size = n;
    }
  }

  private render(files: readonly FileState[], bytes = this.used): string {
    const o = this.o;
    const listed: RecordedFile[] = files
      .filter((f) => f.finished || f.diskBytes > 0)
      .map((f) => {
        const disk = f.finished ? undefined : this.onDisk.get(f);
        const rows = disk?.rows ?? f.rows;
        const t1 = disk?.t1 ?? f.t1;
        return {
          name: f.name,
          source: f.source,
          t0: f.t0,
          t1,
          rows,
          bytes: f.diskBytes,
          gaps: f.gaps.filter(([, after]) => after <= t1),
          gapCount: disk?.gapCount ?? f.gapCount,
          ...(f.finished ? {} : { open: true as const }),
        };
      });
    const first = listed[0];
    const last = listed[listed.length - 1];
    const m: RecordingManifest = {
      kind: RECORDING_KIND,
      version: RECORDING_VERSION,
      device: o.device,
      source: o.source,
      profile: o.profile,
      periodMs: this.periodMs,
      maxGapMs: this.maxGapMs,
      sensors: o.sensors,
      columns: [...this.columns],
      span:
        first && last
          ? {
              t0: first.t0,
              t1: last.t1,
              from: new Date(first.t0).toISOString(),
              to: new Date(last.t1).toISOString(),
              rows: listed.reduce((s, f) => s + f.rows, 0),
              gaps: listed.reduce((s, f) => s + f.gapCount, 0),
            }
          : null,
      budget: { maxBytes: o.maxBytes, rotateBytes: o.rotateBytes, rotateMs: o.rotateMs, bytes, deletedFiles: this.deletedFiles, deletedRows: this.deletedRows },
      files: listed,
      updated: o.clock.now(),
    };
    return JSON.stringify(m, null, 2) + '\n';
  }

  /** A file entry as large as one can be (for the least budget): every gap listed, long numbers. */
  private largestFile(): FileState {
    const t = 8_640_000_000_000; // the last representable Date
    return {
      name: recordingFileName(t - 1),
      source: this.o.source.kind,
      t0: t,
      t1: t,
      rows: Number.MAX_SAFE_INTEGER,
      bytes: Number.MAX_SAFE_INTEGER,
      gaps: Array.from({ length: GAPS_LISTED }, () => [t, t] as [number, number]),
      gapCount: Number.MAX_SAFE_INTEGER,
      assignedBytes: 0,
      diskBytes: Number.MAX_SAFE_INTEGER,
      finished: true,
    };
  }

  // --------------------------------------------------------------------------------------------
  // Carrying on a recording

  /** Refuses a directory that records another machine or another layout. */
  private carryOn(m: RecordingManifest): void {
    const o = this.o;
    const where = `${o.dir} holds a recording of`;
    if (m.device !== o.device) throw new RecordingError(`${where} device '${m.device}', not '${o.device}': record into another directory`);
    if (m.periodMs !== this.periodMs) throw new RecordingError(`${where} a row every ${m.periodMs} ms (${m.profile}), not every ${this.periodMs} ms (${o.profile}): record into another directory`);
    if (m.columns.join() !== this.columns.join()) throw new RecordingError(`${where} the columns ${m.columns.join(',')}, not ${this.columns.join(',')}: record into another directory`);
    this.deletedFiles = m.budget?.deletedFiles ?? 0;
    this.deletedRows = m.budget?.deletedRows ?? 0;
  }

  /** Takes stock of the files already there: finishes a crashed `.part`, counts every byte. */
  private async scan(previous: RecordingManifest | undefined): Promise<void> {
    const dir = this.o.dir;
    const names = (await readdir(dir)).sort();
    const known = new Map((previous?.files ?? []).map((f) => [f.name, f]));
    const others = names.filter((n) => n.toLowerCase().endsWith('.csv') && !isRecordingFile(n));
    if (others.length) this.log.warn({ dir, files: others }, `${dir} also holds other CSV files (${others.join(', ')}); train --data reads them too`);
    if (!previous && names.some(isRecordingFile)) throw new RecordingError(`${dir} holds recording files but no ${MANIFEST_FILE}: record into another directory`);
    await unlink(join(dir, `${MANIFEST_FILE}.tmp`)).catch(() => {});
    for (const name of names.filter(isRecordingFile)) {
      let final = name;
      if (name.endsWith('.part')) {
        final = name.slice(0, -'.part'.length);
        const kept = await this.repair(join(dir, name));
        if (!kept) continue;
        await rename(join(dir, name), join(dir, final));
      }
      const size = (await stat(join(dir, final))).size;
      const entry = known.get(final);
      const f = entry && entry.bytes === size && !entry.open ? { ...entry } : await this.describe(join(dir, final), final);
      this.files.push({ ...f, bytes: size, assignedBytes: size, diskBytes: size, finished: true });
      this.lastT = Math.max(this.lastT, f.t1);
      this.used += size;
    }
    try {
      this.manifestBytes = (await stat(join(dir, MANIFEST_FILE))).size;
      this.used += this.manifestBytes;
    } catch {
      this.manifestBytes = 0;
    }
  }

  /** Cuts a crashed file after its last whole line; false (and the file gone) when no row is left. */
  private async repair(path: string): Promise<boolean> {
    const text = await readFile(path, 'utf8');
    const end = text.lastIndexOf('\n') + 1;
    if (end < text.length) await truncate(path, Buffer.byteLength(text.slice(0, end)));
    if (text.slice(0, end).split('\n').filter((l) => l !== '').length < 2) {
      await unlink(path);
      return false;
    }
    this.log.warn({ file: path }, `finished ${path}, left by a recording that did not stop cleanly`);
    return true;
  }

  /** A file's entry from its contents (one the manifest does not know, or knows at another size). */
  private async describe(path: string, name: string): Promise<RecordedFile> {
    const lines = (await readFile(path, 'utf8')).split('\n').filter((l) => l !== '');
    const times = lines.slice(1).map((l) => Number(l.slice(0, l.indexOf(','))));
    const f: RecordedFile = { name, source: 'unknown', t0: times[0] ?? NaN, t1: times[times.length - 1] ?? NaN, rows: times.length, bytes: 0, gaps: [], gapCount: 0 };
    for (let i = 1; i < times.length; i++) {
      if (times[i]! - times[i - 1]! > this.maxGapMs) {
        f.gapCount++;
        if (f.gaps.length < GAPS_LISTED) f.gaps.push([times[i - 1]!, times[i]!]);
      }
    }
    if (!(times.length > 0 && times.every((t) => Number.isFinite(t)))) throw new RecordingError(`${path} is not a recording file (no rows, or a row without a timestamp): move it away`);
    return f;
  }
}

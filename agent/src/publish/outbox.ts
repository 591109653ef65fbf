/**
 * Store-and-forward outbox: alerts are never lost, telemetry may be.
 *
 * mqtt.js keeps its offline queue in memory only (MQTT.js#607), so the daemon owns a durable outbox.
 * The publisher appends every alert here (durably) before sending it, acks it after the broker's PUBACK,
 * and on (re)connect drains the outbox oldest first. Telemetry goes through the outbox only while offline.
 *
 * ## On-disk format
 * One append-only file `<dir>/outbox.log`, a sequence of records (all integers little-endian):
 *
 * ```
 *   0  4  magic  'O' 'B' 'X' 0x01            — lets recovery find the next record after damage
 *   4  4  u32 bodyLen
 *   8  4  u32 crc32(bodyLen bytes ‖ body)   — covers the length too, so a damaged length is caught
 *  12  …  body
 * body: u8 type, then
 *   1 ENTRY  u8 kind (0 alert, 1 telemetry), u8 qos, u8 flags (1 retain, 2 payload was a Buffer),
 *            u64 seq, f64 addedAt, u16 topicLen, topic (UTF-8), payload (the rest)
 *   2 REMOVE u8 reason (0 acked, 1 evicted), u64 seq
 *   3 META   u64 nextSeq                      — first record of a compacted file; keeps seq monotonic
 *                                               even when every entry was acked and compacted away
 * ```
 * State = replay: ENTRY adds, REMOVE deletes, the live entries are those left, in file (= seq) order.
 *
 * ## Why it survives a power cut at any point
 * - Appending: a record is written with one write() after the previous ones; an alert's append()
 *   resolves only after fdatasync() returned, which puts the record's data and the new file size on
 *   stable storage. A cut before that can leave, after the last synced byte, any prefix of the unsynced
 *   writes, zeros, or garbage. Recovery reads records while magic, length and CRC check out; the first
 *   bad spot from which no valid record follows is a torn tail: it is truncated (and logged), never
 *   thrown. Nothing whose append() resolved (for alerts) lies in that tail.
 * - Compaction writes the live entries to `outbox.log.tmp`, fsyncs it, renames it over `outbox.log`
 *   and fsyncs the directory. rename() is atomic: after a cut the name points to either the old, complete
 *   log or the new, complete (already fsynced) log; a leftover `.tmp` is deleted at open. The old log
 *   may miss unsynced REMOVE records, which only means an acked entry is sent again (at-least-once).
 * - A new log is created the same way (tmp + fsync + rename + directory fsync) before open() resolves.
 * - This relies on the storage honouring flushes; an SD card that acknowledges a flush it has not done
 *   can still lose data, which no file format can fix.
 *
 * ## Damage in the middle (bit rot, a flipped byte)
 * A record whose CRC fails while a valid record follows is skipped: recovery scans forward for the next
 * magic whose record checks out, logs the skipped byte range at error level, counts it in
 * `counters.corruptRecords`, and keeps everything else. A damaged record cannot be trusted, so it is
 * dropped (a skipped ENTRY is lost, a skipped REMOVE resurrects an acked entry = a duplicate send).
 * The file is then compacted right away, so the damage is reported once. (A payload could in theory
 * contain a byte-exact valid record that the scan lands on; the CRC makes a false match inside random
 * damage a 2^-32 event.)
 *
 * ## Durability per kind (fsync batching)
 * - alert: append() resolves after the batch holding it was written and fdatasync'ed.
 * - telemetry: append() resolves after the write() (in the page cache, safe against a process crash,
 *   not against a power cut); it is fdatasync'ed at the latest `telemetrySyncMs` later, or earlier by
 *   any alert's sync, sync(), compaction or close(). Up to that long of telemetry can be lost on a cut.
 * - ack(): the entry leaves memory at once; its REMOVE record is written in the background and synced
 *   with the next sync. Lost acks after a cut only cause a duplicate send (alerts carry an `id`).
 * Concurrent appends are group-committed: one write() and at most one fdatasync per batch.
 *
 * ## Memory
 * Live entries are also kept in memory (payload included), so `entries()` is synchronous; memory is
 * about `bytes`, bounded by maxBytes for telemetry. Open reads the whole log at once; the log stays below
 * ~2× live bytes + compactMinBytes because of compaction.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Logger } from 'pino';
import { systemClock, type Clock, type Timer } from '../core/clock.js';
import type { Component } from '../core/component.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';

export type OutboxKind = 'alert' | 'telemetry';

export interface OutboxEntry {
  /** Monotonic across restarts; assigned by append(). */
  readonly seq: number;
  readonly kind: OutboxKind;
  readonly topic: string;
  /** Returned as it was given: a string stays a string, a Buffer/Uint8Array comes back as a Buffer. */
  readonly payload: string | Buffer;
  readonly qos: 0 | 1;
  readonly retain?: boolean;
  /** ms epoch when it was appended. */
  readonly addedAt: number;
}

/** What append() takes: an entry without seq; addedAt defaults to the clock's now. */
export interface OutboxInput {
  kind: OutboxKind;
  topic: string;
  payload: string | Uint8Array;
  qos: 0 | 1;
  retain?: boolean;
  addedAt?: number;
}

export interface OutboxOptions {
  dir: string;
  /** Bound on the live entries' record bytes. Telemetry is evicted to stay under it; alerts never are. */
  maxBytes: number;
  log?: Logger;
  /** Unsynced telemetry is fdatasync'ed at most this many ms after it was written. Default `DEFAULTS.component.outbox`. */
  telemetrySyncMs?: number;
  /** Compact when dead bytes in the log exceed both the live bytes and this. Default `DEFAULTS.component.outbox`. */
  compactMinBytes?: number;
  clock?: Clock;
}

/** Public counters for /metrics. They count since open(). */
export interface OutboxCounters {
  /** Telemetry entries evicted, oldest first, to make room for a newer entry. */
  evictedTelemetry: number;
  evictedTelemetryBytes: number;
  /** Telemetry entries not stored because alerts alone fill the bound (append() resolved with 0). */
  refusedTelemetry: number;
  /** Alerts accepted although the outbox was over its bound (alerts are never dropped). */
  alertsOverBound: number;
  /** Damaged byte ranges skipped at open (CRC or framing failed, valid records followed). */
  corruptRecords: number;
  /** Bytes cut off a torn tail at open. */
  tornTailBytes: number;
  compactions: number;
}

export type ByKind = Record<OutboxKind, number>;

export const LOG_FILE = 'outbox.log';
const TMP_FILE = 'outbox.log.tmp';

const MAGIC = Buffer.from([0x4f, 0x42, 0x58, 0x01]);
const HEADER = 12;
/** MQTT's own packet limit (256 MiB); anything longer is damage, not a record. */
const MAX_BODY = 268_435_455;
const T_ENTRY = 1;
const T_REMOVE = 2;
const T_META = 3;
const ENTRY_FIXED = 1 + 1 + 1 + 1 + 8 + 8 + 2;
const F_RETAIN = 1;
const F_BUFFER = 2;

// ---------------------------------------------------------------------------------------------------
// CRC-32 (IEEE, the zlib/PNG one). node:zlib has crc32 from Node 20.15; older 20.x get the table.

let crcTable: Uint32Array | undefined;
function tableCrc32(data: Uint8Array, prev = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = (prev ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
/** Exported for tests (the table version must agree with zlib's). */
export const crc32: (data: Uint8Array, prev?: number) => number = nativeCrc32 ? (d, p = 0) => nativeCrc32(d, p) : tableCrc32;
export { tableCrc32 as _tableCrc32 };

// ---------------------------------------------------------------------------------------------------
// Records

function frame(body: Buffer): Buffer {
  const rec = Buffer.allocUnsafe(HEADER + body.length);
  MAGIC.copy(rec, 0);
  rec.writeUInt32LE(body.length, 4);
  rec.writeUInt32LE(crc32(body, crc32(rec.subarray(4, 8))), 8);
  body.copy(rec, HEADER);
  return rec;
}

function encodeEntry(e: OutboxEntry): Buffer {
  const topic = Buffer.from(e.topic, 'utf8');
  const payload = typeof e.payload === 'string' ? Buffer.from(e.payload, 'utf8') : e.payload;
  const body = Buffer.allocUnsafe(ENTRY_FIXED + topic.length + payload.length);
  let o = 0;
  o = body.writeUInt8(T_ENTRY, o);
  o = body.writeUInt8(e.kind === 'alert' ? 0 : 1, o);
  o = body.writeUInt8(e.qos, o);
  o = body.writeUInt8((e.retain ? F_RETAIN : 0) | (typeof e.payload === 'string' ? 0 : F_BUFFER), o);
  o = body.writeBigUInt64LE(BigInt(e.seq), o);
  o = body.writeDoubleLE(e.addedAt, o);
  o = body.writeUInt16LE(topic.length, o);
  o += topic.copy(body, o);
  payload.copy(body, o);
  return frame(body);
}

function encodeRemove(seq: number, reason: 'acked' | 'evicted'): Buffer {
  const body = Buffer.allocUnsafe(10);
  body.writeUInt8(T_REMOVE, 0);
  body.writeUInt8(reason === 'acked' ? 0 : 1, 1);
  body.writeBigUInt64LE(BigInt(seq), 2);
  return frame(body);
}

function encodeMeta(nextSeq: number): Buffer {
  const body = Buffer.allocUnsafe(9);
  body.writeUInt8(T_META, 0);
  body.writeBigUInt64LE(BigInt(nextSeq), 1);
  return frame(body);
}

type Decoded = { type: 'entry'; entry: OutboxEntry } | { type: 'remove'; seq: number } | { type: 'meta'; nextSeq: number };

function u64(buf: Buffer, o: number): number | undefined {
  const v = buf.readBigUInt64LE(o);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}

/** Decodes a body whose CRC already matched; undefined if its contents make no sense. */
function decodeBody(body: Buffer): Decoded | undefined {
  if (body.length < 1) return undefined;
  const type = body[0];
  if (type === T_ENTRY) {
    if (body.length < ENTRY_FIXED) return undefined;
    const kind = body[1] === 0 ? 'alert' : body[1] === 1 ? 'telemetry' : undefined;
    const qos = body[2];
    const flags = body[3]!;
    const seq = u64(body, 4);
    const addedAt = body.readDoubleLE(12);
    const topicLen = body.readUInt16LE(20);
    if (!kind || (qos !== 0 && qos !== 1) || seq === undefined || flags > 3 || ENTRY_FIXED + topicLen > body.length) return undefined;
    const topic = body.toString('utf8', ENTRY_FIXED, ENTRY_FIXED + topicLen);
    const raw = body.subarray(ENTRY_FIXED + topicLen);
    const payload = flags & F_BUFFER ? Buffer.from(raw) : raw.toString('utf8');
    const entry: OutboxEntry = { seq, kind, topic, payload, qos, addedAt, ...(flags & F_RETAIN ? { retain: true } : {}) };
    return { type: 'entry', entry: Object.freeze(entry) };
  }
  if (type === T_REMOVE && body.length === 10) {
    const seq = u64(body, 2);
    return seq === undefined ? undefined : { type: 'remove', seq };
  }
  if (type === T_META && body.length === 9) {
    const nextSeq = u64(body, 1);
    return nextSeq === undefined ? undefined : { type: 'meta', nextSeq };
  }
  return undefined;
}

/** The record at `pos`, if magic, length, CRC and contents all check out. */
function readRecord(buf: Buffer, pos: number): { rec: Decoded; end: number } | undefined {
  if (pos + HEADER > buf.length || buf.compare(MAGIC, 0, 4, pos, pos + 4) !== 0) return undefined;
  const len = buf.readUInt32LE(pos + 4);
  if (len > MAX_BODY || pos + HEADER + len > buf.length) return undefined;
  const body = buf.subarray(pos + HEADER, pos + HEADER + len);
  if (crc32(body, crc32(buf.subarray(pos + 4, pos + 8))) !== buf.readUInt32LE(pos + 8)) return undefined;
  const rec = decodeBody(body);
  return rec && { rec, end: pos + HEADER + len };
}

export interface ScanResult {
  /** Valid records in file order, with their size in bytes. */
  records: { rec: Decoded; size: number }[];
  /** End of the last valid record: everything after it is a torn tail. */
  validEnd: number;
  /** Skipped damaged ranges [from, to) that valid records followed. */
  corrupt: [number, number][];
}

/** Reads a log image: valid records in order, damaged ranges skipped by re-synchronising on MAGIC. */
export function scanLog(buf: Buffer): ScanResult {
  const records: { rec: Decoded; size: number }[] = [];
  const corrupt: [number, number][] = [];
  let pos = 0;
  let validEnd = 0;
  while (pos < buf.length) {
    const r = readRecord(buf, pos);
    if (r) {
      records.push({ rec: r.rec, size: r.end - pos });
      pos = validEnd = r.end;
      continue;
    }
    // Damage at pos: find the next offset where a whole valid record starts.
    let next = -1;
    for (let q = buf.indexOf(MAGIC, pos + 1); q !== -1; q = buf.indexOf(MAGIC, q + 1)) {
      if (readRecord(buf, q)) {
        next = q;
        break;
      }
    }
    if (next === -1) break; // torn tail
    corrupt.push([pos, next]);
    pos = next;
  }
  return { records, validEnd, corrupt };
}

// ---------------------------------------------------------------------------------------------------

interface Slot {
  entry: OutboxEntry;
  /** Record bytes on disk. */
  size: number;
}

interface PendingWrite {
  buf: Buffer;
  /** fdatasync before resolving (alerts). */
  sync: boolean;
  /** Seq of the entry this record adds, so a failed write can take it back out of memory. */
  adds?: number;
  resolve?: () => void;
  reject?: (err: unknown) => void;
}

function checkInput(e: OutboxInput): void {
  if (e === null || typeof e !== 'object') throw new TypeError('outbox entry must be an object');
  if (e.kind !== 'alert' && e.kind !== 'telemetry') throw new TypeError(`outbox entry kind must be 'alert' or 'telemetry', got ${String(e.kind)}`);
  if (typeof e.topic !== 'string' || e.topic === '') throw new TypeError('outbox entry topic must be a non-empty string');
  if (Buffer.byteLength(e.topic, 'utf8') > 0xffff) throw new RangeError('outbox entry topic is longer than 65535 bytes (the MQTT limit)');
  if (typeof e.payload !== 'string' && !(e.payload instanceof Uint8Array)) throw new TypeError('outbox entry payload must be a string or a Buffer');
  if (e.qos !== 0 && e.qos !== 1) throw new TypeError(`outbox entry qos must be 0 or 1, got ${String(e.qos)}`);
  if (e.retain !== undefined && typeof e.retain !== 'boolean') throw new TypeError('outbox entry retain must be a boolean');
  if (e.addedAt !== undefined && !Number.isFinite(e.addedAt)) throw new TypeError('outbox entry addedAt must be a finite number');
}

async function fsyncDir(dir: string): Promise<void> {
  const dh = await fsp.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * The durable outbox. Lifecycle: `new Outbox(opts)` stores options; `open()` recovers; `close()` flushes.
 * Also a Component (`start`/`stop` = `open`/`close`).
 */
export class Outbox implements Component {
  readonly name = 'outbox';
  readonly counters: OutboxCounters = {
    evictedTelemetry: 0,
    evictedTelemetryBytes: 0,
    refusedTelemetry: 0,
    alertsOverBound: 0,
    corruptRecords: 0,
    tornTailBytes: 0,
    compactions: 0,
  };

  private readonly opts: OutboxOptions;
  private log: Logger = silentLogger;
  private clock: Clock = systemClock;
  private fh: fsp.FileHandle | undefined;
  private state: 'new' | 'open' | 'closing' | 'closed' = 'new';

  /** Live entries in seq order (Map keeps insertion order; seq is assigned in insertion order). */
  private readonly live = new Map<number, Slot>();
  /** The telemetry subset, also in seq order: its first key is the next to evict. */
  private readonly liveTelemetry = new Map<number, Slot>();
  private readonly depthBy: ByKind = { alert: 0, telemetry: 0 };
  private readonly bytesBy: ByKind = { alert: 0, telemetry: 0 };
  private seqNext = 1;

  /** Bytes written to the current log file. */
  private fileBytes = 0;
  private pending: PendingWrite[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private compactScheduled = false;
  /** Writes are serialised on this chain (flushes, syncs, compaction). */
  private chain: Promise<void> = Promise.resolve();
  /** Data written but not yet fdatasync'ed. */
  private unsynced = false;
  private syncTimer: Timer | undefined;
  private overBoundWarned = false;
  private evictionWarned = false;
  private refuseWarned = false;
  private closing: Promise<void> | undefined;
  /** After a failed compaction, the next try waits until the file has reached this size. */
  private compactRetryAt = 0;

  constructor(opts: OutboxOptions) {
    this.opts = opts;
  }

  private get logPath(): string {
    return path.join(this.opts.dir, LOG_FILE);
  }
  private get tmpPath(): string {
    return path.join(this.opts.dir, TMP_FILE);
  }
  private get telemetrySyncMs(): number {
    return this.opts.telemetrySyncMs ?? DEFAULTS.component.outbox.telemetrySyncMs;
  }
  private get compactMinBytes(): number {
    return this.opts.compactMinBytes ?? DEFAULTS.component.outbox.compactMinBytes;
  }

  // ----- lifecycle ------------------------------------------------------------------------------------

  /** Creates the directory, recovers the log (torn tail truncated, damage skipped), opens it for append. */
  async open(): Promise<void> {
    if (this.state !== 'new') throw new Error(`outbox open: already ${this.state}`);
    try {
      await this.recover();
    } catch (err) {
      this.state = 'closed'; // half-recovered state is not reusable: make a new Outbox
      throw err;
    }
  }

  private async recover(): Promise<void> {
    const { dir, maxBytes } = this.opts;
    if (typeof dir !== 'string' || dir === '') throw new TypeError('outbox dir must be a non-empty path');
    if (!(Number.isFinite(maxBytes) && maxBytes > 0)) throw new RangeError(`outbox maxBytes must be a positive number, got ${maxBytes}`);
    this.log = (this.opts.log ?? silentLogger).child({ module: 'outbox' });
    this.clock = this.opts.clock ?? systemClock;

    await fsp.mkdir(dir, { recursive: true });
    // A .tmp is a compaction that did not reach its rename: the log it was to replace is authoritative.
    await fsp.rm(this.tmpPath, { force: true });

    let image: Buffer | undefined;
    try {
      image = await fsp.readFile(this.logPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }

    let rewrite = image === undefined;
    if (image) {
      const scan = scanLog(image);
      let maxSeq = 0;
      for (const { rec: r, size } of scan.records) {
        if (r.type === 'meta') this.seqNext = Math.max(this.seqNext, r.nextSeq);
        else if (r.type === 'remove') {
          maxSeq = Math.max(maxSeq, r.seq);
          this.removeLive(r.seq);
        } else if (r.entry.seq > maxSeq) {
          maxSeq = r.entry.seq;
          this.addLive(r.entry, size);
        } else {
          // Cannot happen with this writer; an entry must never come back after its REMOVE.
          this.log.error({ seq: r.entry.seq }, 'outbox: entry out of seq order in the log, skipped');
        }
      }
      this.seqNext = Math.max(this.seqNext, maxSeq + 1);
      for (const [from, to] of scan.corrupt) {
        this.counters.corruptRecords++;
        this.log.error({ file: this.logPath, from, to }, `outbox: damaged record(s) at bytes ${from}..${to} failed CRC/framing; skipped, later records kept`);
      }
      const torn = image.length - scan.validEnd;
      if (torn > 0) {
        this.counters.tornTailBytes = torn;
        this.log.warn({ file: this.logPath, at: scan.validEnd, bytes: torn }, `outbox: torn tail of ${torn} bytes after the last complete record truncated`);
        if (scan.corrupt.length === 0) {
          const fh = await fsp.open(this.logPath, 'r+');
          try {
            await fh.truncate(scan.validEnd);
            await fh.sync();
          } finally {
            await fh.close();
          }
        }
      }
      this.fileBytes = scan.validEnd;
      rewrite = scan.corrupt.length > 0 || this.deadBytes() > Math.max(this.liveBytes(), this.compactMinBytes);
      this.log.info({ depth: { ...this.depthBy }, bytes: { ...this.bytesBy }, nextSeq: this.seqNext }, 'outbox: recovered');
    }

    if (rewrite) await this.writeCompacted();
    this.fh = await fsp.open(this.logPath, 'a');
    this.state = 'open';
    // maxBytes may have been lowered since the log was written.
    if (this.liveBytes() > maxBytes) this.makeRoom(0);
  }

  /** Flushes and fdatasyncs what is pending, closes the file. Safe to call twice (and concurrently). */
  close(): Promise<void> {
    if (this.state === 'new') this.state = 'closed';
    if (this.state === 'open') this.closing = this.closeNow();
    return this.closing ?? Promise.resolve();
  }

  private async closeNow(): Promise<void> {
    this.state = 'closing';
    this.syncTimer?.cancel();
    this.syncTimer = undefined;
    try {
      await this.run(() => this.flush(true));
    } finally {
      const fh = this.fh;
      this.fh = undefined;
      this.state = 'closed';
      await fh?.close();
    }
  }

  start(): Promise<void> {
    return this.open();
  }
  stop(): Promise<void> {
    return this.close();
  }

  // ----- the API the publisher uses ------------------------------------------------------------------

  /**
   * Appends an entry; resolves with its seq once it is on disk (alerts: fdatasync'ed; telemetry:
   * written, synced within telemetrySyncMs). Resolves with 0 — not stored — for telemetry that cannot
   * fit because alerts alone fill maxBytes (counted in counters.refusedTelemetry). Alerts are always
   * stored, even over the bound.
   */
  append(input: OutboxInput): Promise<number> {
    if (this.state !== 'open') return Promise.reject(new Error(`outbox append: outbox is ${this.state}, not open`));
    try {
      checkInput(input);
    } catch (err) {
      return Promise.reject(err);
    }
    const seq = this.seqNext;
    const entry: OutboxEntry = {
      seq,
      kind: input.kind,
      topic: input.topic,
      payload: typeof input.payload === 'string' ? input.payload : Buffer.from(input.payload),
      qos: input.qos,
      addedAt: input.addedAt ?? this.clock.now(),
      ...(input.retain ? { retain: true } : {}),
    };
    const buf = encodeEntry(entry);
    if (!this.makeRoom(buf.length, entry.kind)) {
      this.counters.refusedTelemetry++;
      return Promise.resolve(0);
    }
    this.seqNext++;
    Object.freeze(entry);
    this.addLive(entry, buf.length);
    return new Promise<number>((resolve, reject) => {
      this.enqueue({ buf, sync: entry.kind === 'alert', adds: seq, resolve: () => resolve(seq), reject });
    });
  }

  /**
   * Removes an entry after the broker acknowledged it. Returns false if the seq is not in the outbox.
   * The removal is persisted in the background (a lost REMOVE only means a duplicate send).
   */
  ack(seq: number): boolean {
    if (this.state !== 'open') return false;
    if (!this.removeLive(seq)) return false;
    this.enqueue({ buf: encodeRemove(seq, 'acked'), sync: false });
    this.maybeCompact();
    return true;
  }

  /** The oldest live entry. */
  peek(): OutboxEntry | undefined {
    const first = this.live.values().next();
    return first.done ? undefined : first.value.entry;
  }

  /**
   * Live entries oldest first. The iterator is live: entries acked during iteration are skipped,
   * entries appended during iteration are visited — so a drain loop can ack as it goes.
   */
  *entries(): IterableIterator<OutboxEntry> {
    for (const slot of this.live.values()) yield slot.entry;
  }

  [Symbol.iterator](): IterableIterator<OutboxEntry> {
    return this.entries();
  }

  get(seq: number): OutboxEntry | undefined {
    return this.live.get(seq)?.entry;
  }

  has(seq: number): boolean {
    return this.live.has(seq);
  }

  /** Live entry count by kind. */
  get depth(): Readonly<ByKind> {
    return { ...this.depthBy };
  }

  /** Live record bytes by kind (what maxBytes bounds). */
  get bytes(): Readonly<ByKind> {
    return { ...this.bytesBy };
  }

  get size(): number {
    return this.live.size;
  }

  /** The seq the next append will get. */
  get nextSeq(): number {
    return this.seqNext;
  }

  /** Size of the log file as written (live + dead records). */
  get fileSize(): number {
    return this.fileBytes;
  }

  /** Writes and fdatasyncs everything pending (unsynced telemetry, acks). */
  sync(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(new Error(`outbox sync: outbox is ${this.state}, not open`));
    return this.run(() => this.flush(true));
  }

  /** Rewrites the log with only the live entries now (normally automatic). */
  compact(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(new Error(`outbox compact: outbox is ${this.state}, not open`));
    this.compactScheduled = true;
    return this.run(() => this.compactNow());
  }

  // ----- accounting -----------------------------------------------------------------------------------

  private liveBytes(): number {
    return this.bytesBy.alert + this.bytesBy.telemetry;
  }

  private deadBytes(): number {
    return this.fileBytes + this.pendingBytes - this.liveBytes();
  }

  private addLive(entry: OutboxEntry, size: number): void {
    const slot = { entry, size };
    this.live.set(entry.seq, slot);
    if (entry.kind === 'telemetry') this.liveTelemetry.set(entry.seq, slot);
    this.depthBy[entry.kind]++;
    this.bytesBy[entry.kind] += size;
  }

  private removeLive(seq: number): Slot | undefined {
    const slot = this.live.get(seq);
    if (!slot) return undefined;
    this.live.delete(seq);
    this.liveTelemetry.delete(seq);
    this.depthBy[slot.entry.kind]--;
    this.bytesBy[slot.entry.kind] -= slot.size;
    return slot;
  }

  /**
   * Evicts telemetry, oldest first, until `size` more bytes fit under maxBytes. Returns false (and evicts
   * nothing) for telemetry that could not fit even with all telemetry gone. An alert always returns
   * true, over the bound if need be. Each condition is logged once per burst; a burst ends when an
   * append fits without evicting.
   */
  private makeRoom(size: number, kind: OutboxKind = 'alert'): boolean {
    const max = this.opts.maxBytes;
    if (kind === 'telemetry' && this.bytesBy.alert + size > max) {
      if (!this.refuseWarned) {
        this.log.warn({ alertBytes: this.bytesBy.alert, size, maxBytes: max }, 'outbox: alerts fill the bound; telemetry is not stored until they are acked');
        this.refuseWarned = true;
      }
      return false;
    }
    let evicted = 0;
    let evictedBytes = 0;
    while (this.liveBytes() + size > max && this.liveTelemetry.size > 0) {
      const seq = this.liveTelemetry.keys().next().value as number;
      const slot = this.removeLive(seq)!;
      this.enqueue({ buf: encodeRemove(seq, 'evicted'), sync: false });
      evicted++;
      evictedBytes += slot.size;
    }
    if (evicted > 0) {
      this.counters.evictedTelemetry += evicted;
      this.counters.evictedTelemetryBytes += evictedBytes;
      if (!this.evictionWarned) {
        this.log.warn({ evicted, maxBytes: max }, 'outbox: full; evicting the oldest telemetry');
        this.evictionWarned = true;
      }
      this.maybeCompact();
    }
    const over = this.liveBytes() + size > max;
    if (over) {
      // Only alerts are left: accept anyway.
      if (size > 0) this.counters.alertsOverBound++;
      if (!this.overBoundWarned) {
        this.log.warn({ alertBytes: this.bytesBy.alert, size, maxBytes: max }, 'outbox: alerts exceed the bound; accepting them anyway (alerts are never dropped)');
        this.overBoundWarned = true;
      }
    } else if (evicted === 0) {
      this.evictionWarned = this.overBoundWarned = this.refuseWarned = false;
    }
    return true;
  }

  // ----- writing --------------------------------------------------------------------------------------

  /** Serialises an operation on the write chain. */
  private run<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op);
    this.chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  private enqueue(w: PendingWrite): void {
    this.pending.push(w);
    this.pendingBytes += w.buf.length;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Everything enqueued before this runs (same tick, or while the previous batch was written) goes
    // into one write and at most one fdatasync: group commit.
    void this.run(() => this.flush(false));
  }

  /** Writes the pending batch; fdatasyncs if the batch holds an alert, or if `force` and anything is unsynced. */
  private async flush(force: boolean): Promise<void> {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const fh = this.fh;
    if (!fh) {
      const err = new Error('outbox: file is closed');
      for (const w of batch) w.reject?.(err);
      return;
    }
    const before = this.fileBytes;
    try {
      if (batch.length > 0) {
        const buf = batch.length === 1 ? batch[0]!.buf : Buffer.concat(batch.map((w) => w.buf));
        let off = 0;
        while (off < buf.length) {
          const { bytesWritten } = await fh.write(buf, off, buf.length - off);
          if (bytesWritten <= 0) throw new Error('outbox: write made no progress');
          off += bytesWritten;
        }
        this.fileBytes += buf.length;
        this.unsynced = true;
      }
      if (this.unsynced && (force || batch.some((w) => w.sync))) {
        await fh.datasync();
        this.unsynced = false;
        this.syncTimer?.cancel();
        this.syncTimer = undefined;
      }
    } catch (err) {
      // Take the batch back: cut the file to where it was (a partial record would otherwise sit
      // there; recovery would skip it, but better not leave it) and the entries out of memory.
      this.fileBytes = before;
      await fh.truncate(before).catch((e: unknown) => this.log.error({ err: e }, 'outbox: truncate after a failed write failed'));
      for (const w of batch) if (w.adds !== undefined) this.removeLive(w.adds);
      this.log.error({ err, records: batch.length }, 'outbox: write failed; appends in the batch rejected');
      for (const w of batch) w.reject?.(err);
      return;
    }
    if (this.unsynced && !this.syncTimer && this.state === 'open') {
      this.syncTimer = this.clock.setTimeout(() => {
        this.syncTimer = undefined;
        if (this.state === 'open') void this.run(() => this.flush(true)).catch((err: unknown) => this.log.error({ err }, 'outbox: periodic sync failed'));
      }, this.telemetrySyncMs);
    }
    for (const w of batch) w.resolve?.();
  }

  private maybeCompact(): void {
    if (this.compactScheduled || this.state !== 'open') return;
    const dead = this.deadBytes();
    if (dead > this.liveBytes() && dead > this.compactMinBytes && this.fileBytes >= this.compactRetryAt) {
      this.compactScheduled = true;
      void this.run(() => this.compactNow()).catch((err: unknown) => this.log.error({ err }, 'outbox: compaction failed'));
    }
  }

  private async compactNow(): Promise<void> {
    try {
      // Everything appended so far goes to the old log first (resolving its appends), so the snapshot
      // below has nothing pending; records enqueued during the awaits below go to the new log after.
      await this.flush(false);
      const before = this.fileBytes;
      try {
        await this.writeCompacted();
      } catch (err) {
        // The old log is untouched and still in use; try again after it has grown some more.
        this.compactRetryAt = this.fileBytes + this.compactMinBytes;
        throw err;
      }
      // The name now points at the new file; the old handle would write into an unlinked inode. If the
      // new one cannot be opened, fh stays unset and appends reject (loudly) rather than vanish.
      const old = this.fh;
      this.fh = undefined;
      await old?.close().catch(() => undefined);
      this.fh = await fsp.open(this.logPath, 'a');
      this.counters.compactions++;
      this.log.debug({ before, after: this.fileBytes, live: this.live.size }, 'outbox: compacted');
    } finally {
      this.compactScheduled = false;
    }
  }

  /**
   * META + the live entries → tmp, fsync, rename over the log, fsync the directory. Synchronous from
   * the snapshot to the first await, so the snapshot is exactly the live set at that moment.
   */
  private async writeCompacted(): Promise<void> {
    // Entries whose records are still pending are the newest ones; they are appended to the new log
    // after it is in place, so they must not be in the snapshot too.
    const pendingAdds = new Set<number>();
    for (const w of this.pending) if (w.adds !== undefined) pendingAdds.add(w.adds);
    const parts = [encodeMeta(this.seqNext)];
    for (const slot of this.live.values()) if (!pendingAdds.has(slot.entry.seq)) parts.push(encodeEntry(slot.entry));
    const image = Buffer.concat(parts);
    try {
      const fh = await fsp.open(this.tmpPath, 'w');
      try {
        await fh.writeFile(image);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(this.tmpPath, this.logPath);
    } catch (err) {
      await fsp.rm(this.tmpPath, { force: true }).catch(() => undefined);
      throw err;
    }
    this.fileBytes = image.length;
    this.unsynced = false;
    // Makes the rename itself durable. Should it fail, the name points at the old or the new log after
    // a cut, both complete; only unsynced REMOVEs may be missing from the old one (= duplicates).
    await fsyncDir(this.opts.dir).catch((err: unknown) => this.log.error({ err }, 'outbox: fsync of the directory failed'));
  }
}

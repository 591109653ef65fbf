import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { LOG_FILE, Outbox, _tableCrc32, crc32, scanLog, type OutboxEntry, type OutboxOptions } from '#agent/publish/outbox.js';

const CHILD = fileURLToPath(new URL('./outbox-crash-child.js', import.meta.url));

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'outbox-test-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A real pino logger whose lines the test can read. */
function capture(): { log: pino.Logger; lines: { level: number; msg: string; [k: string]: unknown }[] } {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

async function opened(opts: OutboxOptions): Promise<Outbox> {
  const o = new Outbox(opts);
  await o.open();
  return o;
}

const alert = (n: number, extra = '') => ({ kind: 'alert' as const, topic: 'anomaly/dev/alerts', payload: JSON.stringify({ id: `i${n}`, n, extra }), qos: 1 as const });
const telemetry = (n: number, bytes = 100) => ({ kind: 'telemetry' as const, topic: 'anomaly/dev/telemetry/rpm', payload: Buffer.alloc(bytes, n & 0xff), qos: 0 as const });
const seqs = (o: Outbox) => [...o.entries()].map((e) => e.seq);

test('crc32: the table fallback agrees with zlib (check value of "123456789" is cbf43926)', () => {
  const data = Buffer.from('123456789');
  assert.equal(_tableCrc32(data), 0xcbf43926);
  assert.equal(crc32(data), 0xcbf43926);
  assert.equal(_tableCrc32(data.subarray(4), _tableCrc32(data.subarray(0, 4))), 0xcbf43926);
});

test('append / entries / ack round trip, with depth and bytes by kind', async (t) => {
  const dir = await tempDir(t);
  const o = await opened({ dir, maxBytes: 1 << 20 });
  t.after(() => o.close());
  assert.equal(o.peek(), undefined);
  const s1 = await o.append({ ...alert(1), retain: true, addedAt: 1234 });
  const s2 = await o.append(telemetry(2));
  const s3 = await o.append({ kind: 'alert', topic: 'anomaly/dev/status', payload: Buffer.from([0, 1, 2, 255]), qos: 1 });
  assert.deepEqual([s1, s2, s3], [1, 2, 3]);
  const es = [...o.entries()];
  assert.deepEqual(es.map((e) => e.seq), [1, 2, 3]);
  assert.deepEqual(es[0], { seq: 1, kind: 'alert', topic: 'anomaly/dev/alerts', payload: JSON.stringify({ id: 'i1', n: 1, extra: '' }), qos: 1, retain: true, addedAt: 1234 });
  assert.equal(es[1]!.kind, 'telemetry');
  assert.ok(Buffer.isBuffer(es[1]!.payload));
  assert.deepEqual(es[2]!.payload, Buffer.from([0, 1, 2, 255]));
  assert.equal(es[2]!.retain, undefined);
  assert.ok(Math.abs(es[2]!.addedAt - Date.now()) < 60_000);
  assert.deepEqual(o.depth, { alert: 2, telemetry: 1 });
  assert.ok(o.bytes.alert > 0 && o.bytes.telemetry > 100);
  assert.equal(o.peek()!.seq, 1);

  assert.equal(o.ack(2), true);
  assert.equal(o.ack(2), false, 'acking twice is a no-op');
  assert.equal(o.ack(99), false);
  assert.deepEqual(seqs(o), [1, 3]);
  assert.deepEqual(o.depth, { alert: 2, telemetry: 0 });
  assert.equal(o.bytes.telemetry, 0);
  assert.equal(o.get(3)!.topic, 'anomaly/dev/status');

  // The iterator is live: acking during a drain skips nothing and repeats nothing.
  const drained: number[] = [];
  for (const e of o) {
    drained.push(e.seq);
    o.ack(e.seq);
    if (e.seq === 1) void o.append(alert(4));
  }
  assert.deepEqual(drained, [1, 3, 4]);
  assert.equal(o.size, 0);
  await o.sync();
});

test('boundary checks: bad entries and bad options are refused with a named message', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(new Outbox({ dir, maxBytes: 0 }).open(), /maxBytes must be a positive number/);
  const o = await opened({ dir, maxBytes: 1 << 20 });
  await assert.rejects(o.append({ ...alert(1), kind: 'score' as 'alert' }), /kind must be 'alert' or 'telemetry'/);
  await assert.rejects(o.append({ ...alert(1), qos: 2 as 1 }), /qos must be 0 or 1/);
  await assert.rejects(o.append({ ...alert(1), topic: '' }), /topic must be a non-empty string/);
  await assert.rejects(o.append({ ...alert(1), payload: 5 as unknown as string }), /payload must be a string or a Buffer/);
  await o.close();
  await o.close(); // twice is fine
  await assert.rejects(o.append(alert(1)), /outbox is closed/);
  assert.equal(o.ack(1), false);
});

test('reopen after close keeps un-acked entries in order and continues seq', async (t) => {
  const dir = await tempDir(t);
  const a = await opened({ dir, maxBytes: 1 << 20 });
  for (let i = 1; i <= 6; i++) await a.append(i % 2 ? alert(i) : telemetry(i));
  a.ack(2);
  a.ack(5);
  const before = [...a.entries()];
  await a.close();

  const b = await opened({ dir, maxBytes: 1 << 20 });
  assert.deepEqual([...b.entries()], before);
  assert.deepEqual(seqs(b), [1, 3, 4, 6]);
  assert.equal(await b.append(alert(7)), 7);
  // Ack everything and compact: the log then holds no entry, only META keeps the seq.
  for (const s of seqs(b)) b.ack(s);
  await b.compact();
  await b.close();

  const c = await opened({ dir, maxBytes: 1 << 20 });
  assert.equal(c.size, 0);
  assert.equal(c.nextSeq, 8);
  assert.equal(await c.append(alert(8)), 8);
  await c.close();
});

test('eviction: telemetry goes oldest first; alerts are never evicted, even over the bound (one warning per burst)', async (t) => {
  const dir = await tempDir(t);
  const { log, lines } = capture();
  // Measure one telemetry record.
  const probe = await opened({ dir: path.join(dir, 'probe'), maxBytes: 1 << 20 });
  await probe.append(telemetry(0));
  const tSize = probe.bytes.telemetry;
  await probe.close();

  const o = await opened({ dir, maxBytes: 10 * tSize, log });
  for (let i = 1; i <= 10; i++) await o.append(telemetry(i));
  assert.equal(o.counters.evictedTelemetry, 0, 'exactly at the bound is within it');
  await o.append(telemetry(11));
  assert.deepEqual(seqs(o), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.equal(o.counters.evictedTelemetry, 1);

  // An alert of ~2.5 telemetry records evicts the three oldest telemetry entries.
  const a1 = await o.append(alert(12, 'x'.repeat(Math.round(2.5 * tSize) - 60)));
  assert.deepEqual(seqs(o), [5, 6, 7, 8, 9, 10, 11, a1]);
  assert.equal(o.counters.evictedTelemetry, 4);
  assert.ok(o.bytes.alert + o.bytes.telemetry <= 10 * tSize);

  // Alerts past the bound: all telemetry goes, every alert stays.
  const alerts = [a1];
  for (let i = 0; i < 6; i++) alerts.push(await o.append(alert(13 + i, 'y'.repeat(2 * tSize))));
  assert.deepEqual(seqs(o), alerts);
  assert.equal(o.depth.telemetry, 0);
  assert.ok(o.bytes.alert > 10 * tSize, 'over the bound');
  assert.ok(o.counters.alertsOverBound >= 2);
  const overWarnings = () => lines.filter((l) => /alerts exceed the bound/.test(l.msg)).length;
  assert.equal(overWarnings(), 1, 'one warning per burst');

  // Telemetry cannot fit while alerts fill the bound: refused (0), not stored, no alert touched.
  assert.equal(await o.append(telemetry(99)), 0);
  assert.equal(o.counters.refusedTelemetry, 1);
  assert.deepEqual(seqs(o), alerts);
  assert.equal(o.counters.evictedTelemetry, 11);

  // Alerts survive a restart, too.
  await o.close();
  const p = await opened({ dir, maxBytes: 10 * tSize, log });
  assert.deepEqual(seqs(p), alerts);
  // The burst ends once alerts are acked and an append fits; a new burst warns again.
  for (const s of alerts) p.ack(s);
  await p.append(telemetry(100));
  for (let i = 0; i < 7; i++) await p.append(alert(200 + i, 'z'.repeat(2 * tSize)));
  assert.equal(overWarnings(), 3, 'reopen warns once at open (still over), then once for the new burst');
  await p.close();
});

test('a lowered maxBytes evicts old telemetry at open', async (t) => {
  const dir = await tempDir(t);
  const a = await opened({ dir, maxBytes: 1 << 20 });
  for (let i = 1; i <= 10; i++) await a.append(telemetry(i));
  const tSize = a.bytes.telemetry / 10;
  await a.close();
  const b = await opened({ dir, maxBytes: 4 * tSize });
  assert.deepEqual(seqs(b), [7, 8, 9, 10]);
  await b.close();
});

/** Writes a small log: META, alert 1, telemetry 2, alert 3, REMOVE 2, alert 4. */
async function smallLog(dir: string): Promise<{ image: Buffer; expected: OutboxEntry[] }> {
  const o = await opened({ dir, maxBytes: 1 << 20 });
  await o.append(alert(1));
  await o.append(telemetry(2, 10));
  await o.append(alert(3));
  o.ack(2);
  await o.append(alert(4));
  const expected = [...o.entries()];
  await o.close();
  return { image: await fsp.readFile(path.join(dir, LOG_FILE)), expected };
}

test('torn tail: a cut anywhere recovers exactly the complete records before it; never throws', async (t) => {
  const dir = await tempDir(t);
  const { image } = await smallLog(path.join(dir, 'src'));
  const full = scanLog(image);
  assert.equal(full.validEnd, image.length);
  assert.deepEqual(full.corrupt, []);
  // Record boundaries, and the live seqs after replaying the records up to each.
  const ends: number[] = [];
  const liveAfter: number[][] = [];
  let pos = 0;
  const live: number[] = [];
  for (const { rec, size } of full.records) {
    pos += size;
    if (rec.type === 'entry') live.push(rec.entry.seq);
    if (rec.type === 'remove') live.splice(live.indexOf(rec.seq), 1);
    ends.push(pos);
    liveAfter.push([...live]);
  }
  const work = path.join(dir, 'cut');
  // Every offset next to a record boundary, every 3rd offset in between (each open costs an fsync).
  const near = (c: number) => ends.some((e) => Math.abs(e - c) <= 2);
  for (let cut = 0; cut < image.length; cut++) {
    if (cut % 3 !== 0 && !near(cut)) continue;
    await fsp.rm(work, { recursive: true, force: true });
    await fsp.mkdir(work);
    await fsp.writeFile(path.join(work, LOG_FILE), image.subarray(0, cut));
    const o = await opened({ dir: work, maxBytes: 1 << 20 });
    const k = ends.filter((e) => e <= cut).length;
    const validEnd = k === 0 ? 0 : ends[k - 1]!;
    assert.deepEqual(seqs(o), k === 0 ? [] : liveAfter[k - 1], `cut at ${cut}`);
    assert.equal(o.counters.tornTailBytes, cut - validEnd, `cut at ${cut}`);
    assert.equal(o.counters.corruptRecords, 0);
    if (cut % 9 !== 0 && !ends.includes(cut + 1)) {
      await o.close();
      continue;
    }
    // The tail is gone from the file, and appending continues cleanly.
    const s = await o.append(alert(50));
    await o.close();
    const again = await opened({ dir: work, maxBytes: 1 << 20 });
    assert.equal(again.counters.tornTailBytes, 0);
    assert.deepEqual(seqs(again), [...(k === 0 ? [] : liveAfter[k - 1]!), s]);
    await again.close();
  }
});

test('torn tail: garbage or zeros appended after the last record are truncated and logged', async (t) => {
  const dir = await tempDir(t);
  const { image, expected } = await smallLog(dir);
  for (const junk of [Buffer.from('garbage after a power cut'), Buffer.alloc(4096), Buffer.concat([image.subarray(0, 20), Buffer.from([1, 2])])]) {
    await fsp.writeFile(path.join(dir, LOG_FILE), Buffer.concat([image, junk]));
    const { log, lines } = capture();
    const o = await opened({ dir, maxBytes: 1 << 20, log });
    assert.deepEqual([...o.entries()], expected);
    assert.equal(o.counters.tornTailBytes, junk.length);
    assert.ok(lines.some((l) => l.level === 40 && /torn tail/.test(l.msg)));
    await o.close();
    assert.equal((await fsp.stat(path.join(dir, LOG_FILE))).size, image.length);
  }
});

test('a damaged record in the middle fails its CRC, is skipped with an error log, and the rest is kept', async (t) => {
  const dir = await tempDir(t);
  const { image, expected } = await smallLog(dir);
  const { records } = scanLog(image);
  // Offsets of the 3rd record (telemetry 2): header at off, body from off + 12.
  const off = records[0]!.size + records[1]!.size;
  assert.equal(records[2]!.rec.type, 'entry');
  const target = records[3]!; // alert 3
  const tOff = off + records[2]!.size;
  assert.equal(target.rec.type === 'entry' && target.rec.entry.seq, 3);
  // Flip a payload byte, a length byte, a magic byte, a CRC byte of alert 3.
  for (const at of [tOff + target.size - 3, tOff + 5, tOff + 1, tOff + 9]) {
    const bad = Buffer.from(image);
    bad[at]! ^= 0x40;
    await fsp.writeFile(path.join(dir, LOG_FILE), bad);
    const { log, lines } = capture();
    const o = await opened({ dir, maxBytes: 1 << 20, log });
    assert.deepEqual([...o.entries()], expected.filter((e) => e.seq !== 3), `flip at ${at}`);
    assert.equal(o.counters.corruptRecords, 1);
    assert.equal(o.counters.tornTailBytes, 0);
    assert.ok(lines.some((l) => l.level === 50 && /damaged record/.test(l.msg)));
    assert.equal(await o.append(alert(5)), 5, 'seq continues past the damage');
    await o.close();
    // Open compacted the damage away: reported once, not at every start.
    const again = await opened({ dir, maxBytes: 1 << 20 });
    assert.equal(again.counters.corruptRecords, 0);
    assert.deepEqual(seqs(again), [1, 4, 5]);
    await again.close();
  }
});

test('compaction keeps exactly the live entries, shrinks the file, and a stale .tmp is ignored', async (t) => {
  const dir = await tempDir(t);
  const o = await opened({ dir, maxBytes: 1 << 20, compactMinBytes: 4096 });
  const keep = new Set<number>();
  for (let i = 1; i <= 300; i++) {
    const s = await o.append(i % 7 === 0 ? alert(i) : telemetry(i, 200));
    if (i % 7 === 0 || i % 50 === 0) keep.add(s);
    if (i > 3) {
      const old = i - 3;
      if (!keep.has(old)) o.ack(old);
    }
  }
  for (const s of [298, 299, 300]) if (!keep.has(s)) o.ack(s);
  await o.sync();
  assert.ok(o.counters.compactions >= 1, `compactions ${o.counters.compactions}`);
  const live = [...o.entries()];
  assert.deepEqual(live.map((e) => e.seq), [...keep].sort((a, b) => a - b));
  const size = (await fsp.stat(path.join(dir, LOG_FILE))).size;
  assert.equal(size, o.fileSize);
  assert.ok(size < 2 * (o.bytes.alert + o.bytes.telemetry) + 4096 + 1000, `file ${size} B`);

  await o.compact();
  assert.equal((await fsp.stat(path.join(dir, LOG_FILE))).size, 21 + o.bytes.alert + o.bytes.telemetry, 'META + live records only');
  await o.close();

  await fsp.writeFile(path.join(dir, 'outbox.log.tmp'), 'half-written compaction');
  const p = await opened({ dir, maxBytes: 1 << 20 });
  assert.deepEqual([...p.entries()], live);
  assert.equal(p.nextSeq, 301);
  await assert.rejects(fsp.stat(path.join(dir, 'outbox.log.tmp')), /ENOENT/);
  await p.close();
});

test('throughput: 10,000 telemetry entries of 1 KB, and alerts with fdatasync (rates logged, not asserted)', async (t) => {
  const dir = await tempDir(t);
  const o = await opened({ dir, maxBytes: 64 << 20 });
  const kb = Buffer.alloc(1024, 7);
  let t0 = performance.now();
  for (let i = 0; i < 10_000; i++) await o.append({ kind: 'telemetry', topic: 'anomaly/dev/telemetry/vibration', payload: kb, qos: 0 });
  await o.sync();
  let ms = performance.now() - t0;
  t.diagnostic(`telemetry, awaited one by one: 10000 x 1 KB in ${ms.toFixed(0)} ms = ${((10_000 / ms) * 1000).toFixed(0)}/s`);
  assert.equal(o.depth.telemetry, 10_000);
  assert.ok(ms < 60_000, 'not seconds per entry');

  t0 = performance.now();
  await Promise.all(Array.from({ length: 10_000 }, () => o.append({ kind: 'telemetry', topic: 'anomaly/dev/telemetry/vibration', payload: kb, qos: 0 })));
  ms = performance.now() - t0;
  t.diagnostic(`telemetry, 10000 in flight (group commit): ${ms.toFixed(0)} ms = ${((10_000 / ms) * 1000).toFixed(0)}/s`);

  t0 = performance.now();
  for (let i = 0; i < 100; i++) await o.append(alert(i));
  ms = performance.now() - t0;
  t.diagnostic(`alerts, awaited one by one (one fdatasync each): 100 in ${ms.toFixed(0)} ms = ${((100 / ms) * 1000).toFixed(0)}/s`);

  t0 = performance.now();
  await Promise.all(Array.from({ length: 1000 }, (_, i) => o.append(alert(i))));
  ms = performance.now() - t0;
  t.diagnostic(`alerts, 1000 in flight (group commit): ${ms.toFixed(0)} ms = ${((1000 / ms) * 1000).toFixed(0)}/s`);
  await o.close();
});

// ----- crash test ---------------------------------------------------------------------------------

interface ChildRun {
  appended: Map<number, number>; // seq → n
  acked: Set<number>;
  order: number[];
}

/** Runs the child until `killAfter` appends were reported (or `killAfterMs`), then SIGKILLs it. */
function runChild(dir: string, mode: string, killAfter: number, killAfterMs?: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    const run: ChildRun = { appended: new Map(), acked: new Set(), order: [] };
    let buf = '';
    let err = '';
    let killed = false;
    const kill = () => {
      if (!killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const timer = killAfterMs !== undefined ? setTimeout(kill, killAfterMs) : setTimeout(kill, 30_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const [what, a, b] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (what === 'A') {
          run.appended.set(Number(a), Number(b));
          run.order.push(Number(a));
        } else if (what === 'K') run.acked.add(Number(a));
      }
      if (killAfterMs === undefined && run.appended.size >= killAfter) kill();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`child ended with ${code}/${signal}: ${err}`));
      else resolve(run);
    });
  });
}

async function checkAfterCrash(dir: string, run: ChildRun, maxBytes: number): Promise<void> {
  const { log, lines } = capture();
  const o = await opened({ dir, maxBytes, log });
  try {
    assert.equal(o.counters.corruptRecords, 0, 'nothing corrupt');
    assert.ok(!lines.some((l) => l.level >= 50), 'no error logged');
    const present = seqs(o);
    assert.deepEqual(present, [...present].sort((a, b) => a - b), 'in order');
    const alerts = [...o.entries()].filter((e) => e.kind === 'alert');
    const presentSet = new Set(present);
    for (const seq of run.order) if (!run.acked.has(seq)) assert.ok(presentSet.has(seq), `alert seq ${seq} resolved before the kill but is missing`);
    // Resolved, un-acked alerts appear in the order they were appended.
    const expectOrder = run.order.filter((s) => !run.acked.has(s)).sort((a, b) => a - b);
    assert.deepEqual(alerts.map((e) => e.seq).filter((s) => run.appended.has(s) && !run.acked.has(s)), expectOrder);
    for (const e of alerts) {
      const body = JSON.parse(e.payload as string) as { n: number; id: string };
      if (run.appended.has(e.seq)) assert.equal(body.n, run.appended.get(e.seq), `payload of seq ${e.seq}`);
      assert.equal(body.id, `incident-${body.n}`);
    }
    const maxSeen = Math.max(0, ...run.order, ...run.acked);
    assert.ok(o.nextSeq > maxSeen, 'seq continues after the crash');
    const s = await o.append({ kind: 'alert', topic: 'anomaly/dev/alerts', payload: '{"after":true}', qos: 1 });
    assert.ok(s > maxSeen);
  } finally {
    await o.close();
  }
  // And it opens clean a second time.
  const again = await opened({ dir, maxBytes });
  assert.equal(again.counters.tornTailBytes + again.counters.corruptRecords, 0);
  await again.close();
}

test('crash test: SIGKILL while appending alerts one by one loses no resolved alert', async (t) => {
  for (const killAfter of [1, 40, 250]) {
    const dir = await tempDir(t);
    const run = await runChild(dir, 'seq', killAfter);
    assert.ok(run.order.length >= killAfter);
    t.diagnostic(`seq: killed after ${run.order.length} resolved appends`);
    await checkAfterCrash(dir, run, 64 * 1024 * 1024);
  }
});

test('crash test: SIGKILL during concurrent alerts, telemetry, acks, eviction and compaction', async (t) => {
  for (const [killAfter, ms] of [[30, undefined], [300, undefined], [0, 400]] as const) {
    const dir = await tempDir(t);
    const run = await runChild(dir, 'mixed', killAfter, ms);
    t.diagnostic(`mixed: killed after ${run.order.length} resolved alert appends, ${run.acked.size} acks`);
    await checkAfterCrash(dir, run, 64 * 1024);
  }
});

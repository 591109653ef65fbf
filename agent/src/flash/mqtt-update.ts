/**
 * Model bundles over MQTT, for devices without SSH: `<prefix>/<dev>/models/update` in, answers on
 * `<prefix>/<dev>/models/result`.
 *
 * The sender announces the files (name, size, sha256), sends each in chunks at explicit byte offsets,
 * and commits. The device writes chunks to disk as they come (so a transfer survives a broker restart
 * or a reconnect), answers every message with the bytes it holds per file, and ignores a chunk that is
 * not at the end of what it holds — the sender resumes from `received`. On commit it checks sizes and
 * hashes and installs the bundle exactly as `models install` does (flash/install.ts: verified against
 * the device's trust, swapped by rename, reloaded, rolled back if it does not come up).
 *
 * Only an admin may publish there when the broker has users (broker/src/acl.ts: the topic's
 * publisher is `admin` in core/topics.ts; a device credential may subscribe to it, not publish).
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import type { Component } from '../core/component.js';
import { payloadProblem } from '../core/payloads.js';
import { SCHEMA_VERSION, topic, type ModelUpdatePayload, type ModelUpdateResult } from '../core/topics.js';
import { BUNDLE_FILES, InstallError, installBundle, type InstallOptions } from './install.js';

type Begin = Extract<ModelUpdatePayload, { op: 'begin' }>;

/** A transfer in progress: what was announced, and the bytes of each file held so far. */
interface Transfer {
  begin: Begin;
  received: Record<string, number>;
}

export interface ReceiverOptions {
  client: MqttClient;
  prefix: string;
  device: string;
  /** Where transfers in progress are kept (inside models.dir, so the install renames stay on one filesystem). */
  dir: string;
  install: Omit<InstallOptions, 'log'>;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  now: () => number;
}

/** Parses an update message against its schema (core/payloads.ts); a string says what is wrong with it. */
export function parseUpdate(payload: Buffer): ModelUpdatePayload | string {
  let m: unknown;
  try {
    m = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  const problem = payloadProblem('modelUpdate', m);
  if (problem !== undefined) return problem;
  const u = m as ModelUpdatePayload;
  const notBundleFile = (name: string) => (BUNDLE_FILES.includes(name) ? undefined : `file '${name}' is not a bundle file (${BUNDLE_FILES.join(', ')})`);
  if (u.op === 'begin') {
    for (const f of u.files) {
      const why = notBundleFile(f.name);
      if (why) return why;
    }
    return { op: 'begin', id: u.id, files: u.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256 })) };
  }
  if (u.op === 'chunk') return notBundleFile(u.file) ?? { op: 'chunk', id: u.id, file: u.file, offset: u.offset, data: u.data };
  return { op: u.op, id: u.id };
}

export class ModelUpdateReceiver implements Component {
  readonly name = 'model-updates';
  private readonly inTopic: string;
  private readonly outTopic: string;
  /** Messages are handled one at a time, in arrival order: chunks append to files. */
  private queue: Promise<void> = Promise.resolve();
  private readonly transfers = new Map<string, Transfer>();
  private readonly onMessage = (t: string, payload: Buffer) => {
    if (t !== this.inTopic) return;
    this.queue = this.queue.then(() => this.handle(payload)).catch((err) => this.o.log.warn({ err: (err as Error).message }, 'model update failed'));
  };

  constructor(private readonly o: ReceiverOptions) {
    this.inTopic = topic(o.prefix, o.device, 'modelUpdate');
    this.outTopic = topic(o.prefix, o.device, 'modelResult');
  }

  async start(): Promise<void> {
    this.o.client.on('message', this.onMessage);
    // mqtt.js queues the subscription while offline and renews it after reconnects: do not block the
    // daemon's start on a broker that is not there yet.
    const subscribed = this.o.client.subscribeAsync(this.inTopic, { qos: 1 }).then(
      (granted) => {
        if (granted[0]?.qos === 128) this.o.log.warn({ topic: this.inTopic }, 'the broker refused the model update subscription');
      },
      (err: Error) => this.o.log.warn({ err: err.message }, 'model update subscription failed'),
    );
    if (this.o.client.connected) await subscribed;
  }

  /**
   * Takes no more messages and lets the one in hand finish (an install is a few renames); a transfer
   * cut off here resumes from its directory after the restart.
   */
  async stop(): Promise<void> {
    this.o.client.off('message', this.onMessage);
    // Not awaited: a broker that hung would never answer. The connection's stop() gives the UNSUBACK a bounded wait.
    if (this.o.client.connected) this.o.client.unsubscribe(this.inTopic, () => {});
    await this.queue;
  }

  private transferDir(id: string): string {
    return join(this.o.dir, id);
  }

  /**
   * The transfer `id`: from memory, or — once after the agent restarted — from its directory, whose
   * files are what has arrived. Kept in memory so a chunk costs one append, not a re-read.
   */
  private async transfer(id: string): Promise<Transfer | undefined> {
    const known = this.transfers.get(id);
    if (known) return known;
    let begin: Begin;
    try {
      begin = JSON.parse(await readFile(join(this.transferDir(id), 'transfer.json'), 'utf8')) as Begin;
    } catch {
      return undefined;
    }
    const received: Record<string, number> = {};
    for (const f of begin.files) received[f.name] = await stat(join(this.transferDir(id), 'files', f.name)).then((s) => s.size, () => 0);
    const t = { begin, received };
    this.transfers.set(id, t);
    return t;
  }

  /** Sent, not awaited: the PUBACK of a broker that hung would never come, and stop() waits for the message in hand. */
  private async reply(r: Omit<ModelUpdateResult, 'v' | 't'>): Promise<void> {
    const body: ModelUpdateResult = { v: SCHEMA_VERSION, t: this.o.now(), ...r };
    this.o.client.publish(this.outTopic, JSON.stringify(body), { qos: 1 }, () => {});
  }

  private async handle(payload: Buffer): Promise<void> {
    const m = parseUpdate(payload);
    if (typeof m === 'string') {
      this.o.log.warn({ reason: m }, 'model update message refused');
      const id = (() => {
        try {
          return String((JSON.parse(payload.toString()) as { id?: unknown }).id ?? '');
        } catch {
          return '';
        }
      })();
      await this.reply({ id, op: 'status', ok: false, received: {}, error: m });
      return;
    }
    const dir = this.transferDir(m.id);
    if (m.op === 'begin') {
      let t = await this.transfer(m.id);
      // The same begin again (a sender that lost our answer) keeps what has arrived.
      if (!t || JSON.stringify(t.begin.files) !== JSON.stringify(m.files)) {
        await rm(dir, { recursive: true, force: true });
        await mkdir(join(dir, 'files'), { recursive: true });
        await writeFile(join(dir, 'transfer.json'), JSON.stringify(m));
        t = { begin: m, received: Object.fromEntries(m.files.map((f) => [f.name, 0])) };
        this.transfers.set(m.id, t);
        this.o.log.info({ id: m.id, files: m.files.map((f) => `${f.name} ${f.size} B`) }, 'model update begun');
      }
      await this.reply({ id: m.id, op: 'begin', ok: true, received: { ...t.received } });
      return;
    }
    const t = await this.transfer(m.id);
    if (!t) {
      await this.reply({ id: m.id, op: m.op, ok: false, received: {}, error: `no transfer '${m.id}' (send begin first)` });
      return;
    }
    const { begin } = t;
    if (m.op === 'chunk') {
      const spec = begin.files.find((f) => f.name === m.file);
      const have = t.received[m.file] ?? 0;
      const data = Buffer.from(m.data, 'base64');
      let error: string | undefined;
      if (!spec) error = `file '${m.file}' was not announced`;
      else if (m.offset !== have) error = `chunk at ${m.offset}, expected ${have}`; // a repeat or a gap: resume from received
      else if (have + data.length > spec.size) error = `chunk runs past the announced size ${spec.size}`;
      else {
        await appendFile(join(dir, 'files', m.file), data);
        t.received[m.file] = have + data.length;
      }
      await this.reply({ id: m.id, op: 'chunk', ok: error === undefined, received: { ...t.received }, ...(error ? { error } : {}) });
      return;
    }
    if (m.op === 'status') {
      await this.reply({ id: m.id, op: 'status', ok: true, received: { ...t.received } });
      return;
    }
    // commit
    const received = { ...t.received };
    for (const f of begin.files) {
      const bytes = await readFile(join(dir, 'files', f.name)).catch(() => Buffer.alloc(0));
      const why = bytes.length !== f.size ? `${f.name}: ${bytes.length} of ${f.size} bytes` : createHash('sha256').update(bytes).digest('hex') !== f.sha256 ? `${f.name}: sha256 differs from the announced one` : undefined;
      if (why) {
        await this.reply({ id: m.id, op: 'commit', ok: false, received, error: why });
        return;
      }
    }
    try {
      const r = await installBundle(join(dir, 'files'), { ...this.o.install, log: (line) => this.o.log.info({ id: m.id }, line) });
      await this.reply({ id: m.id, op: 'commit', ok: true, received, model: r.model, sha256: r.sha256 });
      await rm(dir, { recursive: true, force: true });
      this.transfers.delete(m.id);
    } catch (err) {
      if (!(err instanceof InstallError)) throw err;
      this.o.log.warn({ id: m.id, err: err.message }, 'model update not installed');
      await this.reply({ id: m.id, op: 'commit', ok: false, received, error: err.message });
    }
  }
}

export interface MqttFlashOptions {
  client: MqttClient;
  prefix: string;
  device: string;
  chunkBytes: number;
  /** How long to wait for each answer before asking for the status again. */
  answerTimeoutMs: number;
  /** How long the commit (install, reload, liveness) may take. */
  commitTimeoutMs: number;
  out: (line: string) => void;
}

/** Sends a bundle over MQTT and waits for the install result; resumes after lost answers or reconnects. */
export async function flashOverMqtt(bundleDir: string, o: MqttFlashOptions): Promise<ModelUpdateResult> {
  const files = [];
  const contents = new Map<string, Buffer>();
  for (const name of BUNDLE_FILES) {
    const data = await readFile(join(bundleDir, name)).catch(() => undefined);
    if (!data) continue;
    contents.set(name, data);
    files.push({ name, size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
  }
  const id = randomBytes(8).toString('hex');
  const inTopic = topic(o.prefix, o.device, 'modelUpdate');
  const outTopic = topic(o.prefix, o.device, 'modelResult');
  let waiter: ((r: ModelUpdateResult) => void) | undefined;
  const onMessage = (t: string, payload: Buffer) => {
    if (t !== outTopic) return;
    try {
      const r = JSON.parse(payload.toString()) as ModelUpdateResult;
      if (r.id === id) waiter?.(r);
    } catch {
      /* not ours */
    }
  };
  o.client.on('message', onMessage);
  await o.client.subscribeAsync(outTopic, { qos: 1 });

  /** Publishes and waits for the answer to `op`; undefined on timeout. */
  const ask = (msg: ModelUpdatePayload, timeoutMs: number): Promise<ModelUpdateResult | undefined> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiter = undefined;
        resolve(undefined);
      }, timeoutMs);
      waiter = (r) => {
        if (r.op !== msg.op && r.op !== 'status') return;
        clearTimeout(timer);
        waiter = undefined;
        resolve(r);
      };
      o.client.publish(inTopic, JSON.stringify(msg), { qos: 1 });
    });
  /** Asks until answered (the broker may be restarting). */
  const insist = async (msg: ModelUpdatePayload, timeoutMs: number): Promise<ModelUpdateResult> => {
    for (;;) {
      const r = await ask(msg, timeoutMs);
      if (r) return r;
      o.out(`no answer to ${msg.op} within ${timeoutMs / 1000} s; asking again`);
    }
  };

  try {
    let state = await insist({ op: 'begin', id, files }, o.answerTimeoutMs);
    if (!state.ok) throw new Error(`the device refused the transfer: ${state.error}`);
    for (const f of files) {
      const data = contents.get(f.name)!;
      let sent = 0;
      while ((state.received[f.name] ?? 0) < f.size) {
        const offset = state.received[f.name] ?? 0;
        const chunk = data.subarray(offset, offset + o.chunkBytes);
        const r = await ask({ op: 'chunk', id, file: f.name, offset, data: chunk.toString('base64') }, o.answerTimeoutMs);
        // No answer: ask where the device is, and go on from there.
        if (!r) o.out(`no answer to the chunk of ${f.name} at ${offset}; asking the device what it holds`);
        state = r ?? (await insist({ op: 'status', id }, o.answerTimeoutMs));
        if (!state.ok && state.error && !/^chunk at /.test(state.error)) throw new Error(`the device refused a chunk of ${f.name}: ${state.error}`);
        sent++;
      }
      o.out(`sent ${f.name} (${f.size} B, ${sent} chunk${sent === 1 ? '' : 's'})`);
    }
    const done = await ask({ op: 'commit', id }, o.commitTimeoutMs);
    if (!done) throw new Error(`no install result within ${o.commitTimeoutMs / 1000} s`);
    return done;
  } finally {
    o.client.off('message', onMessage);
  }
}

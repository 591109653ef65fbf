/**
 * Fixtures for the daemon tests (e2e, outage, robust, reload .test.ts): the compiled daemon
 * (`node dist/agent/src/cli/main.js run`), a real Mosquitto 2 and real `mosquitto_sub` processes, each
 * a child process on free ports, with their output collected line by line (and the time each line
 * arrived); the daemon's /metrics; temporary copies of model bundles. No mocks: the broker, the
 * subscriber and the daemon are the programs a user runs.
 *
 * Not a test file (`node --test` does not pick it up by its name): importing it has no side effect
 * beyond an exit hook that kills what it spawned.
 *
 * Every process spawned here is registered; `killAll()` (call it from `after`/`finally`) SIGKILLs
 * whatever still runs, so a failing test leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { signBundle } from '#agent/model/signature.js';
import type { ModelAlertPayload, StatusPayload } from '#agent/core/topics.js';

export const AGENT_MAIN = fileURLToPath(new URL(import.meta.resolve('#agent/cli/main.js'), import.meta.url));
export const MOSQUITTO = process.env.MOSQUITTO ?? '/usr/sbin/mosquitto';
export const MOSQUITTO_SUB = process.env.MOSQUITTO_SUB ?? 'mosquitto_sub';
export const STDBUF = process.env.STDBUF ?? '/usr/bin/stdbuf';
/** The seed CSVs: `<profile>/train/*.csv`, `<profile>/test/*.csv`. */
export const RAW_DATA = join(PACKAGE_ROOT, 'datas', 'raw');
export const TEST_DATA = join(RAW_DATA, 'rpm_600', 'test');
/** The trained bundles: `<profile>/<model>/bundle.json` … (made by `npm run models`). */
export const MODELS_DIR = join(PACKAGE_ROOT, 'models');
/** The device id `serviceFlags` gives the daemon. */
export const DEVICE = 'motor-1';

/**
 * Environment that preloads tfjs-probe.ts into a node process (the daemon: DaemonOptions `env`), so
 * that `tensorflowModules` can tell which @tensorflow/ modules it loaded once it has exited.
 */
export const TFJS_PROBE_ENV = { NODE_OPTIONS: `--import=${new URL('./tfjs-probe.js', import.meta.url).href}` };

/**
 * The @tensorflow/ files tfjs-probe.ts found loaded, from the process's stderr: every thread reports
 * (a worker has its own modules), the main thread last, when the process exits. Throws if none did.
 */
export function tensorflowModules(stderr: string): string[] {
  const reports = stderr.split('\n').filter((l) => l.startsWith('{"tensorflowModules":'));
  if (reports.length === 0) throw new Error(`the process did not report its @tensorflow/ modules (was tfjs-probe.js preloaded, did it exit?)\n${stderr.slice(-2000)}`);
  return [...new Set(reports.flatMap((l) => (JSON.parse(l) as { tensorflowModules: string[] }).tensorflowModules))];
}

// ---------------------------------------------------------------------------------------------
// Waiting and ports

/**
 * Polls `probe` (which may be async) until it returns something other than undefined/false; fails
 * naming `what` after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | PromiseLike<T | undefined | false>,
  timeoutMs: number,
  everyMs = 20,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A TCP port nothing listens on right now (127.0.0.1). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r, j) => {
    s.once('error', j);
    s.listen(0, '127.0.0.1', r);
  });
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.setTimeout(1000, () => done(false));
  });
}

export async function waitListening(port: number, timeoutMs: number, proc?: Proc): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await isListening(port))) {
    if (proc && !proc.running) throw new Error(`${proc.name} exited (${proc.describeExit()}) before port ${port} listened\n${proc.tail()}`);
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for port ${port} to listen`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes

export interface Line {
  text: string;
  /** Date.now() when the line was read. */
  at: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() at the exit event. */
  at: number;
}

const live = new Set<Proc>();
process.once('exit', () => {
  for (const p of live) if (p.running) p.child.kill('SIGKILL');
});

/** SIGKILLs every process spawned through this module that still runs, and waits for each to be gone. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

/** A child process whose stdout and stderr are collected as lines. */
export class Proc {
  readonly child: ChildProcess;
  readonly out: Line[] = [];
  readonly err: Line[] = [];
  exit: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
  ) {
    this.child = spawn(cmd, args, { cwd: opts.cwd ?? PACKAGE_ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    this.collect(this.child.stdout!, this.out);
    this.collect(this.child.stderr!, this.err);
    this.exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.exit) return;
        this.exit = { code, signal, at: Date.now() };
        live.delete(this);
        resolve(this.exit);
      };
      // 'close', not 'exit': it comes once stdout and stderr are drained, so every line the process
      // wrote (its last alert, say) has been collected when `exited` resolves.
      this.child.once('close', finish);
      // spawn failure (ENOENT): no exit event follows.
      this.child.once('error', (err) => {
        this.err.push({ text: `spawn error: ${err.message}`, at: Date.now() });
        finish(null, null);
      });
    });
  }

  private collect(stream: NodeJS.ReadableStream, into: Line[]): void {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const at = Date.now();
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const text of parts) into.push({ text, at });
      this.onLines(into);
    });
    stream.on('end', () => {
      if (partial) into.push({ text: partial, at: Date.now() });
      partial = '';
    });
  }

  /** Hook for subclasses that parse lines as they come. */
  protected onLines(_into: Line[]): void {}

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  describeExit(): string {
    if (!this.exit) return 'running';
    return this.exit.signal ? `signal ${this.exit.signal}` : `code ${this.exit.code}`;
  }

  /** stderr as text, every line ended by a newline. */
  stderrText(): string {
    return this.err.map((l) => `${l.text}\n`).join('');
  }

  /** The last lines of stdout and stderr, for failure messages. */
  tail(n = 20): string {
    const t = (ls: Line[]) => ls.slice(-n).map((l) => `  ${l.text.slice(0, 400)}`).join('\n');
    return `--- ${this.name} stdout (last ${n}) ---\n${t(this.out)}\n--- ${this.name} stderr ---\n${t(this.err)}`;
  }

  /** Waits for a stdout line; fails early, with the output, if the process exits first. */
  waitForLine(what: string, pred: (text: string) => boolean, timeoutMs: number): Promise<Line> {
    return this.waitForOutput(what, () => this.out.find((l) => pred(l.text)), timeoutMs);
  }

  /** Polls `find` over what the process printed; fails early, with the output, if the process exits first. */
  protected async waitForOutput<T>(what: string, find: () => T | undefined, timeoutMs: number): Promise<T> {
    try {
      return await waitFor(
        `${this.name}: ${what}`,
        () => {
          const hit = find();
          if (hit) return hit;
          if (!this.running) throw new Error(`${this.name} exited (${this.describeExit()}) before ${what}`);
          return undefined;
        },
        timeoutMs,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.tail()}`);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /**
   * Sends `sig` and waits for the exit; SIGKILLs and fails if the process is still there after
   * `timeoutMs`. Returns the exit and how long it took from the signal.
   */
  async stop(sig: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<ExitInfo & { ms: number }> {
    const sent = Date.now();
    if (!this.running) return { ...this.exit!, ms: 0 };
    this.child.kill(sig);
    let timer: NodeJS.Timeout | undefined;
    const res = await Promise.race([this.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))]);
    clearTimeout(timer);
    if (res === 'timeout') {
      await this.kill();
      throw new Error(`${this.name} did not exit within ${timeoutMs} ms of ${sig}; killed\n${this.tail()}`);
    }
    return { ...res, ms: res.at - sent };
  }

  /** SIGKILL if still running; resolves when gone. Safe to call any time. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

// ---------------------------------------------------------------------------------------------
// The daemon

export type LogLine = Record<string, unknown> & { level: number; time: number; msg: string; module?: string };

/** An 'alert raised' / 'alert cleared' line of the daemon's log: a model's (kind machine, drift) or a sensor's (kind sensor: no model, no score). */
export interface LoggedAlert {
  id: string;
  kind: string;
  model: string | undefined;
  sensor: string | undefined;
  state: 'raised' | 'cleared';
  score: number | undefined;
  /** Log time (ms epoch). */
  time: number;
}

export type Flags = Record<string, string | number | boolean>;

/** Flags every test run uses unless it overrides them: no HTTP, no WebSocket, one model, one pass. */
export const BASE_FLAGS: Flags = {
  'models-enabled': 'vibration',
  'models-profile': 'rpm_600',
  'http-port': 0,
  'broker-port': 0,
  'broker-ws-port': 0,
  'source-kind': 'replay',
  'source-replay-loop': false,
  'log-level': 'info',
};

/**
 * The daemon as a service runs it, on its own defaults but for: its listeners on free ports (HTTP on
 * `httpPort`), its outbox in `dir`, device DEVICE. A `base` for the Daemon in place of BASE_FLAGS.
 */
export function serviceFlags(dir: string, httpPort: number): Flags {
  return { 'broker-port': 0, 'broker-ws-port': 0, 'http-port': httpPort, 'outbox-dir': join(dir, 'outbox'), 'device-id': DEVICE };
}

export interface DaemonOptions {
  /** The flags `flags` are laid over (`--key value` in this order, a key of `flags` keeping its place here); BASE_FLAGS by default. */
  base?: Flags;
  /** Extra environment (e.g. NOTIFY_SOCKET, as systemd sets it). */
  env?: Record<string, string>;
}

/** The compiled daemon as a child process; stdout is its pino JSON log. */
export class Daemon extends Proc {
  readonly logs: LogLine[] = [];
  private parsed = 0;

  constructor(name: string, flags: Flags, o: DaemonOptions = {}) {
    const args = [AGENT_MAIN, 'run'];
    for (const [k, v] of Object.entries({ ...(o.base ?? BASE_FLAGS), ...flags })) args.push(`--${k}`, String(v));
    // The daemon's configuration comes from the flags only: no ANOMALY_* from the test's environment.
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANOMALY_'))), ...o.env };
    super(name, process.execPath, args, { env });
  }

  protected override onLines(into: Line[]): void {
    if (into !== this.out) return;
    for (; this.parsed < this.out.length; this.parsed++) {
      const text = this.out[this.parsed]!.text;
      try {
        this.logs.push(JSON.parse(text) as LogLine);
      } catch {
        this.logs.push({ level: 60, time: Date.now(), msg: `(not JSON) ${text}` });
      }
    }
  }

  find(pred: (l: LogLine) => boolean): LogLine | undefined {
    return this.logs.find(pred);
  }

  waitForLog(what: string, pred: (l: LogLine) => boolean, timeoutMs: number): Promise<LogLine> {
    return this.waitForOutput(what, () => this.logs.find(pred), timeoutMs);
  }

  /** Waits for 'agent started'; returns that line. */
  started(timeoutMs = 20_000): Promise<LogLine> {
    return this.waitForLog("'agent started'", (l) => l.msg === 'agent started', timeoutMs);
  }

  /** The port of the embedded broker, from its 'broker listening' line. */
  async brokerPort(timeoutMs = 20_000): Promise<number> {
    const l = await this.waitForLog("'broker listening'", (x) => x.msg === 'broker listening', timeoutMs);
    return l.port as number;
  }

  /** The replay's start S (its clock time, the sample time of the file's first row), from the 'replaying …' line. */
  replayStartLog(): LogLine | undefined {
    return this.find((l) => typeof l.msg === 'string' && l.msg.startsWith('replaying '));
  }

  reachedEnd(): boolean {
    return this.find((l) => l.msg === 'replay reached the end of the file') !== undefined;
  }

  alerts(): LoggedAlert[] {
    return this.logs
      .filter((l) => l.module === 'detector' && /^(\w+ )?alert (raised|cleared)/.test(l.msg))
      .map((l) => ({ id: l.id as string, kind: l.kind as string, model: l.model as string | undefined, sensor: l.sensor as string | undefined, state: l.state as LoggedAlert['state'], score: l.score as number | undefined, time: l.time }));
  }

  /** Log lines at warn (40) or above that are not alerts: what went wrong, for diagnostics. */
  problems(): LogLine[] {
    return this.logs.filter((l) => l.level >= 40 && l.module !== 'detector');
  }
}

/** Waits until `cond` has held for `stableMs` in a row (nothing more is coming). */
export async function waitStable(what: string, cond: () => boolean, stableMs: number, timeoutMs: number): Promise<void> {
  let since: number | undefined;
  await waitFor(
    what,
    () => {
      if (!cond()) since = undefined;
      else if (since === undefined) since = Date.now();
      else if (Date.now() - since >= stableMs) return true;
      return undefined;
    },
    timeoutMs,
  );
}

export async function startDaemon(name: string, flags: Flags, timeoutMs = 20_000): Promise<Daemon> {
  const d = new Daemon(name, flags);
  await d.started(timeoutMs);
  return d;
}

// ---------------------------------------------------------------------------------------------
// The daemon's /metrics

/** GET /metrics (asserting 200) as `name{labels}` → value (labels as printed by prom-client). */
export async function scrape(httpPort: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
  assert.equal(res.status, 200);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Every series of `name` as label text → value, e.g. 'reason="bad_json"' → 12. */
export function series(m: Map<string, number>, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of m) {
    if (k === name) out.set('', v);
    else if (k.startsWith(`${name}{`)) out.set(k.slice(name.length + 1, -1), v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Temporary directories and model bundles

/**
 * A temporary directory (`<tmpdir>/<prefix>XXXXXX`) for the tests of the enclosing `describe`: made
 * before them, removed after them. Call it in the describe's body; the function it returns gives the path.
 */
export function suiteTempDir(prefix: string): () => string {
  let dir: string | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    await rm(dir!, { recursive: true, force: true });
  });
  return () => {
    assert.ok(dir, `suiteTempDir('${prefix}') used outside its describe's tests`);
    return dir;
  };
}

/** Bundles are made by `npm run models` (and remade while training runs): say so when one is missing. */
export function needBundles(profile: string, models: string[]): void {
  for (const m of models) assert.ok(existsSync(join(MODELS_DIR, profile, m, 'bundle.json')), `${join(MODELS_DIR, profile, m)} is missing: run 'npm run models'`);
}

/** Copies bundles into a fresh models dir: `<dir>/models/<profile>/<model>`; returns `<dir>/models`. */
export async function copyBundles(dir: string, profile: string, models: string[]): Promise<string> {
  const root = join(dir, 'models');
  for (const m of models) await cp(join(MODELS_DIR, profile, m), join(root, profile, m), { recursive: true });
  return root;
}

/** Inverts the byte at `at` of `file` (a bundle that no longer matches its sha256). */
/**
 * A copy of the shipped rpm_600/vibration bundle in `dir/name` with its threshold × `factor` — a new
 * bundle.json, hence a new identity — signed with `signingKey` (PEM) when given.
 */
export async function bundleVariant(dir: string, name: string, factor: number, signingKey?: string): Promise<string> {
  const d = join(dir, name);
  await cp(join(MODELS_DIR, 'rpm_600', 'vibration'), d, { recursive: true });
  const m = JSON.parse(await readFile(join(d, 'bundle.json'), 'utf8')) as { threshold: number };
  m.threshold *= factor;
  await writeFile(join(d, 'bundle.json'), JSON.stringify(m, null, 2) + '\n');
  if (signingKey) await signBundle(d, signingKey);
  return d;
}

export async function flipByte(file: string, at = 100): Promise<void> {
  const b = await readFile(file);
  b[at] = b[at]! ^ 0xff;
  await writeFile(file, b);
}

// ---------------------------------------------------------------------------------------------
// Mosquitto 2

export interface MosquittoOptions {
  port: number;
  /** Where the config file (and, with persistence, mosquitto.db) go. */
  dir: string;
  persistence?: boolean;
}

/**
 * A real Mosquitto 2 on 127.0.0.1:port, anonymous, logging everything to stdout. `start()` again
 * after `stop()` restarts it with the same config (and, with persistence, the saved sessions).
 */
export class Mosquitto {
  proc: Proc | undefined;
  runs: Proc[] = [];
  readonly conf: string;

  constructor(readonly o: MosquittoOptions) {
    this.conf = join(o.dir, 'mosquitto.conf');
  }

  async start(timeoutMs = 10_000): Promise<this> {
    const lines = [`listener ${this.o.port} 127.0.0.1`, 'allow_anonymous true', 'log_dest stdout', 'log_type all', 'log_timestamp_format %s'];
    if (this.o.persistence) {
      // Run as root, mosquitto drops to user 'mosquitto', which cannot write a root-owned temp dir:
      // stay the user we are (ignored when not root).
      lines.push('persistence true', `persistence_location ${this.o.dir}/`, 'autosave_interval 0', `user ${userInfo().username}`);
    }
    await writeFile(this.conf, lines.join('\n') + '\n');
    const p = new Proc(`mosquitto#${this.runs.length + 1}`, MOSQUITTO, ['-c', this.conf]);
    this.proc = p;
    this.runs.push(p);
    await waitListening(this.o.port, timeoutMs, p);
    return this;
  }

  /** SIGTERM (mosquitto saves its database on the way out); asserts a clean exit. */
  async stop(timeoutMs = 10_000): Promise<ExitInfo & { ms: number }> {
    const p = this.proc!;
    const e = await p.stop('SIGTERM', timeoutMs);
    assert.equal(e.code, 0, `mosquitto exit: ${p.describeExit()}\n${p.tail()}`);
    if (this.o.persistence) {
      const saveFailed = p.out.find((l) => /Error saving/i.test(l.text));
      assert.equal(saveFailed, undefined, `mosquitto could not save its database: ${saveFailed?.text}`);
    }
    return e;
  }

  /** Every log line of every run. */
  log(): string[] {
    return this.runs.flatMap((r) => r.out.map((l) => l.text));
  }
}

// ---------------------------------------------------------------------------------------------
// mosquitto_sub

export interface Received {
  topic: string;
  payload: string;
  /** Retain flag as delivered (only with format 'retain'). */
  retain?: boolean;
  at: number;
}

export interface SubOptions {
  port: number;
  topics: string[];
  qos?: 0 | 1 | 2;
  /** Client id for a persistent session (-c -i id). */
  persistentId?: string;
  /** Exit after this many messages (-C). */
  count?: number;
  /** Give up after this many seconds without messages (-W). */
  waitS?: number;
  /** 'verbose': `-v` (topic payload); 'retain': `-F '%r %t %p'` (retain flag too). */
  format?: 'verbose' | 'retain';
  /** -d: debug lines, which tell when the subscription is acknowledged. */
  debug?: boolean;
}

/** A real `mosquitto_sub`; `messages()` parses what it printed. */
export class Sub extends Proc {
  constructor(
    name: string,
    readonly o: SubOptions,
  ) {
    const args = ['-h', '127.0.0.1', '-p', String(o.port), '-q', String(o.qos ?? 0)];
    for (const t of o.topics) args.push('-t', t);
    if (o.persistentId) args.push('-c', '-i', o.persistentId);
    if (o.count !== undefined) args.push('-C', String(o.count));
    if (o.waitS !== undefined) args.push('-W', String(o.waitS));
    if (o.debug) args.push('-d');
    if ((o.format ?? 'verbose') === 'retain') args.push('-F', '%r %t %p');
    else args.push('-v');
    // Piped, mosquitto_sub flushes stdout only after a message: its debug lines (the SUBACK that says
    // the subscription is in place) would wait for the first message. Line-buffer it.
    super(name, STDBUF, ['-oL', MOSQUITTO_SUB, ...args]);
  }

  /** Debug lines (-d) start with 'Client ' or 'Subscribed '; every other line is a message. */
  messages(): Received[] {
    const out: Received[] = [];
    for (const l of this.out) {
      if (this.o.debug && (l.text.startsWith('Client ') || l.text.startsWith('Subscribed ') || l.text === '')) continue;
      let rest = l.text;
      let retain: boolean | undefined;
      if ((this.o.format ?? 'verbose') === 'retain') {
        retain = rest.startsWith('1 ');
        rest = rest.slice(2);
      }
      const sp = rest.indexOf(' ');
      out.push({ topic: sp < 0 ? rest : rest.slice(0, sp), payload: sp < 0 ? '' : rest.slice(sp + 1), at: l.at, ...(retain === undefined ? {} : { retain }) });
    }
    return out;
  }

  /** Resolves when the n-th SUBACK (-d) has arrived: the subscription is in place from then on. */
  subscribed(timeoutMs = 10_000, n = 1): Promise<Line> {
    assert.ok(this.o.debug, 'subscribed() needs debug: true');
    let seen = 0;
    return this.waitForLine(`SUBACK #${n}`, (t) => t.startsWith('Subscribed (mid:') && ++seen >= n, timeoutMs);
  }

  /** Number of SUBACKs seen so far (a reconnecting mosquitto_sub subscribes again). */
  subacks(): number {
    return this.out.filter((l) => l.text.startsWith('Subscribed (mid:')).length;
  }
}

export async function startSub(name: string, o: SubOptions): Promise<Sub> {
  const s = new Sub(name, { debug: true, ...o });
  if (s.o.debug) await s.subscribed();
  return s;
}

/** `mosquitto_sub -C 1 -F '%r %t %p'`: the first (normally retained) message on `topic`. */
export async function firstMessage(port: number, topic: string, timeoutS = 10): Promise<Received> {
  const s = new Sub(`sub -C 1 ${topic}`, { port, topics: [topic], count: 1, waitS: timeoutS, format: 'retain' });
  const e = await s.exited;
  const m = s.messages()[0];
  assert.ok(m, `mosquitto_sub -C 1 -t ${topic} got nothing (exit ${s.describeExit()})\n${s.tail()}`);
  assert.equal(e.code, 0, s.tail());
  return m;
}

// ---------------------------------------------------------------------------------------------
// Payload checks (DESIGN.md "MQTT topics"; core/topics.ts)

const ALERT_KEYS = ['id', 'kind', 'model', 'score', 'since', 'state', 't', 'threshold', 'topFeatures', 'v'];
const CLEARED_KEYS = [...ALERT_KEYS, 'peak', 'reason'].sort();
const TOP_KEYS = ['error', 'feature', 'share'];
const STATUS_KEYS = ['models', 'sensors', 'state', 't', 'v', 'version'];

const isFiniteNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** Whether an alert payload is a sensor's (kind sensor; payloadProblem checks those exactly). */
export const isSensorAlert = (text: string): boolean => (JSON.parse(text) as { kind?: string }).kind === 'sensor';

/** Parses a model's alert payload and asserts it is exactly an AlertPayload (no key missing, none extra). */
export function parseAlert(text: string, o: { models: string[]; features: string[] }): ModelAlertPayload {
  let p: ModelAlertPayload;
  try {
    p = JSON.parse(text) as ModelAlertPayload;
  } catch {
    assert.fail(`alert payload is not JSON: ${text}`);
  }
  const where = `alert ${text}`;
  assert.deepEqual(Object.keys(p).sort(), p.state === 'cleared' ? CLEARED_KEYS : ALERT_KEYS, `${where}: keys`);
  assert.equal(p.kind, 'machine', `${where}: kind`);
  if (p.state === 'cleared') {
    assert.ok(p.reason === 'back to normal' || p.reason === 'settled at a new level', `${where}: reason`);
    assert.ok(isFiniteNum(p.peak?.score) && isFiniteNum(p.peak.threshold) && p.peak.score > p.peak.threshold, `${where}: the peak is over its threshold`);
  }
  assert.equal(p.v, 1, `${where}: v`);
  assert.ok(Number.isInteger(p.t) && p.t > 1e12, `${where}: t is a ms epoch`);
  assert.ok(typeof p.id === 'string' && p.id.length > 0, `${where}: id`);
  assert.ok(o.models.includes(p.model), `${where}: model`);
  assert.ok(p.state === 'raised' || p.state === 'cleared', `${where}: state`);
  assert.ok(isFiniteNum(p.score) && p.score >= 0, `${where}: score`);
  assert.ok(isFiniteNum(p.threshold) && p.threshold > 0, `${where}: threshold`);
  if (p.state === 'raised') assert.ok(p.score > p.threshold, `${where}: a raise is over its threshold`);
  assert.ok(Number.isInteger(p.since) && p.since > 1e12, `${where}: since is a ms epoch`);
  assert.ok(Array.isArray(p.topFeatures) && p.topFeatures.length >= 1 && p.topFeatures.length <= 3, `${where}: topFeatures is 1..3 entries`);
  let shares = 0;
  let prev = Infinity;
  for (const f of p.topFeatures) {
    assert.deepEqual(Object.keys(f).sort(), TOP_KEYS, `${where}: topFeatures entry keys`);
    assert.ok(o.features.includes(f.feature), `${where}: feature ${f.feature}`);
    assert.ok(isFiniteNum(f.error) && f.error >= 0, `${where}: error`);
    assert.ok(isFiniteNum(f.share) && f.share >= 0 && f.share <= 1, `${where}: share`);
    assert.ok(f.error <= prev, `${where}: topFeatures sorted by error, descending`);
    prev = f.error;
    shares += f.share;
  }
  assert.ok(shares <= 1 + 1e-9, `${where}: shares add up to ≤ 1`);
  assert.equal(new Set(p.topFeatures.map((f) => f.feature)).size, p.topFeatures.length, `${where}: features distinct`);
  return p;
}

/** Parses a status payload and asserts its shape (StatusPayload, exactly). */
export function parseStatus(text: string): StatusPayload {
  const p = JSON.parse(text) as StatusPayload;
  const where = `status ${text}`;
  assert.deepEqual(Object.keys(p).sort(), STATUS_KEYS, `${where}: keys`);
  assert.equal(p.v, 1, `${where}: v`);
  assert.ok(Number.isInteger(p.t), `${where}: t`);
  assert.ok(p.state === 'online' || p.state === 'offline', `${where}: state`);
  assert.ok(typeof p.version === 'string' && p.version.length > 0, `${where}: version`);
  assert.ok(Array.isArray(p.models), `${where}: models`);
  for (const m of p.models) {
    assert.deepEqual(Object.keys(m).sort(), ['drift', 'model', 'name', 'sha256'], `${where}: models entry keys`);
    assert.match(m.sha256, /^[0-9a-f]{64}$/, `${where}: sha256`);
  }
  for (const h of Object.values(p.sensors)) assert.ok(['ok', 'stale', 'error', 'fault'].includes(h), `${where}: sensor health`);
  return p;
}

export interface AlertPair {
  id: string;
  model: string;
  raised: ModelAlertPayload;
  cleared: ModelAlertPayload | undefined;
}

/**
 * Asserts that, per model, alerts strictly alternate raised → cleared → raised …, a cleared having
 * the id and `since` of the raised before it, and that no id is used by two episodes.
 * Returns the pairs in order (the last one may be open if `allowOpenEnd`).
 */
export function pairAlerts(alerts: ModelAlertPayload[], allowOpenEnd = false): AlertPair[] {
  const pairs: AlertPair[] = [];
  const open = new Map<string, AlertPair>();
  const ids = new Set<string>();
  for (const a of alerts) {
    const cur = open.get(a.model);
    if (a.state === 'raised') {
      assert.equal(cur, undefined, `model ${a.model}: raised ${a.id} while ${cur?.id} is still open`);
      assert.ok(!ids.has(a.id), `id ${a.id} raised twice`);
      ids.add(a.id);
      const p: AlertPair = { id: a.id, model: a.model, raised: a, cleared: undefined };
      open.set(a.model, p);
      pairs.push(p);
    } else {
      assert.ok(cur, `model ${a.model}: cleared ${a.id} with no open episode`);
      assert.equal(a.id, cur.id, `model ${a.model}: cleared id`);
      assert.equal(a.since, cur.raised.since, `${a.id}: cleared carries the raised since`);
      assert.ok(a.peak && a.peak.score / a.peak.threshold >= cur.raised.score / cur.raised.threshold, `${a.id}: cleared carries the episode's peak (≥ the raising window)`);
      cur.cleared = a;
      open.delete(a.model);
    }
  }
  if (!allowOpenEnd) assert.equal(open.size, 0, `episodes left open: ${[...open.values()].map((p) => p.id).join(', ')}`);
  return pairs;
}

// ---------------------------------------------------------------------------------------------
// Labelled episodes of the seed test files

export interface Episode {
  kind: string;
  intensity: 'subtle' | 'moderate' | 'obvious';
  startMs: number;
  endMs: number;
  channels: string[];
}

export interface LabelledFile {
  path: string;
  /** Timestamp of the first data row. */
  t0: number;
  /** Time of the last row minus t0. */
  durationMs: number;
  periodMs: number;
  episodes: Episode[];
}

/** A seed test CSV with its episodes from faults.json beside it. */
export function labelledFile(path: string): LabelledFile {
  const faults = JSON.parse(readFileSync(join(dirname(path), 'faults.json'), 'utf8')) as Record<string, Episode[]>;
  const episodes = faults[basename(path)];
  assert.ok(episodes, `faults.json has no entry for ${basename(path)}`);
  const rows = readFileSync(path, 'utf8').trim().split('\n').slice(1);
  const t = (i: number) => Number(rows[i]!.slice(0, rows[i]!.indexOf(',')));
  return { path, t0: t(0), durationMs: t(rows.length - 1) - t(0), periodMs: t(1) - t(0), episodes };
}

/**
 * S, the replay's start: the sample time of the file's first row (the replay re-bases row i to
 * S + (t_i − t0)). The 'replaying …' log line is written right after S is read from the clock, so its
 * time is S plus a few ms; every sample time is S plus a whole number of periods, so a `since` (a
 * window's last sample time) pins S exactly to the period grid below the log time.
 */
export function replayStart(logTime: number, since: number, periodMs: number): number {
  return logTime - ((((logTime - since) % periodMs) + periodMs) % periodMs);
}

/**
 * SIGHUP reload of the compiled daemon, run as a child process on free ports with a CSV replay
 * running and only the vibration model enabled, on a temporary copy of its bundle:
 * (a) a tampered bundle (one byte of weights.bin flipped) is refused with the check 'sha256'; the
 *     running model stays and windows keep being scored with no gap and at the same rate;
 * (b) a different but valid bundle (another threshold in bundle.json, which is not hashed) is loaded;
 *     the status topic says online again, and the window stream carries on where it was: no window
 *     skipped, none scored twice.
 *
 * The helpers repeat robust.test.ts's on purpose: a test file imports no other test file.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { PACKAGE_ROOT } from '../core/paths.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const MODELS = join(PACKAGE_ROOT, 'models');
const DATA = join(PACKAGE_ROOT, 'datas', 'raw');
const DEV = 'motor-1';

// ---------------------------------------------------------------------------------------------
// Helpers: a daemon child process, its JSON log, its /metrics.

type LogLine = Record<string, unknown> & { msg?: string; level?: number };

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The environment without ANOMALY_* variables, so the host's settings cannot leak into a test. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANOMALY_')));
}

class Daemon {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = '';

  constructor(readonly proc: ChildProcess) {
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      for (const p of parts) {
        if (p.trim() === '') continue;
        try {
          this.lines.push(JSON.parse(p) as LogLine);
        } catch {
          this.lines.push({ msg: p, raw: true });
        }
      }
    });
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static start(args: string[]): Daemon {
    return new Daemon(spawn(process.execPath, [MAIN, 'run', ...args], { cwd: PACKAGE_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  find(pred: (l: LogLine) => boolean): LogLine | undefined {
    return this.lines.find(pred);
  }

  async waitLog(what: string, pred: (l: LogLine) => boolean, ms = 30_000): Promise<LogLine> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.find(pred);
      if (hit) return hit;
      if (!this.alive) throw new Error(`daemon exited while waiting for ${what}; stderr: ${this.stderr}\nlog tail: ${this.tail()}`);
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; log tail: ${this.tail()}`);
      await sleep(20);
    }
  }

  /** Waits for 'agent started' and returns the embedded broker's port from 'broker listening'. */
  async started(): Promise<{ brokerPort: number }> {
    await this.waitLog('agent started', (l) => l.msg === 'agent started', 45_000);
    const b = this.find((l) => l.msg === 'broker listening');
    return { brokerPort: Number(b?.port) };
  }

  tail(n = 15): string {
    return this.lines
      .slice(-n)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }

  /** SIGTERM, then SIGKILL if it has not exited after `ms`. */
  async stop(ms = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.alive && this.proc.kill('SIGKILL'), ms);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Prometheus text → `name{labels}` → value (labels as printed by prom-client). */
async function scrape(httpPort: number): Promise<Map<string, number>> {
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
function series(m: Map<string, number>, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of m) {
    if (k === name) out.set('', v);
    else if (k.startsWith(`${name}{`)) out.set(k.slice(name.length + 1, -1), v);
  }
  return out;
}

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 30_000, stepMs = 50): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** The daemon's listeners on free ports, its outbox in `dir`. */
function baseArgs(dir: string, httpPort: number): string[] {
  return ['--broker-port', '0', '--broker-ws-port', '0', '--http-port', String(httpPort), '--outbox-dir', join(dir, 'outbox'), '--device-id', DEV];
}

/** Copies bundles into a fresh models dir: `<dir>/models/<profile>/<model>`. */
async function copyBundles(dir: string, profile: string, models: string[]): Promise<string> {
  const root = join(dir, 'models');
  for (const m of models) await cp(join(MODELS, profile, m), join(root, profile, m), { recursive: true });
  return root;
}

async function flipByte(file: string, at = 100): Promise<void> {
  const b = await readFile(file);
  b[at] = b[at]! ^ 0xff;
  await writeFile(file, b);
}


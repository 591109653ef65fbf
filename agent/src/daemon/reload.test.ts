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

// ---------------------------------------------------------------------------------------------

interface Score {
  windowEnd: number;
  score: number;
  threshold: number;
}
interface Status {
  state: string;
  t: number;
  models: { model: string; name: string; sha256: string }[];
}

test('SIGHUP: a tampered bundle is refused and the running model keeps scoring; a valid new one, or several at once, load seamlessly', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'agent-reload-'));
  const models = await copyBundles(dir, 'rpm_600', ['vibration']);
  const bundleDir = join(models, 'rpm_600', 'vibration');
  const weightsFile = join(bundleDir, 'weights.bin');
  const manifestFile = join(bundleDir, 'bundle.json');
  const originalWeights = await readFile(weightsFile);
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { threshold: number; files: Record<string, string> };

  const httpPort = await freePort();
  const SPEED = 4; // a window every hop (10 rows × 50 ms) / 4 = 125 ms
  const d = Daemon.start([
    ...baseArgs(dir, httpPort),
    '--models-dir', models,
    '--models-profile', 'rpm_600',
    '--models-enabled', 'vibration',
    '--source-kind', 'replay',
    '--source-replay-file', join(DATA, 'rpm_600', 'train', 'train_01.csv'),
    '--source-replay-speed', String(SPEED),
  ]);
  let client: MqttClient | undefined;
  let polling = true;
  let poller: Promise<void> | undefined;
  try {
    const { brokerPort } = await d.started();
    client = await connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: 'reload-test', reconnectPeriod: 0 });
    const scores: (Score & { at: number })[] = [];
    const statuses: (Status & { at: number })[] = [];
    client.on('message', (topic, payload) => {
      const at = Date.now();
      if (topic.endsWith('/score/vibration')) scores.push({ ...(JSON.parse(payload.toString()) as Score), at });
      else if (topic.endsWith('/status')) statuses.push({ ...(JSON.parse(payload.toString()) as Status), at });
    });
    await client.subscribeAsync(['anomaly/+/status', `anomaly/${DEV}/score/vibration`]);

    // windows_scored_total over time, sampled every 200 ms.
    const samples: { at: number; windows: number }[] = [];
    poller = (async () => {
      while (polling) {
        const m = await scrape(httpPort).catch(() => undefined);
        if (m) samples.push({ at: Date.now(), windows: series(m, 'anomaly_agent_windows_scored_total').get('model="vibration"') ?? 0 });
        await sleep(200);
      }
    })();
    /** Windows per second between two instants, from the nearest samples inside them. */
    const rate = (from: number, to: number) => {
      const inside = samples.filter((s) => s.at >= from && s.at <= to);
      const a = inside[0]!;
      const b = inside[inside.length - 1]!;
      return (b.windows - a.windows) / ((b.at - a.at) / 1000);
    };

    await until('a steady score stream', () => scores.length >= 10, 45_000);
    await sleep(3000);

    // (a) Tampered bundle: refused by its check, the running model stays.
    await flipByte(weightsFile);
    const tA = Date.now();
    const linesA = d.lines.length;
    d.proc.kill('SIGHUP');
    const refused = await d.waitLog('the refusal', (l) => l.level === 50 && l.model === 'vibration' && String(l.msg).includes('refused'));
    assert.match(String(refused.msg), new RegExp(`^bundle ${bundleDir} refused: check 'sha256' failed: weights\\.bin has sha256 [0-9a-f]{64}, bundle\\.json says ${manifest.files['weights.bin']}; the running model stays$`));
    await until('status republished after the refused reload', () => statuses.some((s) => s.at > tA), 10_000);
    await sleep(3000);
    const tA2 = Date.now();
    assert.ok(d.alive);
    assert.equal(d.lines.slice(linesA).filter((l) => l.msg === 'model reloaded' || l.msg === 'model loaded').length, 0, 'nothing reloaded');
    const afterA = statuses.filter((s) => s.at > tA);
    assert.deepEqual(afterA.map((s) => [s.state, s.models.map((m) => [m.model, m.sha256])]), [['online', [['vibration', manifest.files['weights.bin']]]]], 'status: the original bundle still runs');
    // Same pace before and after the refused reload (generous bounds: the machine is shared).
    const before = rate(tA - 3000, tA);
    const afterRate = rate(tA, tA2);
    t.diagnostic(`windows/s before ${before.toFixed(2)}, after the refused reload ${afterRate.toFixed(2)} (replay ×${SPEED}: nominal ${(SPEED * 2).toFixed(0)})`);
    assert.ok(before > 0 && afterRate > 0.6 * before && afterRate < 1.6 * before, `rate before ${before}, after ${afterRate}`);
    // No gap: every window of the replay, one hop apart, and the stream did not stall.
    const duringA = scores.filter((s) => s.at > tA - 3000 && s.at <= tA2);
    const stall = Math.max(...duringA.slice(1).map((s, i) => s.at - duringA[i]!.at));
    assert.ok(stall < 1500, `longest pause between score messages around the refused reload: ${stall} ms`);

    // (b) A different, valid bundle: the original weights again, another threshold (bundle.json is not hashed).
    const newThreshold = Math.round(manifest.threshold * 1.5 * 1e6) / 1e6;
    await writeFile(weightsFile, originalWeights);
    await writeFile(manifestFile, JSON.stringify({ ...manifest, threshold: newThreshold }, null, 2) + '\n');
    const tB = Date.now();
    d.proc.kill('SIGHUP');
    const reloaded = await d.waitLog('model reloaded', (l) => l.msg === 'model reloaded' && l.model === 'vibration');
    assert.equal(reloaded.threshold, newThreshold);
    await until('status online after the reload', () => statuses.some((s) => s.at > tB && s.state === 'online'), 10_000);
    await until('scores with the new threshold', () => scores.filter((s) => s.threshold === newThreshold).length >= 8, 20_000);
    assert.ok(d.alive);

    // (c) SIGHUPs in quick succession (an impatient operator, a deploy script): reloads that are asked
    // for while one runs wait their turn. A reload takes a few ms here; signals sent closer together
    // than the child is scheduled merge into one, so bursts are repeated until two requests overlapped.
    const linesC = d.lines.length;
    const scoresC = scores.length;
    const isHup = (l: LogLine) => l.msg === 'SIGHUP: reloading model bundles';
    const isDone = (l: LogLine) => l.msg === 'model reloaded' || l.msg === 'reload failed';
    let overlapped = 0;
    for (let burst = 0; burst < 10 && overlapped === 0; burst++) {
      const from = d.lines.length;
      for (let i = 0; i < 4; i++) {
        d.proc.kill('SIGHUP');
        await sleep(1);
      }
      await until('the requested reloads', () => d.lines.slice(from).filter(isHup).length <= d.lines.slice(from).filter(isDone).length, 20_000);
      await sleep(200);
      // Two requests with no reload finished in between: the second came while the first ran.
      const seq = d.lines.slice(from).filter((l) => isHup(l) || isDone(l));
      overlapped = seq.filter((l, i) => i > 0 && isHup(l) && isHup(seq[i - 1]!)).length;
    }
    t.diagnostic(`overlapping SIGHUPs: ${overlapped}`);
    assert.ok(overlapped > 0, 'the bursts made reload requests overlap');
    assert.deepEqual(d.lines.slice(linesC).filter((l) => (l.level ?? 0) >= 50), [], 'no error during overlapping SIGHUPs');
    await until('scores after the bursts of reloads', () => scores.length >= scoresC + 8, 20_000);
    assert.ok(d.alive);

    // The window stream across every reload: one hop (10 × 50 ms) apart, none skipped, none twice.
    const ends = scores.map((s) => s.windowEnd);
    const bad = ends.flatMap((e, i) => (i > 0 && e - ends[i - 1]! !== 500 ? [`#${i}: ${ends[i - 1]} → ${e}`] : []));
    assert.deepEqual(bad.slice(0, 5), [], `window ends not one hop apart (${bad.length} in ${ends.length})`);
    const firstNew = scores.findIndex((s) => s.threshold === newThreshold);
    assert.ok(scores.slice(firstNew).every((s) => s.threshold === newThreshold), 'after the reload every score uses the new threshold');
    assert.ok(scores.slice(0, firstNew).every((s) => s.threshold === manifest.threshold));
    assert.equal(d.lines.filter((l) => (l.level ?? 0) >= 50).length, 1, `one error line, the refusal: ${d.tail()}`);
  } finally {
    polling = false;
    await poller;
    await client?.endAsync(true).catch(() => {});
    const { code } = await d.stop();
    await rm(dir, { recursive: true, force: true });
    assert.equal(code, 0, `clean exit on SIGTERM; stderr: ${d.stderr}`);
  }
});

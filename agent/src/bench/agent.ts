/**
 * `npm run bench:agent`: what the daemon costs on this machine, with the scorer engine it is
 * configured with (`scorer.engine`, default auto: the fast engine where it supports the bundle;
 * `npm run bench:agent -- --engine tfjs` for the TensorFlow.js one) and the TensorFlow.js backend it
 * selects here (`auto`), on whatever bundles exist under models/ and load (missing and refused ones
 * are named and skipped):
 *
 * (a) scoring throughput: windows/s per bundle through the scorer the daemon would use, one window
 *     per call and 32 per call, on real windows cut from datas/raw/<profile>/test/test_01.csv;
 * (b) latency on the wire: the Controller in this process with the MQTT source; a client publishes
 *     rpm_600 samples (4 sensors per row) and times each window's last sample to its score message,
 *     and to the alert (raised or cleared) that window caused — on a bundle copy with threshold 1.0
 *     and a detector that flips on single windows, so that there are alerts enough to time;
 * (c) daemon RSS with every bundle of a profile loaded and scoring (a child process per profile),
 *     and whether TensorFlow.js got loaded there (it should not be, unless a bundle is scored with it);
 * (d) CPU of the daemon at the rpm_1200 nominal rate (20 ms samples, hop = seqLen/10): replay of
 *     datas/raw/rpm_1200/test/test_01.csv at speed 1 with every rpm_1200 bundle, ~30 s measured.
 *
 * (c) and (d) run the Controller in a child process of their own, started with the daemon's Node flags
 * and environment (core/daemon-runtime.ts), so the figures are that process's alone. The whole
 * bench takes about a minute and a half.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connectAsync } from 'mqtt';
import { pino } from 'pino';
import { engineFlag } from '../cli/options.js';
import { loadConfig } from '../config/load.js';
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../core/daemon-runtime.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { CHANNELS, MODEL_TYPES, PROFILE_NAMES, type ProfileName } from '../core/profiles.js';
import { agentVersion } from '../core/version.js';
import { Controller } from '../daemon/controller.js';
import type { BackendChoice } from '../model/backend.js';
import { BundleError, loadBundle, type LoadedBundle } from '../model/bundle.js';
import type { ScorerEngine } from '../model/engines.js';
import { createScorer } from '../model/scorer.js';
import { readCsvFile } from '../preprocess/csv.js';
import { makeWindows } from '../preprocess/sequences.js';
import type { AlertPayload, ScorePayload } from '../core/topics.js';
import { runBench } from './usage.js';

const MODELS = join(PACKAGE_ROOT, 'models');
const DATA = join(PACKAGE_ROOT, 'datas', 'raw');
const DEV = 'bench';
/** Errors only, and to stderr: stdout is the bench's table. */
const log = pino({ level: 'error', base: { name: 'bench' } }, pino.destination({ fd: 2, sync: true }));

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Bundles present under models/<profile>/, and the model types that have none yet. */
function bundlesOf(profile: ProfileName): { present: string[]; missing: string[] } {
  const present = MODEL_TYPES.filter((m) => existsSync(join(MODELS, profile, m, 'bundle.json')));
  return { present, missing: MODEL_TYPES.filter((m) => !present.includes(m)) };
}

interface Inventory {
  ok: string[];
  refused: { model: string; why: string }[];
  missing: string[];
}

/** Which bundles of `profile` load here: a bundle that fails its checks is refused, as the daemon would. */
async function inventory(profile: ProfileName): Promise<Inventory> {
  const { present, missing } = bundlesOf(profile);
  const inv: Inventory = { ok: [], refused: [], missing };
  for (const m of present) {
    try {
      await loadBundle(join(MODELS, profile, m), { knownFeatures: CHANNELS });
      inv.ok.push(m);
    } catch (err) {
      inv.refused.push({ model: m, why: (err as BundleError).check ?? (err as Error).message });
    }
  }
  return inv;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * The engine under test: scorer.engine as ANOMALY_SCORER_ENGINE sets it (`--engine` sets that for
 * this process and its children), else the schema default.
 */
function configuredEngine(): ScorerEngine {
  const v = process.env.ANOMALY_SCORER_ENGINE;
  return loadConfig({ argv: [], env: v === undefined ? {} : { ANOMALY_SCORER_ENGINE: v } }).scorer.engine;
}

/** The daemon's listeners for a bench run: free ports, no HTTP, a throw-away outbox; the engine under test. */
function daemonArgs(outbox: string): string[] {
  return ['--broker-port', '0', '--broker-ws-port', '0', '--http-port', '0', '--outbox-dir', outbox, '--device-id', DEV, '--log-level', 'error', '--scorer-engine', configuredEngine()];
}

async function windowsScored(c: Controller): Promise<Map<string, number>> {
  const { values } = await c.metrics.windowsScored.get();
  return new Map(values.map((v) => [String(v.labels.model), v.value]));
}

function vmHwmKb(): number {
  return Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
}

// ---------------------------------------------------------------------------------------------
// (a) scoring throughput

interface Throughput {
  profile: string;
  model: string;
  engine: string;
  shape: string;
  units: string;
  batch1: number;
  batch32: number;
}

/** Calls `fn` (which scores and returns how many windows it scored) for at least `ms` and `min` windows; windows/s. */
function timeRate(fn: (i: number) => number, ms: number, min: number): number {
  let n = 0;
  let i = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms || n < min) n += fn(i++);
  return n / ((performance.now() - t0) / 1000);
}

async function throughput(profile: ProfileName, model: string, engine: ScorerEngine): Promise<Throughput> {
  const bundle: LoadedBundle = await loadBundle(join(MODELS, profile, model), { knownFeatures: CHANNELS });
  const m = bundle.manifest;
  const series = await readCsvFile(join(DATA, profile, 'test', 'test_01.csv'));
  const w = makeWindows([series], { features: m.features, scaler: m.scaler, shape: m.shape, seqLen: m.seqLen, hop: m.hop, maxGapMs: m.maxGapMs });
  const stride = m.seqLen * w.f;
  const scorer = await createScorer(bundle, engine, 32, log);
  try {
    if (w.n < 64) throw new Error(`only ${w.n} windows in test_01.csv`);
    const one = (i: number) => {
      const k = i % w.n;
      scorer.score(w.x.subarray(k * stride, (k + 1) * stride), 1);
      return 1;
    };
    const batches = Math.floor(w.n / 32);
    const many = (i: number) => {
      const k = (i % batches) * 32;
      scorer.score(w.x.subarray(k * stride, (k + 32) * stride), 32);
      return 32;
    };
    one(0); // warm-up: kernels, wasm memory growth
    many(0);
    const batch1 = timeRate(one, 1500, 8);
    const batch32 = timeRate(many, 1500, 64);
    return { profile, model, engine: scorer.engine, shape: `${m.seqLen}×${w.f}`, units: m.architecture?.units?.join('/') ?? '?', batch1, batch32 };
  } finally {
    scorer.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// (b) latency: last sample published → score (and raised alert) received

interface Latency {
  windows: number;
  score: number[];
  alert: number[];
  alerts: number;
  paceMs: number;
  rows: number;
  threshold: number;
}

async function latency(tmp: string): Promise<Latency> {
  const PROFILE = 'rpm_600';
  const PERIOD = 50;
  const PACE_MS = 12.5; // ×4 the nominal rate: a window every 125 ms, well within the scorer's pace
  const FIRST = 2000; // test_01 rows 2000..4000: normal running, a bearing fault (2181–2550), an imbalance (3021–3378)
  const ROWS = 2000;
  // Alerts are rare by design; to time enough of them, a copy of the bundle gets threshold 1.0 (scores
  // are errors relative to the mean normal error, so normal windows score about 1) and the detector
  // flips on single windows: raise on one window over, clear on one under, no cooldown. An alert's
  // path (outbox append + fdatasync, QoS 1 publish) is the same as with the shipped settings.
  const THRESHOLD = 1.0;
  const models = join(tmp, 'models');
  cpSync(join(MODELS, PROFILE, 'vibration'), join(models, PROFILE, 'vibration'), { recursive: true });
  const manifestFile = join(models, PROFILE, 'vibration', 'bundle.json');
  writeFileSync(manifestFile, JSON.stringify({ ...JSON.parse(readFileSync(manifestFile, 'utf8')), threshold: THRESHOLD }));
  const config = loadConfig({
    argv: [
      ...daemonArgs(join(tmp, 'outbox')),
      '--source-kind', 'mqtt',
      '--models-dir', models,
      '--models-profile', PROFILE,
      '--models-enabled', 'vibration',
      '--detector-raise-k', '1', '--detector-raise-n', '1', '--detector-clear-m', '1', '--detector-clear-ratio', '1', '--detector-cooldown-ms', '0',
    ],
  });
  const controller = new Controller({ config, log, version: agentVersion() });
  await controller.start();
  const csv = await readCsvFile(join(DATA, PROFILE, 'test', 'test_01.csv'));
  const col = (c: string) => csv.columns[c]!;
  const client = await connectAsync(`mqtt://127.0.0.1:${controller.brokerAddress()!.port}`, { clientId: 'bench-latency', reconnectPeriod: 0 });
  (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  const sentAt = new Map<number, number>(); // sample t → performance.now() at publish
  const scores: { windowEnd: number; score: number; at: number }[] = [];
  const alerts: { state: string; score: number; at: number }[] = [];
  client.on('message', (topic, payload) => {
    const at = performance.now();
    if (topic.endsWith('/score/vibration')) {
      const p = JSON.parse(payload.toString()) as ScorePayload;
      scores.push({ windowEnd: p.windowEnd, score: p.score, at });
    } else if (topic.endsWith('/alerts')) {
      const p = JSON.parse(payload.toString()) as AlertPayload;
      if (p.kind !== 'sensor') alerts.push({ state: p.state, score: p.score, at });
    }
  });
  await client.subscribeAsync({ [`anomaly/${DEV}/score/vibration`]: { qos: 0 }, [`anomaly/${DEV}/alerts`]: { qos: 1 } });

  const T0 = Math.ceil(Date.now() / PERIOD) * PERIOD;
  const started = performance.now();
  for (let i = 0; i < ROWS; i++) {
    const wait = started + i * PACE_MS - performance.now();
    if (wait > 1) await sleep(wait);
    const r = FIRST + i;
    const t = T0 + i * PERIOD;
    const pub = (sensor: string, values: number[]) => client.publish(`anomaly/${DEV}/ingest/${sensor}`, JSON.stringify({ t, values }));
    pub('voltage', [col('voltage')[r]!]);
    pub('rpm', [col('rpm')[r]!]);
    pub('temperature', [col('temperature')[r]!]);
    sentAt.set(t, performance.now());
    pub('vibration', [col('accel_x')[r]!, col('accel_y')[r]!, col('accel_z')[r]!]); // last: the window's last sample
  }
  const expected = Math.floor((ROWS - 100) / 10) + 1;
  const end = Date.now() + 10_000;
  while (scores.length < expected && Date.now() < end) await sleep(50);
  await sleep(1000); // the last alerts
  await client.endAsync();
  await controller.stop();

  const score = scores.map((s) => s.at - sentAt.get(s.windowEnd)!).sort((a, b) => a - b);
  // The window behind each alert: replay the detector's rule over the scores, in order, and pair its
  // transitions with the alerts as they arrived (the outbox sends them in order).
  const transitions: { state: string; windowEnd: number; score: number }[] = [];
  let raised = false;
  for (const s of [...scores].sort((a, b) => a.windowEnd - b.windowEnd)) {
    if (!raised && s.score > THRESHOLD) transitions.push({ state: 'raised', windowEnd: s.windowEnd, score: s.score });
    else if (raised && s.score < THRESHOLD) transitions.push({ state: 'cleared', windowEnd: s.windowEnd, score: s.score });
    else continue;
    raised = !raised;
  }
  const alert: number[] = [];
  alerts.forEach((a, i) => {
    const tr = transitions[i];
    if (!tr || tr.state !== a.state || (a.state === 'raised' && tr.score !== a.score)) return; // not the window we think: leave it out
    alert.push(a.at - sentAt.get(tr.windowEnd)!);
  });
  alert.sort((a, b) => a - b);
  return { windows: scores.length, score, alert, alerts: alerts.length, paceMs: PACE_MS, rows: ROWS, threshold: THRESHOLD };
}

// ---------------------------------------------------------------------------------------------
// (c), (d): children

interface RssResult {
  profile: string;
  models: string[];
  /** Before the Controller starts: node and the daemon's modules. */
  startRssMB: number;
  rssMB: number;
  hwmMB: number;
  windows: Record<string, number>;
  /** Whether any @tensorflow/ module got loaded (they are CommonJS: require.cache lists them). */
  tfjs: boolean;
}

/** (c) The daemon with every bundle of `profile`, replaying its test file ×10 until each model has scored. */
async function rssChild(profile: ProfileName, outbox: string, present: string[]): Promise<RssResult> {
  const startRss = process.memoryUsage().rss;
  const config = loadConfig({
    argv: [
      ...daemonArgs(outbox),
      '--models-profile', profile,
      '--models-enabled', present.join(','),
      '--source-kind', 'replay',
      '--source-replay-file', join(DATA, profile, 'test', 'test_01.csv'),
      '--source-replay-speed', '10',
    ],
  });
  const c = new Controller({ config, log, version: agentVersion() });
  await c.start();
  const end = Date.now() + 30_000;
  let scored = await windowsScored(c);
  while (present.some((m) => (scored.get(m) ?? 0) < 3) && Date.now() < end) {
    await sleep(200);
    scored = await windowsScored(c);
  }
  const rss = process.memoryUsage().rss;
  const hwm = vmHwmKb() * 1024;
  await c.stop();
  const tfjs = Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('/@tensorflow/'));
  return { profile, models: present, startRssMB: startRss / 1048576, rssMB: rss / 1048576, hwmMB: hwm / 1048576, windows: Object.fromEntries(scored), tfjs };
}

interface CpuResult {
  models: { model: string; seqLen: number; hop: number; windows: number }[];
  seconds: number;
  cpuPercent: number;
  userS: number;
  systemS: number;
  samples: number;
  rssMB: number;
}

/** (d) The daemon at the rpm_1200 nominal rate: CPU over ~30 s once every model scores. */
async function cpuChild(outbox: string, seconds: number, present: string[]): Promise<CpuResult> {
  const config = loadConfig({
    argv: [
      ...daemonArgs(outbox),
      '--models-profile', 'rpm_1200',
      '--models-enabled', present.join(','),
      '--source-kind', 'replay',
      '--source-replay-file', join(DATA, 'rpm_1200', 'test', 'test_01.csv'),
      '--source-replay-speed', '1',
    ],
  });
  const c = new Controller({ config, log, version: agentVersion() });
  await c.start();
  const end = Date.now() + 20_000;
  while ((await windowsScored(c)).size < present.length && Date.now() < end) await sleep(100);
  const w0 = await windowsScored(c);
  const s0 = (await c.metrics.samples.get()).values.reduce((a, v) => a + v.value, 0);
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const u = process.cpuUsage(u0);
  const wall = (performance.now() - t0) / 1000;
  const w1 = await windowsScored(c);
  const s1 = (await c.metrics.samples.get()).values.reduce((a, v) => a + v.value, 0);
  const rss = process.memoryUsage().rss;
  await c.stop();
  const models = present.map((m) => {
    let b = { seqLen: NaN, hop: NaN };
    try {
      b = JSON.parse(readFileSync(join(MODELS, 'rpm_1200', m, 'bundle.json'), 'utf8')) as typeof b;
    } catch {
      // remade by a training run meanwhile: the figures stand, the shape is unknown
    }
    return { model: m, seqLen: b.seqLen, hop: b.hop, windows: (w1.get(m) ?? 0) - (w0.get(m) ?? 0) };
  });
  return { models, seconds: wall, cpuPercent: ((u.user + u.system) / 1e6 / wall) * 100, userS: u.user / 1e6, systemS: u.system / 1e6, samples: s1 - s0, rssMB: rss / 1048576 };
}

function runChild<T>(args: string[]): T | { error: string } {
  // Started as the daemon is started (systemd unit, npm start), so its memory figures are the daemon's.
  const r = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, fileURLToPath(import.meta.url), '--child', ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...DAEMON_ENV } });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) {
    const lines = r.stderr.trim().split('\n');
    return { error: lines.filter((l) => /^\w*Error\b/.test(l)).pop() ?? lines.pop() ?? `exit ${r.status} ${r.signal ?? ''}` };
  }
  return JSON.parse(line) as T;
}

// ---------------------------------------------------------------------------------------------

async function parent(engineArg: string | undefined): Promise<void> {
  const started = Date.now();
  const out = (s = '') => process.stdout.write(s + '\n');
  if (engineArg !== undefined) process.env.ANOMALY_SCORER_ENGINE = engineArg; // children inherit it
  const engine = configuredEngine();
  // Here, not at the top: the children load the daemon's modules alone, and TensorFlow.js only if their engine needs it.
  const { selectBackend } = await import('../model/backend.js');
  const backend: BackendChoice = await selectBackend('auto');
  const skipped = backend.skipped.map((s) => `${s.backend}: ${s.reason.replace(/ imported from .*/, '')}`).join('; ');
  out(`bench:agent — ${cpus()[0]?.model ?? 'unknown cpu'}, ${cpus().length} cores, node ${process.version}, scorer engine ${engine}, TensorFlow.js ${backend.backend} backend${skipped ? ` (skipped ${skipped})` : ''}`);
  out(`load average at start ${loadavg().map((l) => l.toFixed(1)).join(' ')} (figures are for this machine as loaded now)`);
  const inv = {} as Record<ProfileName, Inventory>;
  for (const p of PROFILE_NAMES) {
    const i = (inv[p] = await inventory(p));
    const refused = i.refused.map((r) => `${r.model} (check '${r.why}')`).join(', ');
    out(`bundles ${p}: ${i.ok.join(', ') || 'none'}${refused ? `; refused: ${refused}` : ''}${i.missing.length ? `; not there yet: ${i.missing.join(', ')}` : ''}`);
  }

  out(`\n(a) scoring throughput, the scorer engine ${engine} picks, on windows of datas/raw/<profile>/test/test_01.csv`);
  out('profile   model          seqLen×f  units   engine  batch 1: win/s  ms/win   batch 32: win/s  ms/win');
  for (const p of PROFILE_NAMES) {
    for (const m of inv[p].ok) {
      try {
        const r = await throughput(p, m, engine);
        out(`${p.padEnd(8)}  ${m.padEnd(13)}  ${r.shape.padEnd(8)}  ${r.units.padEnd(6)}  ${r.engine.padEnd(6)}  ${r.batch1.toFixed(1).padStart(14)}  ${(1000 / r.batch1).toFixed(2).padStart(6)}  ${r.batch32.toFixed(1).padStart(15)}  ${(1000 / r.batch32).toFixed(2).padStart(6)}`);
      } catch (err) {
        out(`${p.padEnd(8)}  ${m.padEnd(13)}  failed: ${(err as Error).message}`);
      }
    }
  }

  const tmp = mkdtempSync(join(tmpdir(), 'bench-agent-'));
  try {
    out('\n(b) latency on the wire: Controller in this process, mqtt source, rpm_600 vibration, client in this process');
    if (!inv.rpm_600.ok.includes('vibration')) out('    skipped: no usable rpm_600/vibration bundle');
    else {
      const l = await latency(join(tmp, 'latency'));
      const f = (v: number[]) => (v.length ? `p50 ${percentile(v, 0.5).toFixed(1).padStart(5)} ms  p99 ${percentile(v, 0.99).toFixed(1).padStart(5)} ms  max ${v[v.length - 1]!.toFixed(1).padStart(5)} ms  (n ${v.length})` : 'no samples');
      out(`    test_01 rows 2000–3999, 4 sensors per row, a row every ${l.paceMs} ms (×${50 / l.paceMs} the 50 ms rate): ${l.windows} windows`);
      out(`    sample → score on the wire  ${f(l.score)}`);
      out(`    sample → alert on the wire  ${f(l.alert)}`);
      out(`      (alerts: bundle copy with threshold ${l.threshold}, detector raise 1 of 1 / clear 1 / cooldown 0 → ${l.alerts} raised+cleared)`);
    }

    out('\n(c) daemon RSS with every usable bundle of a profile loaded and scoring (child process, replay ×10)');
    out(`profile   ${'bundles'.padEnd(52)}  at start  all loaded  peak (VmHWM)  TensorFlow.js loaded`);
    for (const p of PROFILE_NAMES) {
      const models = inv[p].ok;
      if (models.length === 0) {
        out(`${p.padEnd(8)}  skipped: no usable bundle yet`);
        continue;
      }
      const r = runChild<RssResult>(['rss', p, join(tmp, `rss-${p}`), models.join(',')]);
      if ('error' in r) out(`${p.padEnd(8)}  failed: ${r.error}`);
      else out(`${p.padEnd(8)}  ${r.models.join(', ').padEnd(52)}  ${`${r.startRssMB.toFixed(0)} MB`.padStart(8)}  ${`${r.rssMB.toFixed(0)} MB`.padStart(10)}  ${`${r.hwmMB.toFixed(0)} MB`.padStart(12)}  ${r.tfjs ? 'yes' : 'no'}`);
    }

    out('\n(d) CPU at the rpm_1200 nominal rate: test_01.csv replayed at speed 1 (a row every 20 ms), every usable rpm_1200 bundle');
    const models = inv.rpm_1200.ok;
    if (models.length === 0) out('    skipped: no usable rpm_1200 bundle yet');
    else {
      const r = runChild<CpuResult>(['cpu', join(tmp, 'cpu-outbox'), '30', models.join(',')]);
      if ('error' in r) out(`    failed: ${r.error}`);
      else {
        const wins = r.models.reduce((a, m) => a + m.windows, 0);
        out(`    ${r.models.map((m) => `${m.model} (seqLen ${m.seqLen}, hop ${m.hop}): ${m.windows} windows`).join('; ')}`);
        out(`    over ${r.seconds.toFixed(1)} s: ${r.samples} samples, ${wins} windows; CPU ${r.cpuPercent.toFixed(1)} % of one core (user ${r.userS.toFixed(2)} s, system ${r.systemS.toFixed(2)} s), ${(((r.userS + r.systemS) * 1000) / Math.max(1, wins)).toFixed(1)} ms CPU per window; RSS ${r.rssMB.toFixed(0)} MB`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  out(`\nload average at end ${loadavg().map((l) => l.toFixed(1)).join(' ')}; bench took ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

const args = process.argv.slice(2);
if (args[0] === '--child') {
  const models = (args[args.length - 1] ?? '').split(',');
  const result = args[1] === 'rss' ? await rssChild(args[2] as ProfileName, args[3]!, models) : await cpuChild(args[2]!, Number(args[3]), models);
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  await runBench('bench:agent', async () => {
    const { values } = parseArgs({ args, options: { engine: { type: 'string' } }, strict: true, allowPositionals: false });
    await parent(values.engine === undefined ? undefined : engineFlag(values.engine));
  });
}
// The Controller's stop() closes its sockets and timers; tfjs-wasm may keep a handle open.
process.exit(process.exitCode ?? 0);

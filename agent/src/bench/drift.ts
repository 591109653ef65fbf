/**
 * `npm run bench:drift`: does the daemon stay quiet through the days a healthy plant motor has, and
 * does it notice a bearing that wears out slowly? On the motor simulator, faster than real time:
 *
 * 1. Healthy days (PLANT_DAY): the ambient air swings between night and afternoon and the frame follows
 *    it; the load changes every few minutes, lighter at night (the speed follows it through the slip);
 *    the motor starts cold in the morning and stops at midday, so it cools and warms up again; the
 *    temperature sensor's offset creeps and the accelerometer's noise floor rises. Every alert a model
 *    raises here (machine, or drift: its baseline moved to its limit) is a false alert.
 * 2. Then bearing wear grows from nothing through the subtle and moderate impacts to the obvious one
 *    (motor/fault-magnitudes.ts BearingWear) while the plant day goes on. Wear is detected by the first
 *    alert (machine or drift) raised after its onset whose top feature is a channel the bearing shakes
 *    (the accelerometer's): an alert of the multi-feature model led by voltage is one more false alert, not
 *    a detection. It counts when it comes before the wear is obvious.
 *
 * The samples go into the daemon's own Models component (daemon/models.ts: its rings, its bundle
 * loading and checks, its ModelRuntime options from the daemon's configuration with its defaults), on
 * a ManualClock: whatever the daemon runs, this runs. Every window the daemon would score is scored.
 * The five models of a profile share nothing but their input, so each (profile, model) runs as a task
 * on its own worker thread (--jobs at a time), with its own copy of the same seeded motor.
 *
 * The last line is `false alerts/day F; slow wear detected after H h` (the worst profile's F and H),
 * or `slow wear missed` when a profile did not raise before the wear was obvious.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { UsageError } from '../cli/command.js';
import { loadConfig } from '../config/load.js';
import type { Alert } from '../core/alert.js';
import { ManualClock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';
import { MODEL_TYPES, PROFILE_NAMES, PROFILES, type ModelType, type ProfileName } from '../core/profiles.js';
import type { Intensity } from '../core/faults.js';
import { DaemonEvents } from '../daemon/events.js';
import { Models } from '../daemon/models.js';
import { createMetrics } from '../http/metrics.js';
import { bearingWearIntensity, bearingWearReachesMs, FAULT_CHANNELS, type BearingWear } from '../motor/fault-magnitudes.js';
import { MotorSimulator, type MotorOptions, type MotorReading, type RunStop } from '../motor/simulator.js';
import { formatSeconds, TaskProgress } from '../train/progress.js';
import { runBench } from './usage.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Monday 06:00 UTC, the dataset's first shift: the motor starts cold then. */
const T0 = DEFAULTS.dataset.baseMs;
/** Thermal time constant of the simulated frame (the simulator's default), and how long a warm-up is said to last: three of them (95 %). */
const THERMAL_TAU_MIN = 12;
const WARMUP_MS = 3 * THERMAL_TAU_MIN * 60_000;
/** Past "obvious", the wear phase runs this much longer, to say when (if at all) it was seen. */
const GRACE_MS = 30 * 60_000;
/** Simulated time between flushes of the models' batches and between checks for the end. */
const CHUNK_MS = 10_000;

/**
 * What a plant day has. The ageing rates are fast for a sensor (months compressed into a day) so a
 * run of a day or two shows what a slow drift does.
 */
export const PLANT_DAY = {
  ambient: { amplitudeK: 4, warmestHour: 15 },
  night: { min: 0.3, max: 0.6, fromHour: 22, toHour: 6 },
  /** The daily stop, hours of the UTC day. */
  stop: { fromHour: 12, minutes: 45 },
  ageing: { temperatureOffsetKPerDay: 0.3, accelNoisePerDay: 0.1 },
} as const;

/** The channels bearing wear acts on; a model reading one of them can see it. */
const WEAR_CHANNELS: readonly string[] = FAULT_CHANNELS.bearing;

interface Plan {
  seed: number;
  healthyMs: number;
  wearHours: number;
}

interface Task extends Plan {
  profile: ProfileName;
  model: ModelType;
}

type Phase = 'running' | 'warm-up' | 'stopped';

interface RaisedAlert {
  /** machine (the score over its threshold) or drift (the model's notion of normal moved to its limit). */
  kind: string;
  at: number;
  phase: Phase;
  top: string[];
  ratio: number;
}

interface TaskResult {
  profile: ProfileName;
  model: ModelType;
  seesWear: boolean;
  simulatedMs: number;
  wallMs: number;
  windows: number;
  /** Raised before the wear's onset. */
  falseAlerts: RaisedAlert[];
  /** Raised after the onset but not led by a wear channel. */
  otherAlerts: number;
  /** First raise after the onset led by a wear channel (seeing models only), ms after the onset, and the wear's intensity then. */
  detectedAfterMs?: number;
  detectedAt?: Intensity | 'none';
}

type WorkerMessage = { kind: 'progress'; simulatedMs: number } | { kind: 'done'; result: TaskResult } | { kind: 'error'; message: string };

/** The daily stops over the run (sorted). */
function stopsFor(endMs: number): RunStop[] {
  const out: RunStop[] = [];
  const midnight = T0 - (T0 % DAY);
  for (let d = midnight; d < endMs; d += DAY) {
    const fromMs = d + PLANT_DAY.stop.fromHour * HOUR;
    if (fromMs >= T0) out.push({ fromMs, toMs: fromMs + PLANT_DAY.stop.minutes * 60_000 });
  }
  return out;
}

function wearOf(plan: Plan): BearingWear {
  return { onsetMs: T0 + plan.healthyMs, obviousAfterMs: plan.wearHours * HOUR };
}

/** The simulated plant motor of a run: every task builds the same one (same seed, same options). */
export function plantMotor(profile: ProfileName, plan: Plan): MotorSimulator {
  const end = T0 + plan.healthyMs + plan.wearHours * HOUR + GRACE_MS;
  const o: MotorOptions = {
    profile: PROFILES[profile],
    seed: plan.seed,
    startMs: T0,
    settled: false,
    thermalTauMin: THERMAL_TAU_MIN,
    loadSchedule: { night: PLANT_DAY.night },
    ambientCycle: PLANT_DAY.ambient,
    stops: stopsFor(end),
    ageing: PLANT_DAY.ageing,
    bearingWear: wearOf(plan),
  };
  return new MotorSimulator(o);
}

function phaseAt(sim: MotorSimulator, stops: readonly RunStop[], t: number): Phase {
  if (!sim.isOn(t)) return 'stopped';
  let lastStart = T0;
  for (const s of stops) if (s.toMs <= t) lastStart = s.toMs;
  return t - lastStart < WARMUP_MS ? 'warm-up' : 'running';
}

/** One model of one profile through the daemon's Models component, as fast as the CPU allows. */
async function runTask(task: Task, progress: (simulatedMs: number) => void): Promise<TaskResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-drift-'));
  const base = loadConfig();
  // The daemon's configuration, defaults and all; only which bundle it runs differs. The empty
  // directory makes it take the shipped bundle, as a fresh gateway does.
  const config = { ...base, models: { ...base.models, dir, profile: task.profile, enabled: [task.model] } };
  const clock = new ManualClock(T0);
  const events = new DaemonEvents(silentLogger);
  const models = new Models({ config, version: 'bench', clock, threads: false, metrics: createMetrics(), events, logger: silentLogger, log: () => silentLogger });
  try {
    await models.start();
    const runtime = models.all.get(task.model);
    if (!runtime) throw new Error(`the ${task.profile} ${task.model} bundle did not load (${join(config.models.shippedDir, task.profile, task.model)})`);
    const seesWear = runtime.manifest.features.some((f) => WEAR_CHANNELS.includes(f));
    const wear = wearOf(task);
    const end = seesWear ? bearingWearReachesMs(wear, 'obvious') + GRACE_MS : wear.onsetMs;

    const sim = plantMotor(task.profile, task);
    const stops = stopsFor(end);
    const falseAlerts: RaisedAlert[] = [];
    let detected: number | undefined;
    let otherAlerts = 0;
    let windows = 0;
    events.on('score', () => windows++);
    events.on('alert', (a: Alert) => {
      // Models raises model alerts only (machine, drift); sensor alerts come from the sources.
      if (a.state !== 'raised' || a.kind === 'sensor') return;
      if (a.windowEnd < wear.onsetMs) {
        falseAlerts.push({ kind: a.kind, at: a.windowEnd, phase: phaseAt(sim, stops, a.windowEnd), top: a.topFeatures.map((f) => f.feature), ratio: a.score / a.threshold });
      } else if (WEAR_CHANNELS.includes(a.topFeatures[0]?.feature ?? '')) detected ??= a.windowEnd;
      else otherAlerts++;
    });

    const sensors = Object.entries(config.sensors).map(([sensor, { channels }]) => ({ sensor, channels: channels as (keyof MotorReading)[] }));
    const P = PROFILES[task.profile].periodMs;
    const started = performance.now();
    let lastReport = started;
    let t = T0;
    while (t < end && detected === undefined) {
      const chunkEnd = Math.min(end, t + CHUNK_MS);
      for (; t < chunkEnd; t += P) {
        const r = sim.sampleAt(t);
        for (const s of sensors) models.accept({ sensor: s.sensor, t, values: s.channels.map((c) => r[c]) });
      }
      clock.advance(t - clock.now());
      models.flush();
      const now = performance.now();
      if (now - lastReport > 500) {
        lastReport = now;
        progress(t - T0);
        await new Promise((r) => setImmediate(r));
      }
    }
    const result: TaskResult = { profile: task.profile, model: task.model, seesWear, simulatedMs: t - T0, wallMs: performance.now() - started, windows, falseAlerts, otherAlerts };
    if (detected !== undefined) {
      result.detectedAfterMs = detected - wear.onsetMs;
      result.detectedAt = bearingWearIntensity(wear, detected);
    }
    return result;
  } finally {
    await models.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------ the main thread

interface Options extends Plan {
  profiles: ProfileName[];
  models: ModelType[];
  jobs: number;
  list: boolean;
}

function positive(name: string, v: string, integer = false): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x))) throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${v}'`);
  return x;
}

function parse(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      days: { type: 'string', default: '1' },
      profile: { type: 'string', default: 'both' },
      models: { type: 'string', default: MODEL_TYPES.join(',') },
      seed: { type: 'string', default: '1' },
      'wear-hours': { type: 'string', default: '6' },
      jobs: { type: 'string', default: String(availableParallelism()) },
      list: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const p = values.profile;
  if (p !== 'both' && !(PROFILE_NAMES as readonly string[]).includes(p)) throw new UsageError(`--profile must be one of ${PROFILE_NAMES.join(', ')}, both; got '${p}'`);
  const models = values.models.split(',').map((m) => m.trim());
  const unknown = models.filter((m) => !(MODEL_TYPES as readonly string[]).includes(m));
  if (unknown.length > 0 || models.length === 0) throw new UsageError(`--models takes a comma list of ${MODEL_TYPES.join(', ')}; got '${values.models}'`);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be an integer ≥ 0, got '${values.seed}'`);
  return {
    profiles: p === 'both' ? [...PROFILE_NAMES] : [p as ProfileName],
    models: MODEL_TYPES.filter((m) => models.includes(m)),
    healthyMs: Math.round(positive('days', values.days) * DAY),
    wearHours: positive('wear-hours', values['wear-hours']),
    seed,
    jobs: positive('jobs', values.jobs, true),
    list: values.list,
  };
}

/** Runs tasks on `jobs` worker threads, longest first. */
async function runAll(tasks: Task[], jobs: number, onProgress: (done: number) => void, onDone: (r: TaskResult) => void): Promise<TaskResult[]> {
  const done = new Map<Task, number>();
  const results: TaskResult[] = [];
  const queue = [...tasks];
  const report = () => onProgress([...done.values()].reduce((a, b) => a + b, 0));
  const worker = async (): Promise<void> => {
    for (let task = queue.shift(); task; task = queue.shift()) {
      const t = task;
      const result = await new Promise<TaskResult>((resolve, reject) => {
        const w = new Worker(new URL(import.meta.url), { workerData: t });
        w.on('message', (m: WorkerMessage) => {
          if (m.kind === 'progress') {
            done.set(t, m.simulatedMs);
            report();
          } else if (m.kind === 'done') resolve(m.result);
          else reject(new Error(`${t.profile} ${t.model}: ${m.message}`));
        });
        w.on('error', reject);
        w.on('exit', (code) => reject(new Error(`${t.profile} ${t.model}: worker exited (${code}) without a result`)));
      });
      done.set(t, plannedMs(t));
      report();
      results.push(result);
      onDone(result);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
  return results;
}

/** Simulated time a task runs at most (a model that cannot see the wear stops at its onset). */
function plannedMs(t: Task): number {
  const sees = MODEL_FEATURES_SEE_WEAR[t.model];
  return t.healthyMs + (sees ? t.wearHours * HOUR + GRACE_MS : 0);
}

/** Which model types read a channel bearing wear acts on (for planning; the run decides from the bundle's features). */
const MODEL_FEATURES_SEE_WEAR: Record<ModelType, boolean> = { vibration: true, voltage: false, rpm: false, temperature: false, 'multi-feature': true };

const drifts = (r: TaskResult) => {
  const n = r.falseAlerts.filter((x) => x.kind === 'drift').length;
  return n > 0 ? `, ${n} drift` : '';
};
const h = (ms: number, d = 2) => (ms / HOUR).toFixed(d);
const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const wear = wearOf(o);
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  console.log(`bench:drift — ${cpu}, ${cpus().length} cores, node ${process.version}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}; seed ${o.seed}, ${o.jobs} job(s)`);
  const a = PLANT_DAY;
  console.log(
    `healthy: ${h(o.healthyMs)} h from ${new Date(T0).toISOString().slice(0, 16)}Z (cold start); ambient ${DEFAULTS.config.source.sim.ambientC} ± ${a.ambient.amplitudeK} °C, warmest ${a.ambient.warmestHour}:00; ` +
      `load 0.3–1.0, ${a.night.min}–${a.night.max} from ${a.night.fromHour}:00 to ${a.night.toHour}:00; stopped ${a.stop.fromHour}:00 for ${a.stop.minutes} min daily; ` +
      `temperature sensor +${a.ageing.temperatureOffsetKPerDay} K/day, accelerometer noise +${100 * a.ageing.accelNoisePerDay} %/day (times UTC)`,
  );
  console.log(
    `wear: bearing impact ∝ (time since onset)²: subtle after ${h(bearingWearReachesMs(wear, 'subtle') - wear.onsetMs)} h, moderate after ${h(bearingWearReachesMs(wear, 'moderate') - wear.onsetMs)} h, obvious after ${h(bearingWearReachesMs(wear, 'obvious') - wear.onsetMs)} h; ` +
      `detected by the first alert raised after the onset with ${WEAR_CHANNELS.join('/')} as its top feature`,
  );

  const tasks: Task[] = [];
  for (const profile of o.profiles) for (const model of o.models) tasks.push({ profile, model, seed: o.seed, healthyMs: o.healthyMs, wearHours: o.wearHours });
  const cost = (t: Task) => plannedMs(t) * PROFILES[t.profile].seqLen;
  tasks.sort((x, y) => cost(y) - cost(x));
  const total = tasks.reduce((s, t) => s + plannedMs(t), 0);
  const bar = new TaskProgress(process.stdout, 'simulated model-minutes');
  const wall0 = performance.now();
  const results = await runAll(
    tasks,
    o.jobs,
    (done) => bar.update(Math.round(done / 60_000), Math.round(total / 60_000)),
    (r) => {
      if (!process.stdout.isTTY) console.log(`  done ${r.profile} ${r.model}: ${h(r.simulatedMs)} h in ${formatSeconds(r.wallMs / 1000)}`);
    },
  );
  bar.done(`${tasks.length} model runs`);
  const wallS = (performance.now() - wall0) / 1000;

  console.log('');
  console.log(`${'profile'.padEnd(9)} ${'model'.padEnd(14)} ${'windows'.padStart(8)} ${'wall s'.padStart(7)} ${'×real'.padStart(6)}   false alerts: all (running / warm-up / stopped)   top feature   wear seen after`);
  let worstF = 0;
  let worstH = 0;
  let missed = false;
  let unjudged = false;
  for (const profile of o.profiles) {
    const rs = o.models.map((m) => results.find((r) => r.profile === profile && r.model === m)!);
    for (const r of rs) {
      const by = (p: Phase) => r.falseAlerts.filter((x) => x.phase === p).length;
      const tops = new Map<string, number>();
      for (const x of r.falseAlerts) tops.set(x.top[0] ?? '?', (tops.get(x.top[0] ?? '?') ?? 0) + 1);
      const top = [...tops].sort((p, q) => q[1] - p[1])[0]?.[0] ?? '—';
      const others = r.otherAlerts > 0 ? ` (+${r.otherAlerts} other alert${r.otherAlerts > 1 ? 's' : ''} before)` : '';
      const seen = !r.seesWear ? 'cannot see it' : r.detectedAfterMs === undefined ? `not seen${others}` : `${h(r.detectedAfterMs)} h (${r.detectedAt})${others}`;
      console.log(
        `${profile.padEnd(9)} ${r.model.padEnd(14)} ${String(r.windows).padStart(8)} ${(r.wallMs / 1000).toFixed(0).padStart(7)} ${(r.simulatedMs / r.wallMs).toFixed(0).padStart(6)}   ` +
          `${String(r.falseAlerts.length).padStart(4)} (${by('running')} / ${by('warm-up')} / ${by('stopped')})${drifts(r)}`.padEnd(48) +
          `${top.padEnd(13)} ${seen}`,
      );
      if (o.list) for (const x of r.falseAlerts) console.log(`    ${hhmm(x.at)} day ${Math.floor((x.at - T0) / DAY) + 1} ${x.phase}: ${x.kind}, score ${x.ratio.toFixed(2)}× threshold, top ${x.top.join(', ')}`);
    }
    const days = o.healthyMs / DAY;
    const falseCount = rs.reduce((s, r) => s + r.falseAlerts.length, 0);
    const f = falseCount / days;
    const seeing = rs.filter((r) => r.detectedAfterMs !== undefined).sort((p, q) => p.detectedAfterMs! - q.detectedAfterMs!);
    const first = seeing[0];
    const obviousAfter = bearingWearReachesMs(wear, 'obvious') - wear.onsetMs;
    const core = rs.reduce((s, r) => s + r.wallMs, 0) / 1000;
    const simulated = o.healthyMs + Math.max(...rs.map((r) => r.simulatedMs - o.healthyMs));
    let verdict: string;
    if (!rs.some((r) => r.seesWear)) {
      verdict = 'wear not judged: none of these models reads a channel it acts on';
      unjudged = true;
    } else if (first && first.detectedAfterMs! < obviousAfter) {
      verdict = `slow wear detected after ${h(first.detectedAfterMs!)} h (${first.detectedAt}; obvious at ${h(obviousAfter)} h) by ${first.model}`;
      worstH = Math.max(worstH, first.detectedAfterMs!);
    } else {
      missed = true;
      verdict = first ? `slow wear missed: first seen ${h(first.detectedAfterMs!)} h after onset, past obvious (${h(obviousAfter)} h), by ${first.model}` : `slow wear missed: not seen within ${h(obviousAfter + GRACE_MS)} h`;
    }
    worstF = Math.max(worstF, f);
    console.log(
      `${profile}: ${days.toFixed(3).replace(/\.?0+$/, "")} day(s) healthy + ${h(simulated - o.healthyMs)} h of wear simulated; ${core.toFixed(0)} s of one core for the ${rs.length === MODEL_TYPES.length ? 'five models' : rs.length === 1 ? 'one model' : `${rs.length} models`} (${(simulated / (core * 1000)).toFixed(0)}× real time); ` +
        `${falseCount} false alerts (${f.toFixed(1)}/day); ${verdict}`,
    );
  }
  console.log(`wall time ${formatSeconds(wallS)} on ${Math.min(o.jobs, tasks.length)} thread(s); load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (missed) console.log('slow wear missed');
  else if (unjudged) console.log(`false alerts/day ${worstF.toFixed(1)}; slow wear not judged (--models ${o.models.join(',')})`);
  else console.log(`false alerts/day ${worstF.toFixed(1)}; slow wear detected after ${h(worstH)} h`);
}

if (isMainThread) {
  await runBench('bench:drift', main);
} else {
  const port = parentPort!;
  try {
    const result = await runTask(workerData as Task, (simulatedMs) => port.postMessage({ kind: 'progress', simulatedMs } satisfies WorkerMessage));
    port.postMessage({ kind: 'done', result } satisfies WorkerMessage);
  } catch (err) {
    port.postMessage({ kind: 'error', message: (err as Error).message } satisfies WorkerMessage);
  }
}

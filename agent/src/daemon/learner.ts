/**
 * Learning this machine on the gateway (issue "Learn the machine"), started by `anomaly-agent learn`
 * or any admin's `<prefix>/<dev>/cmd/learn`:
 *
 *   collecting → checking → training → installing → done   (or refused, failed, cancelled)
 *
 * - collecting: every reading the rings accept (`sample` on the bus) is recorded, on the profile's
 *   grid as the recorder does (record/recording.ts), into `<learn.dir>/baseline`, for the baseline's
 *   length of sample time; alerts raised meanwhile are noted — a sensor's, and a model's that has
 *   learned this machine (its bundle was learned on this device). A model that has not (the shipped
 *   bundles on a machine they never saw) alerts on whatever makes this machine differ from the one it
 *   learned, which is what learning is for; its alerts are logged and do not refuse the baseline.
 * - checking: train/baseline-check.ts (gaps, a stuck or flat sensor, too little data, vibration in the
 *   damaged zone) and the alerts; any problem refuses the baseline, with the reason.
 * - training: every enabled model, with the fast trainer, in a child process at the lowest CPU
 *   priority (train/learn-child.ts): the bundles are written into `<learn.dir>/bundles`, calibrated,
 *   signed with learn.signingKey when there is one.
 * - installing: each bundle as `models install` does (flash/install.ts: verified against the device's
 *   trust, swapped in by rename with the previous bundle kept for `models rollback`, reloaded, and
 *   rolled back if it does not score). Until then the models keep running on their old bundles.
 *
 * Progress (phase, percent, ETA, why refused) is retained on `<prefix>/<dev>/learn` and logged. The
 * run is kept in `<learn.dir>/run.json`: a restart while collecting records the baseline again from
 * the start (a baseline with a restart in it has a gap), one while training or installing trains the
 * recorded baseline again. Anything that goes wrong ends the run with its reason; the daemon and its
 * models run on.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { alertSubject, type Alert } from '../core/alert.js';
import type { Timer } from '../core/clock.js';
import type { Component } from '../core/component.js';
import { DEFAULTS } from '../core/defaults.js';
import { payloadProblem, type LearnPhase } from '../core/payloads.js';
import { PROFILES } from '../core/profiles.js';
import type { Sample } from '../core/sample.js';
import { SCHEMA_VERSION, topic, TOPICS, type LearnCommandPayload, type LearnPayload } from '../core/topics.js';
import { installBundle, InstallError } from '../flash/install.js';
import { bundleDir } from '../model/bundle.js';
import { keyIdOf, trustedKeys } from '../model/signature.js';
import { readCsvDir } from '../preprocess/csv.js';
import { readRecordingManifest } from '../record/manifest.js';
import { Recording } from '../record/recording.js';
import { checkBaseline } from '../train/baseline-check.js';
import type { LearnJob, LearnJobMessage } from '../train/learn-job.js';
import type { DaemonContext } from './context.js';
import { recordingSource } from './recorder.js';

const RUN_FILE = 'run.json';
/** How often progress is looked at while collecting, ms of clock time. */
const TICK_MS = 1000;
/** Share of the percent bar each phase ends at: collecting is most of a run's time. */
const ENDS: Record<'collecting' | 'checking' | 'training' | 'installing', number> = { collecting: 60, checking: 61, training: 95, installing: 100 };
/** Bytes a row of the baseline takes at most (seven columns of up to ~12 characters), for the disk check. */
const ROW_BYTES = 100;
/** Room for the bundles a run writes (a few hundred kB each) and their copies while installing. */
const BUNDLES_BYTES = 16 * 1024 * 1024;

/** What survives a restart. */
interface Run {
  id: string;
  reason?: string;
  minutes: number;
  startedAt: number;
  phase: LearnPhase;
  /** Clock time the baseline began (collecting). */
  collectFrom: number;
  baseline?: { t0: number; t1: number; rows: number; velocityMmS?: number };
}

export interface LearnerDeps {
  client: () => MqttClient;
  /** Reload the models (the controller's reload). */
  reload: () => Promise<void>;
  /** Undefined when `model` runs bundle `sha256` and has scored since (Models.liveProblem). */
  liveProblem: (model: string, sha256: string) => Promise<string | undefined>;
  /** Whether `model` runs a bundle learned on this device: only then do its alerts refuse a baseline. */
  learnedHere: (model: string) => boolean;
}

export class Learner implements Component {
  readonly name = 'learner';
  private run: Run | undefined;
  private recording: Recording | undefined;
  private timer: Timer | undefined;
  private child: ChildProcess | undefined;
  /** Alerts raised while collecting: a baseline with one is refused. */
  private alerts: string[] = [];
  /** Episodes open now, by model or sensor (an alert raised before the run and not cleared counts too). */
  private readonly open = new Map<string, Alert>();
  private undo: (() => void)[] = [];
  private stopped = false;
  private lastPublished = { percent: -1, at: -Infinity, phase: '' };
  /** The run's state as last published: a refused command is answered with it (`commandRefused`). */
  private lastBody: LearnPayload | undefined;
  private trainFraction = 0;
  private trainStartedAt = 0;
  private readonly onMessage = (t: string, payload: Buffer) => {
    if (t === this.commandTopic) this.command(payload);
  };

  constructor(
    private readonly ctx: DaemonContext,
    private readonly deps: LearnerDeps,
  ) {}

  private get log() {
    return this.ctx.log('learner');
  }

  private get commandTopic() {
    return topic(this.ctx.config.mqtt.prefix, this.ctx.config.device.id, 'learnCommand');
  }

  private get dir() {
    return this.ctx.config.learn.dir;
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.undo.push(
      this.ctx.events.on('alert', (a) => {
        if (!this.counts(a)) {
          if (a.state === 'raised' && this.run?.phase === 'collecting') this.log.info({ model: alertSubject(a) }, `alert of ${describeAlert(a)} not held against the baseline: ${alertSubject(a)} has not learned this machine`);
          return;
        }
        const subject = alertSubject(a);
        if (a.state === 'raised') {
          this.open.set(subject, a);
          if (this.run?.phase === 'collecting') this.alerts.push(`${describeAlert(a)} at ${hms(a.since)}`);
        } else this.open.delete(subject);
      }),
    );
    const client = this.deps.client();
    client.on('message', this.onMessage);
    this.undo.push(() => client.off('message', this.onMessage));
    const subscribed = client.subscribeAsync(this.commandTopic, { qos: 1 }).then(
      (granted) => {
        if (granted[0]?.qos === 128) this.log.warn({ topic: this.commandTopic }, 'the broker refused the learn command subscription');
      },
      (err: Error) => this.log.warn({ err: err.message }, 'learn command subscription failed'),
    );
    if (client.connected) await subscribed;
    await this.resume();
  }

  /** Takes no more commands; a run under way stays in run.json and carries on at the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const u of this.undo.splice(0)) u();
    this.timer?.cancel();
    this.child?.kill('SIGKILL');
    const r = this.recording;
    this.recording = undefined;
    await r?.close();
  }

  /** The run under way or last ended (for tests and the status). */
  get current(): Readonly<Run> | undefined {
    return this.run;
  }

  /** A learn command from MQTT (or `request` in process). */
  private command(payload: Buffer): void {
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      this.refuseCommand('not JSON');
      return;
    }
    const problem = payloadProblem('learnCommand', body);
    if (problem !== undefined) {
      this.refuseCommand(problem);
      return;
    }
    this.request(body as LearnCommandPayload).catch((err: Error) => this.log.error({ err: err.message }, 'learn command failed'));
  }

  async request(c: LearnCommandPayload): Promise<void> {
    const busy = this.run && !isEnded(this.run.phase);
    if (c.action === 'cancel') {
      if (!busy) {
        this.refuseCommand('no learn run under way', 'info');
        return;
      }
      if (this.run!.phase === 'installing') {
        this.refuseCommand(`run ${this.run!.id} is installing its bundles; it cannot be cancelled now`);
        return;
      }
      await this.halt();
      await this.end('cancelled', 'cancelled by a learn command');
      return;
    }
    if (busy) {
      this.refuseCommand(`run ${this.run!.id} is ${this.run!.phase}; cancel it first`);
      return;
    }
    const minutes = c.minutes ?? this.ctx.config.learn.baselineMinutes;
    const now = this.ctx.clock.now();
    this.run = { id: `learn-${now.toString(36)}-${randomBytes(3).toString('hex')}`, ...(c.reason ? { reason: c.reason } : {}), minutes, startedAt: now, phase: 'collecting', collectFrom: now };
    this.log.info({ id: this.run.id, minutes, reason: c.reason }, `learning: recording a baseline of ${minutes} min${c.reason ? ` (${c.reason})` : ''}`);
    const refusal = (await this.signingProblem()) ?? (await this.diskProblem(minutes));
    if (refusal) {
      await this.end('refused', refusal);
      return;
    }
    await this.collect();
  }

  // ------------------------------------------------------------------------------------ phases

  /** After a restart: carry on what run.json says was under way. */
  private async resume(): Promise<void> {
    let run: Run;
    try {
      run = JSON.parse(await readFile(join(this.dir, RUN_FILE), 'utf8')) as Run;
    } catch {
      return;
    }
    this.run = run;
    if (isEnded(run.phase)) return;
    if (run.phase === 'collecting' || run.phase === 'checking') {
      this.log.warn({ id: run.id }, 'learn run interrupted by a restart while collecting: recording the baseline again from now');
      run.collectFrom = this.ctx.clock.now();
      await this.collect();
    } else {
      this.log.warn({ id: run.id, phase: run.phase }, `learn run interrupted by a restart while ${run.phase}: training the recorded baseline again`);
      void this.train();
    }
  }

  private async collect(): Promise<void> {
    const run = this.run!;
    const c = this.ctx.config;
    const dir = join(this.dir, 'baseline');
    await rm(dir, { recursive: true, force: true });
    const rows = (run.minutes * 60_000) / PROFILES[c.models.profile].periodMs;
    const maxBytes = Math.max(1024 * 1024, Math.ceil(rows * ROW_BYTES * 1.25));
    const recording = new Recording({
      dir,
      device: c.device.id,
      source: recordingSource(c),
      profile: c.models.profile,
      sensors: c.sensors,
      maxBytes,
      rotateBytes: Math.min(DEFAULTS.config.record.rotateBytes, Math.floor(maxBytes / 4)),
      rotateMs: DEFAULTS.config.record.rotateMs,
      clock: this.ctx.clock,
      log: this.ctx.logger,
      onFail: (err) => void this.halt().then(() => this.end('failed', `recording the baseline failed: ${err.message}`)),
    });
    try {
      await recording.open();
    } catch (err) {
      await this.end('failed', `the baseline cannot be recorded: ${(err as Error).message}`);
      return;
    }
    this.recording = recording;
    this.alerts = [...this.open.values()].map((a) => `${describeAlert(a)} raised at ${hms(a.since)}, still open`);
    run.phase = 'collecting';
    await this.save();
    const onSample = (s: Sample) => recording.add(s);
    const off = this.ctx.events.on('sample', onSample);
    this.undo.push(off);
    this.timer = this.ctx.clock.setInterval(() => {
      const end = run.collectFrom + run.minutes * 60_000;
      const now = this.ctx.clock.now();
      if (now < end) {
        this.progress('collecting', (ENDS.collecting * (now - run.collectFrom)) / (end - run.collectFrom), (end - now) / 1000);
        return;
      }
      this.timer?.cancel();
      off();
      void this.check().catch((err: Error) => this.end('failed', `checking the baseline failed: ${err.message}`));
    }, TICK_MS);
    this.progress('collecting', 0, run.minutes * 60);
  }

  private async check(): Promise<void> {
    const run = this.run!;
    const c = this.ctx.config;
    const recording = this.recording!;
    this.recording = undefined;
    await recording.close();
    if (recording.failed || this.stopped) return; // ended by onFail, or resumed at the next start
    this.progress('checking', ENDS.collecting);
    run.phase = 'checking';
    const dir = join(this.dir, 'baseline');
    const manifest = await readRecordingManifest(dir);
    const series = (manifest?.span?.rows ?? 0) > 0 ? await readCsvDir(dir, { requiredColumns: manifest!.columns }) : [];
    const verdict = checkBaseline(series, {
      profile: c.models.profile,
      durationMs: run.minutes * 60_000,
      gaps: manifest?.span?.gaps ?? 0,
      minCoverage: c.learn.minCoverage,
      stuckSeconds: c.learn.stuckSeconds,
      maxVelocityMmS: c.learn.maxVelocityMmS,
    });
    const problems = [...(this.alerts.length > 0 ? [`an alert was raised during the baseline: ${this.alerts.join(', ')}`] : []), ...verdict.problems];
    if (problems.length > 0) {
      await this.end('refused', `baseline refused: ${problems.join('; ')}`);
      return;
    }
    run.baseline = { t0: verdict.t0, t1: verdict.t1, rows: verdict.rows, ...(verdict.velocityMmS !== undefined ? { velocityMmS: Math.round(verdict.velocityMmS * 100) / 100 } : {}) };
    this.log.info({ id: run.id, rows: verdict.rows, velocityMmS: verdict.velocityMmS, axis: verdict.velocityAxis }, 'baseline accepted');
    await this.train();
  }

  private async train(): Promise<void> {
    if (this.stopped) return;
    const run = this.run!;
    const c = this.ctx.config;
    run.phase = 'training';
    await this.save();
    const outDir = join(this.dir, 'bundles');
    await rm(outDir, { recursive: true, force: true });
    const job: LearnJob = {
      dataDir: join(this.dir, 'baseline'),
      profile: c.models.profile,
      models: [...c.models.enabled],
      outDir,
      maxEpochs: c.learn.maxEpochs,
      patience: DEFAULTS.train.patience,
      batchSize: DEFAULTS.train.batchSize,
      seed: DEFAULTS.train.seed,
      ...(c.learn.signingKey ? { signingKeyPem: await readFile(c.learn.signingKey, 'utf8') } : {}),
      baseline: { id: run.id, learnedAt: this.ctx.clock.now(), ...(run.reason ? { reason: run.reason } : {}), device: c.device.id, ...run.baseline! },
      ...(c.learn.fromRunning ? { startFrom: Object.fromEntries(c.models.enabled.map((m) => [m, bundleDir(c.models, m)])) } : {}),
    };
    this.trainFraction = 0;
    this.trainStartedAt = this.ctx.clock.now();
    this.progress('training', ENDS.checking);
    const bundles: string[] = [];
    const outcome = await new Promise<string | undefined>((resolve) => {
      const child = (this.child = fork(new URL('../train/learn-child.js', import.meta.url), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }));
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      let result: string | undefined = 'the trainer process ended without finishing';
      child.on('message', (m: LearnJobMessage) => {
        if (m.type === 'started') this.log.info({ id: run.id, pid: m.pid, nice: m.priority, models: job.models }, `training ${job.models.join(', ')} in process ${m.pid} at nice ${m.priority}`);
        else if (m.type === 'progress') {
          this.trainFraction = m.fraction;
          const elapsed = (this.ctx.clock.now() - this.trainStartedAt) / 1000;
          const eta = m.fraction > 0 ? (elapsed * (1 - m.fraction)) / m.fraction : undefined;
          this.progress('training', ENDS.checking + (ENDS.training - ENDS.checking) * m.fraction, eta, m.model);
        } else if (m.type === 'bundle') {
          bundles.push(m.dir);
          this.log.info({ id: run.id, model: m.model, epochs: m.epochs, seconds: m.seconds, startedFrom: m.startedFrom }, `learned ${m.model}`);
        } else if (m.type === 'done') result = undefined;
        else result = m.message;
      });
      child.on('error', (err) => (result = err.message));
      child.on('exit', (code, signal) => {
        this.child = undefined;
        if (result !== undefined && (code !== 0 || signal)) result = `${result} (${signal ?? `exit ${code}`})${stderr.trim() ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`;
        resolve(result);
      });
      child.send(job);
    });
    if (this.stopped) return; // killed by stop(): the run resumes at the next start
    if (outcome !== undefined || run.phase !== 'training') {
      if (run.phase === 'training') await this.end('failed', `training failed: ${outcome}; the running models stay`);
      return;
    }
    await this.install(bundles);
  }

  private async install(bundles: string[]): Promise<void> {
    const run = this.run!;
    run.phase = 'installing';
    await this.save();
    const installed: string[] = [];
    for (const [i, dir] of bundles.entries()) {
      this.progress('installing', ENDS.training + ((ENDS.installing - ENDS.training) * i) / bundles.length);
      try {
        const r = await installBundle(dir, {
          config: this.ctx.config,
          reload: this.deps.reload,
          liveProblem: this.deps.liveProblem,
          timeoutMs: DEFAULTS.component.modelUpdate.liveTimeoutMs,
          log: (line) => this.log.info({ id: run.id }, line),
        });
        installed.push(r.model);
      } catch (err) {
        const why = err instanceof InstallError ? err.message : (err as Error).message;
        await this.end('failed', `installing ${dir} failed: ${why}${installed.length ? `; ${installed.join(', ')} run learned bundles` : ''}`, installed);
        return;
      }
    }
    await rm(join(this.dir, 'bundles'), { recursive: true, force: true });
    await this.end('done', undefined, installed);
  }

  // ------------------------------------------------------------------------------------ helpers

  /** Does this alert count against a baseline? A sensor's always; a model's once it has learned this machine. */
  private counts(a: Alert): boolean {
    return a.kind === 'sensor' || this.deps.learnedHere(a.model);
  }

  /**
   * A command the learner does not carry out: logged, and answered on the retained learn topic (the
   * state of the run there is, with `commandRefused`) so whoever sent it over MQTT hears why. With no
   * run ever, there is no state to answer with: the log has it.
   */
  private refuseCommand(why: string, level: 'info' | 'warn' = 'warn'): void {
    this.log[level]({ topic: this.commandTopic, reason: why }, `learn command refused: ${why}`);
    const last = this.lastBody ?? (this.run ? this.body(this.run.phase, this.run.phase === 'done' ? 100 : 0) : undefined);
    if (last) this.publish({ ...last, t: this.ctx.clock.now(), commandRefused: why });
  }

  /** Stops collecting or training (cancel, a recording that failed). */
  private async halt(): Promise<void> {
    this.timer?.cancel();
    this.child?.kill('SIGKILL');
    const r = this.recording;
    this.recording = undefined;
    await r?.close();
  }

  private async end(phase: 'done' | 'refused' | 'failed' | 'cancelled', refusal?: string, models?: string[]): Promise<void> {
    const run = this.run!;
    run.phase = phase;
    await this.save().catch((err: Error) => this.log.error({ err: err.message }, `${RUN_FILE} cannot be written`));
    this.progress(phase, phase === 'done' ? 100 : Math.max(0, this.lastPublished.percent), undefined, undefined, refusal, models);
    if (phase === 'done') this.log.info({ id: run.id, models }, `learned: ${models!.join(', ')} now run bundles of this machine's baseline`);
    else if (phase === 'cancelled') this.log.info({ id: run.id }, 'learn cancelled');
    else this.log.warn({ id: run.id, phase, reason: refusal }, `learn ${phase}: ${refusal}; the running models stay`);
  }

  /** Publishes (retained) and logs the run's progress; throttled to a change of phase or of a whole percent, once a second. */
  private progress(phase: LearnPhase, percent: number, etaS?: number, model?: string, refusal?: string, models?: string[]): void {
    const run = this.run!;
    const now = this.ctx.clock.now();
    const body = this.body(phase, percent, etaS, refusal, models);
    const p = body.percent;
    const last = this.lastPublished;
    const changed = phase !== last.phase;
    if (!changed && (p === last.percent || now - last.at < 1000)) return;
    if (changed || Math.floor(p / 10) !== Math.floor(last.percent / 10)) {
      if (!isEnded(phase)) this.log.info({ id: run.id, phase, percent: p, etaS: body.etaS, model }, `learning: ${phase} ${p} %${body.etaS !== undefined ? `, about ${body.etaS} s left` : ''}`);
    }
    this.lastPublished = { percent: p, at: now, phase };
    this.lastBody = body;
    this.publish(body);
  }

  private body(phase: LearnPhase, percent: number, etaS?: number, refusal?: string, models?: string[]): LearnPayload {
    const run = this.run!;
    return {
      v: SCHEMA_VERSION,
      t: this.ctx.clock.now(),
      id: run.id,
      phase,
      percent: Math.max(0, Math.min(100, Math.floor(percent))),
      ...(etaS !== undefined && Number.isFinite(etaS) ? { etaS: Math.round(etaS) } : {}),
      startedAt: run.startedAt,
      minutes: run.minutes,
      ...(run.reason ? { reason: run.reason } : {}),
      ...(refusal ? { refusal } : {}),
      ...(models ? { models } : {}),
    };
  }

  private publish(body: LearnPayload): void {
    const c = this.ctx.config;
    // Sent, not awaited: a broker that is away gets the latest state when it is back (retained).
    this.deps.client().publish(topic(c.mqtt.prefix, c.device.id, 'learn'), JSON.stringify(body), { qos: TOPICS.learn.qos, retain: TOPICS.learn.retain }, () => {});
  }

  private async save(): Promise<void> {
    const tmp = join(this.dir, `${RUN_FILE}.tmp`);
    await writeFile(tmp, JSON.stringify(this.run, null, 2) + '\n');
    await rename(tmp, join(this.dir, RUN_FILE));
  }

  /** Learned bundles must load on this device: with models.requireSigned they need the device's own key, trusted. */
  private async signingProblem(): Promise<string | undefined> {
    const m = this.ctx.config.models;
    const keyFile = this.ctx.config.learn.signingKey;
    if (!keyFile) return m.requireSigned ? 'models.requireSigned is on but learn.signingKey is empty: learned bundles could not be signed, so they would be refused' : undefined;
    let keyId: string;
    try {
      keyId = keyIdOf(createPublicKey(createPrivateKey(await readFile(keyFile, 'utf8'))));
    } catch (err) {
      return `learn.signingKey ${keyFile} is not a readable private key (${(err as Error).message})`;
    }
    if (!m.requireSigned) return undefined;
    const trusted = trustedKeys(await Promise.all(m.trustedKeys.map(async (f) => ({ pem: await readFile(f, 'utf8'), source: f }))));
    return trusted.has(keyId) ? undefined : `learn.signingKey (key ${keyId}) is not among models.trustedKeys: learned bundles would be refused`;
  }

  /** A full disk refuses the run before it starts, naming what it needs. */
  private async diskProblem(minutes: number): Promise<string | undefined> {
    const rows = (minutes * 60_000) / PROFILES[this.ctx.config.models.profile].periodMs;
    const need = rows * ROW_BYTES + BUNDLES_BYTES;
    const s = await statfs(this.dir);
    const free = s.bavail * s.bsize;
    return free < need ? `not enough disk for the baseline and bundles: ${mb(need)} needed, ${mb(free)} free in ${this.dir}` : undefined;
  }
}

const hms = (t: number) => new Date(t).toISOString().slice(11, 19);

/** An alert in a refusal: the model and its score, or the sensor and its fault. */
function describeAlert(a: Alert): string {
  return a.kind === 'sensor' ? `sensor ${a.sensor} (${a.fault})` : `${a.model} (${a.kind}, score ${a.score.toFixed(2)} over ${a.threshold.toFixed(2)})`;
}

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;

function isEnded(p: LearnPhase): boolean {
  return p === 'done' || p === 'refused' || p === 'failed' || p === 'cancelled';
}

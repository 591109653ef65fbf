import type { Component } from '../core/component.js';
import type { Timer } from '../core/clock.js';
import type { SensorHealth } from '../core/sample.js';
import type { HealthReport } from '../http/server.js';
import type { DaemonContext } from './context.js';
import type { Intake } from './intake.js';
import type { Models } from './models.js';
import { learnedOf } from '../model/bundle.js';

/** How often sensor health is looked at: a change is logged and published on the status topic. */
const HEALTH_POLL_MS = 1000;
const HEALTH_STATES: readonly SensorHealth[] = ['ok', 'stale', 'error', 'fault'];
/** A model's baseline drift is announced on the status topic again when it moved this much (training ranges) since. */
const DRIFT_STATUS_STEP = 0.05;

/**
 * Is the daemon well? Watches sensor health (a change is logged and announced; a model whose sensor
 * is not ok is paused — it gets no windows across the gap — and resumes when the sensor delivers),
 * and answers /healthz (report) and systemd's watchdog (progress). A sensor fault makes /healthz
 * fail, naming it, but is progress: the readings arrive and are judged, and a restart would not
 * mend the sensor.
 */
export class HealthWatch implements Component {
  readonly name = 'health';
  private timer: Timer | undefined;
  private last: Record<string, SensorHealth> = {};
  /** Each model's drift as last announced. */
  private lastDrift = new Map<string, number>();
  private startedAt = 0;

  constructor(
    private readonly ctx: DaemonContext,
    private readonly intake: Intake,
    private readonly models: Models,
  ) {}

  async start(): Promise<void> {
    this.startedAt = this.ctx.clock.now();
    this.last = this.sensors();
    this.timer = this.ctx.clock.setInterval(() => this.watch(), HEALTH_POLL_MS);
  }

  async stop(): Promise<void> {
    this.timer?.cancel();
  }

  /** Sensor health as the source sees it now; the gauges follow. */
  sensors(): Record<string, SensorHealth> {
    const h = this.intake.health();
    for (const sensor of Object.keys(this.ctx.config.sensors)) {
      this.ctx.metrics.sensorUp.set({ sensor }, h[sensor] === 'ok' ? 1 : 0);
      for (const state of HEALTH_STATES) this.ctx.metrics.sensorState.set({ sensor, state }, h[sensor] === state ? 1 : 0);
    }
    return h;
  }

  beforeScrape(): void {
    this.sensors();
    for (const m of this.models.all.values()) this.ctx.metrics.baselineDrift.set({ model: m.model }, m.drift);
  }

  /**
   * Is the pipeline moving? A sample arrived and some model scored a window within health.stallMs.
   * This, not the event loop merely running, is what feeds systemd's watchdog (daemon/notify.ts);
   * a broker outage is not a stall (alerts wait in the outbox).
   */
  progress(): { ok: boolean; why?: string } {
    const now = this.ctx.clock.now();
    const stall = this.ctx.config.health.stallMs;
    if (now - this.startedAt <= stall) return { ok: true };
    const lastSample = this.intake.lastSampleAt;
    if (now - lastSample > stall) return { ok: false, why: `no sample for ${Math.round((now - (lastSample || this.startedAt)) / 1000)} s` };
    const lastScored = this.models.lastScoredAt();
    if (now - lastScored > stall && !this.allBlocked()) return { ok: false, why: `no window scored for ${Math.round((now - (lastScored || this.startedAt)) / 1000)} s` };
    return { ok: true };
  }

  /** /healthz: ok, or every reason it is not. */
  report(): HealthReport {
    const reasons: string[] = [];
    const now = this.ctx.clock.now();
    const stall = this.ctx.config.health.stallMs;
    const since = (t: number) => `${Math.round((now - t) / 1000)} s`;
    const models = this.models.all;
    const faults = this.intake.faults();
    if (now - this.startedAt > stall) {
      if (now - this.intake.lastSampleAt > stall) reasons.push(`no sample for ${since(this.intake.lastSampleAt || this.startedAt)}`);
      if (models.size === 0) reasons.push('no model loaded');
      for (const m of models.values()) {
        // A model whose sensor has a fault scores nothing meanwhile: the fault is the reason.
        if (now - m.lastScoredAt > stall && ![...m.sensors].some((s) => faults.has(s))) reasons.push(`model ${m.model}: no window scored for ${since(m.lastScoredAt || this.startedAt)}`);
      }
    }
    for (const [sensor, h] of Object.entries(this.sensors())) if (h !== 'ok' && h !== 'fault') reasons.push(`sensor ${sensor} is ${h}`);
    for (const [sensor, open] of faults) for (const f of open) reasons.push(`sensor ${sensor}: sensor fault, ${f.fault}: ${f.detail}`);
    for (const m of models.values()) {
      const limit = m.baseline?.maxDrift;
      if (limit !== undefined && m.drift >= limit) reasons.push(`model ${m.model}: baseline drifted ${m.drift} training ranges, at its limit ${limit}`);
    }
    return { ok: reasons.length === 0, reasons, models: [...models.values()].map((m) => ({ model: m.model, sha256: m.bundleSha256, drift: m.drift, ...learnedOf(m.manifest) })) };
  }

  /** Every model reads a sensor with an open fault: none can score, and that is not a stall. */
  private allBlocked(): boolean {
    const faulty = this.intake.faults();
    if (faulty.size === 0) return false;
    for (const m of this.models.all.values()) if (![...m.sensors].some((s) => faulty.has(s))) return false;
    return true;
  }

  private watch(): void {
    const h = this.sensors();
    const changed = Object.keys(h).filter((s) => h[s] !== this.last[s]);
    const drifted = [...this.models.all.values()].filter((m) => Math.abs(m.drift - (this.lastDrift.get(m.model) ?? 0)) >= DRIFT_STATUS_STEP);
    if (drifted.length > 0) {
      for (const m of drifted) this.lastDrift.set(m.model, m.drift);
      if (changed.length === 0) this.ctx.events.emit('status', undefined);
    }
    if (changed.length === 0) return;
    const log = this.ctx.log('health');
    for (const s of changed) {
      const level = h[s] === 'ok' ? 'info' : 'warn';
      log[level]({ sensor: s, health: h[s], was: this.last[s] }, h[s] === 'fault' ? `sensor ${s} has a sensor fault` : `sensor ${s} is ${h[s]}`);
    }
    this.last = h;
    const paused = this.models.paused;
    for (const m of this.models.all.values()) {
      const missing = [...m.sensors].filter((s) => h[s] !== undefined && h[s] !== 'ok');
      if (missing.length > 0 && !paused.has(m.model)) {
        paused.add(m.model);
        log.warn({ model: m.model, sensors: missing }, `model ${m.model} paused: no data from ${missing.map((s) => `${s} (${h[s] === 'fault' ? 'sensor fault' : h[s]})`).join(', ')}`);
      } else if (missing.length === 0 && paused.delete(m.model)) {
        log.info({ model: m.model }, `model ${m.model} resumes: its sensors deliver again`);
      }
    }
    this.ctx.events.emit('status', undefined);
  }
}

import type { MqttClient } from 'mqtt';
import type { Alert } from '../core/alert.js';
import type { Component } from '../core/component.js';
import type { Timer } from '../core/clock.js';
import type { Outbox } from '../publish/outbox.js';
import { Publisher } from '../publish/publisher.js';
import type { StatusPayload } from '../core/topics.js';
import type { DaemonContext } from './context.js';

/** How long an alert the outbox refused (disk full, I/O error) waits before it is offered again. */
const ALERT_RETRY_MS = 1000;

/**
 * What the daemon says on MQTT: telemetry from accepted samples, scores, status on every change, and
 * alerts — handed to the publisher in order, each one durable in the outbox before the next; one the
 * outbox refuses is retried, never dropped.
 */
export class Publishing implements Component {
  readonly name = 'publisher';
  readonly publisher: Publisher;
  /** Alerts not yet durable in the outbox, oldest first. */
  private readonly unsaved: Alert[] = [];
  private saving: Promise<void> | undefined;
  private retry: Timer | undefined;
  private stopped = false;
  /** Outbox evictions already added to the counter (the outbox keeps a running total). */
  private evictedReported = 0;
  /** Removes this component's event handlers. */
  private stopListening: (() => void)[] = [];

  constructor(
    private readonly ctx: DaemonContext,
    client: MqttClient,
    private readonly outbox: Outbox,
    status: () => Omit<StatusPayload, 'v' | 't' | 'state'>,
  ) {
    const c = ctx.config;
    this.publisher = new Publisher({
      client,
      outbox,
      prefix: c.mqtt.prefix,
      device: c.device.id,
      clock: ctx.clock,
      log: ctx.log('publisher'),
      channels: Object.fromEntries(Object.entries(c.sensors).map(([s, v]) => [s, v.channels])),
      telemetryIntervalMs: c.publish.telemetryIntervalMs,
      publishScores: c.publish.scores,
      status,
    });
  }

  async start(): Promise<void> {
    const ev = this.ctx.events;
    this.stopListening = [
      ev.on('sample', (s) => this.publisher.telemetry(s)),
      ev.on('score', (e) => this.publisher.score(e.model, e.payload)),
      ev.on('status', () => this.publisher.publishStatus()),
      ev.on('alert', (e) => this.alert(e)),
    ];
    await this.publisher.start();
  }

  /** Alerts still waiting get one more try; then telemetry is flushed and `offline` said. */
  async stop(): Promise<void> {
    for (const off of this.stopListening.splice(0)) off();
    this.stopped = true;
    this.retry?.cancel();
    await this.saving;
    await this.save();
    await this.publisher.stop();
  }

  /** Brings the gauges that mirror the outbox up to date for a scrape. */
  beforeScrape(): void {
    const m = this.ctx.metrics;
    for (const kind of ['alert', 'telemetry'] as const) {
      m.outboxDepth.set({ kind }, this.outbox.depth[kind]);
      m.outboxBytes.set({ kind }, this.outbox.bytes[kind]);
    }
    const evicted = this.outbox.counters.evictedTelemetry;
    if (evicted > this.evictedReported) m.outboxEvicted.inc({ kind: 'telemetry' }, evicted - this.evictedReported);
    this.evictedReported = evicted;
  }

  private alert(e: Alert): void {
    this.ctx.metrics.alerts.inc(e.kind === 'sensor' ? { kind: e.kind, sensor: e.sensor, state: e.state } : { kind: e.kind, model: e.model, state: e.state });
    const what =
      e.kind === 'sensor'
        ? { sensor: e.sensor, fault: e.fault, detail: e.detail }
        : { model: e.model, score: e.score, threshold: e.threshold, top: e.topFeatures.map((f) => f.feature), ...(e.peak ? { peak: e.peak.score, peakThreshold: e.peak.threshold } : {}) };
    this.ctx.log('detector').warn({ id: e.id, kind: e.kind, state: e.state, ...what, ...(e.reason ? { reason: e.reason } : {}) }, `${e.kind === 'machine' ? '' : `${e.kind} `}alert ${e.state}${e.reason ? `: ${e.reason}` : ''}`);
    this.unsaved.push(e);
    void this.save();
  }

  /**
   * Hands alerts to the publisher in order, one pass at a time (a pass in progress takes the alerts
   * that arrive meanwhile); on a refusal, tries again after ALERT_RETRY_MS.
   */
  private save(): Promise<void> {
    this.saving ??= (async () => {
      while (this.unsaved.length > 0) {
        try {
          await this.publisher.alert(this.unsaved[0]!);
          this.unsaved.shift();
        } catch (err) {
          this.ctx.log('publisher').error({ err: (err as Error).message, pending: this.unsaved.length }, `alert not stored; retrying in ${ALERT_RETRY_MS / 1000} s`);
          if (!this.stopped) this.retry = this.ctx.clock.setTimeout(() => void this.save(), ALERT_RETRY_MS);
          return;
        }
      }
    })().finally(() => (this.saving = undefined));
    return this.saving;
  }
}

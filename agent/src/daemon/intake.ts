import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Component } from '../core/component.js';
import type { Sample, SensorHealth } from '../core/sample.js';
import type { AgentConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { DropReason } from '../sources/mqtt-ingest.js';
import { createSource, type SourceDeps } from '../sources/registry.js';
import type { SampleSource } from '../sources/source.js';
import type { DaemonContext } from './context.js';
import type { Models } from './models.js';

/**
 * The configured sample source, feeding the models' rings. A reading the rings accept is announced
 * (`sample`: telemetry, and whatever else listens); one they refuse is counted and goes no further.
 */
export class Intake implements Component {
  readonly name = 'source';
  private source: SampleSource | undefined;
  /** When the last accepted reading arrived (0: none yet). */
  lastSampleAt = 0;

  constructor(
    private readonly ctx: DaemonContext,
    private readonly models: Models,
    private readonly client: () => MqttClient,
  ) {}

  async start(): Promise<void> {
    const { ctx } = this;
    const source = await createSource(
      ctx.config.source.kind,
      sourceDeps(ctx.config, { clock: ctx.clock, threads: ctx.threads, log: ctx.logger, client: this.client(), onDropped: (reason) => ctx.metrics.ingestDropped.inc({ reason }) }),
    );
    source.onSample((s) => this.onSample(s));
    await source.start();
    this.source = source;
  }

  /** Stops sampling, then judges the windows the last samples completed (their alerts still go out). */
  async stop(): Promise<void> {
    await this.source?.stop();
    this.models.flush();
  }

  /** One entry per configured sensor; empty before the source has started. */
  health(): Record<string, SensorHealth> {
    return this.source?.health() ?? {};
  }

  private onSample(s: Sample): void {
    if (!this.models.accept(s)) return;
    this.lastSampleAt = this.ctx.clock.now();
    this.ctx.metrics.samples.inc({ sensor: s.sensor });
    this.ctx.events.emit('sample', s);
  }
}

/**
 * What the configured source is built from (sources/registry.ts createSource): the daemon's intake
 * and `anomaly-agent record` build it so, from the same configuration.
 */
export function sourceDeps(
  c: AgentConfig,
  o: { clock: Clock; threads: boolean; log: Logger; client?: MqttClient; onDropped?: (reason: DropReason) => void },
): SourceDeps {
  return {
    sensors: c.sensors,
    clock: o.clock,
    threads: o.threads,
    log: o.log, // sources name their own module
    client: o.client,
    mqtt: { device: c.device.id, prefix: c.mqtt.prefix, onDropped: o.onDropped },
    replay: { ...c.source.replay },
    profile: c.models.profile,
    hardware: c.hardware,
    sim: c.source.sim,
  };
}

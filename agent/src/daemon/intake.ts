import type { MqttClient } from 'mqtt';
import type { Component } from '../core/component.js';
import type { Sample, SensorHealth } from '../core/sample.js';
import { createSource } from '../sources/registry.js';
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
    const c = this.ctx.config;
    const source = await createSource(c.source.kind, {
      sensors: c.sensors,
      clock: this.ctx.clock,
      threads: this.ctx.threads,
      log: this.ctx.logger, // sources name their own module
      client: this.client(),
      mqtt: {
        device: c.device.id,
        prefix: c.mqtt.prefix,
        onDropped: (reason) => this.ctx.metrics.ingestDropped.inc({ reason }),
      },
      replay: { ...c.source.replay },
      profile: c.models.profile,
      hardware: c.hardware,
      sim: c.source.sim,
    });
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

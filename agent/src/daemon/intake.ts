import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { channelLimits, SensorCheck, type OpenFault } from '../buffer/sensor-check.js';
import type { Component } from '../core/component.js';
import type { Sample, SensorHealth, SensorLimits } from '../core/sample.js';
import { sourceParts } from '../config/load.js';
import type { AgentConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { DropReason } from '../sources/mqtt-ingest.js';
import { createSource, type SourceDeps } from '../sources/registry.js';
import type { SampleSource } from '../sources/source.js';
import type { DaemonContext } from './context.js';
import type { Models } from './models.js';

/**
 * The configured sample source, feeding the models' rings. Every reading is first checked for a
 * sensor fault (buffer/sensor-check.ts: out of its plausible range, or stuck), one place for every
 * source: such a reading is counted and withheld, and the fault is an alert of kind sensor. A reading
 * the rings accept is announced (`sample`: telemetry, and whatever else listens); one they refuse is
 * counted and goes no further.
 */
export class Intake implements Component {
  readonly name = 'source';
  private source: SampleSource | undefined;
  private check: SensorCheck | undefined;
  /** When the last reading arrived, plausible or not (0: none yet): the source is delivering. */
  lastSampleAt = 0;

  constructor(
    private readonly ctx: DaemonContext,
    private readonly models: Models,
    private readonly client: () => MqttClient,
  ) {}

  async start(): Promise<void> {
    const { ctx } = this;
    const c = ctx.config;
    const limits = channelLimits(c.sensors, c.sensorFaults.channels, sourceParts(c));
    this.check = new SensorCheck({
      sensors: c.sensors,
      limits,
      clearMs: c.sensorFaults.clearMs,
      onWithheld: (sensor, fault) => ctx.metrics.sensorFaults.inc({ sensor, fault }),
      onAlert: (a) => {
        ctx.events.emit('alert', a);
        ctx.events.emit('status', undefined); // the sensor's health changed with it
      },
    });
    const shown = (l: SensorLimits) => `${l.min}..${l.max}${l.rest !== undefined ? `, rest ${l.rest}` : ''}, stuck after ${l.stuckMs ? `${l.stuckMs} ms` : 'never'}`;
    ctx.log('sensor-check').info({ limits: Object.fromEntries([...limits].map(([ch, l]) => [ch, shown(l)])), clearMs: c.sensorFaults.clearMs }, 'plausible readings');
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

  /**
   * One entry per configured sensor; empty before the source has started. What the source says
   * (stale, error: nothing arrives) comes first; a sensor delivering with a fault open is `fault`.
   */
  health(): Record<string, SensorHealth> {
    const h = { ...this.source?.health() }; // a copy: a source may hand out its own record
    for (const sensor of this.faults().keys()) if (h[sensor] === 'ok') h[sensor] = 'fault';
    return h;
  }

  /** The sensors with an open fault, and what it is. */
  faults(): Map<string, OpenFault[]> {
    return this.check?.faults() ?? new Map();
  }

  private onSample(s: Sample): void {
    if (this.check && !this.check.check(s)) {
      this.lastSampleAt = this.ctx.clock.now(); // the source delivers; what it delivers is another matter
      return;
    }
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

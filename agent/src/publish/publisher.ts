import type { MqttClient } from 'mqtt';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { toAlertPayload, type Alert } from '../core/alert.js';
import type { Clock, Timer } from '../core/clock.js';
import type { Component } from '../core/component.js';
import type { Sample } from '../core/sample.js';
import type { Outbox } from './outbox.js';
import { SCHEMA_VERSION, topic, TOPICS, type ScorePayload, type StatusPayload, type TelemetryPayload } from '../core/topics.js';

export interface PublisherOptions {
  client: MqttClient;
  outbox: Outbox;
  prefix: string;
  device: string;
  clock: Clock;
  log: Logger;
  /** Sensor name → channel names, for telemetry payloads. */
  channels: Record<string, string[]>;
  telemetryIntervalMs: number;
  publishScores: boolean;
  /** The status payload's body as of now (models, sensors, version). */
  status: () => Omit<StatusPayload, 'v' | 't' | 'state'>;
}

interface TelemetryBatch {
  ts: number[];
  values: number[][];
}

/**
 * Everything the agent says on MQTT goes through here, built from core/topics.ts.
 *
 * Alerts are store-and-forward: appended durably to the outbox first, then sent in outbox order; an
 * entry leaves the outbox only when the broker has acknowledged it (PUBACK), so neither a broker outage
 * nor a killed agent loses one. Telemetry goes straight out while connected and into the outbox (where
 * it may be evicted, never at the expense of alerts) while not. Scores are live data: dropped offline.
 */
export class Publisher implements Component {
  readonly name = 'publisher';
  private readonly batches = new Map<string, TelemetryBatch>();
  /** Outbox seqs handed to mqtt.js and not yet acknowledged; mqtt.js resends them itself on reconnect. */
  private readonly inFlight = new Set<number>();
  private timer: Timer | undefined;
  private draining = false;
  private redrain = false;
  private stopped = false;
  private readonly onConnect = () => this.connected();

  constructor(private readonly o: PublisherOptions) {}

  async start(): Promise<void> {
    this.stopped = false;
    this.o.client.on('connect', this.onConnect);
    if (this.o.client.connected) this.connected();
    this.timer = this.o.clock.setInterval(() => void this.flushTelemetry(), this.o.telemetryIntervalMs);
  }

  /**
   * Flushes telemetry and says `offline` (retained) while the connection is still there. The PUBACK
   * is not awaited here: a broker that hung would never send it. The MQTT connection's stop() waits a
   * bounded time for everything in flight; without it, the broker publishes the last will (offline).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timer?.cancel();
    this.o.client.off('connect', this.onConnect);
    await this.flushTelemetry();
    if (this.o.client.connected) {
      void this.publish(topic(this.o.prefix, this.o.device, 'status'), JSON.stringify(this.statusPayload('offline')), TOPICS.status.qos, true).catch((err) =>
        this.o.log.debug({ err: (err as Error).message }, 'offline status not acknowledged (the last will says it)'),
      );
    }
  }

  /** The last will: what the broker publishes for us if the connection dies. */
  static lastWill(prefix: string, device: string, status: Omit<StatusPayload, 'v' | 't' | 'state'>, t: number) {
    const payload: StatusPayload = { v: SCHEMA_VERSION, t, state: 'offline', ...status };
    return { topic: topic(prefix, device, 'status'), payload: Buffer.from(JSON.stringify(payload)), qos: TOPICS.status.qos, retain: true };
  }

  publishStatus(): void {
    if (!this.o.client.connected) return; // the retained will says offline; `online` is re-sent on connect
    void this.publish(topic(this.o.prefix, this.o.device, 'status'), JSON.stringify(this.statusPayload('online')), TOPICS.status.qos, true).catch((err) =>
      this.o.log.warn({ err: (err as Error).message }, 'status not published'),
    );
  }

  /** Collects a reading; batches go out about every telemetryIntervalMs per sensor. */
  telemetry(s: Sample): void {
    let b = this.batches.get(s.sensor);
    if (!b) this.batches.set(s.sensor, (b = { ts: [], values: [] }));
    b.ts.push(s.t);
    b.values.push(s.values);
  }

  score(model: string, p: Omit<ScorePayload, 'v' | 't'>): void {
    if (!this.o.publishScores || !this.o.client.connected) return;
    const payload: ScorePayload = { v: SCHEMA_VERSION, t: this.o.clock.now(), ...p };
    void this.publish(topic(this.o.prefix, this.o.device, 'score', model), JSON.stringify(payload), TOPICS.score.qos, false).catch(() => {});
  }

  /** Resolves once the alert is durable in the outbox (not when delivered: that may take an outage). */
  async alert(e: Alert): Promise<void> {
    const payload = toAlertPayload(e, this.o.clock.now());
    await this.o.outbox.append({ kind: 'alert', topic: topic(this.o.prefix, this.o.device, 'alerts'), payload: JSON.stringify(payload), qos: TOPICS.alerts.qos });
    this.drain();
  }

  private statusPayload(state: StatusPayload['state']): StatusPayload {
    return { v: SCHEMA_VERSION, t: this.o.clock.now(), state, ...this.o.status() };
  }

  private connected(): void {
    // Nagle + delayed ACK hold small packets back ~40 ms on loopback; alerts should not wait.
    (this.o.client.stream as Socket | undefined)?.setNoDelay?.(true);
    this.publishStatus();
    this.drain();
  }

  private async flushTelemetry(): Promise<void> {
    for (const [sensor, b] of this.batches) {
      if (b.ts.length === 0) continue;
      const payload: TelemetryPayload = {
        v: SCHEMA_VERSION,
        t: this.o.clock.now(),
        t0: b.ts[0]!,
        periodMs: b.ts.length > 1 ? Math.round((b.ts[b.ts.length - 1]! - b.ts[0]!) / (b.ts.length - 1)) : 0,
        channels: this.o.channels[sensor] ?? [],
        ts: b.ts,
        values: b.values,
      };
      this.batches.set(sensor, { ts: [], values: [] });
      const t = topic(this.o.prefix, this.o.device, 'telemetry', sensor);
      const text = JSON.stringify(payload);
      if (this.o.client.connected && this.o.outbox.depth.telemetry === 0) {
        void this.publish(t, text, TOPICS.telemetry.qos, false).catch(() => {});
      } else {
        await this.o.outbox.append({ kind: 'telemetry', topic: t, payload: text, qos: TOPICS.telemetry.qos }).catch((err) =>
          this.o.log.warn({ err: (err as Error).message }, 'telemetry not stored'),
        );
        this.drain();
      }
    }
  }

  /**
   * Sends what the outbox holds, oldest first, each entry once until mqtt.js reports it acknowledged
   * (or failed, when it is sent again on the next drain). Re-entrant calls fold into one pass.
   */
  private drain(): void {
    if (this.draining) {
      this.redrain = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.redrain = false;
        for (const e of this.o.outbox.entries()) {
          if (!this.o.client.connected) return;
          if (this.inFlight.has(e.seq)) continue;
          this.inFlight.add(e.seq);
          this.publish(e.topic, e.payload, e.qos, e.retain ?? false).then(
            () => {
              this.inFlight.delete(e.seq);
              this.o.outbox.ack(e.seq);
            },
            (err) => {
              this.inFlight.delete(e.seq);
              this.o.log.debug({ seq: e.seq, err: (err as Error).message }, 'outbox entry not delivered; kept for the next connection');
            },
          );
        }
      } while (this.redrain);
    } finally {
      this.draining = false;
    }
  }

  private publish(t: string, payload: string | Buffer, qos: 0 | 1, retain: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.o.client.publish(t, payload, { qos, retain }, (err) => (err ? reject(err) : resolve()));
    });
  }
}

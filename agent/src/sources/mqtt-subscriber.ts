/**
 * What the sources that listen on MQTT share (sources/mqtt-ingest.ts: readings another system
 * publishes; sources/telemetry.ts: a gateway's telemetry): one subscription to
 * `<prefix>/<dev>/<topic>/+` on a client the caller owns, a message handler that never throws,
 * drops counted per reason and logged once per burst, and health from when each sensor last
 * delivered. A subclass says how one message of one sensor becomes samples (take()).
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';
import type { Sample, SensorHealth, SensorSpec } from '../core/sample.js';
import { checkLevel, topicFilter, TOPICS } from '../core/topics.js';
import { BurstLog } from './burst-log.js';
import { allSensors, healthFromLastSeen, SampleHandlers, type SampleSource } from './source.js';

/** The options every MQTT source takes. */
export interface SubscriberOptions {
  /** Connected (or connecting) mqtt.js client owned by the caller (the daemon, `record`). */
  client: MqttClient;
  sensors: SensorSpec;
  clock: Clock;
  /** Device id: the `<dev>` topic level. */
  device: string;
  /** Topic prefix, default: mqtt.prefix's. */
  prefix?: string;
  log?: Logger;
  /** A sensor with no accepted sample for this long (clock time) is 'stale', ms. Defaults of this and burstMs: `DEFAULTS.component.mqttIngest`. */
  staleMs?: number;
  /** Length of a logging burst, ms. */
  burstMs?: number;
  /** Subscription QoS, default the topic's. */
  qos?: 0 | 1 | 2;
}

/** How a subclass differs. */
export interface SubscriberKind<R extends string> {
  /** The topic listened to, one level per sensor. */
  topic: 'ingest' | 'telemetry';
  /** The logger's module. */
  module: string;
  /** Words of the burst log lines, e.g. 'ingest payload dropped'. */
  dropped: string;
  reasons: readonly R[];
  /**
   * start() waits for the subscription and throws if it is refused (a command that records
   * nothing otherwise). Without: a daemon's start is not held up by an absent broker, mqtt.js
   * subscribes once it connects, and a refusal is logged and shows as sensors in 'error'.
   */
  strict: boolean;
}

export const SUBSCRIBER_DEFAULTS = { prefix: DEFAULTS.config.mqtt.prefix, ...DEFAULTS.component.mqttIngest };

export abstract class MqttSubscriber<R extends string> implements SampleSource {
  abstract readonly kind: string;
  abstract readonly name: string;
  /** Drops since construction, by reason. */
  readonly drops: Record<R, number>;
  /** Samples emitted since construction. */
  accepted = 0;
  protected log: Logger = silentLogger;

  private readonly handlers = new SampleHandlers(() => this.log, () => this.s.clock.now());
  private burst: BurstLog | undefined;
  private running = false;
  private subscribeFailed = false;
  private filter = '';
  private base = '';
  private startedAt = 0;
  private readonly lastSeen = new Map<string, number>();
  private readonly onMessage = (topic: string, payload: Buffer) => this.handle(topic, payload);

  constructor(
    private readonly s: SubscriberOptions,
    private readonly k: SubscriberKind<R>,
  ) {
    this.drops = Object.fromEntries(k.reasons.map((r) => [r, 0])) as Record<R, number>;
  }

  onSample(handler: (s: Sample) => void): void {
    this.handlers.add(handler);
  }

  async start(): Promise<void> {
    if (this.running) return;
    const { s, k } = this;
    const prefix = s.prefix ?? SUBSCRIBER_DEFAULTS.prefix;
    this.base = `${prefix}/${checkLevel('device id', s.device)}/${k.topic}/`;
    this.filter = topicFilter(prefix, s.device, k.topic);
    this.log = (s.log ?? silentLogger).child({ module: k.module });
    this.burst = new BurstLog(s.clock, this.log, k.dropped, s.burstMs ?? SUBSCRIBER_DEFAULTS.burstMs);
    this.startedAt = s.clock.now();
    this.subscribeFailed = false;
    this.running = true;
    s.client.on('message', this.onMessage);
    const qos = s.qos ?? TOPICS[k.topic].qos;
    const subscribed = s.client.subscribeAsync(this.filter, { qos }).then((granted) => {
      // MQTT 3.1.1 reports a refused subscription as granted qos 128 rather than an error.
      if (granted.some((g) => g.qos === 128)) throw new Error('broker refused the subscription (suback 128)');
      this.log.info({ topic: this.filter, qos }, `subscribed to ${k.topic}`);
    });
    if (k.strict) {
      try {
        await subscribed;
      } catch (e) {
        this.subscribeFailed = true;
        throw new Error(`cannot subscribe to ${this.filter}: ${e instanceof Error ? e.message : String(e)}`);
      }
      return;
    }
    const watched = subscribed.catch((e: unknown) => this.subscriptionFailed(e));
    // Connected: wait for the suback so samples flow when start() resolves. Offline: mqtt.js queues
    // the subscription (and resubscribes after reconnects); do not block the daemon's start on it.
    if (s.client.connected) await watched;
    else this.log.info({ topic: this.filter }, 'mqtt client not connected yet; subscribing once it connects');
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    const c = this.s.client;
    c.removeListener('message', this.onMessage);
    this.burst?.flush();
    // Not awaited: a broker that hung would never answer. The connection's stop() gives the UNSUBACK a bounded wait.
    if (c.connected && !c.disconnecting) c.unsubscribe(this.filter, (e) => e && this.log.debug({ err: e }, `unsubscribe from ${this.k.topic} failed (connection closing?)`));
  }

  health(): Record<string, SensorHealth> {
    if (this.subscribeFailed) return allSensors(this.s.sensors, 'error');
    if (!this.running) return allSensors(this.s.sensors, 'stale');
    return healthFromLastSeen(this.s.sensors, this.lastSeen, this.startedAt, this.s.clock.now(), this.s.staleMs ?? SUBSCRIBER_DEFAULTS.staleMs);
  }

  /**
   * One message on `<prefix>/<dev>/<topic>/<sensor>`: emit its samples (accept) or drop it (drop).
   * `sensor` is the topic level, not yet checked against the configured sensors.
   */
  protected abstract take(sensor: string, topic: string, payload: Buffer): void;

  /** A reading that passed every check: out to the handlers. */
  protected accept(s: Sample): void {
    this.lastSeen.set(s.sensor, this.s.clock.now());
    this.subscribeFailed = false; // data arrives, so the subscription is in place
    this.accepted++;
    this.handlers.emit(s);
  }

  /** Counts and (once per burst) logs a drop. */
  protected drop(reason: R, fields: Record<string, unknown>): void {
    this.drops[reason]++;
    this.burst?.note(reason, fields);
  }

  private subscriptionFailed(e: unknown): void {
    if (!this.running) return;
    this.subscribeFailed = true;
    this.log.error({ topic: this.filter }, `cannot subscribe to ${this.k.topic}: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** The 'message' listener: never throws (DESIGN.md: bad payloads never stop the daemon). */
  private handle(topic: string, payload: Buffer): void {
    try {
      if (!this.running || !topic.startsWith(this.base)) return; // another subscription of the shared client
      const sensor = topic.slice(this.base.length);
      if (sensor.includes('/')) return;
      this.take(sensor, topic, payload);
    } catch (e) {
      try {
        this.log.error({ topic }, `${this.k.topic} handler failed: ${e instanceof Error ? e.message : String(e)}`);
      } catch {
        // nothing left to do; never throw into mqtt.js
      }
    }
  }
}

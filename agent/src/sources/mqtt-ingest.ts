/**
 * MQTT ingest: readings published by another system on `<prefix>/<dev>/ingest/<sensor>`
 * (DESIGN.md, MQTT topics). The daemon owns the connection and passes its mqtt.js client in; this
 * source only subscribes, validates and emits.
 *
 * Payload: JSON `{t?: number, values: number[]}` (other keys ignored) or, for a one-channel
 * sensor, a bare number (`230.1`). A missing `t` means clock.now().
 *
 * "Bad ingest payloads are counted, logged once per burst, and dropped; they never stop the
 * daemon": every rejection has a reason from DROP_REASONS, counted in `drops`, passed to
 * `onDropped`, and logged through a BurstLog. The message handler never throws.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';
import type { Sample, SensorHealth, SensorSpec } from '../core/sample.js';
import { isPayload } from '../core/payloads.js';
import { checkLevel, topicFilter, TOPICS } from '../core/topics.js';
import { BurstLog } from './burst-log.js';
import { allSensors, healthFromLastSeen, positive, SampleHandlers, type SampleSource } from './source.js';

/** Why a payload was dropped, in the order the checks run. */
export const DROP_REASONS = [
  /** The topic's sensor level is not a configured sensor (checked first: no payload work at all). */
  'unknown_sensor',
  /** Payload over `maxPayloadBytes` (4 KiB), checked on the raw bytes before any decoding. */
  'too_large',
  /** Not JSON (and not a non-finite number word, see not_number). */
  'bad_json',
  /** JSON, but neither an object with a `values` array nor a bare number (string, array, null, `{}`, `{values: 5}` …). */
  'not_object',
  /** `values` length ≠ the sensor's channel count; also a bare number for a multi-channel sensor. */
  'wrong_arity',
  /** A value that is not a finite number: NaN/Infinity (as bare text or 1e999), strings, null, booleans. */
  'not_number',
  /** `t` present but not a finite number, more than `maxFutureMs` ahead of the clock, or not after the sensor's previous sample. */
  'bad_time',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface MqttIngestOptions {
  /** Connected (or connecting) mqtt.js client owned by the daemon. */
  client: MqttClient;
  sensors: SensorSpec;
  clock: Clock;
  /** Device id: the `<dev>` topic level. */
  device: string;
  /** Topic prefix, default: mqtt.prefix's. */
  prefix?: string;
  log?: Logger;
  /** A sensor with no accepted sample for this long (clock time) is 'stale', ms. Defaults of this and the next three: `DEFAULTS.component.mqttIngest`. */
  staleMs?: number;
  /** Largest accepted payload in bytes. */
  maxPayloadBytes?: number;
  /** How far ahead of the clock `t` may be, ms. */
  maxFutureMs?: number;
  /** Length of a logging burst, ms. */
  burstMs?: number;
  /** Subscription QoS, default the topic's (TOPICS.ingest). */
  qos?: 0 | 1 | 2;
  /** Called for every dropped payload (after counting). Its exceptions are swallowed. */
  onDropped?: (reason: DropReason, topic: string) => void;
}

/** mqtt.prefix of the configuration and the ingest's own options (core/defaults.ts). */
const MQTT_INGEST_DEFAULTS = { prefix: DEFAULTS.config.mqtt.prefix, ...DEFAULTS.component.mqttIngest };

const NON_FINITE_WORD = /^[+-]?(?:nan|inf|infinity)$/i;

/** Which DROP_REASON a payload that fails the ingest schema (core/payloads.ts) is counted under. */
function ingestProblem(body: unknown, arity: number): DropReason {
  if (typeof body === 'number') return arity === 1 ? 'not_number' : 'wrong_arity';
  const values = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { values?: unknown }).values : undefined;
  if (!Array.isArray(values)) return 'not_object';
  if (values.length !== arity) return 'wrong_arity';
  return values.every((v) => typeof v === 'number' && Number.isFinite(v)) ? 'bad_time' : 'not_number';
}

export class MqttIngestSource implements SampleSource {
  readonly kind = 'mqtt';
  readonly name = 'source:mqtt';
  /** Dropped payloads per reason since construction. */
  readonly drops: Record<DropReason, number> = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  /** Accepted samples since construction. */
  accepted = 0;

  private readonly handlers = new SampleHandlers(() => this.log, () => this.opts.clock.now());
  private log: Logger = silentLogger;
  private burst: BurstLog | undefined;
  private running = false;
  private subscribeFailed = false;
  private filter = '';
  private base = '';
  private startedAt = 0;
  private readonly lastT = new Map<string, number>();
  private readonly lastSeen = new Map<string, number>();
  private readonly onMessage = (topic: string, payload: Buffer) => this.handle(topic, payload);

  constructor(private readonly opts: MqttIngestOptions) {}

  onSample(handler: (s: Sample) => void): void {
    this.handlers.add(handler);
  }

  async start(): Promise<void> {
    if (this.running) return;
    const o = this.opts;
    const prefix = o.prefix ?? MQTT_INGEST_DEFAULTS.prefix;
    for (const name of Object.keys(o.sensors)) checkLevel('sensor', name);
    positive('mqtt ingest staleMs', o.staleMs ?? MQTT_INGEST_DEFAULTS.staleMs);
    positive('mqtt ingest maxPayloadBytes', o.maxPayloadBytes ?? MQTT_INGEST_DEFAULTS.maxPayloadBytes);
    this.base = `${prefix}/${checkLevel('device id', o.device)}/ingest/`;
    this.filter = topicFilter(prefix, o.device, 'ingest');
    this.log = (o.log ?? silentLogger).child({ module: 'mqtt-ingest' });
    this.burst = new BurstLog(o.clock, this.log, 'ingest payload dropped', o.burstMs ?? MQTT_INGEST_DEFAULTS.burstMs);
    this.startedAt = o.clock.now();
    this.subscribeFailed = false;
    this.running = true;
    o.client.on('message', this.onMessage);
    const qos = o.qos ?? TOPICS.ingest.qos;
    const subscribed = o.client.subscribeAsync(this.filter, { qos }).then(
      (granted) => {
        // MQTT 3.1.1 reports a refused subscription as granted qos 128 rather than an error.
        const refused = granted.some((g) => g.qos === 128);
        if (refused) this.subscriptionFailed(new Error('broker refused the subscription (suback 128)'));
        else this.log.info({ topic: this.filter, qos }, 'subscribed to ingest');
      },
      (e: unknown) => this.subscriptionFailed(e),
    );
    // Connected: wait for the suback so samples flow when start() resolves. Offline: mqtt.js queues
    // the subscription (and resubscribes after reconnects); do not block the daemon's start on it.
    if (o.client.connected) await subscribed;
    else this.log.info({ topic: this.filter }, 'mqtt client not connected yet; subscribing once it connects');
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    const c = this.opts.client;
    c.removeListener('message', this.onMessage);
    this.burst?.flush();
    if (c.connected && !c.disconnecting) {
      try {
        await c.unsubscribeAsync(this.filter);
      } catch (e) {
        this.log.debug({ err: e }, 'unsubscribe from ingest failed (connection closing?)');
      }
    }
  }

  health(): Record<string, SensorHealth> {
    if (this.subscribeFailed) return allSensors(this.opts.sensors, 'error');
    if (!this.running) return allSensors(this.opts.sensors, 'stale');
    return healthFromLastSeen(this.opts.sensors, this.lastSeen, this.startedAt, this.opts.clock.now(), this.opts.staleMs ?? MQTT_INGEST_DEFAULTS.staleMs);
  }

  private subscriptionFailed(e: unknown): void {
    if (!this.running) return;
    this.subscribeFailed = true;
    this.log.error({ topic: this.filter }, `cannot subscribe to ingest: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** The 'message' listener: never throws (DESIGN.md: bad payloads never stop the daemon). */
  private handle(topic: string, payload: Buffer): void {
    try {
      if (!this.running || !topic.startsWith(this.base)) return; // another subscription of the shared client
      const sensor = topic.slice(this.base.length);
      if (sensor.includes('/')) return;
      const r = this.parse(sensor, payload);
      if (typeof r === 'string') {
        this.drop(r, topic, payload);
        return;
      }
      this.lastT.set(sensor, r.t);
      this.lastSeen.set(sensor, this.opts.clock.now());
      this.subscribeFailed = false; // data arrives, so the subscription is in place
      this.accepted++;
      this.handlers.emit(r);
    } catch (e) {
      try {
        this.log.error({ topic }, `ingest handler failed: ${e instanceof Error ? e.message : String(e)}`);
      } catch {
        // nothing left to do; never throw into mqtt.js
      }
    }
  }

  /** A valid sample, or the reason to drop the payload. */
  private parse(sensor: string, payload: Buffer): Sample | DropReason {
    const spec = Object.hasOwn(this.opts.sensors, sensor) ? this.opts.sensors[sensor] : undefined;
    if (spec === undefined) return 'unknown_sensor';
    if (payload.length > (this.opts.maxPayloadBytes ?? MQTT_INGEST_DEFAULTS.maxPayloadBytes)) return 'too_large';
    const text = payload.toString('utf8');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return NON_FINITE_WORD.test(text.trim()) ? 'not_number' : 'bad_json';
    }
    const arity = spec.channels.length;
    if (!isPayload('ingest', body)) return ingestProblem(body, arity);
    const values = typeof body === 'number' ? [body] : body.values;
    if (values.length !== arity) return 'wrong_arity';
    let t = typeof body === 'number' ? undefined : body.t;
    const now = this.opts.clock.now();
    if (t === undefined) t = now;
    else if (t > now + (this.opts.maxFutureMs ?? MQTT_INGEST_DEFAULTS.maxFutureMs)) return 'bad_time';
    const prev = this.lastT.get(sensor);
    if (prev !== undefined && !(t > prev)) return 'bad_time';
    return { sensor, t, values };
  }

  private drop(reason: DropReason, topic: string, payload: Buffer): void {
    this.drops[reason]++;
    this.burst?.note(reason, { topic, bytes: payload.length });
    if (this.opts.onDropped !== undefined) {
      try {
        this.opts.onDropped(reason, topic);
      } catch {
        // a metrics callback must not turn a bad payload into a crash
      }
    }
  }
}

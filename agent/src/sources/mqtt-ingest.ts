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
import type { Sample } from '../core/sample.js';
import { isPayload } from '../core/payloads.js';
import { checkLevel } from '../core/topics.js';
import { MqttSubscriber, SUBSCRIBER_DEFAULTS, type SubscriberOptions } from './mqtt-subscriber.js';
import { positive } from './source.js';

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

export interface MqttIngestOptions extends SubscriberOptions {
  /** Largest accepted payload in bytes. Default: `DEFAULTS.component.mqttIngest`, as staleMs and burstMs. */
  maxPayloadBytes?: number;
  /** How far ahead of the clock `t` may be, ms. */
  maxFutureMs?: number;
  /** Called for every dropped payload (after counting). Its exceptions are swallowed. */
  onDropped?: (reason: DropReason, topic: string) => void;
}

const MQTT_INGEST_DEFAULTS = SUBSCRIBER_DEFAULTS;

const NON_FINITE_WORD = /^[+-]?(?:nan|inf|infinity)$/i;

/** Which DROP_REASON a payload that fails the ingest schema (core/payloads.ts) is counted under. */
function ingestProblem(body: unknown, arity: number): DropReason {
  if (typeof body === 'number') return arity === 1 ? 'not_number' : 'wrong_arity';
  const values = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { values?: unknown }).values : undefined;
  if (!Array.isArray(values)) return 'not_object';
  if (values.length !== arity) return 'wrong_arity';
  return values.every((v) => typeof v === 'number' && Number.isFinite(v)) ? 'bad_time' : 'not_number';
}

export class MqttIngestSource extends MqttSubscriber<DropReason> {
  readonly kind = 'mqtt';
  readonly name = 'source:mqtt';
  private readonly lastT = new Map<string, number>();

  constructor(private readonly opts: MqttIngestOptions) {
    super(opts, { topic: 'ingest', module: 'mqtt-ingest', dropped: 'ingest payload dropped', reasons: DROP_REASONS, strict: false });
  }

  override async start(): Promise<void> {
    for (const name of Object.keys(this.opts.sensors)) checkLevel('sensor', name);
    positive('mqtt ingest staleMs', this.opts.staleMs ?? MQTT_INGEST_DEFAULTS.staleMs);
    positive('mqtt ingest maxPayloadBytes', this.opts.maxPayloadBytes ?? MQTT_INGEST_DEFAULTS.maxPayloadBytes);
    await super.start();
  }

  protected take(sensor: string, topic: string, payload: Buffer): void {
    const r = this.parse(sensor, payload);
    if (typeof r === 'string') {
      this.drop(r, { topic, bytes: payload.length });
      if (this.opts.onDropped !== undefined) {
        try {
          this.opts.onDropped(r, topic);
        } catch {
          // a metrics callback must not turn a bad payload into a crash
        }
      }
      return;
    }
    this.lastT.set(sensor, r.t);
    this.accept(r);
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
}

/**
 * A gateway's telemetry as a source: the batches a running daemon publishes on
 * `<prefix>/<dev>/telemetry/<sensor>` (TelemetryPayload, core/payloads.ts: a row per reading, each with
 * its own time) taken apart into the samples they were made of. `anomaly-agent record --telemetry`
 * records a gateway from a workstation with it. Not a `source.kind` of the daemon: it is for
 * listening to another daemon, not for being one.
 *
 * A batch is checked as a whole against the declared schema and the configured sensor (its channels,
 * in order); within a batch, each row must have one value per channel and come after the sensor's
 * previous row, or that row alone is dropped. Drops are counted per reason and logged once per burst;
 * the message handler never throws (sources/mqtt-subscriber.ts, as the mqtt ingest). start() waits
 * for the subscription and fails, naming the topic, if the broker refuses it.
 */
import { isPayload, payloadProblem } from '../core/payloads.js';
import { MqttSubscriber, type SubscriberOptions } from './mqtt-subscriber.js';

/** Why a batch, or a row of one, was dropped. */
export const TELEMETRY_DROP_REASONS = [
  /** The topic's sensor is not a configured sensor. */
  'unknown_sensor',
  /** Not JSON, or not a telemetry payload (the schema names what is wrong in the log). */
  'bad_payload',
  /** The batch's channels are not the configured sensor's, in order. */
  'wrong_channels',
  /** ts and values of different lengths, or a row with the wrong number of values or a non-finite one. */
  'bad_row',
  /** A row not after the sensor's previous one (a batch sent twice, time set back). */
  'bad_time',
] as const;
export type TelemetryDropReason = (typeof TELEMETRY_DROP_REASONS)[number];

/** The options of every MQTT source (sources/mqtt-subscriber.ts); `device` is the gateway's. */
export type TelemetrySourceOptions = SubscriberOptions;

export class TelemetrySource extends MqttSubscriber<TelemetryDropReason> {
  readonly kind = 'telemetry';
  readonly name = 'source:telemetry';
  private readonly lastT = new Map<string, number>();

  constructor(private readonly o: TelemetrySourceOptions) {
    super(o, { topic: 'telemetry', module: 'telemetry', dropped: 'telemetry dropped', reasons: TELEMETRY_DROP_REASONS, strict: true });
  }

  protected take(sensor: string, topic: string, payload: Buffer): void {
    const spec = Object.hasOwn(this.o.sensors, sensor) ? this.o.sensors[sensor] : undefined;
    if (spec === undefined) return this.drop('unknown_sensor', { topic });
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return this.drop('bad_payload', { topic, problem: 'not JSON' });
    }
    if (!isPayload('telemetry', body)) return this.drop('bad_payload', { topic, problem: payloadProblem('telemetry', body) });
    const channels = spec.channels;
    if (body.channels.length !== channels.length || body.channels.some((c, i) => c !== channels[i])) {
      return this.drop('wrong_channels', { topic, channels: body.channels, configured: channels });
    }
    if (body.ts.length !== body.values.length) return this.drop('bad_row', { topic, problem: `${body.ts.length} times for ${body.values.length} rows` });
    for (let i = 0; i < body.ts.length; i++) {
      const t = body.ts[i]!;
      const values = body.values[i]!;
      const last = this.lastT.get(sensor) ?? -Infinity;
      if (values.length !== channels.length || !values.every(Number.isFinite)) {
        this.drop('bad_row', { topic, row: i });
      } else if (!(t > last) || !Number.isFinite(t)) {
        this.drop('bad_time', { topic, row: i, t, previous: last });
      } else {
        this.lastT.set(sensor, t);
        this.accept({ sensor, t, values });
      }
    }
  }
}

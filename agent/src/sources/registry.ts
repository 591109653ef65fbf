/**
 * Sources by configuration key (CONVENTIONS.md, habit 4): the config names a kind, this module
 * builds it from a plain deps object. Hardware-backed kinds will be imported lazily inside their
 * factory, so a laptop never loads i2c-bus or onoff — which is why createSource is async.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { SensorSpec } from '../core/sample.js';
import { MqttIngestSource, type MqttIngestOptions } from './mqtt-ingest.js';
import { ReplaySource, type ReplayOptions } from './replay.js';
import type { SampleSource } from './source.js';

export const SOURCE_KINDS = ['replay', 'mqtt', 'sim'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** Everything a source may need; each kind checks for the parts it uses. */
export interface SourceDeps {
  sensors: SensorSpec;
  clock: Clock;
  log: Logger;
  /** mqtt: the daemon's connected client. */
  client?: MqttClient;
  /** mqtt: topic and validation settings (device id is required). */
  mqtt?: Omit<MqttIngestOptions, 'client' | 'sensors' | 'clock' | 'log'>;
  /** replay: file and playback settings (file is required). */
  replay?: Omit<ReplayOptions, 'sensors' | 'clock' | 'log'>;
}

/** A kind that exists in configuration but whose implementation is not built into this agent (yet). */
export class SourceUnavailableError extends Error {
  override readonly name = 'SourceUnavailableError';
  constructor(readonly kind: string) {
    super(`source '${kind}' is not available yet`);
  }
}

type Factory = (deps: SourceDeps) => Promise<SampleSource>;

function need<T>(kind: string, what: string, v: T | undefined): T {
  if (v === undefined) throw new Error(`source '${kind}' needs ${what}`);
  return v;
}

const FACTORIES: Record<SourceKind, Factory> = {
  replay: async (d) => {
    const r = need('replay', 'replay options (deps.replay with a file)', d.replay);
    need('replay', 'a file to replay (deps.replay.file)', r.file || undefined);
    return new ReplaySource({ ...r, sensors: d.sensors, clock: d.clock, log: d.log });
  },
  mqtt: async (d) => {
    const client = need('mqtt', 'an mqtt client (deps.client)', d.client);
    const m = need('mqtt', 'mqtt options (deps.mqtt with a device id)', d.mqtt);
    return new MqttIngestSource({ ...m, client, sensors: d.sensors, clock: d.clock, log: d.log });
  },
  // Slot for the I2C/GPIO drivers and the simulator: their factory will `await import(...)` here.
  sim: async () => {
    throw new SourceUnavailableError('sim');
  },
};

/** Builds the configured source. Unknown kinds are refused with the list of known ones. */
export async function createSource(kind: SourceKind, deps: SourceDeps): Promise<SampleSource> {
  if (!(SOURCE_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`unknown source '${String(kind)}'; known sources: ${SOURCE_KINDS.join(', ')}`);
  }
  return FACTORIES[kind](deps);
}

/**
 * Sources by configuration key (CONVENTIONS.md, habit 4): the config names a kind, this module
 * builds it from a plain deps object. The driver-backed kinds (`sim`, `hardware`) are imported lazily
 * inside their factory, and only `hardware` opens i2c-bus and onoff (lazily again, in hw/), so a
 * laptop never loads them — which is why createSource is async. With `threads` (the daemon) they
 * run on a thread of their own (sources/sampler-thread.ts), away from scoring; without (tests on an
 * injected clock), in this thread.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { ProfileName } from '../core/profiles.js';
import type { SensorSpec } from '../core/sample.js';
import type { HardwareSettings } from '../hw/build.js';
import { MqttIngestSource, type MqttIngestOptions } from './mqtt-ingest.js';
import { ReplaySource, type ReplayOptions } from './replay.js';
import type { SimSettings } from './sim.js';
import type { SampleSource } from './source.js';

export const SOURCE_KINDS = ['replay', 'mqtt', 'sim', 'hardware'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** Everything a source may need; each kind checks for the parts it uses. */
export interface SourceDeps {
  sensors: SensorSpec;
  clock: Clock;
  /** sim, hardware: sample on a thread of their own (on the system clock only); default false. */
  threads?: boolean;
  log: Logger;
  /** mqtt: the daemon's connected client. */
  client?: MqttClient;
  /** mqtt: topic and validation settings (device id is required). */
  mqtt?: Omit<MqttIngestOptions, 'client' | 'sensors' | 'clock' | 'log'>;
  /** replay: file and playback settings (file is required). */
  replay?: Omit<ReplayOptions, 'sensors' | 'clock' | 'log'>;
  /** sim, hardware: the speed profile (sampling period; the simulated motor's speed). */
  profile?: ProfileName;
  /** sim, hardware: the parts' and the sampler's settings. */
  hardware?: HardwareSettings;
  /** sim: the simulated motor (sources/sim.ts SimSettings). With `client` and `mqtt.device`, fault commands are taken over MQTT. */
  sim?: SimSettings;
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
  sim: async (d) => {
    const profile = need('sim', 'a speed profile (deps.profile)', d.profile);
    const settings = need('sim', 'hardware settings (deps.hardware)', d.hardware);
    const sim = need('sim', 'simulator settings (deps.sim)', d.sim);
    const mqtt = { client: d.client, device: d.mqtt?.device, prefix: d.mqtt?.prefix };
    if (d.threads) {
      const { ThreadedSource } = await import('./sampler-thread.js');
      return new ThreadedSource({ kind: 'sim', sensors: d.sensors, clock: d.clock, log: d.log, profile, settings, sim, ...mqtt });
    }
    const { SimSource } = await import('./sim.js');
    return new SimSource({ sensors: d.sensors, clock: d.clock, log: d.log, profile, settings, sim, ...mqtt });
  },
  hardware: async (d) => {
    const profile = need('hardware', 'a speed profile (deps.profile)', d.profile);
    const settings = need('hardware', 'hardware settings (deps.hardware)', d.hardware);
    if (d.threads) {
      const { ThreadedSource } = await import('./sampler-thread.js');
      return new ThreadedSource({ kind: 'hardware', sensors: d.sensors, clock: d.clock, log: d.log, profile, settings });
    }
    const { HardwareSource } = await import('./hardware.js');
    const { PROFILES } = await import('../core/profiles.js');
    return new HardwareSource({ sensors: d.sensors, clock: d.clock, log: d.log, periodMs: PROFILES[profile].periodMs, settings });
  },
};

/** Builds the configured source. Unknown kinds are refused with the list of known ones. */
export async function createSource(kind: SourceKind, deps: SourceDeps): Promise<SampleSource> {
  if (!(SOURCE_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`unknown source '${String(kind)}'; known sources: ${SOURCE_KINDS.join(', ')}`);
  }
  return FACTORIES[kind](deps);
}

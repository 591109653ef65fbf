/**
 * Every MQTT topic the agent uses (DESIGN.md, "MQTT topics"): its levels, direction, QoS and retain.
 * Publishers build topics only through this module. Each topic's payload is declared once as a schema
 * in core/payloads.ts, which gives the payload types re-exported here, the checks of inbound payloads
 * and the README's topic table (core/topic-table.ts). This module loads nothing at run time beyond
 * itself: the web page imports it in the browser.
 */
import type { TopicName } from './payloads.js';

/** Schema version carried as `v` in every payload; bump on an incompatible change. */
export const SCHEMA_VERSION = 1;

export type {
  AlertPayload,
  ModelAlertPayload,
  SensorAlertPayload,
  FaultCommandPayload,
  IngestPayload,
  LearnCommandPayload,
  LearnPayload,
  ModelUpdatePayload,
  ModelUpdateResult,
  PayloadOf,
  ScorePayload,
  StatusPayload,
  TelemetryPayload,
  TopFeature,
  TopicName,
} from './payloads.js';

export interface TopicSpec {
  /** Levels after `<prefix>/<dev>/`; `{sensor}` / `{model}` are filled in. */
  suffix: string;
  direction: 'out' | 'in';
  qos: 0 | 1;
  retain: boolean;
  /**
   * Who may publish it on a broker with users (broker/src/acl.ts): `device`, the gateway's own
   * credential for its own `<dev>`; or `admin` only (commands and model updates, which change what a
   * gateway runs). A device credential subscribes to its `in` topics only.
   */
  publisher: 'device' | 'admin';
  doc: string;
}

export const TOPICS = {
  status: { suffix: 'status', direction: 'out', qos: 1, retain: true, publisher: 'device', doc: 'agent state, also the last will (offline)' },
  telemetry: { suffix: 'telemetry/{sensor}', direction: 'out', qos: 0, retain: false, publisher: 'device', doc: 'batched readings, about once a second per sensor' },
  score: { suffix: 'score/{model}', direction: 'out', qos: 0, retain: false, publisher: 'device', doc: 'reconstruction error of every window' },
  alerts: { suffix: 'alerts', direction: 'out', qos: 1, retain: false, publisher: 'device', doc: 'one raised and one cleared per episode; stored and forwarded, never dropped' },
  ingest: { suffix: 'ingest/{sensor}', direction: 'in', qos: 0, retain: false, publisher: 'device', doc: 'readings from another system, for the mqtt source' },
  modelUpdate: { suffix: 'models/update', direction: 'in', qos: 1, retain: false, publisher: 'admin', doc: 'a model bundle in acknowledged chunks (anomaly-agent models flash --mqtt); resumable' },
  modelResult: { suffix: 'models/result', direction: 'out', qos: 1, retain: false, publisher: 'device', doc: 'the answer to every update message: bytes received per file, then the install result' },
  fault: { suffix: 'cmd/fault', direction: 'in', qos: 1, retain: false, publisher: 'admin', doc: 'sim source only: a simulated fault on or off, a part unplugged or replugged, bus errors injected' },
  learnCommand: { suffix: 'cmd/learn', direction: 'in', qos: 1, retain: false, publisher: 'admin', doc: 'learn this machine: record a baseline, check it, train every enabled model, install them (anomaly-agent learn); or cancel' },
  learn: { suffix: 'learn', direction: 'out', qos: 1, retain: true, publisher: 'device', doc: 'the learn run: phase, percent, ETA; why a baseline was refused' },
} as const satisfies Record<TopicName, TopicSpec>;

/** A topic level may not be empty or contain MQTT's separators and wildcards. */
export function checkLevel(what: string, value: string): string {
  if (value === '' || /[/+#\u0000]/.test(value)) throw new Error(`${what} '${value}' cannot be an MQTT topic level (no '/', '+', '#', NUL, not empty)`);
  return value;
}

/** The concrete topic for a device, e.g. topic('anomaly', 'pump-7', 'score', 'vibration'). */
export function topic(prefix: string, dev: string, name: TopicName, param?: string): string {
  const suffix = TOPICS[name].suffix;
  const needs = suffix.includes('{');
  if (needs !== (param !== undefined)) throw new Error(`topic '${name}' ${needs ? 'needs' : 'takes no'} parameter`);
  const filled = needs ? suffix.replace(/\{\w+\}/, checkLevel(name === 'score' ? 'model' : 'sensor', param!)) : suffix;
  return `${prefix}/${checkLevel('device id', dev)}/${filled}`;
}

/** Subscription filter for a topic across all sensors/models of a device (or all devices with dev = '+'). */
export function topicFilter(prefix: string, dev: string, name: TopicName): string {
  return `${prefix}/${dev}/${TOPICS[name].suffix.replace(/\{\w+\}/, '+')}`;
}

/** A topic taken apart: which of TOPICS it is, for which device, and its `{sensor}` / `{model}` level. */
export interface ParsedTopic {
  name: TopicName;
  dev: string;
  param?: string;
}

/** The inverse of topic(): undefined for a topic that is not one of TOPICS under `prefix`. */
export function parseTopic(prefix: string, t: string): ParsedTopic | undefined {
  if (!t.startsWith(`${prefix}/`)) return undefined;
  const [dev, ...rest] = t.slice(prefix.length + 1).split('/');
  if (!dev || rest.some((l) => l === '')) return undefined;
  for (const [name, spec] of Object.entries(TOPICS) as [TopicName, TopicSpec][]) {
    const want = spec.suffix.split('/');
    if (want.length !== rest.length) continue;
    let param: string | undefined;
    if (want.every((w, i) => (w.startsWith('{') ? ((param = rest[i]), true) : w === rest[i]))) return param === undefined ? { name, dev } : { name, dev, param };
  }
  return undefined;
}

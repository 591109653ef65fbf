/**
 * Every MQTT topic the agent uses and the type of its payload, declared once (DESIGN.md, "MQTT topics").
 * Publishers build topics and payloads only through this module; the README's topic table is tested
 * against TOPICS.
 */
import type { SensorHealth } from './sample.js';
import type { Score } from './score.js';

/** Schema version carried as `v` in every payload; bump on an incompatible change. */
export const SCHEMA_VERSION = 1;

interface Envelope {
  v: typeof SCHEMA_VERSION;
  /** ms since the Unix epoch when the payload was made. */
  t: number;
}

export interface StatusPayload extends Envelope {
  state: 'online' | 'offline';
  /** Agent version. */
  version: string;
  /** Loaded bundles: model type and bundle identity, so a flash can be confirmed. */
  /** The bundles running; sha256 of each one's bundle.json, which identifies it exactly. */
  models: { model: string; name: string; sha256: string }[];
  sensors: Record<string, SensorHealth>;
}

export interface TelemetryPayload extends Envelope {
  /** Timestamp of the first row in `values`. */
  t0: number;
  /** Nominal spacing of rows; each row also has its own timestamp in `ts` (sources jitter). */
  periodMs: number;
  channels: string[];
  /** ms epoch of each row. */
  ts: number[];
  values: number[][];
}

/** A scored window (core/score.ts) and the threshold it was judged against. */
export interface ScorePayload extends Envelope, Score {
  threshold: number;
}

export interface TopFeature {
  /** A model input: a channel, or `<channel>.shape` (its movement within the window). */
  feature: string;
  /** Reconstruction MSE of that feature in the window that raised / peaked. */
  error: number;
  /** Share of the window's total error, 0..1. */
  share: number;
}

export interface AlertPayload extends Envelope {
  /** Incident id, the same on `raised` and `cleared`. */
  id: string;
  model: string;
  state: 'raised' | 'cleared';
  /** Score of the window that raised (or the episode's peak, on cleared). */
  score: number;
  threshold: number;
  topFeatures: TopFeature[];
  /** ms epoch when the episode began (first window over threshold). */
  since: number;
}

/** Ingest: `{t?, values}` or, for a one-channel sensor, a bare number. */
export type IngestPayload = { t?: number; values: number[] } | number;

/** A bundle sent over MQTT (flash/mqtt-update.ts): begin, chunks at byte offsets, status, commit. */
export type ModelUpdatePayload =
  | { op: 'begin'; id: string; files: { name: string; size: number; sha256: string }[] }
  | { op: 'chunk'; id: string; file: string; offset: number; data: string }
  | { op: 'status'; id: string }
  | { op: 'commit'; id: string };

/** The device's answer to every update message; `received` (bytes per file) is where to resume. */
export interface ModelUpdateResult extends Envelope {
  id: string;
  op: ModelUpdatePayload['op'];
  ok: boolean;
  received: Record<string, number>;
  error?: string;
  /** On a successful commit: the model now running and its bundle's sha256. */
  model?: string;
  sha256?: string;
}

/**
 * A command to the `sim` source (other sources do not subscribe): switch a simulated fault of the
 * motor on (`fault` one of core/faults.ts FAULT_KINDS, `intensity` subtle, moderate or obvious,
 * `channels` for stuck/dropout) or off (`fault` omitted: all of them); unplug or replug an emulated
 * part (`part` adxl345, ads1115, mcp9808 or tach); fail a fraction `rate` (0..1) of the emulated
 * bus's transfers with `code` (EIO, ENXIO, EREMOTEIO, ETIMEDOUT; default EIO), rate 0 to stop.
 */
export type FaultCommandPayload =
  | { action: 'on'; fault: string; intensity: string; channels?: string[] }
  | { action: 'off'; fault?: string }
  | { action: 'unplug' | 'replug'; part: string }
  | { action: 'bus-errors'; rate: number; code?: string };

export interface TopicSpec {
  /** Levels after `<prefix>/<dev>/`; `{sensor}` / `{model}` are filled in. */
  suffix: string;
  direction: 'out' | 'in';
  qos: 0 | 1;
  retain: boolean;
  doc: string;
}

export const TOPICS = {
  status: { suffix: 'status', direction: 'out', qos: 1, retain: true, doc: 'agent state, also the last will (offline)' },
  telemetry: { suffix: 'telemetry/{sensor}', direction: 'out', qos: 0, retain: false, doc: 'batched readings, about once a second per sensor' },
  score: { suffix: 'score/{model}', direction: 'out', qos: 0, retain: false, doc: 'reconstruction error of every window' },
  alerts: { suffix: 'alerts', direction: 'out', qos: 1, retain: false, doc: 'one raised and one cleared per episode; stored and forwarded, never dropped' },
  ingest: { suffix: 'ingest/{sensor}', direction: 'in', qos: 0, retain: false, doc: 'readings from another system, for the mqtt source' },
  modelUpdate: { suffix: 'models/update', direction: 'in', qos: 1, retain: false, doc: 'a model bundle in acknowledged chunks (anomaly-agent models flash --mqtt); resumable' },
  modelResult: { suffix: 'models/result', direction: 'out', qos: 1, retain: false, doc: 'the answer to every update message: bytes received per file, then the install result' },
  fault: { suffix: 'cmd/fault', direction: 'in', qos: 1, retain: false, doc: 'sim source only: a simulated fault on or off, a part unplugged or replugged, bus errors injected' },
} as const satisfies Record<string, TopicSpec>;

export type TopicName = keyof typeof TOPICS;

export interface PayloadOf {
  status: StatusPayload;
  telemetry: TelemetryPayload;
  score: ScorePayload;
  alerts: AlertPayload;
  ingest: IngestPayload;
  modelUpdate: ModelUpdatePayload;
  modelResult: ModelUpdateResult;
  fault: FaultCommandPayload;
}

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

/** The README's topic table, generated from TOPICS (a test keeps the README in step). */
export function topicsMarkdown(prefix = 'anomaly'): string {
  const rows = Object.entries(TOPICS).map(([name, s]) => {
    const t = `${prefix}/<dev>/${s.suffix.replace(/\{(\w+)\}/, '<$1>')}`;
    return `| \`${t}\` | ${s.direction} | ${s.qos}${s.retain ? ', retained' : ''} | ${s.doc} | \`${PAYLOAD_SHAPES[name as TopicName]}\` |`;
  });
  return ['| topic | dir | QoS | what | payload (JSON; `v` schema version and `t` ms epoch in every outgoing one) |', '|---|---|---|---|---|', ...rows].join('\n');
}

const PAYLOAD_SHAPES: Record<TopicName, string> = {
  status: '{state: online or offline, version, models: [{model, name, sha256}], sensors: {name: ok, stale or error}}',
  telemetry: '{t0, periodMs, channels, ts: [...], values: [[...]]}',
  score: '{windowEnd, score, threshold, perFeature: {feature: error ÷ normal}}',
  alerts: '{id, model, state: raised or cleared, score, threshold, topFeatures: [{feature, error, share}], since}',
  ingest: '{t?, values: [...]} or a bare number for a one-channel sensor',
  modelUpdate: '{op: begin, id, files: [{name, size, sha256}]} · {op: chunk, id, file, offset, data (base64)} · {op: status, id} · {op: commit, id}',
  modelResult: '{id, op, ok, received: {file: bytes}, error?, model?, sha256?}',
  fault: '{action: on, fault, intensity, channels?} · {action: off, fault?} · {action: unplug or replug, part} · {action: bus-errors, rate, code?}',
};

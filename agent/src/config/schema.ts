/**
 * The daemon's one configuration schema (CONVENTIONS.md habit 7). Every key has its doc, format,
 * default, env var (ANOMALY_<PATH_IN_SNAKE_CAPS>) and flag (--<path-in-kebab-case>). The defaults
 * themselves are core/defaults.ts (`DEFAULTS.config`), the one place every default is written; the
 * compiler holds that object to `AgentConfig`. load.ts turns defaults < file < env < flags into an
 * `AgentConfig`; docs/configuration.md is `configurationMarkdown()` (`anomaly-agent config --schema`).
 */
import convict from 'convict';
import type { LevelWithSilent } from 'pino';
import { BROKER_FLAG_DEFAULTS } from '../../../broker/src/flags.js';
import { DEFAULTS } from '../core/defaults.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { MODEL_TYPES, PROFILE_NAMES, isModelType, type ModelType, type ProfileName } from '../core/profiles.js';
import { channelIndex, type SensorLimits, type SensorSpec } from '../core/sample.js';
import { BACKENDS, SCORER_ENGINES, type BackendPreference, type ScorerEngine } from '../model/engines.js';
import type { TimeFormat } from '../preprocess/csv.js';
import type { HardwareSettings } from '../hw/build.js';
import type { SimSettings } from '../sources/sim.js';
import { parseFaultList } from '../sources/sim-command.js';
import { parseMachine } from '../motor/machine.js';

export const SOURCE_KINDS = ['replay', 'mqtt', 'sim', 'hardware'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
// preprocess/csv.ts and pino own these unions; the compiler keeps each list here equal to its union
// (type-only imports are erased). The engine and backend lists come from model/engines.ts, which
// loads nothing: `anomaly-agent config` must not pay for TensorFlow.js.
export const TIME_FORMATS = ['auto', 'ms', 's', 'iso'] as const;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const listsMatchTheirUnions: [Same<TimeFormat, (typeof TIME_FORMATS)[number]>, Same<LevelWithSilent, LogLevel>] = [true, true];
void listsMatchTheirUnions;

/** The effective configuration: a plain object mirroring SCHEMA (the compiler holds them together). */
export interface AgentConfig {
  device: { id: string };
  mqtt: { url: string; prefix: string; username: string; password: string; clientId: string; keepaliveS: number; reconnectMs: number };
  broker: { host: string; port: number; wsPort: number; drainTimeoutMs: number; usersFile: string; tlsPort: number; tlsCert: string; tlsKey: string; maxPacketBytes: number };
  http: { host: string; port: number };
  models: { dir: string; shippedDir: string; profile: ProfileName; enabled: ModelType[]; trustedKeys: string[]; requireSigned: boolean };
  sensors: SensorSpec;
  source: {
    kind: SourceKind;
    replay: {
      file: string;
      speed: number;
      loop: boolean;
      separator: string;
      timeColumn: string;
      timeFormat: TimeFormat;
      columns: Record<string, string>;
    };
    sim: SimSettings;
  };
  hardware: HardwareSettings;
  sensorFaults: { channels: Record<string, SensorLimits>; clearMs: number };
  scorer: { engine: ScorerEngine; backend: BackendPreference; maxBatch: number };
  detector: { raiseK: number; raiseN: number; onDelaySpans: number; stoppedBelow: number; stoppedVibration: number; clearM: number; clearRatio: number; cooldownMs: number };
  baseline: { enabled: boolean; followPerHour: number; settleMs: number; holdMs: number; maxDrift: number };
  publish: { telemetryIntervalMs: number; scores: boolean };
  outbox: { dir: string; maxBytes: number };
  health: { stallMs: number };
  shutdown: { timeoutMs: number };
  log: { level: LogLevel };
  web: { enabled: boolean; brokerUrl: string; username: string; password: string };
  homeassistant: { enabled: boolean; prefix: string };
  record: { enabled: boolean; dir: string; maxBytes: number; rotateBytes: number; rotateMs: number };
  learn: { dir: string; baselineMinutes: number; maxEpochs: number; fromRunning: boolean; signingKey: string; maxVelocityMmS: number; stuckSeconds: number; minCoverage: number };
}

// ---------------------------------------------------------------------------------------------
// Formats. Ours rather than convict's built-ins because the built-ins coerce loosely (`port` reads
// '1883abc' as 1883, `Boolean` reads 'yes' and 'flase' as true) and `Object`/`Array` throw a bare
// SyntaxError out of convict on a malformed env value. A coerce never throws: a string it cannot
// read stays a string, and validation then names the key. Integer/number formats read `min`, `max`
// and `gt` from the key's schema entry.

type Item = { min?: number; max?: number; gt?: number; choices?: readonly number[] };

const NUMBER_RE = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;
const toNumber = (v: unknown) => (typeof v === 'string' && NUMBER_RE.test(v) ? Number(v) : v);
const HEX_RE = /^\s*0x[0-9a-f]+\s*$/i;
/** A number, or a hex string like '0x53' (I2C addresses are written so in data sheets and i2cdetect). */
const toAddress = (v: unknown) => (typeof v === 'string' && HEX_RE.test(v) ? Number.parseInt(v.trim(), 16) : toNumber(v));
const hex2 = (n: number) => '0x' + n.toString(16).toUpperCase().padStart(2, '0');
const toJson = (v: unknown) => {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
};

function fail(message: string): never {
  throw new Error(message);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why `s` cannot be one level of an MQTT topic (MQTT 3.1.1 §4.7), or undefined. */
export function topicLevelProblem(s: unknown): string | undefined {
  if (typeof s !== 'string') return 'must be a string';
  if (s === '') return 'must not be empty';
  if (/[/+#\u0000]/.test(s)) return `must be one MQTT topic level: no '/', '+', '#' or NUL`;
  return undefined;
}

function rangeText(what: string, s: Item): string {
  if (s.min !== undefined && s.max !== undefined) return `must be ${what} between ${s.min} and ${s.max}`;
  const parts = [s.gt !== undefined && `> ${s.gt}`, s.min !== undefined && `>= ${s.min}`, s.max !== undefined && `<= ${s.max}`].filter(Boolean);
  return `must be ${what}${parts.length ? ' ' + parts.join(' and ') : ''}`;
}

function checkRange(v: unknown, s: Item, integer: boolean): void {
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!integer || Number.isInteger(v)) &&
    (s.min === undefined || v >= s.min) &&
    (s.max === undefined || v <= s.max) &&
    (s.gt === undefined || v > s.gt);
  if (!ok) fail(rangeText(integer ? 'an integer' : 'a number', s));
}

const MQTT_PROTOCOLS = ['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ssl:', 'ws:', 'wss:'];

function sensorMapProblem(v: unknown): string | undefined {
  if (!isPlainObject(v)) return 'must be an object: sensor name → {"channels": ["…"]}';
  if (Object.keys(v).length === 0) return 'must declare at least one sensor';
  for (const [name, spec] of Object.entries(v)) {
    const level = topicLevelProblem(name);
    if (level) return `sensor name '${name}' ${level}`;
    if (!isPlainObject(spec) || Object.keys(spec).join() !== 'channels') return `sensor '${name}' must be {"channels": ["…"]} and nothing else`;
    const ch = spec.channels;
    if (!Array.isArray(ch) || ch.length === 0 || ch.some((c) => typeof c !== 'string' || c === '')) {
      return `sensor '${name}': channels must be a non-empty array of non-empty strings`;
    }
    if (new Set(ch).size !== ch.length) return `sensor '${name}' lists a channel twice`;
  }
  try {
    channelIndex(v as SensorSpec);
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

/** Why `v` cannot be the plausible limits of channels (`sensorFaults.channels`), or undefined. */
function limitsMapProblem(v: unknown): string | undefined {
  if (!isPlainObject(v)) return 'must be an object: channel → {"min": …, "max": …, "stuckMs": …} (optional "rest")';
  const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  for (const [ch, e] of Object.entries(v)) {
    const at = `channel '${ch}'`;
    if (!isPlainObject(e)) return `${at} must be {"min": …, "max": …, "stuckMs": …}, got ${JSON.stringify(e)}`;
    const extra = Object.keys(e).find((k) => !['min', 'max', 'rest', 'stuckMs'].includes(k));
    if (extra !== undefined) return `${at} has a key it may not have: ${extra} (min, max, rest, stuckMs)`;
    for (const k of ['min', 'max', 'stuckMs'] as const) if (!finite(e[k])) return `${at}: ${k} must be a finite number, got ${JSON.stringify(e[k]) ?? 'nothing'}`;
    if (e.rest !== undefined && !finite(e.rest)) return `${at}: rest must be a finite number when given, got ${JSON.stringify(e.rest)}`;
    if (!((e.min as number) < (e.max as number))) return `${at}: min (${String(e.min)}) must be below max (${String(e.max)})`;
    if ((e.stuckMs as number) < 0) return `${at}: stuckMs must be ≥ 0 (0: never judged stuck), got ${String(e.stuckMs)}`;
  }
  return undefined;
}

/** A string that parses as a URL with one of `protocols` and a host, or undefined. */
function urlOf(v: unknown, protocols: readonly string[]): URL | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    const url = new URL(v);
    return protocols.includes(url.protocol) && url.hostname ? url : undefined;
  } catch {
    return undefined;
  }
}

/** env and flags give lists as "a,b"; an empty string is the empty list. */
const commaList = (v: unknown): unknown => (typeof v === 'string' ? (v.trim() === '' ? [] : v.split(',').map((s) => s.trim())) : v);

export const FORMATS: Record<string, convict.Format> = {
  'integer-range': { validate: (v, s) => checkRange(v, s as Item, true), coerce: toNumber },
  'number-range': { validate: (v, s) => checkRange(v, s as Item, false), coerce: toNumber },
  'tcp-port': { validate: (v) => checkRange(v, { min: 0, max: 65535 }, true), coerce: toNumber },
  bool: {
    validate: (v) => typeof v === 'boolean' || fail('must be true or false'),
    coerce: (v) => (typeof v === 'string' && /^(true|false)$/i.test(v.trim()) ? v.trim().toLowerCase() === 'true' : v),
  },
  text: { validate: (v) => typeof v === 'string' || fail('must be a string') },
  'non-empty': { validate: (v) => (typeof v === 'string' && v !== '') || fail('must be a non-empty string') },
  'topic-level': {
    validate: (v) => {
      const p = topicLevelProblem(v);
      if (p) fail(p);
    },
  },
  'topic-path': {
    validate: (v) => {
      if (typeof v !== 'string') fail('must be a string');
      if (v.startsWith('$')) fail("must not start with '$' (topics reserved for the broker)");
      for (const level of v.split('/')) {
        const p = topicLevelProblem(level);
        if (p) fail(`must be MQTT topic levels joined by '/': each level ${p}`);
      }
    },
  },
  'mqtt-url': {
    validate: (v) => {
      if (v === '') return;
      if (!urlOf(v, MQTT_PROTOCOLS)) {
        fail(`must be empty (start the embedded broker) or a URL like mqtt://host:1883 (${MQTT_PROTOCOLS.map((p) => p.slice(0, -1)).join(', ')})`);
      }
    },
  },
  'path-list': {
    validate: (v) => {
      if (!Array.isArray(v) || v.some((p) => typeof p !== 'string' || p === '')) fail('must be a list of file paths');
    },
    coerce: commaList,
  },
  'ws-url': {
    validate: (v) => {
      if (v === '') return;
      const url = urlOf(v, ['ws:', 'wss:']);
      if (!url) fail("must be empty (the embedded broker's WebSocket listener) or a URL like ws://host:8083 or wss://host/mqtt");
      if (url!.username || url!.password) fail('must not carry user:password@; set web.username and web.password');
    },
  },
  'model-list': {
    validate: (v) => {
      if (!Array.isArray(v)) fail(`must be a list of model types (${MODEL_TYPES.join(', ')})`);
      const bad = v.filter((m) => typeof m !== 'string' || !isModelType(m));
      if (bad.length) fail(`unknown model type ${bad.map((m) => JSON.stringify(m)).join(', ')}: known are ${MODEL_TYPES.join(', ')}`);
      if (new Set(v).size !== v.length) fail('lists a model twice');
    },
    // env and flags give a comma list: "vibration,rpm"; an empty string is no model.
    coerce: commaList,
  },
  'sensor-map': {
    validate: (v) => {
      const p = sensorMapProblem(v);
      if (p) fail(p);
    },
    coerce: toJson,
  },
  'sensor-limits': {
    validate: (v) => {
      const p = limitsMapProblem(v);
      if (p) fail(p);
    },
    coerce: toJson,
  },
  /** A value from the key's `choices` (env and flags give text: '100' is 100). */
  'number-choice': {
    validate: (v, s) => {
      const choices = (s as Item).choices ?? [];
      if (typeof v !== 'number' || !choices.includes(v)) fail(`must be one of ${choices.join(', ')}`);
    },
    coerce: toNumber,
  },
  /** An I2C address from the key's `choices`, as a number or '0x..'. */
  'i2c-address': {
    validate: (v, s) => {
      const choices = (s as Item).choices ?? [];
      if (typeof v !== 'number' || !choices.includes(v)) fail(`must be one of ${choices.map(hex2).join(', ')} (the addresses the part can be strapped to)`);
    },
    coerce: toAddress,
  },
  /** 'auto' or a load fraction 0..1.2. */
  load: {
    validate: (v) => {
      if (v === 'auto') return;
      if (typeof v !== 'number' || !(v >= 0 && v <= 1.2)) fail("must be 'auto' (the simulator's schedule of load changes) or a fraction of rated load within 0..1.2");
    },
    coerce: toNumber,
  },
  /** 'kind:intensity[:channel+channel]' joined by commas, or ''. */
  'fault-list': {
    validate: (v) => {
      if (typeof v !== 'string') fail('must be a string');
      const r = parseFaultList(v);
      if (typeof r === 'string') fail(r);
    },
  },
  /** motor/machine.ts: 'key=value' joined by commas, or ''. */
  machine: {
    validate: (v) => {
      if (typeof v !== 'string') fail('must be a string');
      const r = parseMachine(v);
      if (typeof r === 'string') fail(r);
    },
  },
  'column-map': {
    validate: (v) => {
      if (!isPlainObject(v)) fail('must be an object: column in the file → channel name');
      for (const [col, ch] of Object.entries(v)) {
        if (col === '' || typeof ch !== 'string' || ch === '') fail('must map non-empty column names to non-empty channel names');
      }
      const targets = Object.values(v);
      if (new Set(targets).size !== targets.length) fail('maps two columns onto the same channel');
    },
    coerce: toJson,
  },
};

/** Teaches convict our formats; idempotent (convict keeps formats in a module-level registry). */
export function registerFormats(): void {
  convict.addFormats(FORMATS);
}

/** Every key's default (core/defaults.ts); the annotation makes the compiler check it is a whole `AgentConfig`. */
const D: AgentConfig = DEFAULTS.config;

// ---------------------------------------------------------------------------------------------
// The schema.

export const SCHEMA: convict.Schema<AgentConfig> = {
  device: {
    id: {
      doc: "This gateway's name: the <dev> level of every topic (anomaly/<dev>/…). One MQTT topic level: not empty, no '/', '+' or '#'.",
      format: 'topic-level',
      default: D.device.id,
      env: 'ANOMALY_DEVICE_ID',
      arg: 'device-id',
    },
  },
  mqtt: {
    url: {
      doc: "Broker to publish to: '' starts the embedded broker and connects to it; else mqtt://host:1883, mqtts://…, ws://…, wss://… (user:password@ in the URL is accepted).",
      format: 'mqtt-url',
      default: D.mqtt.url,
      env: 'ANOMALY_MQTT_URL',
      arg: 'mqtt-url',
    },
    prefix: {
      doc: "First topic level(s): topics are <prefix>/<dev>/…. Levels joined by '/', none empty, no '+' or '#'.",
      format: 'topic-path',
      default: D.mqtt.prefix,
      env: 'ANOMALY_MQTT_PREFIX',
      arg: 'mqtt-prefix',
    },
    username: { doc: "MQTT user name ('' = none).", format: 'text', default: D.mqtt.username, env: 'ANOMALY_MQTT_USERNAME', arg: 'mqtt-username' },
    password: {
      doc: "MQTT password ('' = none). Never printed.",
      format: 'text',
      default: D.mqtt.password,
      env: 'ANOMALY_MQTT_PASSWORD',
      arg: 'mqtt-password',
      sensitive: true,
    },
    clientId: {
      doc: "MQTT client id ('' = derived from device.id).",
      format: 'text',
      default: D.mqtt.clientId,
      env: 'ANOMALY_MQTT_CLIENT_ID',
      arg: 'mqtt-client-id',
    },
    keepaliveS: {
      doc: 'MQTT keepalive, seconds (0 = off; the protocol field is 16 bits).',
      format: 'integer-range',
      min: 0,
      max: 65535,
      default: D.mqtt.keepaliveS,
      env: 'ANOMALY_MQTT_KEEPALIVE_S',
      arg: 'mqtt-keepalive-s',
    },
    reconnectMs: {
      doc: 'Delay before reconnecting after the broker connection drops, ms.',
      format: 'integer-range',
      min: 1,
      default: D.mqtt.reconnectMs,
      env: 'ANOMALY_MQTT_RECONNECT_MS',
      arg: 'mqtt-reconnect-ms',
    },
  },
  broker: {
    host: {
      doc: 'Address the embedded broker listens on (0.0.0.0 = every interface). Used only when mqtt.url is empty.',
      format: 'non-empty',
      default: D.broker.host,
      env: 'ANOMALY_BROKER_HOST',
      arg: 'broker-host',
    },
    port: { doc: 'Embedded broker MQTT/TCP port (0 = any free port).', format: 'tcp-port', default: D.broker.port, env: 'ANOMALY_BROKER_PORT', arg: 'broker-port' },
    wsPort: {
      doc: 'Embedded broker MQTT-over-WebSocket port, for the web visualizer (0 = no WebSocket listener).',
      format: 'tcp-port',
      default: D.broker.wsPort,
      env: 'ANOMALY_BROKER_WS_PORT',
      arg: 'broker-ws-port',
    },
    drainTimeoutMs: {
      doc: 'A subscriber whose socket has not drained after this long is disconnected, so one slow reader cannot hold up delivery to the others, ms.',
      format: 'integer-range',
      min: 0,
      default: D.broker.drainTimeoutMs,
      env: 'ANOMALY_BROKER_DRAIN_TIMEOUT_MS',
      arg: 'broker-drain-timeout-ms',
    },
    usersFile: {
      doc: "Users file of the embedded broker (scrypt-hashed passwords and roles, made with 'anomaly-broker users add'): every client must authenticate and its role's ACL applies. '' = anonymous clients, which is allowed only on a loopback host.",
      format: 'text',
      default: D.broker.usersFile,
      env: 'ANOMALY_BROKER_USERS_FILE',
      arg: 'broker-users-file',
    },
    tlsPort: { doc: 'Embedded broker MQTT-over-TLS port (0 = no TLS listener); needs broker.tlsCert and broker.tlsKey.', format: 'tcp-port', default: D.broker.tlsPort, env: 'ANOMALY_BROKER_TLS_PORT', arg: 'broker-tls-port' },
    tlsCert: { doc: 'PEM certificate (chain) of the TLS listener.', format: 'text', default: D.broker.tlsCert, env: 'ANOMALY_BROKER_TLS_CERT', arg: 'broker-tls-cert' },
    tlsKey: { doc: 'PEM private key of the TLS listener.', format: 'text', default: D.broker.tlsKey, env: 'ANOMALY_BROKER_TLS_KEY', arg: 'broker-tls-key' },
    maxPacketBytes: {
      doc: 'Largest MQTT packet the embedded broker accepts from a client, bytes; a client that announces a larger one is disconnected before it is read.',
      format: 'integer-range',
      min: 1024,
      default: D.broker.maxPacketBytes,
      env: 'ANOMALY_BROKER_MAX_PACKET_BYTES',
      arg: 'broker-max-packet-bytes',
    },
  },
  http: {
    host: { doc: 'Address of the HTTP server (/healthz, /metrics, the web page).', format: 'non-empty', default: D.http.host, env: 'ANOMALY_HTTP_HOST', arg: 'http-host' },
    port: { doc: 'HTTP server port (0 = no HTTP server).', format: 'tcp-port', default: D.http.port, env: 'ANOMALY_HTTP_PORT', arg: 'http-port' },
  },
  models: {
    dir: {
      doc: "The device's model store, <dir>/<profile>/<model>/: bundles installed here ('models install', 'models flash') are read first. Created when missing (its parent must exist); relative to the working directory.",
      format: 'non-empty',
      default: D.models.dir,
      env: 'ANOMALY_MODELS_DIR',
      arg: 'models-dir',
    },
    shippedDir: {
      doc: 'Bundles shipped with the package, read-only: a model that models.dir holds no bundle for runs the one here. Never written; empty for none.',
      format: 'text',
      default: D.models.shippedDir,
      env: 'ANOMALY_MODELS_SHIPPED_DIR',
      arg: 'models-shipped-dir',
    },
    profile: {
      doc: `Speed profile of the watched motor: which bundles to load (${PROFILE_NAMES.join(', ')}).`,
      format: [...PROFILE_NAMES],
      default: D.models.profile,
      env: 'ANOMALY_MODELS_PROFILE',
      arg: 'models-profile',
    },
    enabled: {
      doc: `Model types to run (${MODEL_TYPES.join(', ')}); env and flag take a comma list. Each needs its channels declared in sensors.`,
      format: 'model-list',
      default: D.models.enabled,
      env: 'ANOMALY_MODELS_ENABLED',
      arg: 'models-enabled',
    },
    trustedKeys: {
      doc: "Public keys (PEM files from 'anomaly-agent models keygen') whose signatures this device checks; env and flag take a comma list.",
      format: 'path-list',
      default: D.models.trustedKeys,
      env: 'ANOMALY_MODELS_TRUSTED_KEYS',
      arg: 'models-trusted-keys',
    },
    requireSigned: {
      doc: 'Refuse a bundle that is not signed by one of models.trustedKeys (a bad signature is refused regardless).',
      format: 'bool',
      default: D.models.requireSigned,
      env: 'ANOMALY_MODELS_REQUIRE_SIGNED',
      arg: 'models-require-signed',
    },
  },
  sensors: {
    doc: 'Sensors and their ordered channels: {"<sensor>": {"channels": ["<channel>", …]}}; env and flag take JSON. Sensor names are topic levels; a channel belongs to one sensor only. A file replaces the whole map.',
    format: 'sensor-map',
    default: D.sensors,
    env: 'ANOMALY_SENSORS',
    arg: 'sensors',
  },
  source: {
    kind: {
      doc: 'Where samples come from: sim (the sensor drivers on emulated chips driven by the motor simulator; no hardware needed), hardware (the drivers on the I2C bus and GPIO pin of hardware.*), replay (a CSV file) or mqtt (<prefix>/<dev>/ingest/<sensor>).',
      format: [...SOURCE_KINDS],
      default: D.source.kind,
      env: 'ANOMALY_SOURCE_KIND',
      arg: 'source-kind',
    },
    replay: {
      file: {
        doc: 'CSV replayed when source.kind is replay; must be readable then. Relative to the working directory.',
        format: 'non-empty',
        default: D.source.replay.file,
        env: 'ANOMALY_SOURCE_REPLAY_FILE',
        arg: 'source-replay-file',
      },
      speed: {
        doc: 'Replay speed: N × real time (> 0).',
        format: 'number-range',
        gt: 0,
        default: D.source.replay.speed,
        env: 'ANOMALY_SOURCE_REPLAY_SPEED',
        arg: 'source-replay-speed',
      },
      loop: { doc: 'Start the file again at its end.', format: 'bool', default: D.source.replay.loop, env: 'ANOMALY_SOURCE_REPLAY_LOOP', arg: 'source-replay-loop' },
      separator: { doc: 'CSV cell separator.', format: 'non-empty', default: D.source.replay.separator, env: 'ANOMALY_SOURCE_REPLAY_SEPARATOR', arg: 'source-replay-separator' },
      timeColumn: {
        doc: 'CSV column holding the timestamp.',
        format: 'non-empty',
        default: D.source.replay.timeColumn,
        env: 'ANOMALY_SOURCE_REPLAY_TIME_COLUMN',
        arg: 'source-replay-time-column',
      },
      timeFormat: {
        doc: 'How timestamps are read: ms or s (epoch numbers), iso, or auto (a number is ms, else ISO).',
        format: [...TIME_FORMATS],
        default: D.source.replay.timeFormat,
        env: 'ANOMALY_SOURCE_REPLAY_TIME_FORMAT',
        arg: 'source-replay-time-format',
      },
      columns: {
        doc: 'Column renames: {"<column in file>": "<channel>"}; env and flag take JSON. {} = columns are named like the channels.',
        format: 'column-map',
        default: D.source.replay.columns,
        env: 'ANOMALY_SOURCE_REPLAY_COLUMNS',
        arg: 'source-replay-columns',
      },
    },
    sim: {
      seed: {
        doc: "Seed of the simulated motor (its machine constants, noise and load schedule): the same seed gives the same motor.",
        format: 'integer-range',
        min: 0,
        max: 4294967295,
        default: D.source.sim.seed,
        env: 'ANOMALY_SOURCE_SIM_SEED',
        arg: 'source-sim-seed',
      },
      load: {
        doc: "Motor load, fraction of rated torque (0..1.2), or auto: the simulator's seeded schedule of load steps and ramps every few minutes, as in the training data.",
        format: 'load',
        default: D.source.sim.load,
        env: 'ANOMALY_SOURCE_SIM_LOAD',
        arg: 'source-sim-load',
      },
      ambientC: {
        doc: 'Ambient temperature around the simulated motor, °C.',
        format: 'number-range',
        min: -20,
        max: 60,
        default: D.source.sim.ambientC,
        env: 'ANOMALY_SOURCE_SIM_AMBIENT_C',
        arg: 'source-sim-ambient-c',
      },
      faults: {
        doc: "Simulated faults on from the start: kind:intensity[:channel+channel] joined by commas (e.g. bearing:obvious or stuck:moderate:voltage); '' none. At run time: anomaly-agent fault, or <prefix>/<dev>/cmd/fault.",
        format: 'fault-list',
        default: D.source.sim.faults,
        env: 'ANOMALY_SOURCE_SIM_FAULTS',
        arg: 'source-sim-faults',
      },
      machine: {
        doc: "Another motor than the one the shipped models learned (a customer's machine, to learn on the gateway): key=value joined by commas — ratedRpm (shaft speed without slip, rev/min; default the profile's), imbalance (factor on the residual 1x vibration), rise (factor on the temperature rise over ambient), offset.<channel> (a sensor offset added to accel_x, accel_y, accel_z, voltage or temperature, in its units); e.g. ratedRpm=1140,imbalance=1.6,offset.temperature=1.5. '' is the project's motor.",
        format: 'machine',
        default: D.source.sim.machine,
        env: 'ANOMALY_SOURCE_SIM_MACHINE',
        arg: 'source-sim-machine',
      },
      i2cErrorRate: {
        doc: 'Fraction of the emulated I2C transfers that fail with EIO (0..1), to watch the retries and health states work.',
        format: 'number-range',
        min: 0,
        max: 1,
        default: D.source.sim.i2cErrorRate,
        env: 'ANOMALY_SOURCE_SIM_I2C_ERROR_RATE',
        arg: 'source-sim-i2c-error-rate',
      },
    },
  },
  hardware: {
    i2cBus: {
      doc: 'I2C bus number: /dev/i2c-<n> (1 on a Raspberry Pi: header pins 3 SDA, 5 SCL). Used by source.kind hardware and by probe.',
      format: 'integer-range',
      min: 0,
      default: D.hardware.i2cBus,
      env: 'ANOMALY_HARDWARE_I2C_BUS',
      arg: 'hardware-i2c-bus',
    },
    adxl345: {
      address: {
        doc: 'ADXL345 accelerometer address: 0x53 (ALT ADDRESS to GND) or 0x1D (to VDD). A number or "0x..".',
        format: 'i2c-address',
        choices: [0x53, 0x1d],
        default: D.hardware.adxl345.address,
        env: 'ANOMALY_HARDWARE_ADXL345_ADDRESS',
        arg: 'hardware-adxl345-address',
      },
      rangeG: {
        doc: 'ADXL345 range, ±g: 2, 4, 8 or 16. Full resolution keeps 3.9 mg/LSB at every range; ±16 g leaves room for impacts.',
        format: 'number-choice',
        choices: [2, 4, 8, 16],
        default: D.hardware.adxl345.rangeG,
        env: 'ANOMALY_HARDWARE_ADXL345_RANGE_G',
        arg: 'hardware-adxl345-range-g',
      },
      odrHz: {
        doc: 'ADXL345 output data rate, Hz (3200, 1600, 800, 400, 200, 100, 50, 25, 12.5): at least one sample per profile period, and a period must fill at most 24 of the 32 FIFO entries. Samples beyond one per period feed the accel_*_rms / accel_*_peak channels.',
        format: 'number-choice',
        choices: [3200, 1600, 800, 400, 200, 100, 50, 25, 12.5],
        default: D.hardware.adxl345.odrHz,
        env: 'ANOMALY_HARDWARE_ADXL345_ODR_HZ',
        arg: 'hardware-adxl345-odr-hz',
      },
    },
    ads1115: {
      address: {
        doc: 'ADS1115 ADC address: 0x48 (ADDR to GND), 0x49 (VDD), 0x4A (SDA), 0x4B (SCL).',
        format: 'i2c-address',
        choices: [0x48, 0x49, 0x4a, 0x4b],
        default: D.hardware.ads1115.address,
        env: 'ANOMALY_HARDWARE_ADS1115_ADDRESS',
        arg: 'hardware-ads1115-address',
      },
      fsrV: {
        doc: 'ADS1115 full-scale range (PGA), V: 6.144, 4.096, 2.048, 1.024, 0.512, 0.256. Choose the smallest that holds the front end’s largest output (never above VDD + 0.3 V).',
        format: 'number-choice',
        choices: [6.144, 4.096, 2.048, 1.024, 0.512, 0.256],
        default: D.hardware.ads1115.fsrV,
        env: 'ANOMALY_HARDWARE_ADS1115_FSR_V',
        arg: 'hardware-ads1115-fsr-v',
      },
      dataRate: {
        doc: 'ADS1115 data rate, samples/s (8, 16, 32, 64, 128, 250, 475, 860). A conversion averages its input over 1/rate: 128 (7.8 ms) filters most of a 50 Hz supply’s 100 Hz ripple and fits in half of the shortest profile period (20 ms), as a single-shot conversion must.',
        format: 'number-choice',
        choices: [8, 16, 32, 64, 128, 250, 475, 860],
        default: D.hardware.ads1115.dataRate,
        env: 'ANOMALY_HARDWARE_ADS1115_DATA_RATE',
        arg: 'hardware-ads1115-data-rate',
      },
      mode: {
        doc: 'ADS1115 conversion mode: single (one conversion per read; every read rewrites the configuration) or continuous.',
        format: ['single', 'continuous'],
        default: D.hardware.ads1115.mode,
        env: 'ANOMALY_HARDWARE_ADS1115_MODE',
        arg: 'hardware-ads1115-mode',
      },
      input: {
        doc: 'ADS1115 input of the voltage front end: AIN0..AIN3 against GND, or a pair AIN0-AIN1, AIN0-AIN3, AIN1-AIN3, AIN2-AIN3.',
        format: ['AIN0', 'AIN1', 'AIN2', 'AIN3', 'AIN0-AIN1', 'AIN0-AIN3', 'AIN1-AIN3', 'AIN2-AIN3'],
        default: D.hardware.ads1115.input,
        env: 'ANOMALY_HARDWARE_ADS1115_INPUT',
        arg: 'hardware-ads1115-input',
      },
      ratio: {
        doc: 'Voltage front end (divider, or isolation module with RMS-to-DC converter): supply volts RMS per volt at the ADC input. 100: 400 V RMS reads 4.0 V.',
        format: 'number-range',
        gt: 0,
        default: D.hardware.ads1115.ratio,
        env: 'ANOMALY_HARDWARE_ADS1115_RATIO',
        arg: 'hardware-ads1115-ratio',
      },
    },
    mcp9808: {
      address: {
        doc: 'MCP9808 temperature sensor address: 0x18..0x1F (A2 A1 A0).',
        format: 'i2c-address',
        choices: [0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f],
        default: D.hardware.mcp9808.address,
        env: 'ANOMALY_HARDWARE_MCP9808_ADDRESS',
        arg: 'hardware-mcp9808-address',
      },
      resolutionC: {
        doc: 'MCP9808 resolution, °C: 0.5, 0.25, 0.125 or 0.0625 (conversion every 30, 65, 130, 250 ms).',
        format: 'number-choice',
        choices: [0.5, 0.25, 0.125, 0.0625],
        default: D.hardware.mcp9808.resolutionC,
        env: 'ANOMALY_HARDWARE_MCP9808_RESOLUTION_C',
        arg: 'hardware-mcp9808-resolution-c',
      },
    },
    rpm: {
      gpio: {
        doc: 'BCM GPIO number of the speed pickup (17 = header pin 11).',
        format: 'integer-range',
        min: 0,
        max: 27,
        default: D.hardware.rpm.gpio,
        env: 'ANOMALY_HARDWARE_RPM_GPIO',
        arg: 'hardware-rpm-gpio',
      },
      gpioBase: {
        doc: 'Added to the GPIO number for the sysfs interface onoff uses: 0, or 512 on Raspberry Pi OS kernels 6.6 and later (gpiochip512).',
        format: 'integer-range',
        min: 0,
        default: D.hardware.rpm.gpioBase,
        env: 'ANOMALY_HARDWARE_RPM_GPIO_BASE',
        arg: 'hardware-rpm-gpio-base',
      },
      pulsesPerRev: {
        doc: 'Pulses per shaft revolution (magnets on the shaft, slots in the disc).',
        format: 'integer-range',
        min: 1,
        max: 1000,
        default: D.hardware.rpm.pulsesPerRev,
        env: 'ANOMALY_HARDWARE_RPM_PULSES_PER_REV',
        arg: 'hardware-rpm-pulses-per-rev',
      },
      edge: {
        doc: 'Edge that marks a pulse: falling (an open-collector hall sensor pulls the line low) or rising.',
        format: ['falling', 'rising'],
        default: D.hardware.rpm.edge,
        env: 'ANOMALY_HARDWARE_RPM_EDGE',
        arg: 'hardware-rpm-edge',
      },
      debounceMs: {
        doc: 'Edges closer than this to the previous one are bounces, ms; must stay under half the pulse period at 6000 rpm.',
        format: 'number-range',
        min: 0,
        default: D.hardware.rpm.debounceMs,
        env: 'ANOMALY_HARDWARE_RPM_DEBOUNCE_MS',
        arg: 'hardware-rpm-debounce-ms',
      },
      timeoutMs: {
        doc: 'No pulse for this long reads 0 rpm (the shaft stands), ms. 2000 at 1 pulse/rev: below 30 rpm reads 0.',
        format: 'integer-range',
        min: 1,
        default: D.hardware.rpm.timeoutMs,
        env: 'ANOMALY_HARDWARE_RPM_TIMEOUT_MS',
        arg: 'hardware-rpm-timeout-ms',
      },
    },
    retries: {
      doc: 'Sampler: extra attempts after a failed read (EIO, NACK, timeout), 1 ms, 2 ms, 4 ms … apart, within the period.',
      format: 'integer-range',
      min: 0,
      max: 10,
      default: D.hardware.retries,
      env: 'ANOMALY_HARDWARE_RETRIES',
      arg: 'hardware-retries',
    },
    staleMs: {
      doc: 'Sampler: a sensor with no good reading for this long is stale (status topic, /metrics), ms.',
      format: 'integer-range',
      min: 1,
      default: D.hardware.staleMs,
      env: 'ANOMALY_HARDWARE_STALE_MS',
      arg: 'hardware-stale-ms',
    },
    errorMs: {
      doc: 'Sampler: a sensor with no good reading for this long is error, ms (> hardware.staleMs).',
      format: 'integer-range',
      min: 1,
      default: D.hardware.errorMs,
      env: 'ANOMALY_HARDWARE_ERROR_MS',
      arg: 'hardware-error-ms',
    },
  },
  sensorFaults: {
    channels: {
      doc: 'Plausible readings per channel: {"<channel>": {"min": …, "max": …, "stuckMs": …, "rest"?: …}}; env and flag take JSON. A reading outside [min, max] (other than rest) is a sensor fault, out of range; a value unchanged for stuckMs (and at least 10 readings) is a stuck sensor (0: never; rest never counts as stuck). The sim and hardware sources narrow [min, max] to what the part can read. Channels a file, env or flag does not name keep their default entry; every channel of sensors needs one. Such readings are counted, raise an alert of kind sensor and are not scored.',
      format: 'sensor-limits',
      default: D.sensorFaults.channels,
      env: 'ANOMALY_SENSOR_FAULTS_CHANNELS',
      arg: 'sensor-faults-channels',
    },
    clearMs: {
      doc: 'A sensor fault clears (alert cleared: readings plausible again) once its sensor has read plausibly for this long, sample time, ms.',
      format: 'integer-range',
      min: 0,
      default: D.sensorFaults.clearMs,
      env: 'ANOMALY_SENSOR_FAULTS_CLEAR_MS',
      arg: 'sensor-faults-clear-ms',
    },
  },
  scorer: {
    engine: {
      doc: 'Inference engine: auto (fast when it supports the bundle, else tfjs, with a warning naming why), fast (typed arrays; TensorFlow.js is not loaded, a bundle it cannot run is refused) or tfjs.',
      format: [...SCORER_ENGINES],
      default: D.scorer.engine,
      env: 'ANOMALY_SCORER_ENGINE',
      arg: 'scorer-engine',
    },
    backend: {
      doc: 'TensorFlow.js backend, for bundles scored with tfjs (engine tfjs, or auto for a bundle the fast engine does not support; TensorFlow.js is not loaded otherwise): auto (tensorflow, else wasm, else cpu), tensorflow, wasm or cpu.',
      format: [...BACKENDS],
      default: D.scorer.backend,
      env: 'ANOMALY_SCORER_BACKEND',
      arg: 'scorer-backend',
    },
    maxBatch: {
      doc: 'Most windows scored in one predict call.',
      format: 'integer-range',
      min: 1,
      default: D.scorer.maxBatch,
      env: 'ANOMALY_SCORER_MAX_BATCH',
      arg: 'scorer-max-batch',
    },
  },
  detector: {
    raiseK: {
      doc: 'Raise an alert when k of the last n windows score over the threshold: k (<= detector.raiseN).',
      format: 'integer-range',
      min: 1,
      default: D.detector.raiseK,
      env: 'ANOMALY_DETECTOR_RAISE_K',
      arg: 'detector-raise-k',
    },
    raiseN: {
      doc: 'Raise an alert when k of the last n windows score over the threshold: n.',
      format: 'integer-range',
      min: 1,
      default: D.detector.raiseN,
      env: 'ANOMALY_DETECTOR_RAISE_N',
      arg: 'detector-raise-n',
    },
    onDelaySpans: {
      doc: "Raise only once k of n has held this many of the model's window spans (seqLen × period): one event, a load step or a switch, passes through a window in one span; a condition lasts longer. 0 raises at once.",
      format: 'number-range',
      min: 0,
      default: D.detector.onDelaySpans,
      env: 'ANOMALY_DETECTOR_ON_DELAY_SPANS',
      arg: 'detector-on-delay-spans',
    },
    stoppedBelow: {
      doc: "A window in which the rpm channel read under this fraction of the profile's nominal speed, the accelerometer quiet (detector.stoppedVibration), is scored but not judged: a stopped or coasting machine is not an abnormal one (0: judge every window).",
      format: 'number-range',
      min: 0,
      max: 1,
      default: D.detector.stoppedBelow,
      env: 'ANOMALY_DETECTOR_STOPPED_BELOW',
      arg: 'detector-stopped-below',
    },
    stoppedVibration: {
      doc: 'The machine counts as stopped only while every accelerometer axis also stays under this standard deviation over the window, m/s² (set it between the standing and the running machine); so a dead tachometer on a running machine is still judged. 0: the tachometer alone decides.',
      format: 'number-range',
      min: 0,
      default: D.detector.stoppedVibration,
      env: 'ANOMALY_DETECTOR_STOPPED_VIBRATION',
      arg: 'detector-stopped-vibration',
    },
    clearM: {
      doc: 'Clear an alert after m consecutive windows under the clear threshold.',
      format: 'integer-range',
      min: 1,
      default: D.detector.clearM,
      env: 'ANOMALY_DETECTOR_CLEAR_M',
      arg: 'detector-clear-m',
    },
    clearRatio: {
      doc: "Clear threshold = clearRatio × the bundle's threshold (0 < ratio <= 1; below 1 adds hysteresis).",
      format: 'number-range',
      gt: 0,
      max: 1,
      default: D.detector.clearRatio,
      env: 'ANOMALY_DETECTOR_CLEAR_RATIO',
      arg: 'detector-clear-ratio',
    },
    cooldownMs: {
      doc: 'After an alert clears, the same model cannot raise again for this long, ms.',
      format: 'integer-range',
      min: 0,
      default: D.detector.cooldownMs,
      env: 'ANOMALY_DETECTOR_COOLDOWN_MS',
      arg: 'detector-cooldown-ms',
    },
  },
  baseline: {
    enabled: {
      doc: "Let each model's notion of normal follow slow drift and accept a settled new level (docs/drift.md); false: it stays as trained.",
      format: 'bool',
      default: D.baseline.enabled,
      env: 'ANOMALY_BASELINE_ENABLED',
      arg: 'baseline-enabled',
    },
    followPerHour: {
      doc: 'Fastest the baseline follows a level drifting away while the model is healthy, training ranges per hour (0: never follows).',
      format: 'number-range',
      min: 0,
      default: D.baseline.followPerHour,
      env: 'ANOMALY_BASELINE_FOLLOW_PER_HOUR',
      arg: 'baseline-follow-per-hour',
    },
    settleMs: {
      doc: "How long an episode's windows must hold steady, well below its peak, before its level is tried as the new normal, ms (0: never).",
      format: 'integer-range',
      min: 0,
      default: D.baseline.settleMs,
      env: 'ANOMALY_BASELINE_SETTLE_MS',
      arg: 'baseline-settle-ms',
    },
    holdMs: {
      doc: "How long an episode whose score stopped rising, levels steady, must last before its level is tried as the new normal even at its peak (a new operating point), ms (0: never).",
      format: 'integer-range',
      min: 0,
      default: D.baseline.holdMs,
      env: 'ANOMALY_BASELINE_HOLD_MS',
      arg: 'baseline-hold-ms',
    },
    maxDrift: {
      doc: 'How far the baseline may move from the trained levels, training ranges; reaching it raises a drift alert.',
      format: 'number-range',
      gt: 0,
      default: D.baseline.maxDrift,
      env: 'ANOMALY_BASELINE_MAX_DRIFT',
      arg: 'baseline-max-drift',
    },
  },
  publish: {
    telemetryIntervalMs: {
      doc: 'Telemetry readings are batched and published this often, ms.',
      format: 'integer-range',
      min: 1,
      default: D.publish.telemetryIntervalMs,
      env: 'ANOMALY_PUBLISH_TELEMETRY_INTERVAL_MS',
      arg: 'publish-telemetry-interval-ms',
    },
    scores: { doc: 'Publish every window score on <prefix>/<dev>/score/<model>.', format: 'bool', default: D.publish.scores, env: 'ANOMALY_PUBLISH_SCORES', arg: 'publish-scores' },
  },
  outbox: {
    dir: {
      doc: 'Store-and-forward directory for alerts not yet acknowledged by the broker; relative to the working directory (the systemd unit sets /var/lib/anomaly-agent/outbox).',
      format: 'non-empty',
      default: D.outbox.dir,
      env: 'ANOMALY_OUTBOX_DIR',
      arg: 'outbox-dir',
    },
    maxBytes: {
      doc: 'Most bytes the outbox keeps; the oldest alerts go first beyond it.',
      format: 'integer-range',
      min: 1,
      default: D.outbox.maxBytes,
      env: 'ANOMALY_OUTBOX_MAX_BYTES',
      arg: 'outbox-max-bytes',
    },
  },
  health: {
    stallMs: {
      doc: '/healthz fails when no sample arrived, or no window was scored, for this long, ms.',
      format: 'integer-range',
      min: 1,
      default: D.health.stallMs,
      env: 'ANOMALY_HEALTH_STALL_MS',
      arg: 'health-stall-ms',
    },
  },
  shutdown: {
    timeoutMs: {
      doc: 'On SIGTERM, components that have not stopped after this long are abandoned and the process exits, ms.',
      format: 'integer-range',
      min: 1,
      default: D.shutdown.timeoutMs,
      env: 'ANOMALY_SHUTDOWN_TIMEOUT_MS',
      arg: 'shutdown-timeout-ms',
    },
  },
  log: {
    level: { doc: `pino log level: ${LOG_LEVELS.join(', ')}.`, format: [...LOG_LEVELS], default: D.log.level, env: 'ANOMALY_LOG_LEVEL', arg: 'log-level' },
  },
  web: {
    enabled: {
      doc: 'Serve the web visualizer (/, /config.json and its scripts) from the HTTP server; needs http.port.',
      format: 'bool',
      default: D.web.enabled,
      env: 'ANOMALY_WEB_ENABLED',
      arg: 'web-enabled',
    },
    brokerUrl: {
      doc: "MQTT-over-WebSocket URL the page connects to: '' = ws://<the host the page was loaded from>:<broker.wsPort> (the embedded broker); else ws://… or wss://…, e.g. a plant broker's.",
      format: 'ws-url',
      default: D.web.brokerUrl,
      env: 'ANOMALY_WEB_BROKER_URL',
      arg: 'web-broker-url',
    },
    username: {
      doc: "User name the page connects with ('' = none): a viewer credential, handed to every browser that loads the page.",
      format: 'text',
      default: D.web.username,
      env: 'ANOMALY_WEB_USERNAME',
      arg: 'web-username',
    },
    password: {
      doc: "Password the page connects with ('' = none). Served in /config.json to whoever can reach the HTTP server, so give it a subscribe-only user; never printed.",
      format: 'text',
      default: D.web.password,
      env: 'ANOMALY_WEB_PASSWORD',
      arg: 'web-password',
      sensitive: true,
    },
  },
  homeassistant: {
    enabled: {
      doc: "Announce this device to Home Assistant by MQTT discovery: retained configs under <homeassistant.prefix>/…/config, per model a problem binary_sensor that follows its episodes and a score sensor (with publish.scores), available while the status topic says online. Turned off, the configs this device left on the broker are removed at the next start.",
      format: 'bool',
      default: D.homeassistant.enabled,
      env: 'ANOMALY_HOMEASSISTANT_ENABLED',
      arg: 'homeassistant-enabled',
    },
    prefix: {
      doc: "Home Assistant's discovery prefix, as set in its MQTT integration. Levels joined by '/', none empty, no '+' or '#'.",
      format: 'topic-path',
      default: D.homeassistant.prefix,
      env: 'ANOMALY_HOMEASSISTANT_PREFIX',
      arg: 'homeassistant-prefix',
    },
  },
  record: {
    enabled: {
      doc: "Record what the source reads, in the background, as seed-format CSV (what 'anomaly-agent train --data <record.dir>' trains on): one row per models.profile period, gaps longer than five periods left as a jump in time.",
      format: 'bool',
      default: D.record.enabled,
      env: 'ANOMALY_RECORD_ENABLED',
      arg: 'record-enabled',
    },
    dir: {
      doc: "Directory of the recording (rec-*.csv and manifest.json), created when missing; relative to the working directory. One device, profile and sensor set per directory: a restart carries the recording on. 'anomaly-agent record' writes here too.",
      format: 'non-empty',
      default: D.record.dir,
      env: 'ANOMALY_RECORD_DIR',
      arg: 'record-dir',
    },
    maxBytes: {
      doc: "Disk budget of the recording: its files and manifest together never exceed it; the oldest file is deleted first to make room. Must hold record.rotateBytes and the manifest twice.",
      format: 'integer-range',
      min: 4096,
      default: D.record.maxBytes,
      env: 'ANOMALY_RECORD_MAX_BYTES',
      arg: 'record-max-bytes',
    },
    rotateBytes: {
      doc: 'A recording file is closed, and the next begun, before it grows past this many bytes.',
      format: 'integer-range',
      min: 1024,
      default: D.record.rotateBytes,
      env: 'ANOMALY_RECORD_ROTATE_BYTES',
      arg: 'record-rotate-bytes',
    },
    rotateMs: {
      doc: 'A recording file is closed, and the next begun, before a row this long after its first (sample time), ms.',
      format: 'integer-range',
      min: 1000,
      default: D.record.rotateMs,
      env: 'ANOMALY_RECORD_ROTATE_MS',
      arg: 'record-rotate-ms',
    },
  },
  learn: {
    dir: {
      doc: "Where learning on the gateway ('anomaly-agent learn', <prefix>/<dev>/cmd/learn) keeps its state, the baseline it records and the bundles it trains before they are installed into models.dir; created when missing. On the same filesystem as models.dir (bundles are swapped in by rename).",
      format: 'non-empty',
      default: D.learn.dir,
      env: 'ANOMALY_LEARN_DIR',
      arg: 'learn-dir',
    },
    baselineMinutes: {
      doc: 'How long a baseline is recorded before it is checked and learned, minutes of sample time (a learn command may ask for another length).',
      format: 'number-range',
      gt: 0,
      max: 1440,
      default: D.learn.baselineMinutes,
      env: 'ANOMALY_LEARN_BASELINE_MINUTES',
      arg: 'learn-baseline-minutes',
    },
    maxEpochs: {
      doc: 'Most epochs each model trains on a baseline (early stopping may end it sooner). The default suits fine-tuning (learn.fromRunning); from random weights a model needs about 15.',
      format: 'integer-range',
      min: 1,
      default: D.learn.maxEpochs,
      env: 'ANOMALY_LEARN_MAX_EPOCHS',
      arg: 'learn-max-epochs',
    },
    fromRunning: {
      doc: "Each model starts from the weights of the bundle it runs (shipped, flashed or learned before) and is fine-tuned on the baseline: it already knows what a motor's signals look like and learns this machine in a few epochs. false = from random weights, which needs more epochs (learn.maxEpochs) for as good a model. A running bundle of another shape (other inputs or sizes) is not used either way.",
      format: 'bool',
      default: D.learn.fromRunning,
      env: 'ANOMALY_LEARN_FROM_RUNNING',
      arg: 'learn-from-running',
    },
    signingKey: {
      doc: "The device's own ed25519 private key (PEM, from 'anomaly-agent models keygen'), with which learned bundles are signed. Required when models.requireSigned is on, and its public key must then be in models.trustedKeys; '' = learned bundles are not signed.",
      format: 'text',
      default: D.learn.signingKey,
      env: 'ANOMALY_LEARN_SIGNING_KEY',
      arg: 'learn-signing-key',
    },
    maxVelocityMmS: {
      doc: "A baseline whose vibration velocity (RMS, mm/s, estimated from the accelerometer) is at or above this is refused: the machine is already in the 'damaged' zone of ISO 20816-style limits. Default: zone C/D of ISO 10816-3 group 2 on a flexible foundation; 4.5 for a rigid one (docs/learning.md).",
      format: 'number-range',
      gt: 0,
      default: D.learn.maxVelocityMmS,
      env: 'ANOMALY_LEARN_MAX_VELOCITY_MM_S',
      arg: 'learn-max-velocity-mm-s',
    },
    stuckSeconds: {
      doc: 'A channel that repeats exactly the same value for this long during the baseline is a stuck sensor, and the baseline is refused (slow channels such as temperature: only if flat over the whole baseline).',
      format: 'number-range',
      gt: 0,
      default: D.learn.stuckSeconds,
      env: 'ANOMALY_LEARN_STUCK_SECONDS',
      arg: 'learn-stuck-seconds',
    },
    minCoverage: {
      doc: 'Share of the rows a baseline of its length should hold (one per profile period) below which it is refused as too little data.',
      format: 'number-range',
      gt: 0,
      max: 1,
      default: D.learn.minCoverage,
      env: 'ANOMALY_LEARN_MIN_COVERAGE',
      arg: 'learn-min-coverage',
    },
  },
};

/** One key of the schema, flattened. */
export interface KeySpec {
  /** Dotted path, e.g. `mqtt.url`. */
  path: string;
  doc: string;
  default: unknown;
  env: string;
  /** Flag name without the dashes. */
  arg: string;
  sensitive: boolean;
  format: unknown;
}

function collectKeys(node: Record<string, unknown>, prefix: string, out: KeySpec[]): KeySpec[] {
  for (const [name, child] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${name}` : name;
    const item = child as Record<string, unknown>;
    if (!('default' in item)) {
      collectKeys(item, path, out);
      continue;
    }
    out.push({
      path,
      doc: String(item.doc ?? ''),
      default: item.default,
      env: String(item.env ?? ''),
      arg: String(item.arg ?? ''),
      sensitive: item.sensitive === true,
      format: item.format,
    });
  }
  return out;
}

/** Every key in schema order. */
export const KEYS: readonly KeySpec[] = collectKeys(SCHEMA as Record<string, unknown>, '', []);

/**
 * A key's default as the reference shows it: I2C addresses in hex, as data sheets write them; paths
 * inside the package relative to it, so the committed reference does not depend on the checkout.
 */
export function shownDefault(k: KeySpec): string {
  if (k.format === 'i2c-address' && typeof k.default === 'number') return hex2(k.default);
  if (typeof k.default === 'string' && k.default.startsWith(PACKAGE_ROOT)) return `<package>/${k.default.slice(PACKAGE_ROOT.length)}`;
  return JSON.stringify(k.default);
}

// '|' ends a cell even inside code; a bare '<dev>' would be read as an HTML tag and vanish.
const mdCode = (s: string) => s.replace(/\|/g, '\\|');
const mdText = (s: string) => mdCode(s).replace(/</g, '\\<');

/** The config reference as a markdown table: key, default, env var, flag, description. */
export function schemaMarkdown(): string {
  const rows = KEYS.map((k) => `| \`${k.path}\` | \`${mdCode(shownDefault(k))}\` | \`${k.env}\` | \`--${k.arg}\` | ${mdText(k.doc)} |`);
  return ['| key | default | env | flag | description |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** `anomaly-broker`'s flags with a default, beside the daemon's keys for the same settings. */
export function brokerFlagsMarkdown(): string {
  const byPath = new Map(KEYS.map((k) => [k.path, k]));
  const rows = BROKER_FLAG_DEFAULTS.map((f) => {
    const key = byPath.get(f.key);
    if (!key) throw new Error(`anomaly-broker --${f.flag}: no configuration key ${f.key}`);
    const same = JSON.stringify(f.value) === JSON.stringify(key.default);
    return `| \`--${f.flag}\` | \`${mdCode(JSON.stringify(f.value))}\` | \`${f.key}\`${same ? '' : ` (\`${mdCode(shownDefault(key))}\`)`} | ${mdText(f.differs ?? '')} |`;
  });
  return ['| flag | default | daemon key | differs because |', '|---|---|---|---|', ...rows].join('\n');
}

/** The command that writes docs/configuration.md (named in its header). */
export const CONFIGURATION_DOC_COMMAND = 'anomaly-agent config --schema > docs/configuration.md';

/** docs/configuration.md, whole: what `anomaly-agent config --schema` prints. */
export function configurationMarkdown(): string {
  return `# Configuration reference

> Generated; do not edit. Regenerate with \`npm run docs:config\` (a build, then \`${CONFIGURATION_DOC_COMMAND}\`).
> The defaults come from agent/src/core/defaults.ts; formats, docs, env vars and flags from agent/src/config/schema.ts.
> test/agent/docs.test.ts fails while this file differs from what the command prints.

Every key of the daemon's configuration. Values come from the schema defaults, then a JSON file (\`--config FILE\`, nested like \`anomaly-agent config\` prints), then \`ANOMALY_*\` environment variables, then flags; later wins. Invalid values are reported all at once, each with its key path, and the daemon does not start.

${schemaMarkdown()}

## anomaly-broker

\`anomaly-broker\` (the embedded broker run on its own; \`anomaly-broker --help\`) takes its defaults from the same place. Its flags and the daemon's keys for the same settings:

${brokerFlagsMarkdown()}
`;
}

/**
 * One declared schema per MQTT topic (DESIGN.md, "MQTT topics"): the TypeScript payload types are
 * derived from these, inbound payloads are checked against them (compiled once, on first use; no
 * allocation for a valid payload), and the README's topic table shows them (topicsMarkdown). Semantic checks a schema
 * cannot state (a sensor's arity, time going forward, a file being a bundle file) stay with the code
 * that knows them.
 *
 * Node only: the web page imports core/topics.ts, which takes these types with `import type`.
 */
import { createRequire } from 'node:module';
import type { Static, TLiteral, TSchema, TUnion } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import { BUS_ERROR_CODES, FAULT_KINDS, INTENSITIES, SIM_PARTS } from './faults.js';
import { CHANNELS } from './profiles.js';

/** What an alert is about (AlertPayload `kind`). */
export const MODEL_ALERT_KINDS = ['machine', 'drift'] as const;
export const ALERT_KINDS = [...MODEL_ALERT_KINDS, 'sensor'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];
/**
 * Why a model's episode cleared. `back to normal`: its windows are low again against the baseline it
 * had; `settled at a new level`: the machine held steady at a level its baseline then accepted;
 * `back within limit`: a drift episode whose drift fell under the limit.
 */
export const MODEL_CLEAR_REASONS = ['back to normal', 'settled at a new level', 'back within limit'] as const;
export type ModelClearReason = (typeof MODEL_CLEAR_REASONS)[number];
/** How a sensor can fail: a reading outside its physical range, or a reading that stopped moving. */
export const SENSOR_FAULTS = ['out of range', 'stuck'] as const;
export type SensorFault = (typeof SENSOR_FAULTS)[number];
/** What a learn run is doing (daemon/learner.ts): collecting → checking → training → installing, then done, refused, failed or cancelled. */
export const LEARN_PHASES = ['collecting', 'checking', 'training', 'installing', 'done', 'refused', 'failed', 'cancelled'] as const;
export type LearnPhase = (typeof LEARN_PHASES)[number];

/** Largest bundle file a device accepts over MQTT. */
export const MAX_UPDATE_FILE_BYTES = 64 * 1024 * 1024;

type TypeBuilder = typeof import('@sinclair/typebox').Type;
type Literals<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };

/** Every topic's payload schema, made with TypeBox's builder `Type`. */
function declare(Type: TypeBuilder) {
  /** One of a list of strings, typed as their union. */
  const oneOf = <const T extends readonly string[]>(values: T, o: object = {}): TUnion<Literals<T>> => Type.Union(values.map((v) => Type.Literal(v)), o) as unknown as TUnion<Literals<T>>;
  /** `v` and `t` on every outgoing payload. */
  const envelope = {
    v: Type.Literal(1, { description: 'schema version' }),
    t: Type.Number({ description: 'ms epoch when the payload was made' }),
  };
  const SENSOR_HEALTH = ['ok', 'stale', 'error', 'fault'] as const;
  /** A bundle learned on the device (its manifest's `baseline`); absent for a workstation-trained one. */
  const learned = Type.Object(
    {
      baseline: Type.String({ description: 'the learn run whose baseline it was learned on' }),
      at: Type.Number({ description: 'ms epoch the bundle was learned' }),
      reason: Type.Optional(Type.String({ description: 'why it was (re)learned, as the learn command said' })),
    },
    { additionalProperties: false, description: 'learned on this device' },
  );

  const status = Type.Object(
    {
      ...envelope,
      state: oneOf(['online', 'offline'] as const),
      version: Type.String(),
      models: Type.Array(
        Type.Object(
          {
            model: Type.String(),
            name: Type.String(),
            sha256: Type.String({ description: "sha256 of the bundle's bundle.json" }),
            drift: Type.Number({ description: "how far the model's notion of normal moved from its training, in training ranges (0: not at all)" }),
            learned: Type.Optional(learned),
          },
          { additionalProperties: false },
        ),
      ),
      sensors: Type.Record(Type.String(), oneOf(SENSOR_HEALTH, { description: 'stale, error: no reading for a while; fault: readings arrive but are a sensor fault (an alert of kind sensor is open)' })),
    },
    { additionalProperties: false },
  );

  const telemetry = Type.Object(
    {
      ...envelope,
      t0: Type.Number({ description: 'time of the first row' }),
      periodMs: Type.Number({ description: 'nominal spacing of the rows' }),
      channels: Type.Array(Type.String()),
      ts: Type.Array(Type.Number(), { description: 'ms epoch of each row' }),
      values: Type.Array(Type.Array(Type.Number())),
    },
    { additionalProperties: false },
  );

  const perFeature = Type.Record(Type.String(), Type.Number(), { description: "each model input's error ÷ its normal error" });

  const score = Type.Object(
    {
      ...envelope,
      windowEnd: Type.Number({ description: "time of the window's last sample" }),
      score: Type.Number(),
      threshold: Type.Number(),
      perFeature,
    },
    { additionalProperties: false },
  );

  const topFeature = Type.Object(
    {
      feature: Type.String({ description: 'a channel, or <channel>.shape' }),
      error: Type.Number({ description: 'reconstruction MSE of that feature' }),
      share: Type.Number({ description: "share of the window's total error, 0..1" }),
    },
    { additionalProperties: false },
  );

  const id = Type.String({ description: 'the same on raised and cleared' });
  const state = oneOf(['raised', 'cleared'] as const);
  const since = Type.Number({ description: 'ms epoch the episode began' });
  /** A model's episode: the machine looks abnormal (kind machine), or the model's baseline moved too far (kind drift). */
  const modelAlert = Type.Object(
    {
      ...envelope,
      id,
      kind: oneOf(MODEL_ALERT_KINDS, {
        description: "machine: the model's score is over its threshold; drift: how far the model's notion of normal moved from its training is over the limit",
      }),
      model: Type.String(),
      state,
      score: Type.Number({ description: "the window's score (drift: the drift, in training ranges) when raised or cleared" }),
      threshold: Type.Number({ description: 'what score is judged against (drift: the limit)' }),
      topFeatures: Type.Array(topFeature, { description: 'the inputs that contribute most (drift: that moved most)' }),
      since,
      reason: Type.Optional(oneOf(MODEL_CLEAR_REASONS, { description: 'on cleared: why the episode ended' })),
      peak: Type.Optional(
        Type.Object(
          { score: Type.Number(), threshold: Type.Number(), topFeatures: Type.Array(topFeature) },
          { additionalProperties: false, description: "on cleared: the episode's worst window (highest score ÷ threshold)" },
        ),
      ),
    },
    { additionalProperties: false },
  );
  /** A sensor reads what no healthy sensor can: its readings are not scored while it does. */
  const sensorAlert = Type.Object(
    {
      ...envelope,
      id,
      kind: Type.Literal('sensor'),
      sensor: Type.String(),
      state,
      fault: oneOf(SENSOR_FAULTS),
      detail: Type.String({ description: 'what was read, against which limit' }),
      since,
      reason: Type.Optional(Type.Literal('readings plausible again', { description: 'on cleared' })),
    },
    { additionalProperties: false },
  );
  const alert = Type.Union([modelAlert, sensorAlert]);

  const ingest = Type.Union([
    Type.Number({ description: 'a bare number, for a one-channel sensor' }),
    Type.Object({ t: Type.Optional(Type.Number({ description: 'ms epoch; default: arrival' })), values: Type.Array(Type.Number()) }),
  ]);

  const BUNDLE_ID = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: '1–64 of [A-Za-z0-9_-]' });
  const SHA256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: '64 hex digits' });

  const modelUpdate = Type.Union([
    Type.Object({
      op: Type.Literal('begin'),
      id: BUNDLE_ID,
      files: Type.Array(Type.Object({ name: Type.String(), size: Type.Integer({ minimum: 0, maximum: MAX_UPDATE_FILE_BYTES }), sha256: SHA256 }), { minItems: 1 }),
    }),
    Type.Object({ op: Type.Literal('chunk'), id: BUNDLE_ID, file: Type.String(), offset: Type.Integer({ minimum: 0 }), data: Type.String({ description: 'base64' }) }),
    Type.Object({ op: Type.Literal('status'), id: BUNDLE_ID }),
    Type.Object({ op: Type.Literal('commit'), id: BUNDLE_ID }),
  ]);

  const modelResult = Type.Object(
    {
      ...envelope,
      id: Type.String(),
      op: oneOf(['begin', 'chunk', 'status', 'commit'] as const),
      ok: Type.Boolean(),
      received: Type.Record(Type.String(), Type.Number(), { description: 'bytes held per file: where to resume' }),
      error: Type.Optional(Type.String()),
      model: Type.Optional(Type.String({ description: 'on a successful commit: the model now running' })),
      sha256: Type.Optional(Type.String()),
    },
    { additionalProperties: false },
  );

  const fault = Type.Union([
    Type.Object({ action: Type.Literal('on'), fault: oneOf(FAULT_KINDS), intensity: oneOf(INTENSITIES), channels: Type.Optional(Type.Array(oneOf(CHANNELS), { minItems: 1, description: 'stuck and dropout only' })) }),
    Type.Object({ action: Type.Literal('off'), fault: Type.Optional(oneOf(FAULT_KINDS, { description: 'omitted: every fault' })) }),
    Type.Object({ action: oneOf(['unplug', 'replug'] as const), part: oneOf(SIM_PARTS) }),
    Type.Object({ action: Type.Literal('bus-errors'), rate: Type.Number({ minimum: 0, maximum: 1, description: 'share of transfers that fail; 0 stops' }), code: Type.Optional(oneOf(BUS_ERROR_CODES, { description: 'default EIO' })) }),
  ]);

  const learnCommand = Type.Union([
    Type.Object(
      {
        action: Type.Literal('start'),
        reason: Type.Optional(Type.String({ maxLength: 200, description: 'why (e.g. "bearing replaced"): recorded in the bundles' })),
        minutes: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1440, description: 'baseline length; default learn.baselineMinutes' })),
      },
      { additionalProperties: false },
    ),
    Type.Object({ action: Type.Literal('cancel') }, { additionalProperties: false }),
  ]);

  const learn = Type.Object(
    {
      ...envelope,
      id: Type.String({ description: 'this learn run' }),
      phase: oneOf(LEARN_PHASES),
      percent: Type.Number({ minimum: 0, maximum: 100, description: 'of the whole run' }),
      etaS: Type.Optional(Type.Number({ description: 'seconds left, estimated' })),
      startedAt: Type.Number({ description: 'ms epoch the run began' }),
      minutes: Type.Number({ description: 'baseline length' }),
      reason: Type.Optional(Type.String({ description: 'why it learns, as the command said' })),
      refusal: Type.Optional(Type.String({ description: 'refused or failed: why; the running models stay' })),
      models: Type.Optional(Type.Array(Type.String(), { description: 'done: the models now running learned bundles' })),
      commandRefused: Type.Optional(Type.String({ description: 'a learn command was just refused, and why (a start while this run is under way, a cancel while it installs, a malformed command); the run carries on as it was' })),
    },
    { additionalProperties: false },
  );

  /** The schema of every topic's payload. */
  return { status, telemetry, score, alerts: alert, ingest, modelUpdate, modelResult, fault, learnCommand, learn, topFeature, modelAlert };
}

type Declared = ReturnType<typeof declare>;
const require = createRequire(import.meta.url);
let declared: Declared | undefined;
/**
 * TypeBox is loaded, and the schemas made, when a payload is first checked or described: a daemon that
 * takes nothing in over MQTT never pays its ~4 MB of modules (bench:agent's RSS). A synchronous
 * require, so checks stay synchronous on the message path.
 */
function schemas(): Declared {
  return (declared ??= declare((require('@sinclair/typebox') as typeof import('@sinclair/typebox')).Type));
}

/** The schema of every topic's payload. */
export function payloadSchemas(): { [K in TopicName]: Declared[K] } {
  const { topFeature: _, modelAlert: __, ...bySchema } = schemas();
  return bySchema;
}


/** Every topic's name (core/topics.ts TOPICS has one entry for each). */
export type TopicName = 'status' | 'telemetry' | 'score' | 'alerts' | 'ingest' | 'modelUpdate' | 'modelResult' | 'fault' | 'learnCommand' | 'learn';

export type StatusPayload = Static<Declared['status']>;
export type TelemetryPayload = Static<Declared['telemetry']>;
export type ScorePayload = Static<Declared['score']>;
export type TopFeature = Static<Declared['topFeature']>;
export type AlertPayload = Static<Declared['alerts']>;
/** A model's alert (kinds machine and drift). */
export type ModelAlertPayload = Static<Declared['modelAlert']>;
/** A sensor's alert (kind sensor). */
export type SensorAlertPayload = Extract<AlertPayload, { kind: 'sensor' }>;
export type IngestPayload = Static<Declared['ingest']>;
export type ModelUpdatePayload = Static<Declared['modelUpdate']>;
export type ModelUpdateResult = Static<Declared['modelResult']>;
export type FaultCommandPayload = Static<Declared['fault']>;
export type LearnCommandPayload = Static<Declared['learnCommand']>;
export type LearnPayload = Static<Declared['learn']>;

/** The payload type of each topic. */
export type PayloadOf = { [K in TopicName]: Static<Declared[K]> };

/** Each schema's compiled check, made once: explaining a refusal checks sub-schemas, and bad payloads can come in floods. */
const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();
function compile(s: TSchema): TypeCheck<TSchema> {
  let c = compiled.get(s);
  if (!c) compiled.set(s, (c = (require('@sinclair/typebox/compiler') as typeof import('@sinclair/typebox/compiler')).TypeCompiler.Compile(s)));
  return c;
}

/** True when `value` is a valid payload of topic `name` (compiled on first use; allocates nothing). */
export function isPayload<K extends TopicName>(name: K, value: unknown): value is PayloadOf[K] {
  return compile(schemas()[name]).Check(value);
}

/**
 * What is wrong with `value` as a payload of `name`, in one sentence naming the key: "rate must be a
 * number within 0..1, got 2". For a union told apart by a key (`op`, `action`), the variant that key
 * names is the one explained. Undefined when the payload is valid.
 */
export function payloadProblem(name: TopicName, value: unknown): string | undefined {
  if (isPayload(name, value)) return undefined;
  return explain(schemas()[name] as unknown as Schema, value, '');
}

// ---------------------------------------------------------------------------------------------
// Explaining a refusal, and describing a schema for people (error messages and the README).

type Schema = TSchema & {
  anyOf?: Schema[];
  const?: unknown;
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  patternProperties?: Record<string, Schema>;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  description?: string;
  additionalProperties?: boolean;
};

const literals = (s: Schema): unknown[] | undefined => (s.anyOf?.every((a) => 'const' in a) ? s.anyOf.map((a) => a.const) : 'const' in s ? [s.const] : undefined);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The key every variant of a union of objects fixes to literals (op, action), if there is one. */
function discriminator(s: Schema): string | undefined {
  const variants = s.anyOf;
  if (!variants?.every((v) => v.type === 'object')) return undefined;
  return Object.keys(variants[0]!.properties ?? {}).find((k) => variants.every((v) => v.properties?.[k] && literals(v.properties[k]!)));
}

/** A schema as words: "one of a, b", "an integer ≥ 0", "a number within 0..1", "a non-empty list of …". */
function describe(s: Schema): string {
  const lits = literals(s);
  if (lits) return lits.length === 1 ? JSON.stringify(lits[0]) : `one of ${lits.join(', ')}`;
  const range = s.minimum !== undefined && s.maximum !== undefined ? ` within ${s.minimum}..${s.maximum}` : s.minimum !== undefined ? ` ≥ ${s.minimum}` : '';
  switch (s.type) {
    case 'integer':
      return s.minimum === 0 && s.maximum === undefined ? 'a non-negative integer' : `an integer${range}`;
    case 'number':
      return `a number${range}`;
    case 'string':
      return s.description && (s as { pattern?: string }).pattern ? s.description : 'a string';
    case 'boolean':
      return 'true or false';
    case 'array':
      return `a${s.minItems ? ' non-empty' : ''} list of ${s.items ? plural(describe(s.items)) : 'values'}`;
    case 'object':
      return 'a JSON object';
  }
  return s.anyOf ? s.anyOf.map(describe).join(' or ') : 'a value';
}

const plural = (d: string) => d.replace(/^(a|an) (number|integer|string|JSON object)/, '$2s').replace(/^one of /, '');

function explain(s: Schema, v: unknown, path: string): string {
  const what = path || 'the payload';
  const got = (x: unknown) => (x === undefined ? 'nothing' : typeof x === 'number' ? String(x) : JSON.stringify(x));
  const disc = discriminator(s);
  if (disc) {
    if (!isObject(v)) return `${what} must be a JSON object with ${/^[aeiou]/.test(disc) ? 'an' : 'a'} ${disc}`;
    const variant = s.anyOf!.find((o) => literals(o.properties![disc]!)!.includes(v[disc]));
    if (!variant) return `${path ? `${path}.` : ''}${disc} must be one of ${s.anyOf!.flatMap((o) => literals(o.properties![disc]!)).join(', ')}, got ${got(v[disc])}`;
    return explain(variant, v, path);
  }
  if (s.anyOf && !literals(s)) {
    // A union of different kinds (a number, or an object): explain the variant of the value's kind.
    const kind = Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v === 'number' ? 'number' : typeof v;
    const same = s.anyOf.filter((a) => (a.type === 'integer' ? 'number' : a.type) === kind);
    if (same.length === 1) return explain(same[0]!, v, path);
  }
  if (s.type === 'object' && s.patternProperties && isObject(v)) {
    const vs = Object.values(s.patternProperties)[0]!;
    const bad = Object.keys(v).find((k) => !compile(vs).Check(v[k]));
    if (bad !== undefined) return explain(vs, v[bad], path ? `${path}.${bad}` : bad);
  }
  if (s.type === 'object') {
    if (!isObject(v)) return `${what} must be a JSON object, got ${got(v)}`;
    for (const [k, ps] of Object.entries(s.properties ?? {})) {
      const at = path ? `${path}.${k}` : k;
      if (v[k] === undefined) {
        if (s.required?.includes(k)) return `${at} must be ${describe(ps)}, got nothing`;
        continue;
      }
      if (!compile(ps).Check(v[k])) return explain(ps, v[k], at);
    }
    if (s.additionalProperties === false) {
      const extra = Object.keys(v).find((k) => !(k in (s.properties ?? {})));
      if (extra !== undefined) return `${what} has a key it may not have: ${extra}`;
    }
  }
  if (s.type === 'array' && Array.isArray(v) && s.items && !(s.minItems && v.length < s.minItems)) {
    const i = v.findIndex((x) => !compile(s.items!).Check(x));
    if (i >= 0) return explain(s.items, v[i], `${path}[${i}]`);
  }
  return `${what} must be ${describe(s)}, got ${got(v)}`;
}

/** A payload's shape for the README: keys, `?` for optional ones, literal choices, nested shapes. */
export function shapeOf(schema: TSchema): string {
  const s = schema as Schema;
  if (s.anyOf && !literals(s)) return s.anyOf.map((a) => shapeOf(a)).join(' · ');
  if (s.type === 'object' && s.properties) {
    const keys = Object.entries(s.properties)
      .filter(([k]) => k !== 'v' && k !== 't' || !('const' in (s.properties!.v ?? {})))
      .map(([k, p]) => {
        const opt = s.required?.includes(k) ? '' : '?';
        const inner = literals(p) && literals(p)!.length > 1 ? `: ${literals(p)!.join(' or ')}` : 'const' in p ? `: ${String(p.const)}` : p.type === 'object' || p.type === 'array' ? `: ${shapeOf(p)}` : '';
        return `${k}${opt}${inner}`;
      });
    return `{${keys.join(', ')}}`;
  }
  if (s.type === 'object' && s.patternProperties) return `{<key>: ${shapeOf(Object.values(s.patternProperties)[0]!)}}`;
  if (s.type === 'array') return `[${s.items ? shapeOf(s.items) : ''}…]`;
  const lits = literals(s);
  if (lits) return lits.join(' or ');
  return s.description && s.type === 'number' && !s.properties ? 'number' : (s.type ?? '');
}

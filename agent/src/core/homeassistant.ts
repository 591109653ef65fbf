/**
 * Home Assistant MQTT discovery (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery):
 * the retained config messages that make a device and its models appear in Home Assistant without
 * YAML. They add no topic of the agent's own: every entity reads the topics of core/topics.ts as they
 * are (status for availability, alerts for the episode, score/<model> for the score), through
 * templates Home Assistant renders.
 *
 * One device block per agent (device.id), shared by every entity; per model:
 * - `binary_sensor`, device class `problem`: on while the model has an episode open (alerts topic,
 *   `raised` → ON, `cleared` → OFF; an alert of another model or of another kind renders '', which
 *   Home Assistant ignores), the episode's id, scores, top features, peak and why it cleared as attributes;
 * - `sensor`: the model's window score, its threshold as an attribute (only when the agent publishes
 *   scores, publish.scores);
 * - `sensor`: how far the model's baseline moved from its training (status topic, `drift`).
 *
 * Config topics are `<ha prefix>/<component>/<node>/<model>_<kind>/config`, node being the device id
 * with anything outside [a-zA-Z0-9_-] as '_' (Home Assistant's rule for those levels), so one
 * subscription (`discoveryFilter`) finds every config this device may have left on a broker. The
 * unique_id is `anomaly-agent_<device id>_<model>_<kind>`: stable across restarts and versions, so
 * Home Assistant keeps an entity's history and settings.
 *
 * Per device: a `sensor` with the learn run's percent, its phase, ETA and any refusal as attributes
 * (the retained learn topic).
 */
import { topic } from './topics.js';

/** Home Assistant integrations the agent announces entities of. */
export const HA_COMPONENTS = ['binary_sensor', 'sensor'] as const;
export type HaComponent = (typeof HA_COMPONENTS)[number];

/** What the configs are made from: configuration (homeassistant.prefix, mqtt.prefix, device.id, models.profile, publish.scores) and the agent's version. */
export interface DiscoveryOptions {
  /** Home Assistant's discovery prefix (homeassistant.prefix). */
  haPrefix: string;
  /** The agent's topic prefix (mqtt.prefix). */
  prefix: string;
  device: string;
  version: string;
  profile: string;
  /** Whether score/<model> is published (publish.scores): the score sensor reads it. */
  scores: boolean;
}

export interface HaDevice {
  identifiers: string[];
  name: string;
  manufacturer: string;
  model: string;
  sw_version: string;
}

export interface HaAvailability {
  topic: string;
  value_template: string;
  payload_available: string;
  payload_not_available: string;
}

/** Keys every entity config has (Home Assistant's names, unabbreviated). */
export interface HaEntityConfig {
  name: string;
  unique_id: string;
  device: HaDevice;
  origin: { name: string; sw_version: string };
  availability: HaAvailability[];
  state_topic: string;
  value_template: string;
  json_attributes_topic: string;
  json_attributes_template: string;
  qos: 0 | 1;
}

export interface HaBinarySensorConfig extends HaEntityConfig {
  device_class: 'problem';
  payload_on: 'ON';
  payload_off: 'OFF';
}

export interface HaSensorConfig extends HaEntityConfig {
  state_class: 'measurement';
  suggested_display_precision: number;
}

/** An entity's config, by integration. */
export type HaEntity = { component: 'binary_sensor'; payload: HaBinarySensorConfig } | { component: 'sensor'; payload: HaSensorConfig };

/** One retained discovery message: where, and what. */
export type DiscoveryConfig = HaEntity & { topic: string };

const PRODUCT = 'anomaly-agent';

/** A string literal in a Jinja template (Home Assistant's templates are Jinja). */
function jinjaString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A topic level Home Assistant accepts as node_id or object_id: [a-zA-Z0-9_-], anything else as '_'. */
export function haId(s: string): string {
  return s.replace(/[^a-zA-Z0-9_-]/g, '_');
}

/** The device registry identifier of `device`: what every config of this agent names in device.identifiers. */
export function haDeviceIdentifier(device: string): string {
  return `${PRODUCT}_${device}`;
}

/** The subscription that finds every discovery config this device may have announced. */
export function discoveryFilter(haPrefix: string, device: string): string {
  return `${haPrefix}/+/${haId(device)}/+/config`;
}

/** Whether `t` is a topic `discoveryFilter(haPrefix, device)` matches. */
export function isDiscoveryTopic(haPrefix: string, device: string, t: string): boolean {
  if (!t.startsWith(`${haPrefix}/`) || !t.endsWith('/config')) return false;
  const levels = t.slice(haPrefix.length + 1).split('/');
  return levels.length === 4 && levels[0] !== '' && levels[1] === haId(device) && levels[2] !== '';
}

/**
 * Whether a retained discovery payload is one this agent made for `device` (its device block names
 * the device's identifier); anything else under the same node is left alone.
 */
export function isOwnDiscoveryConfig(device: string, payload: string | Buffer): boolean {
  let p: unknown;
  try {
    p = JSON.parse(payload.toString());
  } catch {
    return false;
  }
  const ids = (p as { device?: { identifiers?: unknown } } | null)?.device?.identifiers;
  return Array.isArray(ids) && ids.includes(haDeviceIdentifier(device));
}

/** What one model shows in Home Assistant, per entity kind. */
interface ModelEntity {
  /** The last part of object_id and unique_id: `<model>_<kind>`. */
  kind: string;
  /** Whether the agent publishes what this entity reads; when not, the entity is not announced. */
  shown(o: DiscoveryOptions): boolean;
  config(o: DiscoveryOptions, model: string, common: Pick<HaEntityConfig, 'unique_id' | 'device' | 'origin' | 'availability'>): HaEntity;
}

const MODEL_ENTITIES: readonly ModelEntity[] = [
  {
    kind: 'problem',
    shown: () => true,
    config: (o, model, common) => {
      const alerts = topic(o.prefix, o.device, 'alerts');
      // Only this model's machine episodes (an agent of an earlier version sends no kind); its drift
      // and the sensors' alerts are not what this entity shows.
      const mine = `value_json.model == ${jinjaString(model)} and (value_json.kind | default('machine')) == 'machine'`;
      const episode =
        "{'episode': value_json.id, 'state': value_json.state, 'score': value_json.score, 'threshold': value_json.threshold, 'since_ms': value_json.since, " +
        "'top_features': value_json.topFeatures | map(attribute='feature') | list, 'cleared_because': value_json.reason | default(none), " +
        "'peak_score': value_json.peak.score if value_json.peak is defined else none, 'peak_threshold': value_json.peak.threshold if value_json.peak is defined else none}";
      const payload: HaBinarySensorConfig = {
        name: `${model} anomaly`,
        ...common,
        device_class: 'problem',
        state_topic: alerts,
        // '' for another model's alert: Home Assistant drops the message (binary_sensor value_template).
        value_template: `{% if ${mine} %}{{ 'ON' if value_json.state == 'raised' else 'OFF' }}{% endif %}`,
        payload_on: 'ON',
        payload_off: 'OFF',
        json_attributes_topic: alerts,
        // Another model's alert keeps the attributes as they are (a non-dictionary would be logged as an error).
        json_attributes_template: `{% if ${mine} %}{{ ${episode} | tojson }}{% else %}{{ this.attributes | tojson }}{% endif %}`,
        qos: 1,
      };
      return { component: 'binary_sensor', payload };
    },
  },
  {
    kind: 'score',
    shown: (o) => o.scores,
    config: (o, model, common) => {
      const score = topic(o.prefix, o.device, 'score', model);
      const payload: HaSensorConfig = {
        name: `${model} score`,
        ...common,
        state_topic: score,
        value_template: '{{ value_json.score }}',
        json_attributes_topic: score,
        json_attributes_template: "{{ {'threshold': value_json.threshold} | tojson }}",
        state_class: 'measurement',
        suggested_display_precision: 2,
        qos: 0,
      };
      return { component: 'sensor', payload };
    },
  },
  {
    kind: 'drift',
    shown: () => true,
    config: (o, model, common) => {
      const status = topic(o.prefix, o.device, 'status');
      const mine = `value_json.models | selectattr('model', 'equalto', ${jinjaString(model)}) | first`;
      const payload: HaSensorConfig = {
        name: `${model} baseline drift`,
        ...common,
        // The status topic lists every model with how far its baseline moved (detect/baseline.ts).
        state_topic: status,
        value_template: `{% set m = ${mine} %}{{ m.drift if m is defined else 0 }}`,
        json_attributes_topic: status,
        json_attributes_template: `{% set m = ${mine} %}{{ {'bundle': m.name if m is defined else none} | tojson }}`,
        state_class: 'measurement',
        suggested_display_precision: 3,
        qos: 1,
      };
      return { component: 'sensor', payload };
    },
  },
];

/** The device's own learn run (daemon/learner.ts): its percent, phase and why a baseline was refused, from the retained learn topic. */
function learnProgress(o: DiscoveryOptions, common: Pick<HaEntityConfig, 'unique_id' | 'device' | 'origin' | 'availability'>): HaEntity {
  const learn = topic(o.prefix, o.device, 'learn');
  const payload: HaSensorConfig = {
    name: 'learn progress',
    ...common,
    state_topic: learn,
    value_template: '{{ value_json.percent }}',
    json_attributes_topic: learn,
    json_attributes_template: "{{ {'phase': value_json.phase, 'eta_s': value_json.etaS | default(none), 'reason': value_json.reason | default(none), 'refusal': value_json.refusal | default(none)} | tojson }}",
    state_class: 'measurement',
    suggested_display_precision: 0,
    qos: 1,
  };
  return { component: 'sensor', payload };
}

/** The discovery configs of a device running `models`: per model, in model order, then the device's own. */
export function discoveryConfigs(o: DiscoveryOptions, models: readonly string[]): DiscoveryConfig[] {
  const device: HaDevice = {
    identifiers: [haDeviceIdentifier(o.device)],
    name: o.device,
    manufacturer: PRODUCT,
    model: `${PRODUCT} (${o.profile})`,
    sw_version: o.version,
  };
  const availability: HaAvailability[] = [
    { topic: topic(o.prefix, o.device, 'status'), value_template: '{{ value_json.state }}', payload_available: 'online', payload_not_available: 'offline' },
  ];
  const out: DiscoveryConfig[] = [];
  for (const model of models) {
    for (const e of MODEL_ENTITIES) {
      if (!e.shown(o)) continue;
      const objectId = `${haId(model)}_${e.kind}`;
      const common = { unique_id: `${haDeviceIdentifier(o.device)}_${model}_${e.kind}`, device, origin: { name: PRODUCT, sw_version: o.version }, availability };
      const entity = e.config(o, model, common);
      out.push({ topic: `${o.haPrefix}/${entity.component}/${haId(o.device)}/${objectId}/config`, ...entity });
    }
  }
  const learn = learnProgress(o, { unique_id: `${haDeviceIdentifier(o.device)}_learn`, device, origin: { name: PRODUCT, sw_version: o.version }, availability });
  out.push({ topic: `${o.haPrefix}/${learn.component}/${haId(o.device)}/learn/config`, ...learn });
  return out;
}

/** The README topic table's row for the discovery configs (core/topic-table.ts). */
export function discoveryTopicRow(haPrefix: string): { topic: string; doc: string; shape: string } {
  return {
    topic: `${haPrefix}/<component>/<dev>/<model>_<kind>/config`,
    doc: 'Home Assistant MQTT discovery, opt-in (homeassistant.enabled): per model a binary_sensor (problem: an episode is open), a sensor (score) and a sensor (baseline drift); per device a sensor (learn progress, <model>_<kind> = learn); emptied when a model goes away or the feature is turned off',
    shape: "{name, unique_id, device, origin, availability, state_topic, value_template, json_attributes_topic, json_attributes_template, qos, …} (Home Assistant's keys; no v or t)",
  };
}

/**
 * Home Assistant's MQTT discovery schema for the two integrations the agent announces, written from
 * its documentation (home-assistant.io, source/_integrations/mqtt.markdown "MQTT Discovery",
 * binary_sensor.mqtt.markdown, sensor.mqtt.markdown, binary_sensor.markdown and sensor.markdown for
 * the device classes), and Jinja2 — the template engine Home Assistant renders these templates with —
 * to run the templates on real payloads. Not a test file: the tests of core/homeassistant.ts and of
 * the daemon use it.
 *
 * `discoveryProblems` is stricter than Home Assistant in one way, on purpose: Home Assistant ignores
 * a key it does not know ("unknown configuration keys are allowed but ignored"), which hides a typo;
 * here an unknown key is a problem. The agent writes full key names, so abbreviations count as unknown.
 */
import { spawnSync } from 'node:child_process';

/** Configuration variables of the MQTT binary sensor (binary_sensor.mqtt.markdown). */
const BINARY_SENSOR_KEYS = [
  'availability', 'availability_mode', 'availability_template', 'availability_topic', 'device', 'device_class', 'enabled_by_default',
  'encoding', 'entity_category', 'entity_picture', 'expire_after', 'force_update', 'icon', 'json_attributes_template', 'json_attributes_topic',
  'name', 'object_id', 'off_delay', 'payload_available', 'payload_not_available', 'payload_off', 'payload_on', 'platform', 'qos',
  'state_topic', 'unique_id', 'value_template',
];
/** Configuration variables of the MQTT sensor (sensor.mqtt.markdown). */
const SENSOR_KEYS = [
  'availability', 'availability_mode', 'availability_template', 'availability_topic', 'device', 'device_class', 'enabled_by_default',
  'encoding', 'entity_category', 'entity_picture', 'expire_after', 'force_update', 'icon', 'json_attributes_template', 'json_attributes_topic',
  'last_reset_value_template', 'name', 'object_id', 'options', 'payload_available', 'payload_not_available', 'platform',
  'suggested_display_precision', 'qos', 'state_class', 'state_topic', 'unique_id', 'unit_of_measurement', 'value_template',
];
/** Keys every discovery payload may carry besides the integration's own (mqtt.markdown, "Discovery payload"). */
const DISCOVERY_KEYS = ['origin', '~'];
/** The `device` mapping (either page, "device" keys). */
const DEVICE_KEYS = ['configuration_url', 'connections', 'hw_version', 'identifiers', 'manufacturer', 'model', 'model_id', 'name', 'serial_number', 'suggested_area', 'sw_version', 'via_device'];
/** An `availability` list entry. */
const AVAILABILITY_KEYS = ['payload_available', 'payload_not_available', 'topic', 'value_template'];
/** The `origin` mapping (mqtt.markdown: name required). */
const ORIGIN_KEYS = ['name', 'sw_version', 'support_url'];

/** binary_sensor.markdown, "Device class". */
const BINARY_SENSOR_CLASSES = [
  'battery', 'battery_charging', 'carbon_monoxide', 'cold', 'connectivity', 'door', 'garage_door', 'gas', 'heat', 'light', 'lock', 'moisture',
  'motion', 'moving', 'occupancy', 'opening', 'plug', 'power', 'presence', 'problem', 'running', 'safety', 'smoke', 'sound', 'tamper', 'update',
  'vibration', 'window',
];
/** sensor.markdown, "Device class". */
const SENSOR_CLASSES = [
  'apparent_power', 'aqi', 'area', 'atmospheric_pressure', 'battery', 'blood_glucose_concentration', 'carbon_dioxide', 'carbon_monoxide',
  'current', 'data_rate', 'data_size', 'date', 'distance', 'duration', 'energy', 'energy_storage', 'enum', 'frequency', 'gas', 'humidity',
  'illuminance', 'irradiance', 'moisture', 'monetary', 'nitrogen_dioxide', 'nitrogen_monoxide', 'nitrous_oxide', 'ozone', 'ph', 'pm1', 'pm25',
  'pm10', 'power_factor', 'power', 'precipitation', 'precipitation_intensity', 'pressure', 'reactive_power', 'signal_strength', 'sound_pressure',
  'speed', 'sulphur_dioxide', 'temperature', 'timestamp', 'volatile_organic_compounds', 'volatile_organic_compounds_parts', 'voltage', 'volume',
  'volume_flow_rate', 'volume_storage', 'water', 'weight', 'wind_speed',
];
/** Sensor state classes (the developer docs' "available state classes"). */
const STATE_CLASSES = ['measurement', 'measurement_angle', 'total', 'total_increasing'];

const SPECS = {
  binary_sensor: { keys: BINARY_SENSOR_KEYS, classes: BINARY_SENSOR_CLASSES },
  sensor: { keys: SENSOR_KEYS, classes: SENSOR_CLASSES },
} as const;

const STRING_KEYS = [
  'availability_template', 'availability_topic', 'encoding', 'entity_picture', 'icon', 'json_attributes_template', 'json_attributes_topic',
  'last_reset_value_template', 'object_id', 'payload_available', 'payload_not_available', 'payload_off', 'payload_on', 'state_topic',
  'unique_id', 'unit_of_measurement', 'value_template',
];
const TOPIC_KEYS = ['state_topic', 'json_attributes_topic', 'availability_topic'];
const BOOLEAN_KEYS = ['enabled_by_default', 'force_update'];
const COUNT_KEYS = ['expire_after', 'off_delay', 'suggested_display_precision'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Why `t` cannot be subscribed to (MQTT 3.1.1 §4.7: wildcards only as whole levels, '#' last), or undefined. */
function topicProblem(t: string): string | undefined {
  if (t === '' || t.includes('\u0000')) return 'is empty or has NUL';
  const levels = t.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if ((l.includes('+') && l !== '+') || (l.includes('#') && (l !== '#' || i !== levels.length - 1))) return `has a wildcard that is not a whole level: '${t}'`;
  }
  return undefined;
}

/**
 * Everything Home Assistant's documented discovery schema says is wrong with `payload` published on
 * `topic` (single-component discovery); empty when there is nothing.
 */
export function discoveryProblems(topic: string, payload: unknown): string[] {
  const out: string[] = [];
  // <discovery_prefix>/<component>/[<node_id>/]<object_id>/config; node_id and object_id [a-zA-Z0-9_-].
  const m = /^(.+?)\/(binary_sensor|sensor)\/(?:([^/]+)\/)?([^/]+)\/config$/.exec(topic);
  if (!m) return [`topic '${topic}' is not <prefix>/<binary_sensor|sensor>/[<node_id>/]<object_id>/config`];
  const component = m[2] as keyof typeof SPECS;
  for (const [what, id] of [['node_id', m[3]], ['object_id', m[4]]] as const) {
    if (id !== undefined && !/^[a-zA-Z0-9_-]+$/.test(id)) out.push(`topic ${what} '${id}' has characters outside [a-zA-Z0-9_-]`);
  }
  if (!isObject(payload)) return [...out, 'the payload must be a JSON dictionary'];
  const spec = SPECS[component];
  const p = payload;
  for (const k of Object.keys(p)) {
    if (!spec.keys.includes(k) && !DISCOVERY_KEYS.includes(k)) out.push(`${component}: unknown key '${k}' (Home Assistant would ignore it)`);
  }
  if ('platform' in p) out.push(`${component}: platform is allowed only in a device discovery payload`);
  if (!nonEmptyString(p.state_topic)) out.push(`${component}: state_topic is required`);
  // The device registry entry needs a unique_id ("device: only works when unique_id is set").
  if (!nonEmptyString(p.unique_id)) out.push(`${component}: unique_id is required for a device`);
  for (const k of STRING_KEYS) if (k in p && typeof p[k] !== 'string') out.push(`${component}: ${k} must be a string`);
  for (const k of TOPIC_KEYS) {
    const why = typeof p[k] === 'string' ? topicProblem(p[k]) : undefined;
    if (why) out.push(`${component}: ${k} ${why}`);
  }
  for (const k of BOOLEAN_KEYS) if (k in p && typeof p[k] !== 'boolean') out.push(`${component}: ${k} must be true or false`);
  for (const k of COUNT_KEYS) if (k in p && !(Number.isInteger(p[k]) && (p[k] as number) >= 0)) out.push(`${component}: ${k} must be a non-negative integer`);
  if ('name' in p && p.name !== null && typeof p.name !== 'string') out.push(`${component}: name must be a string or null`);
  if ('qos' in p && ![0, 1, 2].includes(p.qos as number)) out.push(`${component}: qos must be 0, 1 or 2`);
  if ('device_class' in p && p.device_class !== null && !(spec.classes as readonly string[]).includes(p.device_class as string)) {
    out.push(`${component}: device_class '${String(p.device_class)}' is not one of Home Assistant's ${component} device classes`);
  }
  if ('state_class' in p && !STATE_CLASSES.includes(p.state_class as string)) out.push(`${component}: state_class must be one of ${STATE_CLASSES.join(', ')}`);
  if ('entity_category' in p) {
    const allowed = component === 'sensor' ? ['diagnostic'] : ['config', 'diagnostic'];
    if (!allowed.includes(p.entity_category as string)) out.push(`${component}: entity_category must be ${allowed.join(' or ')}`);
  }
  if ('json_attributes_template' in p && !('json_attributes_topic' in p)) out.push(`${component}: json_attributes_template without json_attributes_topic`);
  if ('options' in p && (p.device_class !== 'enum' || 'state_class' in p || 'unit_of_measurement' in p)) out.push(`${component}: options needs device_class enum and no state_class or unit_of_measurement`);
  if ('last_reset_value_template' in p && p.state_class !== 'total') out.push(`${component}: last_reset_value_template needs state_class total`);

  // Availability: a list of {topic, …}, or availability_topic — not both.
  if ('availability' in p && 'availability_topic' in p) out.push(`${component}: availability and availability_topic must not be used together`);
  if ('availability_template' in p && !('availability_topic' in p)) out.push(`${component}: availability_template reads availability_topic, which is not set`);
  if ('availability_mode' in p && !['all', 'any', 'latest'].includes(p.availability_mode as string)) out.push(`${component}: availability_mode must be all, any or latest`);
  if ('availability' in p) {
    if (!Array.isArray(p.availability) || p.availability.length === 0) out.push(`${component}: availability must be a non-empty list`);
    else {
      p.availability.forEach((a: unknown, i) => {
        const at = `${component}: availability[${i}]`;
        if (!isObject(a)) return void out.push(`${at} must be a mapping`);
        for (const k of Object.keys(a)) if (!AVAILABILITY_KEYS.includes(k)) out.push(`${at}: unknown key '${k}'`);
        if (!nonEmptyString(a.topic)) out.push(`${at}: topic is required`);
        else if (topicProblem(a.topic)) out.push(`${at}: topic ${topicProblem(a.topic)}`);
        for (const k of ['payload_available', 'payload_not_available', 'value_template']) if (k in a && typeof a[k] !== 'string') out.push(`${at}: ${k} must be a string`);
      });
    }
  }

  // The device mapping: at least one of identifiers or connections.
  if ('device' in p) {
    const d = p.device;
    if (!isObject(d)) out.push(`${component}: device must be a mapping`);
    else {
      for (const k of Object.keys(d)) if (!DEVICE_KEYS.includes(k)) out.push(`${component}: device: unknown key '${k}'`);
      const ids = d.identifiers;
      const idsOk = nonEmptyString(ids) || (Array.isArray(ids) && ids.length > 0 && ids.every(nonEmptyString));
      const conns = d.connections;
      const connsOk = Array.isArray(conns) && conns.length > 0 && conns.every((c) => Array.isArray(c) && c.length === 2 && c.every(nonEmptyString));
      if ('identifiers' in d && !idsOk) out.push(`${component}: device.identifiers must be a string or a non-empty list of strings`);
      if ('connections' in d && !connsOk) out.push(`${component}: device.connections must be a list of [type, id] pairs`);
      if (!idsOk && !connsOk) out.push(`${component}: device needs identifiers or connections`);
      for (const k of ['configuration_url', 'hw_version', 'manufacturer', 'model', 'model_id', 'name', 'serial_number', 'suggested_area', 'sw_version', 'via_device']) {
        if (k in d && typeof d[k] !== 'string') out.push(`${component}: device.${k} must be a string`);
      }
    }
  }
  if ('origin' in p) {
    const o = p.origin;
    if (!isObject(o)) out.push(`${component}: origin must be a mapping`);
    else {
      for (const k of Object.keys(o)) if (!ORIGIN_KEYS.includes(k)) out.push(`${component}: origin: unknown key '${k}'`);
      if (!nonEmptyString(o.name)) out.push(`${component}: origin.name is required`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Templates, rendered by Jinja2 as Home Assistant renders an MQTT value template: `value` is the
// payload, `value_json` the payload parsed when it is JSON, `this` the entity's state object.

export interface TemplateCase {
  template: string;
  payload: string;
  /** The entity's state object, as far as the template reads it (`this.attributes`). */
  this?: { state?: string; attributes: Record<string, unknown> };
}

const RENDER = `
import json, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment
env = ImmutableSandboxedEnvironment()
out = []
for c in json.load(sys.stdin):
    try:
        value_json = json.loads(c['payload'])
    except ValueError:
        value_json = None
    out.append(env.from_string(c['template']).render(value=c['payload'], value_json=value_json, this=c.get('this')))
print(json.dumps(out))
`;

/** Renders each case with Python's Jinja2 (Debian: python3-jinja2); throws, saying so, when it is not there. */
export function renderTemplates(cases: TemplateCase[]): string[] {
  // The python3 on PATH may be another install than the one Debian's python3-jinja2 went into.
  const python = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import jinja2']).status === 0) ?? 'python3';
  const r = spawnSync(python, ['-c', RENDER], { input: JSON.stringify(cases), encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    const why = r.error?.message ?? r.stderr;
    throw new Error(`rendering Home Assistant templates needs python3 with Jinja2 (Debian/Pi OS: apt-get install python3-jinja2): ${why}`);
  }
  return JSON.parse(r.stdout) as string[];
}

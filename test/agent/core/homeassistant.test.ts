/**
 * core/homeassistant.ts: the discovery configs against Home Assistant's documented schema
 * (ha-discovery-schema.ts), their topics and ids, and their templates rendered by Jinja2 on payloads
 * of the agent's own schemas. The daemon's test (test/agent/daemon/homeassistant.test.ts) puts them
 * on a real broker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toAlertPayload } from '#agent/core/alert.js';
import { DEFAULTS } from '#agent/core/defaults.js';
import {
  discoveryConfigs,
  discoveryFilter,
  haDeviceIdentifier,
  isDiscoveryTopic,
  isOwnDiscoveryConfig,
  type DiscoveryConfig,
  type DiscoveryOptions,
} from '#agent/core/homeassistant.js';
import { payloadProblem } from '#agent/core/payloads.js';
import { MODEL_TYPES } from '#agent/core/profiles.js';
import type { LearnPayload, ScorePayload, StatusPayload } from '#agent/core/topics.js';
import { discoveryProblems, renderTemplates } from './ha-discovery-schema.js';

const OPTIONS: DiscoveryOptions = { haPrefix: DEFAULTS.config.homeassistant.prefix, prefix: 'anomaly', device: 'motor-1', version: '0.1.0', profile: 'rpm_600', scores: true };

test('every config of a device running every model passes Home Assistant’s documented discovery schema', () => {
  const configs = discoveryConfigs(OPTIONS, MODEL_TYPES);
  assert.equal(configs.length, MODEL_TYPES.length * 3 + 1, 'three per model, and the learn progress of the device');
  assert.deepEqual(
    [configs.at(-1)!.topic, configs.at(-1)!.payload.unique_id, configs.at(-1)!.payload.state_topic],
    ['homeassistant/sensor/motor-1/learn/config', 'anomaly-agent_motor-1_learn', 'anomaly/motor-1/learn'],
  );
  for (const c of configs) assert.deepEqual(discoveryProblems(c.topic, c.payload), [], c.topic);
  // One device block, shared; one availability, the retained status topic.
  const device = configs[0]!.payload.device;
  assert.deepEqual(device, { identifiers: ['anomaly-agent_motor-1'], name: 'motor-1', manufacturer: 'anomaly-agent', model: 'anomaly-agent (rpm_600)', sw_version: '0.1.0' });
  for (const c of configs) {
    assert.deepEqual(c.payload.device, device);
    assert.deepEqual(c.payload.availability, [{ topic: 'anomaly/motor-1/status', value_template: '{{ value_json.state }}', payload_available: 'online', payload_not_available: 'offline' }]);
  }
  // Per model: a problem binary_sensor on the alerts topic, a score sensor on its score topic, a drift sensor on the status topic.
  const vib = configs.filter((c) => c.payload.unique_id.includes('_vibration_'));
  assert.deepEqual(
    vib.map((c) => [c.topic, c.payload.unique_id, c.payload.state_topic]),
    [
      ['homeassistant/binary_sensor/motor-1/vibration_problem/config', 'anomaly-agent_motor-1_vibration_problem', 'anomaly/motor-1/alerts'],
      ['homeassistant/sensor/motor-1/vibration_score/config', 'anomaly-agent_motor-1_vibration_score', 'anomaly/motor-1/score/vibration'],
      ['homeassistant/sensor/motor-1/vibration_drift/config', 'anomaly-agent_motor-1_vibration_drift', 'anomaly/motor-1/status'],
    ],
  );
  assert.equal(vib[0]!.component === 'binary_sensor' && vib[0]!.payload.device_class, 'problem');
  assert.equal(new Set(configs.map((c) => c.payload.unique_id)).size, configs.length, 'unique_ids distinct');
  assert.equal(new Set(configs.map((c) => c.topic)).size, configs.length, 'topics distinct');
  // Stable: the same inputs give the same bytes (a restart re-announces what Home Assistant has).
  assert.deepEqual(JSON.stringify(discoveryConfigs(OPTIONS, MODEL_TYPES)), JSON.stringify(configs));
});

test('the schema check refuses what Home Assistant would refuse or silently ignore', () => {
  const valid = discoveryConfigs(OPTIONS, ['vibration']);
  const [binary, sensor] = valid as [DiscoveryConfig, DiscoveryConfig];
  const broken = (c: DiscoveryConfig, edit: (p: Record<string, unknown>) => void, topic = c.topic) => {
    const p = structuredClone(c.payload) as unknown as Record<string, unknown>;
    edit(p);
    return discoveryProblems(topic, p);
  };
  const cases: [string, string[]][] = [
    ['state_topic is required', broken(binary, (p) => delete p.state_topic)],
    ['unique_id is required', broken(sensor, (p) => delete p.unique_id)],
    ["device_class 'anomaly' is not one", broken(binary, (p) => (p.device_class = 'anomaly'))],
    ["device_class 'problem' is not one of Home Assistant's sensor", broken(sensor, (p) => (p.device_class = 'problem'))],
    ['device needs identifiers or connections', broken(binary, (p) => delete (p.device as Record<string, unknown>).identifiers)],
    ['availability and availability_topic must not be used together', broken(sensor, (p) => (p.availability_topic = 'anomaly/motor-1/status'))],
    ['availability[0]: topic is required', broken(sensor, (p) => delete (p.availability as Record<string, unknown>[])[0]!.topic)],
    ['availability_template reads availability_topic', broken(binary, (p) => (p.availability_template = '{{ value_json.state }}'))],
    ["unknown key 'state_topik'", broken(binary, (p) => (p.state_topik = p.state_topic))],
    ['platform is allowed only in a device discovery payload', broken(sensor, (p) => (p.platform = 'sensor'))],
    ['state_class must be one of', broken(sensor, (p) => (p.state_class = 'gauge'))],
    ["unknown key 'state_class'", broken(binary, (p) => (p.state_class = 'measurement'))],
    ['qos must be 0, 1 or 2', broken(binary, (p) => (p.qos = 3))],
    ['json_attributes_template without json_attributes_topic', broken(sensor, (p) => delete p.json_attributes_topic)],
    ['state_topic has a wildcard', broken(sensor, (p) => (p.state_topic = 'anomaly/motor-1/score/vib#'))],
    ['origin.name is required', broken(sensor, (p) => (p.origin = { sw_version: '1' }))],
    ["node_id 'motor.1' has characters outside", broken(binary, () => undefined, 'homeassistant/binary_sensor/motor.1/vibration_problem/config')],
    ['is not <prefix>/<binary_sensor|sensor>/', broken(binary, () => undefined, 'homeassistant/switch/motor-1/vibration_problem/config')],
  ];
  for (const [want, problems] of cases) assert.ok(problems.some((p) => p.includes(want)), `expected a problem containing "${want}", got ${JSON.stringify(problems)}`);
});

test('a device id outside [a-zA-Z0-9_-] gets a topic level Home Assistant accepts; ownership goes by the exact id', () => {
  const device = 'pump 7.a';
  const configs = discoveryConfigs({ ...OPTIONS, device }, ['multi-feature']);
  assert.deepEqual(configs.map((c) => c.topic), [
    'homeassistant/binary_sensor/pump_7_a/multi-feature_problem/config',
    'homeassistant/sensor/pump_7_a/multi-feature_score/config',
    'homeassistant/sensor/pump_7_a/multi-feature_drift/config',
    'homeassistant/sensor/pump_7_a/learn/config',
  ]);
  for (const c of configs) assert.deepEqual(discoveryProblems(c.topic, c.payload), [], c.topic);
  assert.equal(configs[0]!.payload.unique_id, 'anomaly-agent_pump 7.a_multi-feature_problem');
  assert.equal(discoveryFilter('homeassistant', device), 'homeassistant/+/pump_7_a/+/config');
  for (const c of configs) {
    assert.ok(isDiscoveryTopic('homeassistant', device, c.topic));
    assert.ok(isOwnDiscoveryConfig(device, JSON.stringify(c.payload)));
    // 'pump_7_a' shares the topic level but is another device: its configs are not this one's.
    assert.ok(!isOwnDiscoveryConfig('pump_7_a', JSON.stringify(c.payload)));
  }
  assert.ok(!isDiscoveryTopic('homeassistant', device, 'homeassistant/sensor/pump_7_a/config'));
  assert.ok(!isDiscoveryTopic('homeassistant', device, 'homeassistant/sensor/other/x_score/config'));
  assert.ok(!isOwnDiscoveryConfig(device, 'not json'));
  assert.ok(!isOwnDiscoveryConfig(device, JSON.stringify({ device: { identifiers: haDeviceIdentifier(device) } })), 'identifiers as a list, as the agent writes them');
  // A prefix of several levels.
  const deep = discoveryConfigs({ ...OPTIONS, haPrefix: 'site/ha' }, ['rpm']);
  assert.deepEqual(deep.map((c) => c.topic), ['site/ha/binary_sensor/motor-1/rpm_problem/config', 'site/ha/sensor/motor-1/rpm_score/config', 'site/ha/sensor/motor-1/rpm_drift/config', 'site/ha/sensor/motor-1/learn/config']);
  assert.ok(deep.every((c) => isDiscoveryTopic('site/ha', 'motor-1', c.topic) && discoveryProblems(c.topic, c.payload).length === 0));
});

test('without published scores (publish.scores false) there is no score sensor', () => {
  const configs = discoveryConfigs({ ...OPTIONS, scores: false }, ['vibration', 'rpm']);
  assert.deepEqual(configs.map((c) => c.payload.unique_id.split('_').at(-1)), ['problem', 'drift', 'problem', 'drift', 'learn']);
});

test('the templates, rendered by Jinja2 as Home Assistant does, read the agent’s payloads: episode state, attributes, score, availability', () => {
  const [binary, sensor, driftSensor, learnSensor] = discoveryConfigs(OPTIONS, ['vibration']);
  assert.ok(binary?.component === 'binary_sensor' && sensor?.component === 'sensor' && driftSensor?.component === 'sensor');
  const top = [{ feature: 'accel_y', error: 3, share: 0.6 }, { feature: 'accel_x', error: 2, share: 0.4 }];
  const alert = (model: string, state: 'raised' | 'cleared', kind: 'machine' | 'drift' = 'machine') =>
    toAlertPayload(
      {
        kind,
        id: `${model}-e1`,
        model,
        state,
        score: state === 'raised' ? 9.5 : 0.4,
        threshold: 1.9,
        since: 1_700_000_000_000,
        windowEnd: 1_700_000_001_000,
        topFeatures: top,
        ...(state === 'cleared' ? { reason: 'settled at a new level' as const, peak: { score: 12, threshold: 1.9, topFeatures: top } } : {}),
      },
      1_700_000_002_000,
    );
  const raised = alert('vibration', 'raised');
  const cleared = alert('vibration', 'cleared');
  const other = alert('voltage', 'raised');
  const drift = alert('vibration', 'raised', 'drift');
  for (const a of [raised, cleared, other, drift]) assert.equal(payloadProblem('alerts', a), undefined);
  const score: ScorePayload = { v: 1, t: 1_700_000_002_000, windowEnd: 1_700_000_001_000, score: 2.5, threshold: 1.9, perFeature: { accel_x: 1, accel_y: 3, accel_z: 2 } };
  const status = (state: 'online' | 'offline', models: StatusPayload['models'] = []): StatusPayload => ({ v: 1, t: 1, state, version: '0.1.0', models, sensors: {} });
  const entry = (model: string, drift: number) => ({ model, name: `rpm_600/${model}`, sha256: 'a'.repeat(64), drift });
  const drifted = status('online', [entry('voltage', 0.9), entry('vibration', 0.125)]);
  const learning: LearnPayload = { v: 1, t: 1, id: 'learn-1', phase: 'refused', percent: 12, startedAt: 1, minutes: 30, reason: 'new bearing', refusal: 'sensor rpm is stuck' };
  assert.equal(payloadProblem('learn', learning), undefined);
  assert.equal(payloadProblem('score', score), undefined);
  assert.equal(payloadProblem('status', status('online')), undefined);

  const kept = { episode: 'vibration-e0', state: 'cleared' };
  const b = binary.payload;
  const s = sensor.payload;
  const a = b.availability[0]!;
  const [on, off, ignored, ignoredDrift, attrs, attrsCleared, attrsOther, value, threshold, online, offline, driftValue, driftMissing, driftAttrs, learnValue, learnAttrs] = renderTemplates([
    { template: b.value_template, payload: JSON.stringify(raised) },
    { template: b.value_template, payload: JSON.stringify(cleared) },
    { template: b.value_template, payload: JSON.stringify(other) },
    { template: b.value_template, payload: JSON.stringify(drift) },
    { template: b.json_attributes_template, payload: JSON.stringify(raised), this: { state: 'off', attributes: { friendly_name: 'motor-1 vibration anomaly' } } },
    { template: b.json_attributes_template, payload: JSON.stringify(cleared), this: { state: 'on', attributes: {} } },
    { template: b.json_attributes_template, payload: JSON.stringify(other), this: { state: 'on', attributes: kept } },
    { template: s.value_template, payload: JSON.stringify(score) },
    { template: s.json_attributes_template, payload: JSON.stringify(score) },
    { template: a.value_template, payload: JSON.stringify(status('online')) },
    { template: a.value_template, payload: JSON.stringify(status('offline')) },
    { template: driftSensor.payload.value_template, payload: JSON.stringify(drifted) },
    { template: driftSensor.payload.value_template, payload: JSON.stringify(status('online', [entry('voltage', 0.9)])) },
    { template: driftSensor.payload.json_attributes_template, payload: JSON.stringify(drifted) },
    { template: learnSensor!.payload.value_template, payload: JSON.stringify(learning) },
    { template: learnSensor!.payload.json_attributes_template, payload: JSON.stringify(learning) },
  ]);
  assert.equal(on, b.payload_on);
  assert.equal(off, b.payload_off);
  assert.equal(ignored, '', "another model's alert renders '': Home Assistant drops the message");
  assert.equal(ignoredDrift, '', "the model's baseline-drift alert is not its machine episode");
  const episode = { episode: 'vibration-e1', since_ms: 1_700_000_000_000, threshold: 1.9, top_features: ['accel_y', 'accel_x'] };
  assert.deepEqual(JSON.parse(attrs!), { ...episode, state: 'raised', score: 9.5, cleared_because: null, peak_score: null, peak_threshold: null });
  assert.deepEqual(JSON.parse(attrsCleared!), { ...episode, state: 'cleared', score: 0.4, cleared_because: 'settled at a new level', peak_score: 12, peak_threshold: 1.9 });
  assert.deepEqual(JSON.parse(attrsOther!), kept, "another model's alert leaves the attributes as they are");
  assert.equal(Number(value), 2.5);
  assert.deepEqual(JSON.parse(threshold!), { threshold: 1.9 });
  assert.equal(online, a.payload_available);
  assert.equal(offline, a.payload_not_available);
  assert.equal(Number(driftValue), 0.125, "this model's drift, not another's");
  assert.equal(Number(driftMissing), 0, 'a status without the model reads 0');
  assert.deepEqual(JSON.parse(driftAttrs!), { bundle: 'rpm_600/vibration' });
  assert.equal(Number(learnValue), 12);
  assert.deepEqual(JSON.parse(learnAttrs!), { phase: 'refused', eta_s: null, reason: 'new bearing', refusal: 'sensor rpm is stuck' });
});

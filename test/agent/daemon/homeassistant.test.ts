/**
 * Home Assistant discovery (daemon/homeassistant.ts) on real brokers, with real clients:
 * - the whole daemon in process on a ManualClock with its embedded aedes broker: retained configs
 *   under homeassistant/#, each passing Home Assistant's documented schema, and the problem sensor's
 *   templates (rendered by Jinja2) following the bearing episode the replay raises and clears;
 * - daemons in process against a real Mosquitto, which keeps retained messages across their
 *   restarts: a model that appears at a reload is announced, one no longer enabled is emptied at the
 *   next start, turning the feature off empties every config of the device — and leaves other
 *   devices' and other programs' configs alone;
 * - a device credential that may not use the Home Assistant prefix: nothing is published (a refused
 *   publish would end the connection), and the log says why;
 * - the compiled daemon with `--homeassistant-enabled true`, read with mosquitto_sub (the README's
 *   example).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { BrokerComponent } from '#broker/broker.js';
import { hashPassword } from '#broker/users.js';
import { loadConfig } from '#agent/config/load.js';
import { ManualClock } from '#agent/core/clock.js';
import { haDeviceIdentifier, type HaBinarySensorConfig, type HaSensorConfig } from '#agent/core/homeassistant.js';
import { silentLogger } from '#agent/core/log.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import type { ModelAlertPayload, ScorePayload } from '#agent/core/topics.js';
import { Controller } from '#agent/daemon/controller.js';
import { discoveryProblems, renderTemplates } from '../core/ha-discovery-schema.js';
import { copyBundles, DEVICE, killAll, Mosquitto, freePort, serviceFlags, startDaemon, Sub, suiteTempDir, waitFor, type LogLine } from './daemon-fixture.js';

const DATA = join(PACKAGE_ROOT, 'datas', 'raw', 'rpm_600', 'test');
const FILE = join(DATA, 'test_01.csv');
const T0 = Number(readFileSync(FILE, 'utf8').split('\n')[1]!.split(',')[0]);
const faults = JSON.parse(readFileSync(join(DATA, 'faults.json'), 'utf8')) as Record<string, { kind: string; intensity: string; startMs: number; endMs: number }[]>;
const BEARING = faults['test_01.csv']!.find((f) => f.kind === 'bearing' && f.intensity === 'obvious')!;

const dir = suiteTempDir('homeassistant-');
after(killAll);

const turn = () => new Promise<void>((r) => setImmediate(r));

/** A pino logger whose lines the test can read. */
function capturingLogger() {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

/**
 * The retained messages under `filter`, as a fresh client sees them. Mosquitto queues a new
 * subscription's retained messages before it handles the client's next packet, so they all arrive
 * before a marker the client publishes after its SUBACK.
 */
async function retained(url: string, filter = 'homeassistant/#'): Promise<Map<string, string>> {
  const c = await connectAsync(url, { clientId: `snapshot-${randomUUID().slice(0, 8)}`, reconnectPeriod: 0 });
  try {
    const marker = `snapshot/${randomUUID()}`;
    const got = new Map<string, string>();
    let seen!: () => void;
    const end = new Promise<void>((r) => (seen = r));
    c.on('message', (t, payload, packet) => {
      if (t === marker) seen();
      else if (packet.retain) got.set(t, payload.toString());
    });
    await c.subscribeAsync(marker, { qos: 1 });
    await c.subscribeAsync(filter, { qos: 1 });
    await c.publishAsync(marker, 'end', { qos: 1 });
    await Promise.race([end, new Promise((_, j) => setTimeout(() => j(new Error('the snapshot marker did not come back')), 5000))]);
    return got;
  } finally {
    await c.endAsync();
  }
}

/** Every retained config is one Home Assistant accepts; returns them parsed. */
function checkedConfigs(configs: Map<string, string>): Map<string, HaBinarySensorConfig | HaSensorConfig> {
  const out = new Map<string, HaBinarySensorConfig | HaSensorConfig>();
  for (const [t, p] of configs) {
    const payload = JSON.parse(p) as HaBinarySensorConfig | HaSensorConfig;
    assert.deepEqual(discoveryProblems(t, payload), [], t);
    assert.ok(payload.unique_id && payload.device && payload.state_topic, `${t}: unique_id, device and a state topic`);
    out.set(t, payload);
  }
  return out;
}

describe('Home Assistant discovery', () => {
  test('in process, embedded broker: retained configs under homeassistant/#; the problem sensor follows the bearing episode; availability follows status', { timeout: 60_000 }, async () => {
    const clock = new ManualClock(T0);
    // prettier-ignore
    const config = loadConfig({ argv: [
      '--device-id', 'press-3', '--broker-port', '0', '--broker-ws-port', '0', '--http-port', '0', '--outbox-dir', join(dir(), 'outbox-a'), '--models-dir', join(dir(), 'models-a'),
      '--models-profile', 'rpm_600', '--models-enabled', 'vibration', '--homeassistant-enabled', 'true',
      '--source-kind', 'replay', '--source-replay-file', FILE, '--source-replay-speed', '1',
    ] });
    const c = new Controller({ config, log: silentLogger, version: 'test', clock, threads: false });
    let listener: MqttClient | undefined;
    try {
      await c.start();
      const url = `mqtt://127.0.0.1:${c.brokerAddress()!.port}`;
      listener = await connectAsync(url, { clientId: 'listener', reconnectPeriod: 0 });
      const configs = new Map<string, { payload: string; retain: boolean }>();
      const alerts: string[] = [];
      const scores: string[] = [];
      const statuses: string[] = [];
      listener.on('message', (t, p, packet) => {
        if (t.startsWith('homeassistant/')) configs.set(t, { payload: p.toString(), retain: packet.retain });
        else if (t === 'anomaly/press-3/alerts') alerts.push(p.toString());
        else if (t === 'anomaly/press-3/score/vibration') scores.push(p.toString());
        else if (t === 'anomaly/press-3/status') statuses.push(p.toString());
      });
      await listener.subscribeAsync(['homeassistant/#', 'anomaly/press-3/alerts', 'anomaly/press-3/score/vibration', 'anomaly/press-3/status'], { qos: 1 });
      await waitFor('the configs of the vibration model and the device', () => configs.size >= 4, 10_000);
      // A client that comes later (Home Assistant after a restart) gets them retained.
      const late = await connectAsync(url, { clientId: 'late', reconnectPeriod: 0 });
      const kept = new Map<string, string>();
      late.on('message', (t, p, packet) => packet.retain && kept.set(t, p.toString()));
      await late.subscribeAsync('homeassistant/#', { qos: 1 });
      await waitFor('the retained configs', () => kept.size === 4, 10_000);
      await late.endAsync();
      const parsed = checkedConfigs(kept);
      assert.deepEqual([...parsed.keys()].sort(), [
        'homeassistant/binary_sensor/press-3/vibration_problem/config',
        'homeassistant/sensor/press-3/learn/config',
        'homeassistant/sensor/press-3/vibration_drift/config',
        'homeassistant/sensor/press-3/vibration_score/config',
      ]);
      const problem = parsed.get('homeassistant/binary_sensor/press-3/vibration_problem/config') as HaBinarySensorConfig;
      const score = parsed.get('homeassistant/sensor/press-3/vibration_score/config') as HaSensorConfig;
      assert.equal(problem.device_class, 'problem');
      assert.deepEqual(problem.device.identifiers, [haDeviceIdentifier('press-3')]);
      assert.equal(problem.device.sw_version, 'test');

      // The replay through the bearing fault, a second of clock at a time (as controller.test.ts).
      while (clock.now() < BEARING.endMs + 30_000 && !alerts.some((a) => (JSON.parse(a) as ModelAlertPayload).state === 'cleared')) {
        clock.advance(1000);
        await turn();
        await turn();
      }
      await waitFor('the cleared alert on the wire', () => alerts.some((a) => (JSON.parse(a) as ModelAlertPayload).state === 'cleared'), 5000);
      await waitFor('a score on the wire', () => scores.length > 0, 5000);

      // What Home Assistant makes of the wire, rendered by Jinja2: OFF → ON at the raise, OFF at the clear.
      const rendered = renderTemplates([
        ...alerts.map((payload) => ({ template: problem.value_template, payload })),
        ...alerts.map((payload) => ({ template: problem.json_attributes_template, payload, this: { attributes: {} } })),
        { template: score.value_template, payload: scores.at(-1)! },
        { template: score.json_attributes_template, payload: scores.at(-1)! },
        { template: problem.availability[0]!.value_template, payload: statuses.at(-1)! },
      ]);
      const n = alerts.length;
      assert.deepEqual(rendered.slice(0, n), alerts.map((a) => ((JSON.parse(a) as ModelAlertPayload).state === 'raised' ? 'ON' : 'OFF')));
      assert.deepEqual(rendered.slice(0, 2), ['ON', 'OFF']);
      const raised = JSON.parse(alerts[0]!) as ModelAlertPayload;
      assert.deepEqual(JSON.parse(rendered[n]!), { episode: raised.id, state: 'raised', score: raised.score, threshold: raised.threshold, since_ms: raised.since, top_features: raised.topFeatures.map((f) => f.feature), cleared_because: null, peak_score: null, peak_threshold: null });
      const last = JSON.parse(scores.at(-1)!) as ScorePayload;
      assert.equal(Number(rendered[2 * n]), last.score);
      assert.deepEqual(JSON.parse(rendered[2 * n + 1]!), { threshold: last.threshold });
      assert.equal(rendered[2 * n + 2], problem.availability[0]!.payload_available);

      await c.stop();
      await waitFor('the offline status', () => statuses.length > 0 && (JSON.parse(statuses.at(-1)!) as { state: string }).state === 'offline', 5000);
      const [offline] = renderTemplates([{ template: problem.availability[0]!.value_template, payload: statuses.at(-1)! }]);
      assert.equal(offline, problem.availability[0]!.payload_not_available, 'unavailable in Home Assistant once the agent stops');
    } finally {
      await c.stop();
      await listener?.endAsync();
    }
  });

  test('on Mosquitto, across restarts: a model loaded at a reload is announced, one no longer enabled is emptied, turning it off empties the rest; other configs stay', { timeout: 90_000 }, async () => {
    const port = await freePort();
    const work = await mkdtemp(join(dir(), 'mosquitto-'));
    const mosquitto = await new Mosquitto({ port, dir: work }).start();
    const url = `mqtt://127.0.0.1:${port}`;
    const device = 'pump.7'; // a device id Home Assistant would not take as a topic level
    const models = await copyBundles(work, 'rpm_600', ['vibration']);
    // Another program's device under the same topic level, and another agent: never touched.
    const foreign = {
      'homeassistant/sensor/pump_7/bearing_temp/config': JSON.stringify({ name: 'bearing', state_topic: 'zigbee2mqtt/pump_7', unique_id: 'z2m_1', device: { identifiers: ['zigbee2mqtt_0x1'] } }),
      'homeassistant/sensor/pump-8/vibration_score/config': JSON.stringify({ name: 'x', state_topic: 'anomaly/pump-8/score/vibration', unique_id: 'anomaly-agent_pump-8_vibration_score', device: { identifiers: [haDeviceIdentifier('pump-8')] } }),
    };
    const seed = await connectAsync(url, { clientId: 'seed', reconnectPeriod: 0 });
    for (const [t, p] of Object.entries(foreign)) await seed.publishAsync(t, p, { qos: 1, retain: true });
    await seed.endAsync();

    const daemon = (run: string, enabled: string, extra: string[] = []) => {
      const { log, lines } = capturingLogger();
      // prettier-ignore
      const config = loadConfig({ argv: [
        '--mqtt-url', url, '--device-id', device, '--http-port', '0', '--outbox-dir', join(work, `outbox-${run}`), '--models-dir', models, '--models-shipped-dir', '',
        '--models-profile', 'rpm_600', '--models-enabled', enabled, '--source-kind', 'mqtt', '--homeassistant-enabled', 'true', ...extra,
      ] });
      return { c: new Controller({ config, log, version: 'test', clock: new ManualClock(T0), threads: false }), lines };
    };
    const ours = async () => {
      const all = await retained(url);
      for (const [t, p] of Object.entries(foreign)) assert.equal(all.get(t), p, `${t} is left alone`);
      return [...checkedConfigs(all)].filter(([t]) => !(t in foreign)).map(([t]) => t.split('/').slice(1).join('/')).sort();
    };
    const vibrationOnly = ['binary_sensor/pump_7/vibration_problem/config', 'sensor/pump_7/learn/config', 'sensor/pump_7/vibration_drift/config', 'sensor/pump_7/vibration_score/config'];
    const bothModels = [
      'binary_sensor/pump_7/vibration_problem/config',
      'binary_sensor/pump_7/voltage_problem/config',
      'sensor/pump_7/learn/config',
      'sensor/pump_7/vibration_drift/config',
      'sensor/pump_7/vibration_score/config',
      'sensor/pump_7/voltage_drift/config',
      'sensor/pump_7/voltage_score/config',
    ];

    // 1. vibration and voltage enabled, but only vibration has a bundle (no shipped ones): vibration is announced.
    const one = daemon('1', 'vibration,voltage');
    try {
      await one.c.start();
      await waitFor('vibration announced', async () => (await ours()).length === 4, 10_000);
      assert.deepEqual(await ours(), vibrationOnly);
      // The voltage bundle arrives; SIGHUP's reload loads it, and it is announced.
      await cp(join(PACKAGE_ROOT, 'models', 'rpm_600', 'voltage'), join(models, 'rpm_600', 'voltage'), { recursive: true });
      await one.c.reload();
      await waitFor('voltage announced after the reload', async () => (await ours()).length === 7, 10_000);
      assert.deepEqual(await ours(), bothModels);
    } finally {
      await one.c.stop();
    }
    // Stopping removes nothing: Home Assistant shows the entities unavailable and keeps their history.
    assert.deepEqual(await ours(), bothModels);

    // 2. voltage no longer enabled: its configs are emptied at the start, vibration's stay.
    const two = daemon('2', 'vibration');
    try {
      await two.c.start();
      await waitFor('voltage emptied', async () => (await ours()).length === 4, 10_000);
      assert.deepEqual(await ours(), vibrationOnly);
      const removed = two.lines.filter((l) => l.msg === 'Home Assistant discovery config removed: its model no longer runs').map((l) => l.topic);
      assert.deepEqual(removed.sort(), ['homeassistant/binary_sensor/pump_7/voltage_problem/config', 'homeassistant/sensor/pump_7/voltage_drift/config', 'homeassistant/sensor/pump_7/voltage_score/config']);
    } finally {
      await two.c.stop();
    }

    // 3. the feature turned off: every config of this device is emptied at the start.
    const three = daemon('3', 'vibration', ['--homeassistant-enabled', 'false']);
    try {
      await three.c.start();
      await waitFor('every config emptied', async () => (await ours()).length === 0, 10_000);
      assert.equal(three.lines.filter((l) => l.msg === 'Home Assistant discovery config removed: homeassistant.enabled is off').length, 4);
      assert.equal(three.lines.filter((l) => l.module === 'homeassistant' && l.level >= 40).length, 0, 'no warning');
    } finally {
      await three.c.stop();
    }
    assert.deepEqual(await ours(), []);
    await mosquitto.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('a credential that may not use the Home Assistant prefix: nothing is published, the connection stays, the log says why', { timeout: 60_000 }, async () => {
    const users = new Map([
      ['pump-7', { username: 'pump-7', role: 'device' as const, device: 'pump-7', password: await hashPassword('seven') }],
      ['ops', { username: 'ops', role: 'admin' as const, password: await hashPassword('ops') }],
    ]);
    const broker = new BrokerComponent({ log: silentLogger, drainTimeoutMs: 1000, host: '127.0.0.1', port: 0, users });
    await broker.start();
    const url = `mqtt://127.0.0.1:${broker.address().port}`;
    const { log, lines } = capturingLogger();
    // prettier-ignore
    const config = loadConfig({ argv: [
      '--mqtt-url', url, '--mqtt-username', 'pump-7', '--mqtt-password', 'seven', '--device-id', 'pump-7', '--http-port', '0',
      '--outbox-dir', join(dir(), 'outbox-acl'), '--models-dir', join(dir(), 'models-acl'), '--models-profile', 'rpm_600', '--models-enabled', 'vibration', '--source-kind', 'mqtt',
      '--homeassistant-enabled', 'true',
    ] });
    const c = new Controller({ config, log, version: 'test', clock: new ManualClock(T0), threads: false });
    let ops: MqttClient | undefined;
    try {
      await c.start();
      const refused = await waitFor('the refusal in the log', () => lines.find((l) => l.module === 'homeassistant' && l.level === 50), 10_000);
      assert.match(refused.msg, /the broker refused a subscription to homeassistant\/\+\/pump-7\/\+\/config, so this MQTT credential may not publish under homeassistant\/ either; nothing is announced/);
      // An admin sees the device online and no config; a publish the broker refused would have ended the connection.
      ops = await connectAsync(url, { clientId: 'ops', username: 'ops', password: 'ops', reconnectPeriod: 0 });
      const seen: string[] = [];
      ops.on('message', (t, p) => seen.push(`${t} ${p.toString()}`));
      await ops.subscribeAsync(['homeassistant/#', 'anomaly/pump-7/status'], { qos: 1 });
      await waitFor('the online status', () => seen.some((m) => m.startsWith('anomaly/pump-7/status ') && m.includes('"state":"online"')), 10_000);
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(seen.filter((m) => m.startsWith('homeassistant/')), []);
      assert.deepEqual(lines.filter((l) => l.module === 'mqtt').map((l) => l.msg), ['connected'], 'connected once, never dropped');
    } finally {
      await ops?.endAsync();
      await c.stop();
      await broker.stop();
    }
  });

  test('the compiled daemon with --homeassistant-enabled true: mosquitto_sub reads the retained configs under homeassistant/#', { timeout: 60_000 }, async () => {
    const d = await startDaemon('daemon', { ...serviceFlags(dir(), 0), 'models-dir': join(dir(), 'models-cli'), 'source-kind': 'mqtt', 'models-enabled': 'vibration', 'homeassistant-enabled': true }, 30_000);
    const port = await d.brokerPort();
    await d.waitForLog('the announcement', (l) => l.module === 'homeassistant' && typeof l.msg === 'string' && l.msg.startsWith('announced to Home Assistant'), 20_000);
    const sub = new Sub('mosquitto_sub homeassistant/#', { port, topics: ['homeassistant/#'], count: 4, waitS: 10, format: 'retain' });
    assert.equal((await sub.exited).code, 0, sub.tail());
    const got = sub.messages();
    assert.equal(got.length, 4);
    assert.ok(got.every((m) => m.retain), 'retained');
    checkedConfigs(new Map(got.map((m) => [m.topic, m.payload])));
    assert.deepEqual(got.map((m) => m.topic).sort(), [
      `homeassistant/binary_sensor/${DEVICE}/vibration_problem/config`,
      `homeassistant/sensor/${DEVICE}/learn/config`,
      `homeassistant/sensor/${DEVICE}/vibration_drift/config`,
      `homeassistant/sensor/${DEVICE}/vibration_score/config`,
    ]);
    d.signal('SIGTERM');
    assert.equal((await d.exited).code, 0);
  });
});

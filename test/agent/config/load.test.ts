import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { DEFAULT_SENSORS } from '#agent/core/sample.js';
import { MODEL_TYPES } from '#agent/core/profiles.js';
import { ConfigError, loadConfig, redacted, redactUrl, type LoadOptions } from '#agent/config/load.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'anomaly-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(content: unknown): string {
  const path = join(dir, `config-${n++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** The ConfigError `opts` must produce; its problems for further checks. */
function problems(opts: LoadOptions): readonly string[] {
  try {
    loadConfig(opts);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`);
    assert.match(err.message, /^invalid configuration \(\d+ problems?\):\n {2}- /);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

/** Asserts exactly one problem, matching `re`. */
function oneProblem(opts: LoadOptions, re: RegExp): void {
  const p = problems(opts);
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(p[0]!, re);
}

test('the defaults validate and are the documented ones', () => {
  const c = loadConfig();
  assert.equal(c.device.id, 'motor-1');
  assert.deepEqual(c.mqtt, { url: '', prefix: 'anomaly', username: '', password: '', clientId: '', keepaliveS: 30, reconnectMs: 2000 });
  assert.deepEqual(c.broker, { host: '127.0.0.1', port: 1883, wsPort: 8083, drainTimeoutMs: 5000, usersFile: '', tlsPort: 0, tlsCert: '', tlsKey: '', maxPacketBytes: 1048576 });
  assert.equal(c.models.dir, 'state/models');
  assert.equal(c.models.shippedDir, join(PACKAGE_ROOT, 'models'));
  assert.deepEqual(c.models.enabled, [...MODEL_TYPES]);
  assert.deepEqual([c.models.trustedKeys, c.models.requireSigned], [[], false]);
  assert.deepEqual(c.sensors, DEFAULT_SENSORS);
  assert.equal(c.source.replay.file, join(PACKAGE_ROOT, 'datas/raw/rpm_600/test/test_01.csv'));
  assert.deepEqual(c.detector, { raiseK: 3, raiseN: 5, onDelaySpans: 1, stoppedBelow: 0.5, stoppedVibration: 0.1, clearM: 5, clearRatio: 0.8, cooldownMs: 30000 });
  assert.equal(c.outbox.maxBytes, 16 * 1024 * 1024);
  assert.equal(c.log.level, 'info');
  // The result is a copy: changing it changes nothing for the next caller.
  c.sensors.rpm!.channels.push('x');
  assert.deepEqual(loadConfig().sensors, DEFAULT_SENSORS);
});

test('file overrides defaults, env overrides the file, flags override env', () => {
  const f = file({ mqtt: { url: 'mqtt://file:1883', prefix: 'plant/a' }, detector: { raiseK: 2 } });
  const env = { ANOMALY_MQTT_URL: 'mqtt://env:1883', ANOMALY_DETECTOR_RAISE_K: '4', UNRELATED: 'x' };
  const fromFile = loadConfig({ file: f });
  assert.equal(fromFile.mqtt.url, 'mqtt://file:1883');
  assert.equal(fromFile.mqtt.prefix, 'plant/a');
  const fromEnv = loadConfig({ file: f, env });
  assert.equal(fromEnv.mqtt.url, 'mqtt://env:1883');
  assert.equal(fromEnv.detector.raiseK, 4);
  assert.equal(fromEnv.mqtt.prefix, 'plant/a', 'keys the env does not set keep the file value');
  const fromFlags = loadConfig({ argv: ['--config', f, '--mqtt-url', 'ws://flag:8083', '--detector-raise-k=5'], env });
  assert.equal(fromFlags.mqtt.url, 'ws://flag:8083');
  assert.equal(fromFlags.detector.raiseK, 5);
  // --config in argv wins over the file option
  assert.equal(loadConfig({ argv: ['--config', f], file: '/nonexistent.json' }).mqtt.url, 'mqtt://file:1883');
});

test('env and flags are typed by the schema: numbers, booleans, lists, JSON maps; strings stay verbatim', () => {
  const c = loadConfig({
    env: { ANOMALY_SOURCE_REPLAY_LOOP: 'false', ANOMALY_MODELS_ENABLED: 'vibration, rpm', ANOMALY_DETECTOR_CLEAR_RATIO: '0.5' },
    argv: ['--publish-scores', 'FALSE', '--sensors', '{"vib":{"channels":["accel_x","accel_y","accel_z"]},"rpm":{"channels":["rpm"]}}', '--device-id', '1e3', '--mqtt-password', '12345678901234567890'],
  });
  assert.equal(c.source.replay.loop, false);
  assert.equal(c.publish.scores, false);
  assert.deepEqual(c.models.enabled, ['vibration', 'rpm']);
  assert.equal(c.detector.clearRatio, 0.5);
  assert.deepEqual(Object.keys(c.sensors), ['vib', 'rpm']);
  assert.equal(c.device.id, '1e3');
  assert.equal(c.mqtt.password, '12345678901234567890');
});

test("a file's sensors replace the default ones instead of merging into them", () => {
  const c = loadConfig({ file: file({ sensors: { shaft: { channels: ['rpm'] } }, models: { enabled: ['rpm'] } }) });
  assert.deepEqual(c.sensors, { shaft: { channels: ['rpm'] } });
});

test('each bad value is a ConfigError naming the key path, why, and where the value came from', () => {
  oneProblem({ file: file({ mqtt: { urll: 'mqtt://x' } }) }, /^mqtt\.urll: not a key of the schema \(from .*config-\d+\.json\)$/);
  oneProblem({ file: file({ detector: { raiseK: 'three' } }) }, /^detector\.raiseK: must be an integer >= 1: value was "three" \(from .*\.json\)$/);
  oneProblem({ file: file({ publish: { scores: 'yes' } }) }, /^publish\.scores: must be true or false/);
  oneProblem({ file: file({ mqtt: 'mqtt://x' }) }, /^mqtt: must be an object with the keys url, prefix/);
  oneProblem({ env: { ANOMALY_BROKER_PORT: '70000' } }, /^broker\.port: must be an integer between 0 and 65535: value was 70000 \(from ANOMALY_BROKER_PORT\)$/);
  oneProblem({ argv: ['--http-port', '80x'] }, /^http\.port: .*value was "80x" \(from --http-port\)$/);
  oneProblem({ argv: ['--detector-clear-ratio', '0'] }, /^detector\.clearRatio: must be a number > 0 and <= 1/);
  oneProblem({ argv: ['--detector-raise-k', '6'] }, /^detector\.raiseK: 6 is more than detector\.raiseN \(5\)/);
  oneProblem({ argv: ['--detector-on-delay-spans', '-1'] }, /^detector\.onDelaySpans: must be a number >= 0: value was -1 \(from --detector-on-delay-spans\)$/);
  oneProblem({ argv: ['--detector-stopped-below', '2'] }, /^detector\.stoppedBelow: must be a number between 0 and 1: value was 2/);
  oneProblem({ argv: ['--detector-stopped-vibration', 'x'] }, /^detector\.stoppedVibration: must be a number >= 0: value was "x"/);
  // A missing store is created at start; one that would have to be made inside a file is refused.
  assert.equal(loadConfig({ argv: ['--models-dir', join(dir, 'no-such-dir', 'models')] }).models.dir, join(dir, 'no-such-dir', 'models'));
  oneProblem({ argv: ['--models-dir', join(file({}), 'models')] }, /^models\.dir: .* is not a directory \(from --models-dir\)$/);
  oneProblem({ argv: ['--models-shipped-dir', join(dir, 'no-such-dir')] }, /^models\.shippedDir: .*no-such-dir: no such file or directory \(from --models-shipped-dir\)$/);
  oneProblem({ argv: ['--models-dir', file({})] }, /^models\.dir: .* is not a directory/);
  oneProblem({ argv: ['--source-kind', 'replay', '--source-replay-file', join(dir, 'missing.csv')] }, /^source\.replay\.file: .*missing\.csv: no such file or directory/);
  oneProblem({ argv: ['--hardware-adxl345-address', '0x54'] }, /^hardware\.adxl345\.address: must be one of 0x53, 0x1D \(the addresses the part can be strapped to\): value was 84 \(from --hardware-adxl345-address\)$/);
  oneProblem({ env: { ANOMALY_HARDWARE_ADXL345_ODR_HZ: '300' } }, /^hardware\.adxl345\.odrHz: must be one of 3200, 1600, 800, 400, 200, 100, 50, 25, 12\.5/);
  oneProblem({ argv: ['--source-sim-faults', 'bearing:severe'] }, /^source\.sim\.faults: 'bearing:severe': intensity must be one of subtle, moderate, obvious, got "severe"/);
  oneProblem({ argv: ['--source-sim-load', 'full'] }, /^source\.sim\.load: must be 'auto' \(the simulator's schedule of load changes\) or a fraction of rated load within 0\.\.1\.2/);
  oneProblem({ argv: ['--hardware-error-ms', '400'] }, /^hardware\.errorMs: 400 is not longer than hardware\.staleMs \(500\)/);
  oneProblem({ argv: ['--sensors', '{"current": {"channels": ["current"]}}', '--models-enabled', ''] }, /^sensors: source sim: sensor 'current': no driver gives channel 'current'/);
  oneProblem({ file: file({ sensorFaults: { channels: { voltage: { min: 300, max: 10, stuckMs: 60000 } } } }) }, /^sensorFaults\.channels: channel 'voltage': min \(300\) must be below max \(10\): value was .* \(from .*\.json\)$/);
  oneProblem({ argv: ['--sensor-faults-channels', '{"rpm": {"min": 1, "max": 3600}}'] }, /^sensorFaults\.channels: channel 'rpm': stuckMs must be a finite number, got nothing.* \(from --sensor-faults-channels\)$/);
  oneProblem({ env: { ANOMALY_SENSOR_FAULTS_CHANNELS: '{"rpm": {"min": 1, "max": 3600, "stuckMs": 0, "lo": 0}}' } }, /^sensorFaults\.channels: channel 'rpm' has a key it may not have: lo \(min, max, rest, stuckMs\)/);
  oneProblem({ argv: ['--source-kind', 'mqtt', '--sensors', '{"supply": {"channels": ["current"]}}', '--models-enabled', ''] }, /^sensorFaults\.channels: channel 'current' of sensor 'supply' has no entry: add "current": \{"min": …, "max": …, "stuckMs": …\}$/);
  oneProblem({ argv: ['--hardware-ads1115-ratio', '1'] }, /^sensorFaults\.channels: channel 'voltage': 10\.\.300 has no reading in common with what the ADS1115 at ±4\.096 V × ratio 1 can read/);
  {
    // Naming one channel keeps the others' defaults.
    const c = loadConfig({ argv: ['--sensor-faults-channels', '{"voltage": {"min": 300, "max": 480, "rest": 0, "stuckMs": 60000}}'] });
    assert.deepEqual(c.sensorFaults.channels.voltage, { min: 300, max: 480, rest: 0, stuckMs: 60000 });
    assert.deepEqual(c.sensorFaults.channels.accel_x, { min: -150, max: 150, stuckMs: 2000 });
  }
  oneProblem({ argv: ['--models-profile', 'rpm_900'] }, /^models\.profile: must be one of the possible values: \["rpm_600","rpm_1200"\]/);
  oneProblem({ argv: ['--models-enabled', 'vibration,spin'] }, /^models\.enabled: unknown model type "spin"/);
  oneProblem({ env: { ANOMALY_SENSORS: '{not json' } }, /^sensors: must be an object.* \(from ANOMALY_SENSORS\)$/);
  oneProblem({ argv: ['--mqtt-url', 'http://host'] }, /^mqtt\.url: must be empty \(start the embedded broker\) or a URL/);
  oneProblem({ argv: ['--http-port', '1883'] }, /^http\.port: 1883 is also broker\.port/);
  // A replay file is only needed when replaying.
  assert.equal(loadConfig({ argv: ['--source-kind', 'sim', '--source-replay-file', '/nonexistent.csv'] }).source.kind, 'sim');
});

test('an unreadable, non-JSON or non-object config file names the file and the reason', () => {
  const missing = join(dir, 'missing.json');
  oneProblem({ file: missing }, new RegExp(`^config file ${missing}: no such file or directory$`));
  oneProblem({ file: dir }, /^config file .*: is a directory, not a file$/);
  const bad = file('{\n  "mqtt": {\n    "password": secret\n  }\n}');
  const p = problems({ file: bad });
  assert.equal(p.length, 1);
  assert.match(p[0]!, new RegExp(`^config file ${bad}: not valid JSON: `));
  assert.doesNotMatch(p[0]!, /ecret/, 'the message must not quote the file (it may hold a password)');
  oneProblem({ file: file('{"a": 1,}') }, /not valid JSON: .* at line 1, column 9$/);
  oneProblem({ file: file('[1, 2]') }, /must hold a JSON object of settings, not an array$/);
  assert.equal(loadConfig({ file: file('\n') }).device.id, 'motor-1', 'an empty file sets nothing');
});

test('several problems from file, env and flags are all listed in one error', () => {
  const f = file({ mqtt: { urll: 'x', keepaliveS: -1 }, 'log.level': 'debug' });
  const p = problems({
    file: f,
    env: { ANOMALY_BROKER_WS_PORT: 'many' },
    argv: ['--detector-raise-k', '9', '--models-dir', '/etc/hostname/models', '--frobnicate', 'x', 'stray'],
  });
  const expect = [/^--frobnicate: unknown flag/, /^unexpected argument 'stray'$/, /^"log\.level": not a key of the schema; nest keys/, /^mqtt\.keepaliveS: /, /^broker\.wsPort: .*ANOMALY_BROKER_WS_PORT/, /^mqtt\.urll: not a key/, /^detector\.raiseK: 9 is more than/, /^models\.dir: /];
  assert.equal(p.length, expect.length, p.join('\n'));
  for (const re of expect) assert.ok(p.some((line) => re.test(line)), `${re} not in:\n${p.join('\n')}`);
});

test('sensors: a channel in two sensors, an empty or repeated channel list and a bad name are refused', () => {
  const dup = { vibration: { channels: ['accel_x', 'accel_y', 'accel_z'] }, shaft: { channels: ['rpm'] }, speed: { channels: ['rpm'] } };
  oneProblem({ file: file({ sensors: dup }) }, /^sensors: channel 'rpm' is declared by both sensor 'shaft' and sensor 'speed'/);
  oneProblem({ file: file({ sensors: { a: { channels: [] } } }) }, /^sensors: sensor 'a': channels must be a non-empty array/);
  oneProblem({ file: file({ sensors: { a: { channels: ['x', 'x'] } } }) }, /^sensors: sensor 'a' lists a channel twice/);
  oneProblem({ file: file({ sensors: { 'a/b': { channels: ['x'] } } }) }, /^sensors: sensor name 'a\/b' must be one MQTT topic level/);
  oneProblem({ file: file({ sensors: { a: { channel: ['x'] } } }) }, /^sensors: sensor 'a' must be \{"channels"/);
  // Valid sensors that lack what an enabled model reads: named by models.enabled.
  oneProblem(
    { file: file({ sensors: { shaft: { channels: ['rpm'] } }, models: { enabled: ['rpm', 'temperature'] } }) },
    /^models\.enabled: model 'temperature' reads temperature, which no sensor in sensors declares \(from .*\.json\)$/,
  );
});

test('device.id must be one topic level; mqtt.prefix may have several', () => {
  oneProblem({ argv: ['--device-id', 'line1/motor'] }, /^device\.id: must be one MQTT topic level: no '\/', '\+', '#' or NUL: value was "line1\/motor"/);
  oneProblem({ argv: ['--device-id', 'm+'] }, /^device\.id: /);
  oneProblem({ argv: ['--device-id', ''] }, /^device\.id: must not be empty \(from --device-id\)$/);
  oneProblem({ argv: ['--mqtt-prefix', 'plant//a'] }, /^mqtt\.prefix: .*each level must not be empty/);
  assert.equal(loadConfig({ argv: ['--mqtt-prefix', 'plant/hall-2/anomaly'] }).mqtt.prefix, 'plant/hall-2/anomaly');
});

test('flags: unknown ones, a missing value and stray arguments are problems, not ignored', () => {
  oneProblem({ argv: ['--mqtt-ulr', 'mqtt://x'] }, /^--mqtt-ulr: unknown flag/);
  oneProblem({ argv: ['--device-id'] }, /^--device-id: needs a value$/);
  const p = problems({ argv: ['--mqtt-url', '--device-id', 'x'] });
  assert.match(p[0]!, /^--mqtt-url: needs a value, got the flag '--device-id'/);
});

test('redaction hides mqtt.password and the password inside mqtt.url, and leaves the config alone', () => {
  const c = loadConfig({ env: { ANOMALY_MQTT_PASSWORD: 's3cret' }, argv: ['--mqtt-url', 'mqtts://gw:p%40ss@broker.example:8883/x'] });
  const r = redacted(c);
  assert.equal(r.mqtt.password, '[redacted]');
  assert.equal(r.mqtt.url, 'mqtts://gw:[redacted]@broker.example:8883/x');
  assert.doesNotMatch(JSON.stringify(r), /s3cret|p%40ss/);
  assert.equal(c.mqtt.password, 's3cret');
  assert.equal(redacted(loadConfig()).mqtt.password, '', 'no password configured stays visible as such');
  assert.equal(redactUrl('mqtt://u:a@b@host:1883'), 'mqtt://u:[redacted]@host:1883', 'user info ends at the last @');
  assert.equal(redactUrl('mqtt://u@host'), 'mqtt://u@host');
  assert.equal(redactUrl('mqtt://host:1883'), 'mqtt://host:1883');
  // A bad URL is quoted in the error without its password.
  const p = problems({ argv: ['--mqtt-url', 'http://u:hunter2@host'] });
  assert.doesNotMatch(p.join('\n'), /hunter2/);
  // A sensitive key with a bad value is named, its value never quoted.
  oneProblem({ file: file({ mqtt: { password: 98765 } }) }, /^mqtt\.password: must be a string \(from .*\.json\)$/);
});

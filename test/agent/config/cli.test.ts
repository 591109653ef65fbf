import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { configCommand } from '#agent/cli/config.js';
import { KEYS } from '#agent/config/schema.js';
import { unknownAnomalyEnv } from '#agent/config/unknown-env.js';

const CLI = fileURLToPath(new URL(import.meta.resolve('#agent/cli/main.js'), import.meta.url));

/** The real entry point, as an operator runs it (few runs: each process loads every command). */
function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, 'config', ...args], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('anomaly-agent config prints the effective configuration as JSON with secrets redacted', () => {
  const r = cli(['--mqtt-url', 'mqtt://gw:topsecret@broker:1883', '--detector-raise-k', '2'], { ANOMALY_MQTT_PASSWORD: 'alsosecret', ANOMALY_DEVICE_ID: 'press-7' });
  assert.equal(r.code, 0, r.err);
  const printed = JSON.parse(r.out);
  assert.equal(printed.mqtt.url, 'mqtt://gw:[redacted]@broker:1883');
  assert.equal(printed.mqtt.password, '[redacted]');
  assert.equal(printed.device.id, 'press-7', 'main.ts passes the environment');
  assert.equal(printed.detector.raiseK, 2);
  assert.doesNotMatch(r.out + r.err, /topsecret|alsosecret/);
});

test('anomaly-agent config exits 1 listing every bad value with its key path', () => {
  const r = cli(['--broker-port', '70000', '--detector-raise-k', '9'], { ANOMALY_LOG_LEVEL: 'loud' });
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.match(r.err, /^invalid configuration \(3 problems\):/);
  assert.match(r.err, /broker\.port: must be an integer between 0 and 65535: value was 70000 \(from --broker-port\)/);
  assert.match(r.err, /detector\.raiseK: 9 is more than detector\.raiseN \(5\)/);
  assert.match(r.err, /log\.level: must be one of the possible values: .* \(from ANOMALY_LOG_LEVEL\)/);
});

test('config --schema prints the reference table; --help lists every flag', async () => {
  const lines: string[] = [];
  const code = await configCommand.run(['--schema'], { out: (l) => lines.push(l), err: new PassThrough() });
  assert.equal(code, 0);
  const table = lines.join('\n');
  for (const k of KEYS) assert.match(table, new RegExp(`^\\| \`${k.path.replace(/\./g, '\\.')}\` .* \`${k.env}\` \\| \`--${k.arg}\` \\|`, 'm'));
  for (const k of KEYS) assert.ok(configCommand.usage.includes(`--${k.arg}`), k.arg);
});

test('an unknown ANOMALY_* variable is warned about on stderr with the closest known one; the configuration still prints (issue 17, 5.7)', () => {
  const r = cli([], { ANOMALY_BROKER_PROT: '5', ANOMALY_DEBUG: '1', ANOMALY_DEVICE_ID: 'press-7' });
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).broker.port, 1883, 'the typo changed nothing');
  assert.equal(r.err, "warning: unknown environment variable ANOMALY_BROKER_PROT is ignored; did you mean ANOMALY_BROKER_PORT? ('anomaly-agent run --help' lists every variable)\n");
  const bad = cli(['--broker-port', 'x'], { ANOMALY_MQTT_ULR: 'mqtt://b' });
  assert.equal(bad.code, 1);
  assert.match(bad.err, /^warning: unknown environment variable ANOMALY_MQTT_ULR is ignored; did you mean ANOMALY_MQTT_URL\?.*\ninvalid configuration/);
});

test('unknownAnomalyEnv: every ANOMALY_* name that is no key, with its nearest; known ones and other variables pass', () => {
  const found = unknownAnomalyEnv({ ANOMALY_LOGLEVEL: 'debug', ANOMALY_HTTP_PORT: '1', ANOMALY_DEBUG: '1', HOME: '/root', ANOMALY_SOURCE_REPLAY_SPED: '2', ANOMALY_SOURCE_KIND: undefined });
  assert.deepEqual(found.map((u) => [u.variable, u.closest]), [['ANOMALY_LOGLEVEL', 'ANOMALY_LOG_LEVEL'], ['ANOMALY_SOURCE_REPLAY_SPED', 'ANOMALY_SOURCE_REPLAY_SPEED']]);
  assert.deepEqual(unknownAnomalyEnv(Object.fromEntries(KEYS.map((k) => [k.env, 'x']))), []);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { KEYS } from '#agent/config/schema.js';

const CLI = fileURLToPath(new URL(import.meta.resolve('#agent/cli/main.js'), import.meta.url));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--help lists every command and each command answers --help', () => {
  const top = cli('--help');
  assert.equal(top.code, 0);
  for (const c of ['run', 'config', 'data', 'train', 'evaluate', 'probe', 'fault']) {
    assert.match(top.out, new RegExp(`^  ${c} `, 'm'));
    const sub = cli(c, '--help');
    assert.equal(sub.code, 0, `${c} --help`);
    assert.match(sub.out, new RegExp(`^usage: anomaly-agent ${c}`));
  }
});

test('run --help and config --help list every configuration key: its flag, key path, default and env var (issue 17, 5.5)', () => {
  assert.ok(KEYS.length > 50, 'the schema has its keys');
  for (const command of ['run', 'config']) {
    const help = cli(command, '--help');
    assert.equal(help.code, 0);
    for (const k of KEYS) assert.match(help.out, new RegExp(`^  --${k.arg}   ${k.path.replace(/\./g, '\\.')}, default .*, env ${k.env}$`, 'm'), `${command} --help: --${k.arg}`);
  }
  assert.match(cli('run', '--help').out, /^  --broker-port   broker\.port, default 1883, env ANOMALY_BROKER_PORT\n {6}Embedded broker MQTT\/TCP port/m);
});

test('no command, an unknown command and a bad flag value are usage errors (exit 2) that name the problem', () => {
  assert.equal(cli().code, 2);
  const unknown = cli('frobnicate');
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command 'frobnicate'/);
  const badProfile = cli('train', '--profile', 'rpm_900');
  assert.equal(badProfile.code, 2);
  assert.match(badProfile.err, /--profile must be one of rpm_600, rpm_1200 or all, got 'rpm_900'/);
  const badEpochs = cli('train', '--epochs', 'many');
  assert.equal(badEpochs.code, 2);
  assert.match(badEpochs.err, /--epochs must be an integer >= 1, got 'many'/);
  const badTrainer = cli('train', '--trainer', 'keras');
  assert.equal(badTrainer.code, 2);
  assert.match(badTrainer.err, /--trainer must be one of fast, tfjs, got 'keras'/);
  const badThreads = cli('train', '--threads', '0');
  assert.equal(badThreads.code, 2);
  assert.match(badThreads.err, /--threads must be an integer >= 1, got '0'/);
  const badEngine = cli('evaluate', '--engine', 'gpu');
  assert.equal(badEngine.code, 2);
  assert.match(badEngine.err, /--engine must be one of auto, fast, tfjs, got 'gpu'/);
  const badBaseline = cli('evaluate', '--baseline', 'maybe');
  assert.equal(badBaseline.code, 2);
  assert.match(badBaseline.err, /--baseline must be on or off, got 'maybe'/);
  const badFlag = cli('evaluate', '--frobnicate');
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.err, /frobnicate/);
});

test('training on a malformed CSV fails with the file and line, not a stack trace', async () => {
  const root = await mkdtemp(join(tmpdir(), 'cli-test-'));
  try {
    const dir = join(root, 'rpm_600', 'train');
    await mkdir(dir, { recursive: true });
    const rows = ['timestamp,accel_x,accel_y,accel_z,voltage,rpm,temperature', '1000,0.1,0.2,9.8,230,590,40', '1050,0.1,oops,9.8,230,590,40'];
    await writeFile(join(dir, 'a.csv'), rows.join('\n') + '\n');
    const r = cli('train', '--data', root, '--models', join(root, 'models'), '--profile', 'rpm_600', '--model', 'voltage', '--log-level', 'silent');
    assert.equal(r.code, 1);
    assert.match(r.err, /a\.csv:3: column 'accel_y': 'oops' is not a number/);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('probe --sim identifies the emulated parts and prints their config; fault checks its words before connecting', () => {
  const p = cli('probe', '--sim');
  assert.equal(p.code, 0, p.err);
  assert.match(p.out, /^ {2}0x18 {2}MCP9808 {2}manufacturer 0x0054, device 0x04/m);
  assert.match(p.out, /^ {2}0x48 {2}ADS1115 /m);
  assert.match(p.out, /^ {2}0x53 {2}ADXL345 {2}DEVID 0xE5$/m);
  const snippet = JSON.parse(p.out.slice(p.out.indexOf('{')));
  assert.deepEqual(snippet, { source: { kind: 'hardware' }, hardware: { i2cBus: 1, adxl345: { address: '0x53' }, ads1115: { address: '0x48' }, mcp9808: { address: '0x18' } } });
  const bad = cli('fault', 'on', 'bearing', 'severe', '--mqtt-url', 'mqtt://127.0.0.1:1');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /intensity must be one of subtle, moderate, obvious, got "severe"/);
  const down = cli('fault', 'off', '--mqtt-url', 'mqtt://127.0.0.1:1');
  assert.equal(down.code, 1);
  assert.match(down.err, /ECONNREFUSED/);
});

test("every bin of package.json is executable after 'npm run build' and runs by its path and through npx (issue 17, 5.1)", async () => {
  // npm run build starts from an empty dist/; tsc writes files without the exec bit, so the build sets it.
  const { bin } = JSON.parse(await readFile(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  assert.deepEqual(Object.keys(bin).sort(), ['anomaly-agent', 'anomaly-broker']);
  for (const [name, path] of Object.entries(bin)) {
    const file = join(PACKAGE_ROOT, path);
    assert.equal((await stat(file)).mode & 0o111, 0o111, `${path} (${name}) is executable`);
    const direct = spawnSync(file, ['--help'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(direct.status, 0, `${path} --help: ${direct.error?.message ?? direct.stderr}`);
    assert.match(direct.stdout, new RegExp(`^usage: ${name}`));
    const viaNpx = spawnSync('npx', ['--no', '--', name, '--help'], { cwd: PACKAGE_ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(viaNpx.status, 0, `npx ${name} --help: ${viaNpx.error?.message ?? viaNpx.stderr}`);
    assert.match(viaNpx.stdout, new RegExp(`^usage: ${name}`));
  }
});

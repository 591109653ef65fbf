/**
 * `anomaly-broker` takes its defaults from core/defaults.ts, as the daemon's schema does: its --help,
 * the process itself, the schema's defaults and docs/configuration.md all show the same values.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULTS } from '#agent/core/defaults.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { KEYS } from '#agent/config/schema.js';
import { BROKER_FLAG_DEFAULTS } from '#broker/flags.js';

const BROKER_CLI = join(PACKAGE_ROOT, 'dist', 'broker', 'src', 'main.js');
const children: ChildProcess[] = [];
after(() => children.forEach((c) => c.kill()));

function brokerHelp(): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BROKER_CLI, '--help']);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`anomaly-broker --help exited ${code}`))));
  });
}

/** The value at a dotted path of the configuration's defaults. */
const configDefault = (path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], DEFAULTS.config);

test("anomaly-broker's defaults are the embedded broker's, except the ones that say why", () => {
  const keys = new Map(KEYS.map((k) => [k.path, k]));
  assert.deepEqual(
    BROKER_FLAG_DEFAULTS.map((f) => f.flag),
    ['host', 'port', 'ws-port', 'tls-port', 'topic-prefix', 'max-packet-bytes', 'drain-timeout-ms', 'log-level'],
  );
  for (const f of BROKER_FLAG_DEFAULTS) {
    const key = keys.get(f.key);
    assert.ok(key, `--${f.flag}: ${f.key} is a key of the schema`);
    assert.equal(key.default, configDefault(f.key), `${f.key}: the schema's default is core/defaults.ts's`);
    if (f.differs) assert.notEqual(f.value, key.default, `--${f.flag} says it differs from ${f.key}; it does not`);
    else assert.equal(f.value, key.default, `--${f.flag} defaults to ${f.key}'s value`);
  }
  assert.deepEqual(
    BROKER_FLAG_DEFAULTS.filter((f) => f.differs).map((f) => f.flag),
    ['ws-port'],
    'only the WebSocket listener differs: the standalone broker serves no web page',
  );
});

test('--help, docs/configuration.md and the schema show the same defaults', async () => {
  const help = await brokerHelp();
  const doc = await readFile(join(PACKAGE_ROOT, 'docs', 'configuration.md'), 'utf8');
  for (const f of BROKER_FLAG_DEFAULTS) {
    const line = help.split('\n').find((l) => l.startsWith(`  --${f.flag} `)); // the options section, indented
    assert.ok(line, `--help lists --${f.flag}`);
    assert.equal(/\(default:? ([^;:,)\s]+)/.exec(line)?.[1], String(f.value), `--help: ${line}`);
    const shown = JSON.stringify(f.value);
    assert.ok(doc.includes(`| \`--${f.flag}\` | \`${shown}\` | \`${f.key}\``), `docs/configuration.md lists --${f.flag} with ${shown}`);
    const key = KEYS.find((k) => k.path === f.key)!;
    assert.ok(doc.includes(`| \`${f.key}\` | \`${JSON.stringify(key.default)}\` |`), `docs/configuration.md lists ${f.key} with its default`);
  }
});

test('the broker started without flags listens where its defaults say', async () => {
  // --port 0 only: a free port instead of 1883, which may be taken on a shared machine.
  const b = spawn(process.execPath, [BROKER_CLI, '--port', '0']);
  children.push(b);
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = '';
    b.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.includes('"broker listening"'));
      if (line) resolve(JSON.parse(line) as Record<string, unknown>);
    });
    b.on('exit', (code) => reject(new Error(`anomaly-broker exited ${code}: ${buf}`)));
  });
  assert.equal(listening.host, DEFAULTS.broker.host);
  assert.equal(DEFAULTS.broker.wsPort, 0);
  assert.equal(listening.wsPort, null, 'no WebSocket listener by default');
  assert.equal(listening.tlsPort, null, 'no TLS listener by default');
});

/**
 * Flashing a bundle over MQTT through a real Mosquitto, restarted half-way through the transfer, into
 * a running agent that requires signed bundles.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sha256 } from '#agent/model/bundle.js';
import { generateSigningKey, signBundle } from '#agent/model/signature.js';
import { bundleVariant, Daemon, DEVICE, freePort, killAll, Mosquitto, MOSQUITTO, MODELS_DIR, RAW_DATA, serviceFlags, TFJS_PROBE_ENV, tensorflowModules, waitFor } from '../daemon/daemon-fixture.js';
import { parseUpdate } from '#agent/flash/mqtt-update.js';

const MAIN = fileURLToPath(new URL(import.meta.resolve('#agent/cli/main.js'), import.meta.url));
const key = generateSigningKey();

describe('update messages', () => {
  test('malformed messages are refused with a reason naming what is wrong', () => {
    const bad = (o: unknown) => parseUpdate(Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)));
    assert.equal(bad('{"op":'), 'not JSON');
    assert.match(String(bad({ op: 'begin', id: '../etc' })), /id must be/);
    assert.match(String(bad({ op: 'begin', id: 'a', files: [{ name: 'evil.sh', size: 1, sha256: 'a'.repeat(64) }] })), /'evil\.sh' is not a bundle file/);
    assert.match(String(bad({ op: 'begin', id: 'a', files: [{ name: 'weights.bin', size: 1, sha256: 'x' }] })), /sha256 must be 64 hex digits/);
    assert.match(String(bad({ op: 'chunk', id: 'a', file: 'weights.bin', offset: -1, data: '' })), /offset must be a non-negative integer/);
    assert.match(String(bad({ op: 'explode', id: 'a' })), /op must be one of begin, chunk, status, commit, got "explode"/);
    assert.equal(bad([1]), 'the payload must be a JSON object with an op');
    assert.deepEqual(bad({ op: 'commit', id: 'a' }), { op: 'commit', id: 'a' });
  });
});

describe('models flash --mqtt', { skip: !existsSync(MOSQUITTO) && `no ${MOSQUITTO}` }, () => {
  let dir: string;
  let port: number;
  let httpPort: number;
  let mosquitto: Mosquitto;
  let models: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mqtt-update-'));
    port = await freePort();
    mosquitto = await new Mosquitto({ port, dir }).start();
    models = join(dir, 'models');
    await cp(join(MODELS_DIR, 'rpm_600', 'vibration'), join(models, 'rpm_600', 'vibration'), { recursive: true });
    await signBundle(join(models, 'rpm_600', 'vibration'), key.privatePem);
    await writeFile(join(dir, 'plant.pub'), key.publicPem);
    httpPort = await freePort();
    const d = new Daemon(
      'agent',
      {
        'mqtt-url': `mqtt://127.0.0.1:${port}`,
        'mqtt-reconnect-ms': 200,
        'models-dir': models,
        'models-enabled': 'vibration',
        'models-trusted-keys': join(dir, 'plant.pub'),
        'models-require-signed': true,
        'source-kind': 'replay', 'source-replay-file': join(RAW_DATA, 'rpm_600', 'test', 'test_01.csv'),
        'source-replay-speed': 4,
        'source-replay-loop': true,
      },
      { base: serviceFlags(dir, httpPort) },
    );
    await d.started(45_000);
  });
  after(async () => {
    await killAll();
    await rm(dir, { recursive: true, force: true });
  });

  async function live(): Promise<string | undefined> {
    const h = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as { models?: { model: string; sha256: string }[] };
    return h.models?.find((m) => m.model === 'vibration')?.sha256;
  }


  /** `models flash --mqtt`, with tfjs-probe.js preloaded: `stderr` ends with the @tensorflow/ modules it loaded. */
  function flash(bundle: string): { done: Promise<{ code: number | null; out: string; stderr: string }> } {
    const p = spawn(process.execPath, [MAIN, 'models', 'flash', bundle, '--mqtt', `mqtt://127.0.0.1:${port}`, '--device', DEVICE, '--chunk-bytes', '1024'], { env: { ...process.env, ...TFJS_PROBE_ENV } });
    let out = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => ((out += d.toString()), (stderr += d.toString())));
    return { done: new Promise((resolve) => p.on('close', (code) => resolve({ code, out, stderr }))) };
  }

  /** Bytes of weights.bin the device holds for the transfer in progress. */
  async function weightsReceived(): Promise<number> {
    const updates = join(models, '.updates');
    const ids = await readdir(updates).catch(() => [] as string[]);
    let n = 0;
    for (const id of ids) n = Math.max(n, await stat(join(updates, id, 'files', 'weights.bin')).then((s) => s.size, () => 0));
    return n;
  }

  test('a signed bundle arrives in chunks across a broker restart and goes live', { timeout: 180_000 }, async () => {
    const next = await bundleVariant(dir, 'next', 1.2, key.privatePem);
    const total = (await stat(join(next, 'weights.bin'))).size;
    const f = flash(next);
    // A fifth of the way through the weights, the broker freezes (SIGSTOP: at once, mid-chunk), then
    // stops and comes back on the same port.
    await waitFor('a fifth of weights.bin on the device', async () => (await weightsReceived()) > total / 5, 60_000, 5);
    mosquitto.proc!.signal('SIGSTOP');
    const frozenAt = await weightsReceived();
    await new Promise((r) => setTimeout(r, 500));
    mosquitto.proc!.signal('SIGCONT');
    await mosquitto.stop();
    await new Promise((r) => setTimeout(r, 500));
    await mosquitto.start();
    assert.ok(frozenAt < total, `the transfer was still under way when the broker stopped (${frozenAt} of ${total} B)`);
    const r = await f.done;
    assert.equal(r.code, 0, r.out);
    // The restart fell inside the transfer (frozenAt < total): whether mqtt.js redelivered the chunk in
    // flight or the sender asked the device what it holds, every file arrived whole (checked at commit).
    assert.equal(mosquitto.runs.length, 2);
    const sha = sha256(await readFile(join(next, 'bundle.json')));
    assert.match(r.out, new RegExp(`live: vibration ${sha}`));
    assert.equal(await live(), sha);
    // The workstation side never loads TensorFlow.js, so it prints no banner (issue 17, 5.8).
    assert.deepEqual(tensorflowModules(r.stderr), []);
    assert.doesNotMatch(r.out, /TensorFlow\.js/);
    assert.equal(sha256(await readFile(join(models, 'rpm_600', 'vibration', 'weights.bin'))), sha256(await readFile(join(next, 'weights.bin'))));
    assert.ok(!existsSync(join(models, '.updates')) || (await readdir(join(models, '.updates'))).length === 0, 'the finished transfer is cleaned up');
  });

  test('an unsigned bundle sent over MQTT is refused and the running one stays', { timeout: 120_000 }, async () => {
    const running = await live();
    const r = await flash(await bundleVariant(dir, 'unsigned', 1.3)).done;
    assert.equal(r.code, 1);
    assert.match(r.out, /install failed: refused: bundle .* check 'signature' failed: the bundle is not signed/);
    assert.equal(await live(), running);
  });
});


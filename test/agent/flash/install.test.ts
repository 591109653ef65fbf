/**
 * `anomaly-agent models flash` over SSH to a real sshd started here on loopback, into a running agent
 * that requires signed bundles: the new bundle goes live; an unsigned or tampered one is refused and
 * the running one keeps scoring; one that does not come up in time is rolled back.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sha256 } from '#agent/model/bundle.js';
import { generateSigningKey, signBundle } from '#agent/model/signature.js';
import { bundleVariant, Daemon, firstMessage, freePort, killAll, MODELS_DIR, parseStatus, RAW_DATA, scrape, series, waitFor, waitListening } from '../daemon/daemon-fixture.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL(import.meta.resolve('#agent/cli/main.js'), import.meta.url));
const SSHD = '/usr/sbin/sshd';
const skip = !existsSync(SSHD) && `no ${SSHD} (Debian package openssh-server)`;

let dir: string;
let sshPort: number;
let httpPort: number;
let agent: Daemon;
let sshd: ChildProcess | undefined;
const key = generateSigningKey();
const user = userInfo().username;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'flash-'));
  // sshd: its own host key, our client key, loopback only, key authentication only.
  const ssh = join(dir, 'ssh');
  await mkdir(ssh, { mode: 0o700 });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(ssh, 'host')]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(ssh, 'client')]);
  await cp(join(ssh, 'client.pub'), join(ssh, 'authorized_keys'));
  sshPort = await freePort();
  await writeFile(
    join(ssh, 'sshd_config'),
    [
      `Port ${sshPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(ssh, 'host')}`,
      `AuthorizedKeysFile ${join(ssh, 'authorized_keys')}`,
      `PidFile ${join(ssh, 'sshd.pid')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      `AllowUsers ${user}`,
      '',
    ].join('\n'),
  );
  if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true });
  sshd = spawn(SSHD, ['-D', '-e', '-f', join(ssh, 'sshd_config')], { stdio: 'ignore' });
  await waitListening(sshPort, 10_000);

  // The device: an agent running rpm_600/vibration from its own models dir, signed bundles required.
  const models = join(dir, 'models');
  await cp(join(MODELS_DIR, 'rpm_600', 'vibration'), join(models, 'rpm_600', 'vibration'), { recursive: true });
  await writeFile(join(dir, 'plant.pub'), key.publicPem);
  await signBundle(join(models, 'rpm_600', 'vibration'), key.privatePem);
  httpPort = await freePort();
  await writeFile(
    join(dir, 'agent.json'),
    JSON.stringify({
      device: { id: 'pump-7' },
      models: { dir: models, profile: 'rpm_600', enabled: ['vibration'], trustedKeys: [join(dir, 'plant.pub')], requireSigned: true },
      source: { kind: 'replay', replay: { file: join(RAW_DATA, 'rpm_600', 'test', 'test_01.csv'), speed: 4, loop: true } },
      broker: { port: 0, wsPort: 0 },
      http: { port: httpPort },
      outbox: { dir: join(dir, 'outbox') },
    }),
  );
  agent = new Daemon('agent', { config: join(dir, 'agent.json') }, { base: {} });
  await agent.started(45_000);
});

after(async () => {
  sshd?.kill();
  await killAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function live(): Promise<string | undefined> {
  const h = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as { models?: { model: string; sha256: string }[] };
  return h.models?.find((m) => m.model === 'vibration')?.sha256;
}

async function windows(): Promise<number> {
  return series(await scrape(httpPort), 'anomaly_agent_windows_scored_total').get('model="vibration"') ?? 0;
}


async function flash(bundle: string, reloadCmd = `kill -HUP ${agent.child.pid}`, timeoutS = 20): Promise<{ code: number; out: string }> {
  const r = await run(process.execPath, [
    MAIN, 'models', 'flash', bundle,
    '--to', `${user}@127.0.0.1:${sshPort}`,
    '--identity', join(dir, 'ssh', 'client'),
    '--ssh-option', 'StrictHostKeyChecking=no',
    '--ssh-option', 'UserKnownHostsFile=/dev/null',
    '--ssh-option', 'LogLevel=ERROR',
    '--remote-agent', `${process.execPath} ${MAIN}`,
    '--remote-config', join(dir, 'agent.json'),
    '--reload-cmd', reloadCmd,
    '--timeout', String(timeoutS),
  ], { timeout: 120_000 }).catch((e: { code: number; stdout: string; stderr: string }) => e);
  return { code: (r as { code?: number }).code ?? 0, out: `${r.stdout}${r.stderr}` };
}

describe('models flash over SSH', { skip }, () => {
  test('a signed bundle goes live; the agent keeps scoring through the swap', { timeout: 120_000 }, async () => {
    const before = await live();
    assert.ok(before);
    const w0 = await windows();
    const next = await bundleVariant(dir, 'next', 1.2, key.privatePem);
    const r = await flash(next);
    assert.equal(r.code, 0, r.out);
    const sha = sha256(await readFile(join(next, 'bundle.json')));
    assert.match(r.out, new RegExp(`live: rpm_600/vibration ${sha}`));
    assert.equal(await live(), sha);
    assert.ok(agent.find((l) => l.msg === 'model reloaded' && l.model === 'vibration'));
    // The status topic (retained) names the new bundle too.
    const status = parseStatus((await firstMessage(await agent.brokerPort(), 'anomaly/pump-7/status')).payload);
    assert.deepEqual(status.models.map((m) => [m.model, m.sha256]), [['vibration', sha]]);
    await waitFor('windows scored after the swap', async () => (await windows()) > w0 + 10, 20_000, 200);
  });

  test('an unsigned and a tampered bundle are refused on the device; the running bundle stays', { timeout: 120_000 }, async () => {
    const running = await live();
    const unsigned = await flash(await bundleVariant(dir, 'unsigned', 1.3));
    assert.equal(unsigned.code, 1);
    assert.match(unsigned.out, /install failed: refused: bundle .* refused: check 'signature' failed: the bundle is not signed .*; the running bundle stays/);

    const tampered = await bundleVariant(dir, 'tampered', 1.4, key.privatePem);
    const m = JSON.parse(await readFile(join(tampered, 'bundle.json'), 'utf8'));
    m.threshold *= 100; // after signing: a threshold no fault reaches
    await writeFile(join(tampered, 'bundle.json'), JSON.stringify(m, null, 2) + '\n');
    const t = await flash(tampered);
    assert.equal(t.code, 1);
    assert.match(t.out, /check 'signature' failed: the signature of key [0-9a-f]{16} does not match bundle\.json/);
    assert.equal(await live(), running);
    const w0 = await windows();
    await waitFor('still scoring', async () => (await windows()) > w0 + 5, 20_000, 200);
  });

  test('a bundle the agent does not bring up in time is rolled back', { timeout: 120_000 }, async () => {
    const running = await live();
    // A reload command that does not reload: the new bundle never shows up in /healthz.
    const r = await flash(await bundleVariant(dir, 'stuck', 1.5, key.privatePem), 'true', 3);
    assert.equal(r.code, 1);
    assert.match(r.out, /install failed: rolled back: the agent still runs vibration [0-9a-f]{12}… after 3 s; the previous bundle is back/);
    const onDisk = sha256(await readFile(join(dir, 'models', 'rpm_600', 'vibration', 'bundle.json')));
    assert.equal(onDisk, running, 'the previous bundle is back in place');
    assert.equal(await live(), running);
  });
});

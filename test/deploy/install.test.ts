/**
 * deploy/install.sh into a throw-away root (DESTDIR), and the systemd units through
 * `systemd-analyze verify` — the checks systemd itself makes when it loads them.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '#agent/core/daemon-runtime.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';

const run = promisify(execFile);
const INSTALL = join(PACKAGE_ROOT, 'deploy', 'install.sh');
const hasAnalyze = (() => {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'install-'));
});
after(() => rm(root, { recursive: true, force: true }));

async function verify(units: string[]): Promise<{ stderr: string }> {
  // verify prints parse problems as warnings and still exits 0: both must be clean.
  const r = await run('systemd-analyze', ['verify', ...units]).catch((e: { code: number; stderr: string }) => e);
  const code = (r as { code?: number }).code ?? 0;
  assert.equal(code, 0, `systemd-analyze verify failed: ${r.stderr}`);
  return { stderr: r.stderr };
}

describe('systemd units', { skip: !hasAnalyze && 'systemd-analyze is not installed (Debian package systemd)' }, () => {
  test('both units pass systemd-analyze verify without a warning, with this node and this package', async () => {
    const out: string[] = [];
    for (const u of ['anomaly-agent.service', 'anomaly-broker.service']) {
      const text = (await readFile(join(PACKAGE_ROOT, 'systemd', u), 'utf8')).replaceAll('@NODE@', process.execPath).replaceAll('@PREFIX@', PACKAGE_ROOT);
      const p = join(root, u);
      await writeFile(p, text);
      out.push(p);
    }
    const { stderr } = await verify(out);
    assert.equal(stderr.trim(), '');
  });

  test('a unit systemd cannot parse is caught by the same check', async () => {
    const text = (await readFile(join(PACKAGE_ROOT, 'systemd', 'anomaly-agent.service'), 'utf8')).replaceAll('@NODE@', process.execPath).replaceAll('@PREFIX@', PACKAGE_ROOT);
    const p = join(root, 'broken.service');
    await writeFile(p, text.replace('Type=notify', 'Type=notifyy'));
    const { stderr } = await verify([p]);
    assert.match(stderr, /Failed to parse service type/);
  });

  test('the agent unit is Type=notify with a watchdog, reloads with SIGHUP, restarts on failure, and is hardened', async () => {
    const text = await readFile(join(PACKAGE_ROOT, 'systemd', 'anomaly-agent.service'), 'utf8');
    for (const line of ['Type=notify', 'WatchdogSec=60', 'ExecReload=/bin/kill -HUP $MAINPID', 'Restart=on-failure', 'User=anomaly-agent', 'SupplementaryGroups=i2c gpio', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/anomaly-agent', 'ProtectHome=yes', 'PrivateTmp=yes', 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6', 'DeviceAllow=char-i2c rw']) {
      assert.ok(text.split('\n').includes(line), `missing: ${line}`);
    }
  });

  test('the agent unit and npm start run node with the daemon runtime of core/daemon-runtime.ts', async () => {
    const unit = await readFile(join(PACKAGE_ROOT, 'systemd', 'anomaly-agent.service'), 'utf8');
    const flags = DAEMON_NODE_FLAGS.join(' ');
    assert.ok(unit.includes(`ExecStart=@NODE@ ${flags} @PREFIX@/dist/agent/src/cli/main.js run`), `ExecStart runs node ${flags}`);
    const start = (JSON.parse(await readFile(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
    assert.ok(start.includes(`node ${flags} dist/agent/src/cli/main.js run`), `npm start runs node ${flags}`);
    for (const [k, v] of Object.entries(DAEMON_ENV)) {
      assert.ok(unit.split('\n').includes(`Environment=${k}=${v}`), `unit sets ${k}=${v}`);
      assert.ok(start.includes(`${k}=${v} node`), `npm start sets ${k}=${v}`);
    }
  });
});

describe('deploy/install.sh into a throw-away root', () => {
  test('installs, keeps an edited config on a second run, uninstalls, purges', { timeout: 180_000 }, async () => {
    const dest = join(root, 'dest');
    const sh = (...args: string[]) => run('sh', [INSTALL, ...args], { env: { ...process.env, DESTDIR: dest }, maxBuffer: 1 << 20 });
    const first = await sh('--broker');
    assert.match(first.stdout, /wrote \/etc\/anomaly-agent\/agent\.json/);
    for (const p of [
      'opt/anomaly-agent/dist/agent/src/cli/main.js',
      'opt/anomaly-agent/node_modules/mqtt/package.json',
      'etc/anomaly-agent/agent.json',
      'var/lib/anomaly-agent/models/rpm_600/multi-feature/bundle.json',
      'var/lib/anomaly-agent/outbox',
      'etc/systemd/system/anomaly-agent.service',
      'etc/systemd/system/anomaly-broker.service',
    ]) {
      assert.ok(existsSync(join(dest, p)), `${p} installed`);
    }
    assert.ok(!existsSync(join(dest, 'opt/anomaly-agent/node_modules/typescript')), 'development packages pruned');
    const unit = await readFile(join(dest, 'etc/systemd/system/anomaly-agent.service'), 'utf8');
    assert.ok(unit.includes(`ExecStart=${execFileSync('sh', ['-c', 'command -v node']).toString().trim()} /opt/anomaly-agent/dist/agent/src/cli/main.js run --config /etc/anomaly-agent/agent.json`.replace(' /opt', ` ${DAEMON_NODE_FLAGS.join(' ')} /opt`)));
    assert.doesNotMatch(unit, /@NODE@|@PREFIX@/);
    if (hasAnalyze) await verify([join(dest, 'etc/systemd/system/anomaly-agent.service'), join(dest, 'etc/systemd/system/anomaly-broker.service')]);

    // The installed copy runs, and the shipped config is valid for it.
    const installed = join(dest, 'opt/anomaly-agent/dist/agent/src/cli/main.js');
    const cfg = await run(process.execPath, [installed, 'config', '--config', join(dest, 'etc/anomaly-agent/agent.json'), '--models-dir', join(dest, 'var/lib/anomaly-agent/models'), '--outbox-dir', join(dest, 'var/lib/anomaly-agent/outbox')]);
    assert.equal(JSON.parse(cfg.stdout).source.kind, 'mqtt');

    // Idempotent: a second run updates the program and keeps the configuration.
    const edited = join(dest, 'etc/anomaly-agent/agent.json');
    await writeFile(edited, (await readFile(edited, 'utf8')).replace('"motor-1"', '"pump-7"'));
    const second = await sh();
    assert.match(second.stdout, /kept \/etc\/anomaly-agent\/agent\.json/);
    assert.match(await readFile(edited, 'utf8'), /"pump-7"/);
    assert.ok(!existsSync(join(dest, 'opt/anomaly-agent.new')) && !existsSync(join(dest, 'opt/anomaly-agent.old')), 'no staging left behind');

    await sh('--uninstall');
    assert.ok(!existsSync(join(dest, 'opt/anomaly-agent')) && !existsSync(join(dest, 'etc/systemd/system/anomaly-agent.service')));
    assert.ok(existsSync(edited) && existsSync(join(dest, 'var/lib/anomaly-agent/models')), 'configuration and state kept');
    await sh('--uninstall', '--purge');
    assert.ok(!existsSync(join(dest, 'etc/anomaly-agent')) && !existsSync(join(dest, 'var/lib/anomaly-agent')));
  });

  test('a wrong option is refused with a hint', async () => {
    const r = await run('sh', [INSTALL, '--frobnicate'], { env: { ...process.env, DESTDIR: join(root, 'x') } }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((r as { code: number }).code, 2);
    assert.match(r.stderr, /unknown option '--frobnicate' \(try --help\)/);
  });
});

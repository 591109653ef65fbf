/**
 * deploy/install.sh refuses a checkout whose native addons do not load on this machine (node_modules
 * built elsewhere, say on an x86_64 workstation and copied to a Pi, or an optional addon missing),
 * naming the package and what to do, before it installs anything.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '#agent/core/paths.js';

const run = promisify(execFile);
let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'install-addons-'));
});
after(() => rm(root, { recursive: true, force: true }));

/** A checkout with install.sh, a built dist/ (a stub) and node_modules holding `modules`. */
async function checkout(name: string, modules: Record<string, 'real' | 'foreign'>): Promise<string> {
  const src = join(root, name);
  await mkdir(join(src, 'deploy'), { recursive: true });
  await copyFile(join(PACKAGE_ROOT, 'deploy', 'install.sh'), join(src, 'deploy', 'install.sh'));
  await mkdir(join(src, 'dist', 'agent', 'src', 'cli'), { recursive: true });
  await writeFile(join(src, 'dist', 'agent', 'src', 'cli', 'main.js'), '');
  await mkdir(join(src, 'node_modules'));
  for (const [m, kind] of Object.entries(modules)) {
    if (kind === 'real') await symlink(join(PACKAGE_ROOT, 'node_modules', m), join(src, 'node_modules', m));
    else {
      // An addon compiled for another machine: an ELF object this process cannot load.
      const dir = join(src, 'node_modules', m);
      await mkdir(join(dir, 'build', 'Release'), { recursive: true });
      await writeFile(join(dir, 'package.json'), JSON.stringify({ name: m, main: 'index.js' }));
      await writeFile(join(dir, 'index.js'), "module.exports = require('./build/Release/addon.node');\n");
      await writeFile(join(dir, 'build', 'Release', 'addon.node'), Buffer.concat([Buffer.from('\x7fELF\x02\x01\x01', 'latin1'), Buffer.alloc(57)]));
    }
  }
  return src;
}

async function install(src: string): Promise<{ code: number; stderr: string; dest: string }> {
  const dest = join(src, 'dest');
  const r = await run('sh', [join(src, 'deploy', 'install.sh')], { env: { ...process.env, DESTDIR: dest } }).then(
    (ok) => ({ code: 0, stderr: ok.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
  return { ...r, dest };
}

test('an addon that does not load here stops install.sh before it installs anything, naming it and the fix', async () => {
  const r = await install(await checkout('foreign', { 'i2c-bus': 'foreign', onoff: 'real', 'unix-dgram': 'real' }));
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /node_modules\/i2c-bus does not load with node v\d+\.\d+\.\d+ on this \S+ machine: .+/);
  assert.match(r.stderr, /run 'npm ci' here: it compiles the native addons .*build-essential and python3/);
  assert.ok(!existsSync(r.dest), 'nothing installed');
});

test('a missing unix-dgram (optional for npm, needed by the Type=notify unit) is refused too', async () => {
  const r = await install(await checkout('no-dgram', { 'i2c-bus': 'real', onoff: 'real' }));
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /node_modules\/unix-dgram does not load .*Cannot find module/);
});

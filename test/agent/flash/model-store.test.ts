/**
 * The device's model store (models.dir) and the bundles shipped with the package (models.shippedDir):
 * a model runs its installed bundle when there is one and the shipped one otherwise; installs and
 * rollbacks write the store only, so the package's committed bundles are never touched.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '#agent/config/load.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { installBundle, InstallError } from '#agent/flash/install.js';
import { bundleDir } from '#agent/model/bundle.js';
import { bundleVariant } from '../daemon/daemon-fixture.js';

const SHIPPED = join(PACKAGE_ROOT, 'models');

/** sha256 over every file under `dir` (names and contents), to show a tree was not written. */
async function treeHash(dir: string): Promise<string> {
  const h = createHash('sha256');
  for (const e of (await readdir(dir, { withFileTypes: true, recursive: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort()) {
    h.update(e).update(await readFile(e));
  }
  return h.digest('hex');
}

const roots: string[] = [];
after(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

test('installs go to the store, the shipped bundles are never written; a rollback with nothing installed falls back to the shipped bundle', { timeout: 60_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'model-store-'));
  roots.push(root);
  const store = join(root, 'state', 'models');
  const config = loadConfig({ argv: ['--models-dir', store, '--models-profile', 'rpm_600', '--models-enabled', 'vibration', '--outbox-dir', join(root, 'outbox')] });
  assert.equal(config.models.shippedDir, SHIPPED, 'the package’s bundles are the default fallback');
  const shippedBefore = await treeHash(SHIPPED);

  // Nothing installed yet: the shipped bundle runs.
  assert.equal(bundleDir(config.models, 'vibration'), join(SHIPPED, 'rpm_600', 'vibration'));

  // A bundle that never comes up, with nothing installed before it: rolled back, the shipped one runs again.
  const stuck = await bundleVariant(root, 'stuck', 1.5);
  const never = { config, reload: async () => {}, liveProblem: async () => 'it never comes up', timeoutMs: 300, log: () => {} };
  await assert.rejects(installBundle(stuck, never), (e: Error) => e instanceof InstallError && /rolled back: it never comes up after 0\.3 s; the shipped bundle runs again/.test(e.message));
  assert.equal(bundleDir(config.models, 'vibration'), join(SHIPPED, 'rpm_600', 'vibration'));

  // A bundle that comes up: installed in the store, which now wins.
  const next = await bundleVariant(root, 'next', 1.2);
  const live = { ...never, liveProblem: async () => undefined };
  const { sha256 } = await installBundle(next, live);
  const installed = join(store, 'rpm_600', 'vibration');
  assert.equal(bundleDir(config.models, 'vibration'), installed);
  assert.equal(createHash('sha256').update(await readFile(join(installed, 'bundle.json'))).digest('hex'), sha256);

  // One more that fails: the installed one is back.
  await assert.rejects(installBundle(await bundleVariant(root, 'stuck2', 1.7), never), /the previous bundle is back/);
  assert.equal(createHash('sha256').update(await readFile(join(installed, 'bundle.json'))).digest('hex'), sha256);

  assert.equal(await treeHash(SHIPPED), shippedBefore, 'the shipped bundles are untouched');
  assert.ok(!existsSync(join(SHIPPED, 'rpm_600', '.previous-vibration')) && !existsSync(join(SHIPPED, 'rpm_600', '.failed-vibration')));
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { CHANNELS } from '#agent/core/profiles.js';
import { TFJS_PROBE_ENV, tensorflowModules } from '../daemon/daemon-fixture.js';
import { BundleError, loadBundle } from '#agent/model/bundle.js';
import { generateSigningKey, signBundle, trustedKeys, type Trust } from '#agent/model/signature.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL(import.meta.resolve('#agent/cli/main.js'), import.meta.url));
let dir: string;
let bundle: string;
const plant = generateSigningKey();
const stranger = generateSigningKey();
const trust = (requireSigned: boolean): Trust => ({ keys: trustedKeys([{ pem: plant.publicPem, source: 'plant.pub' }]), requireSigned });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signature-'));
  bundle = join(dir, 'rpm');
  await cp(join(PACKAGE_ROOT, 'models', 'rpm_1200', 'rpm'), bundle, { recursive: true });
});
after(() => rm(dir, { recursive: true, force: true }));

async function refused(d: string, t: Trust, pattern: RegExp): Promise<void> {
  await assert.rejects(loadBundle(d, { knownFeatures: CHANNELS, trust: t }), (err: unknown) => {
    assert.ok(err instanceof BundleError && err.check === 'signature', String(err));
    assert.match(err.message, pattern);
    return true;
  });
}

test('an unsigned bundle loads unless signatures are required', async () => {
  await loadBundle(bundle, { knownFeatures: CHANNELS, trust: trust(false) });
  await refused(bundle, trust(true), /the bundle is not signed \(no signature\.json\) and models\.requireSigned is on/);
});

test('signed by a trusted key it loads; a changed bundle.json or another key is refused', async () => {
  const signed = join(dir, 'signed');
  await cp(bundle, signed, { recursive: true });
  const sig = await signBundle(signed, plant.privatePem);
  assert.equal(sig.keyId, plant.keyId);
  await loadBundle(signed, { knownFeatures: CHANNELS, trust: trust(true) });

  // A threshold raised after signing: every file hash still matches, the signature does not.
  const tampered = join(dir, 'tampered');
  await cp(signed, tampered, { recursive: true });
  const m = JSON.parse(await readFile(join(tampered, 'bundle.json'), 'utf8'));
  m.threshold *= 10;
  await writeFile(join(tampered, 'bundle.json'), JSON.stringify(m, null, 2) + '\n');
  await refused(tampered, trust(false), new RegExp(`the signature of key ${plant.keyId} does not match bundle\\.json`));

  const foreign = join(dir, 'foreign');
  await cp(bundle, foreign, { recursive: true });
  await signBundle(foreign, stranger.privatePem);
  await refused(foreign, trust(true), new RegExp(`signed by key ${stranger.keyId}, which is not among the trusted keys \\[${plant.keyId}\\]`));
});

test('anomaly-agent models keygen, sign and verify; sign and verify do not load TensorFlow.js (nor print its banner)', { timeout: 60_000 }, async () => {
  const name = join(dir, 'cli-key');
  const kg = await run(process.execPath, [MAIN, 'models', 'keygen', '--out', name]);
  assert.match(kg.stdout, /^key [0-9a-f]{16}: /);
  assert.equal((await stat(`${name}.key`)).mode & 0o777, 0o600);
  const again = await run(process.execPath, [MAIN, 'models', 'keygen', '--out', name]).catch((e: { code: number; stderr: string }) => e);
  assert.equal((again as { code: number }).code, 2);
  assert.match(again.stderr, /exists; not overwriting a signing key/);

  const b = join(dir, 'cli-bundle');
  await cp(bundle, b, { recursive: true });
  const unsigned = await run(process.execPath, [MAIN, 'models', 'verify', b, '--trusted', `${name}.pub`]).catch((e: { code: number; stdout: string }) => e);
  assert.equal((unsigned as { code: number }).code, 1);
  assert.match(unsigned.stdout, /REFUSED .*check 'signature' failed: the bundle is not signed/);
  const probed = { env: { ...process.env, ...TFJS_PROBE_ENV } };
  const signed = await run(process.execPath, [MAIN, 'models', 'sign', b, '--key', `${name}.key`], probed);
  const ok = await run(process.execPath, [MAIN, 'models', 'verify', b, '--trusted', `${name}.pub`], probed);
  assert.match(ok.stdout, /^ok +/);
  for (const r of [signed, ok]) {
    assert.deepEqual(tensorflowModules(r.stderr), []);
    assert.doesNotMatch(r.stdout + r.stderr, /TensorFlow\.js/);
  }
});

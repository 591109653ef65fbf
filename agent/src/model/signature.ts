/**
 * Signed bundles: ed25519 (node:crypto) over bundle.json — the manifest that holds the sha256 of
 * every model file and everything else that decides a score (features, scaler, threshold). A device
 * whose configuration lists trusted public keys verifies the signature before it loads a bundle, and
 * with `models.requireSigned` refuses unsigned bundles and bundles signed by a key it does not know.
 *
 * Signing happens last on the workstation (after `evaluate --write` has recorded the metrics in
 * bundle.json): `anomaly-agent models keygen`, then `models sign <bundle> --key <name>.key`.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SIGNATURE_FILE = 'signature.json';
/** Domain separation: a signature over a bundle cannot be replayed as a signature over anything else. */
const CONTEXT = 'anomaly-agent bundle signature v1\n';

export interface BundleSignature {
  algorithm: 'ed25519';
  /** First 16 hex digits of sha256 over the raw public key. */
  keyId: string;
  /** base64 ed25519 signature over CONTEXT + the bytes of bundle.json. */
  signature: string;
}

export function keyIdOf(publicKey: KeyObject): string {
  const raw = publicKey.export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export function generateSigningKey(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

function message(manifestBytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(CONTEXT), manifestBytes]);
}

export function signManifest(manifestBytes: Buffer, privatePem: string): BundleSignature {
  const key = createPrivateKey(privatePem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the signing key is ${key.asymmetricKeyType}, not ed25519`);
  const publicKey = createPublicKey(key);
  return { algorithm: 'ed25519', keyId: keyIdOf(publicKey), signature: sign(null, message(manifestBytes), key).toString('base64') };
}

/** Trusted public keys by key id, from PEM texts (e.g. the files in models.trustedKeys). */
export function trustedKeys(pems: readonly { pem: string; source: string }[]): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>();
  for (const { pem, source } of pems) {
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch (err) {
      throw new Error(`${source}: not a PEM public key (${(err as Error).message})`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${source}: an ${key.asymmetricKeyType} key, not ed25519`);
    out.set(keyIdOf(key), key);
  }
  return out;
}

export interface Trust {
  keys: ReadonlyMap<string, KeyObject>;
  /** Refuse bundles that are not signed by one of `keys`. */
  requireSigned: boolean;
}

/**
 * Why the bundle in `dir` (whose bundle.json bytes are `manifestBytes`) is not acceptable under
 * `trust`, or undefined. A signature that is present is always checked when its key is trusted; a
 * signature that does not verify is refused even when signatures are not required.
 */
export async function signatureProblem(dir: string, manifestBytes: Buffer, trust: Trust): Promise<string | undefined> {
  let text: string | undefined;
  try {
    text = await readFile(join(dir, SIGNATURE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `${SIGNATURE_FILE} cannot be read (${(err as NodeJS.ErrnoException).code})`;
  }
  if (text === undefined) return trust.requireSigned ? `the bundle is not signed (no ${SIGNATURE_FILE}) and models.requireSigned is on` : undefined;
  let sig: BundleSignature;
  try {
    sig = JSON.parse(text) as BundleSignature;
  } catch {
    return `${SIGNATURE_FILE} is not valid JSON`;
  }
  if (sig.algorithm !== 'ed25519' || typeof sig.keyId !== 'string' || typeof sig.signature !== 'string') return `${SIGNATURE_FILE} is not an ed25519 bundle signature`;
  const key = trust.keys.get(sig.keyId);
  if (!key) return trust.requireSigned ? `signed by key ${sig.keyId}, which is not among the trusted keys [${[...trust.keys.keys()].join(', ')}]` : undefined;
  const ok = verify(null, message(manifestBytes), key, Buffer.from(sig.signature, 'base64'));
  return ok ? undefined : `the signature of key ${sig.keyId} does not match bundle.json (changed after signing)`;
}

/** Writes signature.json beside bundle.json (atomically). */
export async function signBundle(dir: string, privatePem: string): Promise<BundleSignature> {
  const manifest = await readFile(join(dir, 'bundle.json'));
  const sig = signManifest(manifest, privatePem);
  const tmp = join(dir, `${SIGNATURE_FILE}.tmp-${process.pid}`);
  await writeFile(tmp, JSON.stringify(sig, null, 2) + '\n');
  await rename(tmp, join(dir, SIGNATURE_FILE));
  return sig;
}

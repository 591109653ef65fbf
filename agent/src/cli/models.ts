/**
 * `anomaly-agent models keygen | sign | verify`: the workstation's side of signed bundles
 * (model/signature.ts). The device's side is configuration: models.trustedKeys, models.requireSigned.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CHANNELS } from '../core/profiles.js';
import { BundleError, loadBundle } from '../model/bundle.js';
import { generateSigningKey, signBundle, trustedKeys } from '../model/signature.js';
import { type Command, UsageError } from './command.js';

const USAGE = `usage: anomaly-agent models keygen --out NAME
       anomaly-agent models sign <bundle dir>… --key NAME.key
       anomaly-agent models verify <bundle dir>… --trusted NAME.pub[,…]

keygen   writes an ed25519 key pair: NAME.key (private, mode 0600: keep it on the workstation) and
         NAME.pub (copy it to devices; list it in models.trustedKeys)
sign     writes signature.json into each bundle: ed25519 over bundle.json, which holds the sha256 of
         every model file. Sign last, after 'evaluate --write' has recorded the metrics.
verify   loads each bundle as a device with models.requireSigned would: every check, and a
         signature by one of the trusted keys. Exit 1 if any is refused, naming the check.

examples:
  anomaly-agent models keygen --out plant-a
  anomaly-agent models sign models/rpm_600/* --key plant-a.key
  anomaly-agent models verify models/rpm_600/multi-feature --trusted plant-a.pub
`;

export const modelsCommand: Command = {
  name: 'models',
  summary: 'sign model bundles and verify them as a device would (keygen, sign, verify)',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { out: { type: 'string' }, key: { type: 'string' }, trusted: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const [action, ...dirs] = positionals;
    if (action === 'keygen') {
      if (!values.out) throw new UsageError('models keygen: --out NAME is required');
      const k = generateSigningKey();
      await writeFile(`${values.out}.key`, k.privatePem, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
        throw new UsageError(err.code === 'EEXIST' ? `${values.out}.key exists; not overwriting a signing key` : `${values.out}.key: ${err.message}`);
      });
      await chmod(`${values.out}.key`, 0o600);
      await writeFile(`${values.out}.pub`, k.publicPem);
      io.out(`key ${k.keyId}: ${values.out}.key (private) and ${values.out}.pub (public)`);
      return 0;
    }
    if (action === 'sign') {
      if (!values.key) throw new UsageError('models sign: --key NAME.key is required');
      if (dirs.length === 0) throw new UsageError('models sign: name at least one bundle directory');
      const pem = await readFile(values.key, 'utf8');
      for (const dir of dirs) {
        // Only a bundle that passes its own checks is worth a signature.
        const b = await loadBundle(dir, { knownFeatures: CHANNELS });
        b.model.dispose();
        const sig = await signBundle(dir, pem);
        io.out(`signed ${dir} with key ${sig.keyId}`);
      }
      return 0;
    }
    if (action === 'verify') {
      if (!values.trusted) throw new UsageError('models verify: --trusted NAME.pub[,…] is required');
      if (dirs.length === 0) throw new UsageError('models verify: name at least one bundle directory');
      const files = values.trusted.split(',');
      const keys = trustedKeys(await Promise.all(files.map(async (f) => ({ pem: await readFile(f, 'utf8'), source: f }))));
      let refused = 0;
      for (const dir of dirs) {
        try {
          const b = await loadBundle(dir, { knownFeatures: CHANNELS, trust: { keys, requireSigned: true } });
          b.model.dispose();
          io.out(`ok       ${dir}`);
        } catch (err) {
          if (!(err instanceof BundleError)) throw err;
          refused++;
          io.out(`REFUSED  ${dir}: ${err.message}`);
        }
      }
      return refused === 0 ? 0 : 1;
    }
    throw new UsageError(`models: expected keygen, sign or verify, got '${action ?? ''}'`);
  },
};

/**
 * `anomaly-agent models keygen | sign | verify | flash | install`: signed bundles (model/signature.ts)
 * and getting them onto a device (flash/install.ts). The device's side of trust is configuration:
 * models.trustedKeys, models.requireSigned.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../core/defaults.js';
import { CHANNELS } from '../core/profiles.js';
import { BundleError, loadBundle } from '../model/bundle.js';
import { generateSigningKey, signBundle, trustedKeys } from '../model/signature.js';
import { ConfigError, loadConfig } from '../config/load.js';
import mqtt from 'mqtt';
import { flashOverSsh, healthzLiveProblem, installBundle, InstallError, reloadByCommand, rollbackBundle } from '../flash/install.js';
import { flashOverMqtt } from '../flash/mqtt-update.js';
import { type Command, UsageError } from './command.js';

const D = DEFAULTS.cli.models;

const USAGE = `usage: anomaly-agent models keygen --out NAME
       anomaly-agent models sign <bundle dir>… --key NAME.key
       anomaly-agent models verify <bundle dir>… --trusted NAME.pub[,…]
       anomaly-agent models flash <bundle dir> --to user@host[:port] [options]
       anomaly-agent models flash <bundle dir> --mqtt URL --device ID [--prefix P] [--chunk-bytes N]
       anomaly-agent models install <bundle dir> --config FILE [--reload-cmd CMD] [--timeout S]
       anomaly-agent models rollback [<model>…] --config FILE [--reload-cmd CMD]

keygen   writes an ed25519 key pair: NAME.key (private, mode 0600: keep it on the workstation) and
         NAME.pub (copy it to devices; list it in models.trustedKeys)
sign     writes signature.json into each bundle: ed25519 over bundle.json, which holds the sha256 of
         every model file. Sign last, after 'evaluate --write' has recorded the metrics.
verify   loads each bundle as a device with models.requireSigned would: every check, and a
         signature by one of the trusted keys. Exit 1 if any is refused, naming the check.
flash    copies the bundle to the device over ssh and runs 'models install' there over ssh:
           --identity FILE      ssh key (else ssh's own configuration and agent)
           --ssh-option OPT     passed to ssh and scp as -o OPT (repeatable)
           --remote-agent CMD   how to run this CLI on the device (default: ${D.remoteAgent})
           --remote-config F    the device's configuration (default ${D.remoteConfig})
           --reload-cmd CMD     how the device reloads the agent (default: ${D.reloadCommand})
           --timeout S          how long the new bundle has to come up (default ${D.liveTimeoutS})
         --mqtt URL --device ID: for a device without SSH, the same through the broker, in acknowledged
           chunks (--chunk-bytes, default ${D.chunkBytes}) on <prefix>/<device>/models/update, resuming after a
           reconnect or a broker restart; the device installs it as below and answers on
           <prefix>/<device>/models/result. Credentials in the URL (mqtt://user:password@host); with a
           users file, an admin user.
install  (on the device) verifies the bundle against the device's configuration and trusted keys,
         swaps it in atomically (the previous one is kept), reloads the agent and waits until its
         /healthz shows the new bundle scoring; otherwise puts the previous bundle back. Exit 1 when
         refused or rolled back, saying why.
rollback (on the device) puts back, for each model named (default: every enabled model that has
         one), the bundle the last install, MQTT update or learn run replaced — the shipped bundle
         when it replaced none — and keeps the replaced one, so a second rollback undoes the first;
         then reloads the agent. Exit 1 when a model named has nothing to roll back to.

examples:
  anomaly-agent models keygen --out plant-a
  anomaly-agent models sign models/rpm_600/* --key plant-a.key
  anomaly-agent models verify models/rpm_600/multi-feature --trusted plant-a.pub
  anomaly-agent models flash models/rpm_600/multi-feature --to admin@pump-7.plant
`;

export const modelsCommand: Command = {
  name: 'models',
  summary: 'sign model bundles and verify them as a device would (keygen, sign, verify)',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        out: { type: 'string' },
        key: { type: 'string' },
        trusted: { type: 'string' },
        to: { type: 'string' },
        identity: { type: 'string' },
        'ssh-option': { type: 'string', multiple: true },
        'remote-agent': { type: 'string', default: D.remoteAgent },
        'remote-config': { type: 'string', default: D.remoteConfig },
        'reload-cmd': { type: 'string', default: D.reloadCommand },
        timeout: { type: 'string', default: String(D.liveTimeoutS) },
        mqtt: { type: 'string' },
        device: { type: 'string' },
        prefix: { type: 'string', default: D.prefix },
        'chunk-bytes': { type: 'string', default: String(D.chunkBytes) },
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
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
        await loadBundle(dir, { knownFeatures: CHANNELS });
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
          await loadBundle(dir, { knownFeatures: CHANNELS, trust: { keys, requireSigned: true } });
          io.out(`ok       ${dir}`);
        } catch (err) {
          if (!(err instanceof BundleError)) throw err;
          refused++;
          io.out(`REFUSED  ${dir}: ${err.message}`);
        }
      }
      return refused === 0 ? 0 : 1;
    }
    const timeoutS = Number(values.timeout);
    if (!(timeoutS > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got '${values.timeout}'`);
    if (action === 'flash') {
      if (!values.to === !values.mqtt) throw new UsageError('models flash: give --to user@host[:port] (SSH) or --mqtt URL --device ID');
      if (dirs.length !== 1) throw new UsageError('models flash: name exactly one bundle directory');
      // Refuse locally what the device would refuse anyway, before anything is copied.
      await loadBundle(dirs[0]!, { knownFeatures: CHANNELS });
      if (values.mqtt) {
        if (!values.device) throw new UsageError('models flash --mqtt: --device ID is required');
        const chunkBytes = Number(values['chunk-bytes']);
        if (!Number.isInteger(chunkBytes) || chunkBytes < 1024) throw new UsageError(`--chunk-bytes must be an integer ≥ 1024, got '${values['chunk-bytes']}'`);
        const client = await mqtt.connectAsync(values.mqtt, { reconnectPeriod: 1000, connectTimeout: 10_000, clean: true });
        try {
          const r = await flashOverMqtt(dirs[0]!, { client, prefix: values.prefix, device: values.device, chunkBytes, answerTimeoutMs: 5000, commitTimeoutMs: (timeoutS + 30) * 1000, out: io.out });
          io.out(r.ok ? `live: ${r.model} ${r.sha256}` : `install failed: ${r.error}`);
          return r.ok ? 0 : 1;
        } catch (err) {
          io.out(`flash failed: ${(err as Error).message}`);
          return 1;
        } finally {
          await client.endAsync(true);
        }
      }
      const sshArgs = [...(values.identity ? ['-i', values.identity] : []), ...(values['ssh-option'] ?? []).flatMap((o) => ['-o', o])];
      try {
        return await flashOverSsh(dirs[0]!, { to: values.to!, sshArgs, remoteAgent: values['remote-agent'], remoteConfig: values['remote-config'], reloadCommand: values['reload-cmd'], timeoutS, out: io.out });
      } catch (err) {
        if (!(err instanceof InstallError)) throw err;
        io.out(`flash failed: ${err.message}`);
        return 1;
      }
    }
    if (action === 'install') {
      if (!values.config) throw new UsageError('models install: --config FILE (the agent\'s configuration) is required');
      if (dirs.length !== 1) throw new UsageError('models install: name exactly one bundle directory');
      let config;
      try {
        config = loadConfig({ argv: ['--config', values.config], env: {} });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        io.out(`install failed: ${err.message}`);
        return 1;
      }
      try {
        const c = config;
        const r = await installBundle(dirs[0]!, {
          config: c,
          reload: reloadByCommand(values['reload-cmd']),
          liveProblem: (model, sha) => healthzLiveProblem(c, model, sha),
          timeoutMs: timeoutS * 1000,
          log: io.out,
        });
        io.out(`live: ${config.models.profile}/${r.model} ${r.sha256}`);
        return 0;
      } catch (err) {
        if (!(err instanceof InstallError)) throw err;
        io.out(`install failed: ${err.message}`);
        return 1;
      }
    }
    if (action === 'rollback') {
      if (!values.config) throw new UsageError("models rollback: --config FILE (the agent's configuration) is required");
      let config;
      try {
        config = loadConfig({ argv: ['--config', values.config], env: {} });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        io.out(`rollback failed: ${err.message}`);
        return 1;
      }
      const named = dirs.length > 0;
      const unknown = dirs.filter((m) => !(config.models.enabled as string[]).includes(m));
      if (unknown.length > 0) throw new UsageError(`models rollback: ${unknown.join(', ')} not among models.enabled (${config.models.enabled.join(', ')})`);
      let failed = 0;
      let done = 0;
      for (const model of named ? dirs : config.models.enabled) {
        try {
          const r = await rollbackBundle(config, model);
          io.out(`rolled back ${config.models.profile}/${model}: ${r.restored} runs again${r.previous ? `; the replaced bundle is kept in ${r.previous}` : ''}`);
          done++;
        } catch (err) {
          if (!(err instanceof InstallError)) throw err;
          if (named) failed++;
          io.out(`${named ? 'rollback failed' : 'nothing to roll back'}: ${err.message}`);
        }
      }
      if (done > 0) {
        try {
          await reloadByCommand(values['reload-cmd'])();
          io.out('agent reloaded');
        } catch (err) {
          io.out(`${(err as Error).message}: reload the agent yourself`);
          return 1;
        }
      }
      return failed === 0 && done > 0 ? 0 : 1;
    }
    throw new UsageError(`models: expected keygen, sign, verify, flash, install or rollback, got '${action ?? ''}'`);
  },
};

import type { Command } from './command.js';
import type { UnknownEnv } from '../config/unknown-env.js';
import { createLogger } from '../core/log.js';
import { agentVersion } from '../core/version.js';
import { Controller } from '../daemon/controller.js';
import { SystemdNotifier } from '../daemon/notify.js';
import { configFlagsHelp, loadCommandConfig } from './options.js';

export const runCommand: Command = {
  name: 'run',
  summary: 'run the daemon: sensors → models → alerts on MQTT (embedded broker unless mqtt.url is set)',
  usage: `usage: anomaly-agent run [--config FILE] [--<key-flag> VALUE …]

Runs until SIGTERM or SIGINT (stop sampling, flush, publish status offline, close the broker).
SIGHUP reloads the model bundles: one that fails its checks is refused and the running one stays.
Configuration: schema defaults < --config FILE (JSON) < ANOMALY_* environment < flags;
'anomaly-agent config' prints the effective values, docs/configuration.md is the reference.
Logs are pino JSON on stdout.

  --config FILE   JSON file of settings, nested like 'anomaly-agent config' prints them

Every key has a flag (--flag VALUE or --flag=VALUE; lists comma-separated, maps as JSON):

${configFlagsHelp()}
`,
  async run(argv, io) {
    let unknownEnv: UnknownEnv[] = [];
    const config = loadCommandConfig(argv, io, (unknown) => (unknownEnv = unknown));
    if (!config) return 1;
    const log = createLogger({ level: config.log.level, fd: 1 });
    for (const u of unknownEnv) log.child({ module: 'config' }).warn({ variable: u.variable, closest: u.closest }, u.message);
    const controller = new Controller({ config, log, version: agentVersion() });
    const notifier = new SystemdNotifier({ env: io.env ?? {}, log: log.child({ module: 'systemd' }), pid: io.pid ?? 0 });
    let stopRequested: (code: number) => void = () => {};
    const stopped = new Promise<number>((resolve) => (stopRequested = resolve));
    io.onSignal?.((signal) => {
      if (signal === 'SIGHUP') {
        log.info('SIGHUP: reloading model bundles');
        notifier.reloading();
        void controller
          .reload()
          .catch((err) => log.error({ err: (err as Error).message }, 'reload failed'))
          .finally(() => notifier.ready('reloaded'));
        return;
      }
      log.info({ signal }, 'stopping');
      stopRequested(0);
    });
    try {
      await controller.start();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'agent could not start');
      log.debug({ stack: (err as Error).stack }, 'start failure');
      notifier.stopping();
      await controller.stop();
      notifier.close();
      return 1;
    }
    notifier.ready('running');
    notifier.startWatchdog(() => controller.progress());
    const code = await stopped;
    notifier.stopping();
    await controller.stop();
    notifier.close();
    return code;
  },
};

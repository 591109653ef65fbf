import type { Command } from './command.js';
import { redacted } from '../config/load.js';
import { configurationMarkdown } from '../config/schema.js';
import { configFlagsHelp, loadCommandConfig } from './options.js';

export const configCommand: Command = {
  name: 'config',
  summary: 'print the effective configuration (defaults < --config file < ANOMALY_* env < flags), secrets redacted',
  usage: `usage: anomaly-agent config [--config FILE] [--<key-flag> VALUE …] [--schema]

Builds the configuration the daemon runs with — schema defaults, then the JSON file,
then ANOMALY_* environment variables, then flags — validates it, and prints it as JSON with secrets
redacted. An invalid configuration prints every problem, each with its key path, and exits 1.

options:
  --config FILE    JSON file of settings, nested like the output, e.g. {"mqtt": {"url": "mqtt://broker:1883"}}
  --schema         print the configuration reference as markdown (every key with its doc, default, env
                   var and flag; the standalone broker's defaults) and exit: docs/configuration.md is
                   this output
  --<key-flag> V   set one key; every flag takes a value (--publish-scores false, --models-enabled vibration,rpm,
                   --sensors '{"rpm": {"channels": ["rpm"]}}'):

${configFlagsHelp()}
`,
  async run(argv, io) {
    if (argv.includes('--schema')) {
      io.out(configurationMarkdown().trimEnd());
      return 0;
    }
    const config = loadCommandConfig(argv, io);
    if (!config) return 1;
    io.out(JSON.stringify(redacted(config), null, 2));
    return 0;
  },
};

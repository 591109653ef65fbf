#!/usr/bin/env node
/**
 * `anomaly-agent <command>`: the one entry point. The only file that touches `process`
 * (argv, exit code); commands return their exit code.
 */
import { type Command, UsageError } from './command.js';
import { dataCommand } from './data.js';
import { trainCommand } from './train.js';
import { evaluateCommand } from './evaluate.js';
import { runCommand } from './run.js';
import { configCommand } from './config.js';
import { modelsCommand } from './models.js';
import { faultCommand } from './fault.js';
import { probeCommand } from './probe.js';
import { recordCommand } from './record.js';
import { learnCommand } from './learn.js';

const COMMANDS: Command[] = [runCommand, recordCommand, learnCommand, dataCommand, trainCommand, evaluateCommand, modelsCommand, configCommand, probeCommand, faultCommand];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: anomaly-agent <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "'anomaly-agent <command> --help' describes a command's options.",
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`anomaly-agent: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage.trimEnd() + '\n');
    return 0;
  }
  try {
    return await command.run(rest, {
      out: (line) => process.stdout.write(line + '\n'),
      err: process.stderr,
      env: process.env,
      pid: process.pid,
      onSignal: (handler) => {
        for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => handler(sig));
      },
    });
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`anomaly-agent ${name}: ${(err as Error).message}\n\n${command.usage.trimEnd()}\n`);
      return 2;
    }
    // A known failure (bad CSV, refused bundle) reads best as its message alone; the stack only helps us.
    process.stderr.write(`anomaly-agent ${name}: ${(err as Error).message ?? err}\n`);
    if (process.env.ANOMALY_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

// Exit explicitly: a daemon's sockets and timers are closed by then, but a library handle left open
// must not keep a finished command alive.
process.exit(await main(process.argv.slice(2)));

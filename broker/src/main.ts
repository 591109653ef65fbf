#!/usr/bin/env node
/**
 * `anomaly-broker`: the embedded broker run on its own. The only file of broker/ that touches
 * `process` (argv, env, signals, exit code).
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createBroker, type BrokerAuth } from './broker.js';

const USAGE = `usage: anomaly-broker [options]

An MQTT broker (aedes) for anomaly-agent: MQTT over TCP and, with --ws-port, over WebSocket.
Logs pino JSON to stdout. SIGINT/SIGTERM close it.

options:
  --host ADDR          address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --port N             MQTT/TCP port (default 1883; 0 picks a free port)
  --ws-port N          MQTT-over-WebSocket port (default 0: no WebSocket listener)
  --drain-timeout-ms N disconnect a subscriber whose socket has not drained after N ms (default 10000)
  --log-level L        fatal | error | warn | info | debug | trace | silent (default info)
  -h, --help           this text

environment:
  ANOMALY_BROKER_USERNAME, ANOMALY_BROKER_PASSWORD
                       when both are set, clients must present them (kept off argv so ps does not show them)

examples:
  anomaly-broker                                   # 127.0.0.1:1883
  anomaly-broker --host 0.0.0.0 --ws-port 9001     # LAN clients, web visualizer on ws://<gateway>:9001
`;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

class UsageError extends Error {}

function port(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new UsageError(`${flag} must be a port number 0-65535, got '${v}'`);
  return n;
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n <= 0) throw new UsageError(`${flag} must be a positive integer, got '${v}'`);
  return n;
}

interface Settings {
  host: string;
  port: number;
  wsPort: number;
  drainTimeoutMs: number;
  logLevel: string;
  auth: BrokerAuth | undefined;
}

function parse(argv: string[], env: NodeJS.ProcessEnv): Settings | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '1883' },
      'ws-port': { type: 'string', default: '0' },
      'drain-timeout-ms': { type: 'string', default: '10000' },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const logLevel = values['log-level'];
  if (!LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}, got '${logLevel}'`);
  const username = env.ANOMALY_BROKER_USERNAME;
  const password = env.ANOMALY_BROKER_PASSWORD;
  if ((username === undefined) !== (password === undefined)) {
    throw new UsageError('set both ANOMALY_BROKER_USERNAME and ANOMALY_BROKER_PASSWORD, or neither');
  }
  return {
    host: values.host,
    port: port('--port', values.port),
    wsPort: port('--ws-port', values['ws-port']),
    drainTimeoutMs: positiveInt('--drain-timeout-ms', values['drain-timeout-ms']),
    logLevel,
    auth: username !== undefined && password !== undefined ? { username, password } : undefined,
  };
}

async function main(argv: string[]): Promise<number> {
  let settings: Settings | 'help';
  try {
    settings = parse(argv, process.env);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`anomaly-broker: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (settings === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }

  const log = pino({ level: settings.logLevel, base: { name: 'anomaly-broker' } }, pino.destination({ fd: 1, sync: true }));
  const broker = await createBroker({ log, drainTimeoutMs: settings.drainTimeoutMs, auth: settings.auth });
  try {
    await broker.listen({ host: settings.host, port: settings.port, wsPort: settings.wsPort });
  } catch (err) {
    log.error({ err: (err as Error).message }, 'cannot listen');
    log.debug({ stack: (err as Error).stack }, 'listen error stack');
    await broker.close();
    return 1;
  }
  if (settings.auth) log.info('clients must authenticate');

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info({ signal }, 'closing');
  await broker.close();
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`anomaly-broker: ${(err as Error).message ?? err}\n`);
  if (process.env.ANOMALY_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
  process.exitCode = 1;
}

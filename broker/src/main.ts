#!/usr/bin/env node
/**
 * `anomaly-broker`: the embedded broker run on its own. The only file of broker/ that touches
 * `process` (argv, env, signals, exit code).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createBroker, type TlsListenOptions } from './broker.js';
import { brokerFlagDefault as d } from './flags.js';
import { loadUsers, removeUser, ROLES, upsertUser, type Role, type UserTable } from './users.js';

const USAGE = `usage: anomaly-broker [options]
       anomaly-broker users add <username> --role device|viewer|admin [--device ID] --file FILE
       anomaly-broker users remove <username> --file FILE
       anomaly-broker users list --file FILE

An MQTT broker (aedes) for anomaly-agent: MQTT over TCP, and with --ws-port over WebSocket, with
--tls-port over TLS. Logs pino JSON to stdout. SIGINT/SIGTERM close it.

options:
  --host ADDR          address to listen on (default ${d('host')}; 0.0.0.0 for every interface — needs --users)
  --port N             MQTT/TCP port (default ${d('port')}; 0 picks a free port)
  --ws-port N          MQTT-over-WebSocket port (default ${d('ws-port')}; 0 = no WebSocket listener)
  --tls-port N         MQTT-over-TLS port (default ${d('tls-port')}; 0 = none); needs --tls-cert and --tls-key (PEM files)
  --tls-cert FILE, --tls-key FILE
  --users FILE         users file (scrypt-hashed passwords, roles): every client must authenticate and
                       its role's ACL applies. Without it clients are anonymous, loopback only.
  --topic-prefix P     first topic level the ACL guards (default ${d('topic-prefix')}, the agent's mqtt.prefix)
  --max-packet-bytes N drop a client that sends a larger MQTT packet (default ${d('max-packet-bytes')})
  --drain-timeout-ms N disconnect a subscriber whose socket has not drained after N ms (default ${d('drain-timeout-ms')})
  --log-level L        fatal | error | warn | info | debug | trace | silent (default ${d('log-level')})
  -h, --help           this text

users:
  roles: device (a gateway's own credential: under <prefix>/<its device>/ it publishes status,
  telemetry, score, alerts, models/result and ingest, and subscribes to ingest, models/update and
  cmd/fault; nothing else), viewer (subscribe under <prefix>/, never publish), admin (anything;
  the only role that publishes models/update and cmd/…). 'users add' reads the password from the
  first line of stdin (so it is not in argv or shell history); adding an existing user replaces it.

examples:
  anomaly-broker                                   # ${d('host')}:${d('port')}, anonymous
  echo "$PW" | anomaly-broker users add pump-7 --role device --device pump-7 --file /etc/anomaly-agent/users.json
  anomaly-broker --host 0.0.0.0 --ws-port 9001 --users /etc/anomaly-agent/users.json
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
  tlsPort: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  usersFile: string | undefined;
  topicPrefix: string;
  maxPacketBytes: number;
  drainTimeoutMs: number;
  logLevel: string;
}

function parse(argv: string[]): Settings | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: d('host') },
      port: { type: 'string', default: d('port') },
      'ws-port': { type: 'string', default: d('ws-port') },
      'tls-port': { type: 'string', default: d('tls-port') },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      users: { type: 'string' },
      'topic-prefix': { type: 'string', default: d('topic-prefix') },
      'max-packet-bytes': { type: 'string', default: d('max-packet-bytes') },
      'drain-timeout-ms': { type: 'string', default: d('drain-timeout-ms') },
      'log-level': { type: 'string', default: d('log-level') },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const logLevel = values['log-level'];
  if (!LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}, got '${logLevel}'`);
  const tlsPort = port('--tls-port', values['tls-port']);
  if (tlsPort > 0 && (!values['tls-cert'] || !values['tls-key'])) throw new UsageError('--tls-port needs --tls-cert and --tls-key');
  return {
    host: values.host,
    port: port('--port', values.port),
    wsPort: port('--ws-port', values['ws-port']),
    tlsPort,
    tlsCert: values['tls-cert'],
    tlsKey: values['tls-key'],
    usersFile: values.users,
    topicPrefix: values['topic-prefix'],
    maxPacketBytes: positiveInt('--max-packet-bytes', values['max-packet-bytes']),
    drainTimeoutMs: positiveInt('--drain-timeout-ms', values['drain-timeout-ms']),
    logLevel,
  };
}

async function readStdinLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

/** `anomaly-broker users …`: manage the users file. */
async function usersCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { role: { type: 'string' }, device: { type: 'string' }, file: { type: 'string' } },
    strict: true,
    allowPositionals: true,
  });
  const [action, username] = positionals;
  const file = values.file;
  if (!file) throw new UsageError('users: --file FILE is required');
  if (action === 'list' && username === undefined) {
    for (const u of (await loadUsers(file)).values()) process.stdout.write(`${u.username}\t${u.role}${u.device ? `\t${u.device}` : ''}\n`);
    return 0;
  }
  if (action === 'remove' && username) {
    const removed = await removeUser(file, username);
    process.stdout.write(removed ? `removed ${username}\n` : `no user ${username}\n`);
    return removed ? 0 : 1;
  }
  if (action === 'add' && username) {
    const role = values.role;
    if (!(ROLES as readonly string[]).includes(role ?? '')) throw new UsageError(`users add: --role must be one of ${ROLES.join(', ')}`);
    const password = await readStdinLine();
    if (!password) throw new UsageError('users add: give the password on the first line of stdin');
    const outcome = await upsertUser(file, { username, role: role as Role, ...(values.device !== undefined ? { device: values.device } : {}), password });
    process.stdout.write(`${outcome} ${username} (${role}) in ${file}\n`);
    return 0;
  }
  throw new UsageError(`users: expected 'add <username>', 'remove <username>' or 'list', got '${positionals.join(' ')}'`);
}

async function main(argv: string[]): Promise<number> {
  let settings: Settings | 'help';
  try {
    if (argv[0] === 'users') return await usersCommand(argv.slice(1));
    settings = parse(argv);
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
  let users: UserTable | undefined;
  let tls: TlsListenOptions | undefined;
  try {
    users = settings.usersFile ? await loadUsers(settings.usersFile) : undefined;
    if (settings.tlsPort > 0) tls = { port: settings.tlsPort, cert: await readFile(settings.tlsCert!), key: await readFile(settings.tlsKey!) };
  } catch (err) {
    log.error({ err: (err as Error).message }, 'cannot start');
    return 1;
  }
  const broker = await createBroker({ log, drainTimeoutMs: settings.drainTimeoutMs, users, topicPrefix: settings.topicPrefix, maxPacketBytes: settings.maxPacketBytes });
  try {
    await broker.listen({ host: settings.host, port: settings.port, wsPort: settings.wsPort, tls });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number };
    const flag = ([['--port', settings.port], ['--ws-port', settings.wsPort], ['--tls-port', settings.tlsPort]] as const).find(([, p]) => p > 0 && p === e.port)?.[0];
    const hint = e.code === 'EADDRINUSE' && flag ? `; port ${e.port} is taken (another broker still running?): stop it or choose another port with ${flag}` : '';
    log.error({ err: `${(err as Error).message}${hint}` }, 'cannot listen');
    log.debug({ stack: (err as Error).stack }, 'listen error stack');
    await broker.close();
    return 1;
  }
  if (users) log.info({ users: users.size }, 'clients must authenticate');

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

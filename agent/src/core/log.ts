import { pino, type Logger } from 'pino';
import { DEFAULTS } from './defaults.js';

/**
 * One root pino logger per process; modules take `log.child({ module })`.
 * The daemon logs to stdout (journald keeps it); workstation commands log to stderr so their
 * stdout carries only results.
 */
export function createLogger(opts: { level?: string; fd?: 1 | 2 } = {}): Logger {
  return pino({ level: opts.level ?? DEFAULTS.config.log.level, base: { name: 'anomaly-agent' } }, pino.destination({ fd: opts.fd ?? 1, sync: true }));
}

/** For tests and library callers that want no output. */
export const silentLogger: Logger = pino({ level: 'silent' });

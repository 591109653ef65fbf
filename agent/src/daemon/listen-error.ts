/**
 * A listener that cannot bind, told as the operator can act on it: which configuration key (and its
 * flag and env var) to change, and for the embedded broker, that a broker already there can be used
 * instead (`--mqtt-url`). `listen EADDRINUSE: address already in use 127.0.0.1:1883` alone names
 * neither.
 */
import { KEYS } from '../config/schema.js';
import { loopbackOf } from '../core/address.js';

export interface Listener {
  /** Its configuration key, e.g. `broker.port`. */
  key: string;
  port: number;
}

function setting(key: string): string {
  const k = KEYS.find((x) => x.path === key);
  return k ? `--${k.arg} (${key}, ${k.env})` : key;
}

/** What 0 means for a port key, from its doc: `(0 = any free port)`, `(0 = no HTTP server)`. */
function zero(key: string): string {
  const doc = KEYS.find((x) => x.path === key)?.doc ?? '';
  return /\(0 = [^)]*\)/.exec(doc)?.[0] ?? '';
}

/**
 * `err` reworded when it is a listen failure (EADDRINUSE, EACCES, EADDRNOTAVAIL) of one of
 * `listeners`; otherwise `err` itself. `hostKey` is the configuration key of the address they bind.
 * `instead`, when given, is what to do rather than listen at all (told with the port in use).
 */
export function explainListenError(err: unknown, listeners: readonly Listener[], hostKey: string, instead?: (host: string, l: Listener) => string): unknown {
  const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
  if (!e || typeof e !== 'object' || !['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL'].includes(e.code ?? '')) return err;
  const host = e.address ?? '';
  if (e.code === 'EADDRNOTAVAIL') return new Error(`${hostKey}: ${host} is not an address of this machine; change it with ${setting(hostKey)} (127.0.0.1: this machine only, 0.0.0.0: every interface)`, { cause: err });
  const l = listeners.find((x) => x.port === e.port);
  if (!l) return err;
  const change = `change it with ${setting(l.key)} ${zero(l.key)}`.trimEnd();
  const other = instead ? `, or ${instead(host, l)}` : '';
  if (e.code === 'EACCES') return new Error(`${l.key}: may not listen on port ${l.port} (permission denied; ports below 1024 need privileges): ${change}${other}`, { cause: err });
  return new Error(`${l.key}: port ${l.port} on ${host} is already in use (another anomaly-agent still running?): stop what listens there, ${change}${other}`, { cause: err });
}

/** For the embedded broker's ports: an MQTT broker already running may be used in its place. */
export function useExistingBroker(host: string, l: Listener): string {
  const url = l.key === 'broker.port' ? `mqtt://${loopbackOf(host)}:${l.port}` : 'mqtt://HOST:PORT';
  return `use the broker already running instead of the embedded one: --mqtt-url ${url} (mqtt.url)`;
}

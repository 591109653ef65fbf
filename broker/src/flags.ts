/**
 * `anomaly-broker`'s flags that have a default: the value (core/defaults.ts, `DEFAULTS.broker`) and
 * the daemon's configuration key whose embedded broker setting it is. main.ts parses and prints
 * them from here; docs/configuration.md lists them from here too.
 */
import { DEFAULTS } from '../../agent/src/core/defaults.js';

export interface BrokerFlagDefault {
  flag: string;
  value: string | number;
  /** The daemon's key for the same setting of its embedded broker. */
  key: string;
  /** Why the value differs from the key's default, when it does. */
  differs?: string;
}

const b = DEFAULTS.broker;

export const BROKER_FLAG_DEFAULTS: readonly BrokerFlagDefault[] = [
  { flag: 'host', value: b.host, key: 'broker.host' },
  { flag: 'port', value: b.port, key: 'broker.port' },
  { flag: 'ws-port', value: b.wsPort, key: 'broker.wsPort', differs: 'no WebSocket listener unless asked: the daemon opens one for its own web page' },
  { flag: 'tls-port', value: b.tlsPort, key: 'broker.tlsPort' },
  { flag: 'topic-prefix', value: b.topicPrefix, key: 'mqtt.prefix' },
  { flag: 'max-packet-bytes', value: b.maxPacketBytes, key: 'broker.maxPacketBytes' },
  { flag: 'drain-timeout-ms', value: b.drainTimeoutMs, key: 'broker.drainTimeoutMs' },
  { flag: 'log-level', value: b.logLevel, key: 'log.level' },
];

/** The default of `--<flag>`, as text (parseArgs defaults are strings). */
export function brokerFlagDefault(flag: string): string {
  const f = BROKER_FLAG_DEFAULTS.find((d) => d.flag === flag);
  if (!f) throw new Error(`anomaly-broker has no default for --${flag}`);
  return String(f.value);
}

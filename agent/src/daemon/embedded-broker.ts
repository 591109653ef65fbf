/**
 * The daemon's embedded broker (when mqtt.url is empty), and what it needs from configuration: its
 * users (plus one for the daemon itself), its TLS files, its packet limit — read and checked here so
 * a bad path or file stops the start with a message naming the config key.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BrokerComponent, type BrokerOptions, type TlsListenOptions } from '../../../broker/src/broker.js';
import { hashPassword, loadUsers, type UserRecord } from '../../../broker/src/users.js';
import type { AgentConfig } from '../config/schema.js';
import { loopbackOf } from '../core/address.js';
import type { Component } from '../core/component.js';
import type { DaemonContext } from './context.js';
import { explainListenError, useExistingBroker } from './listen-error.js';

/** The daemon's own account on its embedded broker; '$' keeps it out of any users file's namespace. */
const SELF = '$anomaly-agent';

export interface EmbeddedBrokerSettings {
  options: Pick<BrokerOptions, 'users' | 'maxPacketBytes'> & { tls?: TlsListenOptions };
  /** Credentials the daemon's client presents, when the broker has users. */
  self?: { username: string; password: string };
}

async function readKeyFile(key: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`broker.${key} '${path}' cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

export async function embeddedBrokerSettings(b: AgentConfig['broker']): Promise<EmbeddedBrokerSettings> {
  const settings: EmbeddedBrokerSettings = { options: { maxPacketBytes: b.maxPacketBytes } };
  if (b.tlsPort > 0) {
    if (!b.tlsCert || !b.tlsKey) throw new Error('broker.tlsPort is set: broker.tlsCert and broker.tlsKey must name the PEM certificate and key');
    settings.options.tls = { port: b.tlsPort, cert: await readKeyFile('tlsCert', b.tlsCert), key: await readKeyFile('tlsKey', b.tlsKey) };
  }
  if (b.usersFile) {
    const users: Map<string, UserRecord> = await loadUsers(b.usersFile);
    // A fresh random password each start, known only to this process.
    const password = randomBytes(24).toString('base64url');
    users.set(SELF, { username: SELF, role: 'admin', password: await hashPassword(password) });
    settings.options.users = users;
    settings.self = { username: SELF, password };
  }
  return settings;
}

/** The embedded broker as a daemon component: where the daemon's own client connects, and as whom. */
export class EmbeddedBroker implements Component {
  readonly name = 'broker';
  private broker: BrokerComponent | undefined;
  /** The daemon's credentials on it, when it has users. */
  self: { username: string; password: string } | undefined;

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    const b = this.ctx.config.broker;
    const embedded = await embeddedBrokerSettings(b);
    this.self = embedded.self;
    this.broker = new BrokerComponent({ log: this.ctx.log('broker'), drainTimeoutMs: b.drainTimeoutMs, host: b.host, port: b.port, wsPort: b.wsPort, topicPrefix: this.ctx.config.mqtt.prefix, ...embedded.options });
    try {
      await this.broker.start();
    } catch (err) {
      const ports = [
        { key: 'broker.port', port: b.port },
        { key: 'broker.wsPort', port: b.wsPort },
        { key: 'broker.tlsPort', port: b.tlsPort },
      ].filter((l) => l.port > 0);
      throw explainListenError(err, ports, 'broker.host', useExistingBroker);
    }
  }

  async stop(): Promise<void> {
    await this.broker?.stop();
  }

  /** Where it listens (ports chosen at start when configured as 0). */
  address() {
    if (!this.broker) throw new Error('the embedded broker has not started');
    return this.broker.address();
  }

  /** The URL the daemon's client uses. */
  url(): string {
    return `mqtt://${loopbackOf(this.ctx.config.broker.host)}:${this.address().port}`;
  }
}

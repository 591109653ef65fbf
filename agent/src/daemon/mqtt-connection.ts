import mqtt, { type MqttClient } from 'mqtt';
import { redactUrl } from '../config/load.js';
import type { Component } from '../core/component.js';
import { Publisher } from '../publish/publisher.js';
import type { StatusPayload } from '../core/topics.js';
import type { DaemonContext } from './context.js';

/**
 * The daemon's one MQTT client, to the configured broker or the embedded one. Its last will is the
 * `offline` status. A broker that is not there is not an error: mqtt.js reconnects, and alerts wait
 * in the outbox meanwhile.
 */
export class MqttConnection implements Component {
  readonly name = 'mqtt';
  private c: MqttClient | undefined;

  constructor(
    private readonly ctx: DaemonContext,
    /** The broker's URL and credentials, known once the embedded broker (if any) has started. */
    private readonly target: () => { url: string; username?: string; password?: string },
    private readonly status: () => Omit<StatusPayload, 'v' | 't' | 'state'>,
  ) {}

  get client(): MqttClient {
    if (!this.c) throw new Error('the MQTT connection has not started');
    return this.c;
  }

  async start(): Promise<void> {
    const c = this.ctx.config;
    const { url, username, password } = this.target();
    const log = this.ctx.log('mqtt');
    this.c = mqtt.connect(url, {
      clientId: c.mqtt.clientId || `anomaly-agent-${c.device.id}`,
      // mqtt-packet would otherwise keep a Buffer for every 16-bit number (65,536 of them, ~6 MB of
      // heap) to save an allocation per packet id; the setting is global, so the embedded broker's
      // writes go without it too.
      writeCache: false,
      username,
      password,
      keepalive: c.mqtt.keepaliveS,
      reconnectPeriod: c.mqtt.reconnectMs,
      will: Publisher.lastWill(c.mqtt.prefix, c.device.id, this.status(), this.ctx.clock.now()),
    });
    this.c.on('connect', () => log.info({ url: redactUrl(url) }, 'connected'));
    this.c.on('offline', () => log.warn({ url: redactUrl(url) }, 'broker unreachable; alerts go to the outbox'));
    this.c.on('error', (err) => log.warn({ err: err.message }, 'mqtt error'));
  }

  async stop(): Promise<void> {
    await this.c?.endAsync();
  }
}

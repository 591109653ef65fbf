import mqtt, { type MqttClient } from 'mqtt';
import { redactUrl } from '../config/load.js';
import type { Timer } from '../core/clock.js';
import type { Component } from '../core/component.js';
import { DEFAULTS } from '../core/defaults.js';
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

  /**
   * Closes the connection promptly whatever the broker does. Connected: waits (at most
   * closeTimeoutMs) for the broker to acknowledge what is in flight — the offline status, alerts,
   * unsubscriptions — then disconnects. A broker that is gone or hung acknowledges nothing: the
   * connection is dropped (mqtt.js's own end() would wait for those acknowledgements forever), and
   * alerts not acknowledged are still in the outbox, sent on the next start.
   */
  async stop(): Promise<void> {
    const c = this.c;
    if (!c) return;
    const inFlight = () => Object.keys(c.outgoing).length;
    if (c.connected && inFlight() > 0) {
      const timeoutMs = DEFAULTS.component.mqtt.closeTimeoutMs;
      let settle: (outcome: 'acknowledged' | 'lost' | 'late') => void = () => {};
      const outcome = new Promise<'acknowledged' | 'lost' | 'late'>((resolve) => (settle = resolve));
      // mqtt.js removes an acknowledged entry right after it emits 'packetreceive'; look once it has.
      const received = () => queueMicrotask(() => inFlight() === 0 && settle('acknowledged'));
      const lost = () => settle('lost');
      c.on('packetreceive', received);
      c.once('close', lost);
      const timer: Timer = this.ctx.clock.setTimeout(() => settle('late'), timeoutMs);
      const how = await outcome;
      timer.cancel();
      c.off('packetreceive', received);
      c.off('close', lost);
      if (how !== 'acknowledged') {
        this.ctx.log('mqtt').warn({ inFlight: inFlight(), timeoutMs }, how === 'late' ? 'the broker did not acknowledge in time; closing the connection (unacknowledged alerts stay in the outbox)' : 'connection lost while closing; unacknowledged alerts stay in the outbox');
      }
    }
    // Nothing left to wait for: a clean DISCONNECT when connected and all is acknowledged, else drop it.
    await c.endAsync(!c.connected || inFlight() > 0);
  }
}

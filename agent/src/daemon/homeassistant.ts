import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Component } from '../core/component.js';
import { discoveryConfigs, discoveryFilter, isDiscoveryTopic, isOwnDiscoveryConfig } from '../core/homeassistant.js';
import type { DaemonContext } from './context.js';
import type { Models } from './models.js';

/**
 * Home Assistant MQTT discovery (core/homeassistant.ts), opt-in with homeassistant.enabled.
 *
 * On every connection it subscribes to this device's discovery topics and publishes, retained, the
 * configs of the models running now; when the models change (a reload: the `status` event) it
 * publishes what is new and empties what went. The broker's retained configs are the memory of what
 * was announced: a retained config of this device that is not wanted now — a model that is no
 * longer enabled, or every one when the feature is off — is emptied as it arrives, so turning the
 * feature off removes them at the next start. Configs stay when the daemon stops: Home Assistant then
 * shows the entities unavailable (the status topic's `offline`), and keeps their history.
 *
 * A broker that refuses the subscription (a device credential on anomaly-broker may use only
 * `<prefix>/<dev>/`) would refuse the configs too, and a refused publish ends the connection: nothing
 * is published then, and the log says why.
 */
export class HomeAssistantDiscovery implements Component {
  readonly name = 'homeassistant';
  private readonly log: Logger;
  private readonly enabled: boolean;
  private readonly haPrefix: string;
  private readonly device: string;
  private readonly filter: string;
  /** Discovery topic → the payload this device wants retained there now (none when the feature is off). */
  private wanted = new Map<string, string>();
  /** The broker refused the subscription on this connection: publish nothing there. */
  private refused = false;
  /** With the feature off, a refused subscription is not asked again on every reconnect. */
  private refusedOnce = false;
  private stopped = false;
  private readonly onConnect = () => void this.announce();
  private readonly onMessage = (t: string, payload: Buffer) => this.retained(t, payload);
  private readonly onStatus = () => this.update();
  private stopListening: () => void = () => {};

  constructor(
    private readonly ctx: DaemonContext,
    private readonly models: Models,
    private readonly client: MqttClient,
  ) {
    const c = ctx.config;
    this.log = ctx.log('homeassistant');
    this.enabled = c.homeassistant.enabled;
    this.haPrefix = c.homeassistant.prefix;
    this.device = c.device.id;
    this.filter = discoveryFilter(this.haPrefix, this.device);
  }

  async start(): Promise<void> {
    this.wanted = this.configs();
    this.client.on('message', this.onMessage);
    this.client.on('connect', this.onConnect);
    this.stopListening = this.ctx.events.on('status', this.onStatus);
    // Not connected yet: the 'connect' event announces. The daemon's start never waits for a broker.
    if (this.client.connected) await this.announce();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.client.off('message', this.onMessage);
    this.client.off('connect', this.onConnect);
    this.stopListening();
    // Not awaited: a broker that hung would never answer. The connection's stop() gives the UNSUBACK a bounded wait.
    if (this.client.connected && !this.refused) this.client.unsubscribe(this.filter, () => {});
  }

  /** Discovery topic → payload for the models running now (empty when the feature is off). */
  private configs(): Map<string, string> {
    if (!this.enabled) return new Map();
    const c = this.ctx.config;
    const configs = discoveryConfigs(
      { haPrefix: this.haPrefix, prefix: c.mqtt.prefix, device: this.device, version: this.ctx.version, profile: c.models.profile, scores: c.publish.scores },
      [...this.models.all.keys()],
    );
    return new Map(configs.map((d) => [d.topic, JSON.stringify(d.payload)]));
  }

  /** Subscribes (retained configs of this device come in: `retained`), then publishes the wanted ones. */
  private async announce(): Promise<void> {
    if (this.stopped || (!this.enabled && this.refusedOnce)) return;
    const sub = await this.subscribe();
    if (sub === 'failed') return;
    this.refused = sub === 'refused';
    if (this.refused) {
      this.refusedOnce = true;
      if (this.enabled) {
        this.log.error(
          { filter: this.filter },
          `Home Assistant discovery: the broker refused a subscription to ${this.filter}, so this MQTT credential may not publish under ${this.haPrefix}/ either; nothing is announced (give it publish and subscribe rights there, or turn homeassistant.enabled off)`,
        );
      } else {
        this.log.debug({ filter: this.filter }, 'Home Assistant discovery is off and the broker refused its topics: nothing to remove');
      }
      return;
    }
    if (!this.enabled || this.stopped) return;
    await Promise.all([...this.wanted].map(([t, p]) => this.publish(t, p)));
    this.log.info({ prefix: this.haPrefix, entities: this.wanted.size, models: [...this.models.all.keys()] }, `announced to Home Assistant: ${this.wanted.size} entities under ${this.haPrefix}/`);
  }

  private async subscribe(): Promise<'granted' | 'refused' | 'failed'> {
    try {
      await this.client.subscribeAsync(this.filter, { qos: 1 });
      return 'granted';
    } catch (err) {
      // mqtt.js rejects a SUBACK carrying 0x80 (refused) with that packet; anything else is the connection's.
      const granted = (err as { packet?: { granted?: unknown } }).packet?.granted;
      if (Array.isArray(granted) && granted.some((g) => typeof g === 'number' && (g & 0x80) !== 0)) return 'refused';
      this.log.warn({ err: (err as Error).message, filter: this.filter }, 'Home Assistant discovery: subscription failed');
      return 'failed';
    }
  }

  /** The models changed (a reload): publish the new and changed configs, empty those of models gone. */
  private update(): void {
    const next = this.configs();
    const before = this.wanted;
    this.wanted = next;
    if (!this.client.connected || this.refused || this.stopped) return; // the next connection announces `wanted`
    for (const [t, p] of next) if (before.get(t) !== p) void this.publish(t, p);
    for (const t of before.keys()) if (!next.has(t)) void this.remove(t, 'its model no longer runs');
  }

  /** A message on this device's discovery topics: a retained config of ours nobody wants now is emptied. */
  private retained(t: string, payload: Buffer): void {
    if (payload.length === 0 || this.wanted.has(t) || this.refused || this.stopped) return;
    if (!isDiscoveryTopic(this.haPrefix, this.device, t) || !isOwnDiscoveryConfig(this.device, payload)) return;
    void this.remove(t, this.enabled ? 'its model no longer runs' : 'homeassistant.enabled is off');
  }

  private async remove(t: string, why: string): Promise<void> {
    if (await this.publish(t, '')) this.log.info({ topic: t }, `Home Assistant discovery config removed: ${why}`);
  }

  private async publish(t: string, payload: string): Promise<boolean> {
    try {
      await this.client.publishAsync(t, payload, { qos: 1, retain: true });
      return true;
    } catch (err) {
      this.log.warn({ err: (err as Error).message, topic: t }, 'Home Assistant discovery: publish failed');
      return false;
    }
  }
}

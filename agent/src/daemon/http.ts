import type { Component } from '../core/component.js';
import { HttpServer, type Asset, type HealthReport } from '../http/server.js';
import { createSite, type PageConfig } from '../web/site.js';
import type { DaemonContext } from './context.js';
import { explainListenError } from './listen-error.js';

/**
 * The daemon's HTTP face (http.port > 0): /healthz, /metrics and, with web.enabled, the live page.
 * Without its page's files (logged) the daemon still serves the rest.
 */
export class Http implements Component {
  readonly name = 'http';
  private server: HttpServer | undefined;

  constructor(
    private readonly ctx: DaemonContext,
    private readonly health: () => HealthReport,
    /** The embedded broker's WebSocket port for the page (null: none, or it is stopping). */
    private readonly wsPort: () => number | null,
  ) {}

  async start(): Promise<void> {
    const c = this.ctx.config;
    const assets = c.web.enabled ? this.webAssets() : undefined;
    this.server = new HttpServer({ host: c.http.host, port: c.http.port, registry: this.ctx.metrics.registry, health: this.health, log: this.ctx.log('http'), ...(assets ? { assets } : {}) });
    try {
      await this.server.start();
    } catch (err) {
      throw explainListenError(err, [{ key: 'http.port', port: c.http.port }], 'http.host');
    }
  }

  async stop(): Promise<void> {
    await this.server?.stop();
  }

  address() {
    return this.server?.address();
  }

  private webAssets(): Map<string, Asset> | undefined {
    try {
      return createSite({ config: () => this.pageConfig() });
    } catch (err) {
      this.ctx.log('web').error({ err: (err as Error).message }, 'web visualizer not served');
      return undefined;
    }
  }

  private pageConfig(): PageConfig {
    const w = this.ctx.config.web;
    return { brokerUrl: w.brokerUrl, wsPort: this.wsPort(), username: w.username, password: w.password, prefix: this.ctx.config.mqtt.prefix };
  }
}

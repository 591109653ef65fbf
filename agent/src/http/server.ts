/**
 * The daemon's HTTP face: `/healthz` for systemd/k8s-style probes and `/metrics` for Prometheus.
 * Loopback by default. GET and HEAD only; anything else on a known path is 405, unknown paths 404.
 * No handler error reaches the process: a throwing health function or a failing metrics collection
 * is logged and answered with 500.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Component } from '../core/component.js';

export interface HealthReport {
  ok: boolean;
  /** Why the daemon is unhealthy ("sensor vibration stale for 12 s", "mqtt disconnected"). */
  reasons: string[];
  /** The bundles running (as in the status topic), so a deploy can see its bundle is live. */
  models?: { model: string; sha256: string }[];
}

export interface HttpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  registry: Registry;
  health: () => HealthReport;
  log: Logger;
  /** How long stop() lets in-flight requests finish before cutting connections. Default 2000 ms. */
  stopTimeoutMs?: number;
}

export const DEFAULT_HTTP_HOST = '127.0.0.1';
const DEFAULT_STOP_TIMEOUT_MS = 2000;
const JSON_TYPE = 'application/json; charset=utf-8';

export class HttpServer implements Component {
  readonly name = 'http';
  private server: Server | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: HttpServerOptions) {}

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => this.dispatch(req, res));
    const host = this.opts.host ?? DEFAULT_HTTP_HOST;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.opts.log.warn({ err: err.message }, 'http server error'));
    this.server = server;
    this.stopping = undefined;
    this.opts.log.info(this.address(), 'http listening');
  }

  /** The bound address (port 0 resolved); throws when not started. */
  address(): { host: string; port: number } {
    const a = this.server?.address() as AddressInfo | null | undefined;
    if (!a) throw new Error('http: not started');
    return { host: a.address, port: a.port };
  }

  stop(): Promise<void> {
    const server = this.server;
    if (!server) return this.stopping ?? Promise.resolve();
    this.server = undefined;
    this.stopping = new Promise<void>((resolve) => {
      const timer = setTimeout(() => server.closeAllConnections(), this.opts.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
      timer.unref();
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      // Keep-alive sockets with no request in flight would otherwise hold close() open.
      server.closeIdleConnections();
    });
    return this.stopping;
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    this.handle(req, res).catch((err: unknown) => this.fail(req, res, err));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== '/healthz' && path !== '/metrics') return send(req, res, 404, JSON_TYPE, json({ error: 'not found' }));
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(req, res, 405, JSON_TYPE, json({ error: 'method not allowed' }));
    }
    if (path === '/healthz') {
      const report = this.opts.health();
      const models = report.models ? { models: report.models } : {};
      if (report.ok === true) return send(req, res, 200, JSON_TYPE, json({ status: 'ok', ...models }));
      const reasons = Array.isArray(report.reasons) ? report.reasons.map(String) : [];
      return send(req, res, 503, JSON_TYPE, json({ status: 'unhealthy', reasons, ...models }));
    }
    const body = await this.opts.registry.metrics();
    return send(req, res, 200, this.opts.registry.contentType, body);
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const e = err as Error | undefined;
    this.opts.log.error({ path: req.url, err: e?.message ?? String(err) }, 'http handler failed');
    this.opts.log.debug({ stack: e?.stack }, 'http handler failure stack');
    try {
      if (res.headersSent) res.destroy();
      else send(req, res, 500, JSON_TYPE, json({ status: 'error' }));
    } catch {
      res.destroy();
    }
  }
}

function json(v: unknown): string {
  return JSON.stringify(v) + '\n';
}

function send(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

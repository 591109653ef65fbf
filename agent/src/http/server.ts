/**
 * The daemon's HTTP face: `/healthz` for systemd/k8s-style probes, `/metrics` for Prometheus and,
 * when given `assets`, the web visualizer's files.
 * Loopback by default. GET and HEAD only; anything else on a known path is 405, unknown paths 404.
 * No handler error reaches the process: a throwing health function or a failing metrics collection
 * is logged and answered with 500.
 *
 * Static files are served from a fixed table, URL path → asset, made once by the caller: a request
 * path is only ever a key looked up in that table, never joined to a directory, so no URL (`..`,
 * `%2e%2e`, `//`, backslashes, NUL) can reach a file that is not listed.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Component } from '../core/component.js';
import { DEFAULTS } from '../core/defaults.js';

export interface HealthReport {
  ok: boolean;
  /** Why the daemon is unhealthy ("sensor vibration stale for 12 s", "mqtt disconnected"). */
  reasons: string[];
  /** The bundles running (as in the status topic), so a deploy can see its bundle is live. */
  models?: { model: string; sha256: string; drift: number; learned?: { baseline: string; at: number; reason?: string } }[];
}

/**
 * How a response may be cached:
 * - `immutable`: the URL names a version (a vendor file under its package version); cached for a year.
 * - `revalidate`: may be kept, but asked for again each time with its ETag (`304` when unchanged).
 * - `no-store`: never kept (it carries a credential, or changes on every request).
 */
export type CachePolicy = 'immutable' | 'revalidate' | 'no-store';

/** One static response: a file read at each request, or a body made at each request. */
export type Asset = { contentType: string; cache: CachePolicy; headers?: Record<string, string> } & ({ file: string } | { body: () => string | Buffer });

const CACHE_CONTROL: Record<CachePolicy, string> = {
  immutable: 'public, max-age=31536000, immutable',
  revalidate: 'no-cache',
  'no-store': 'no-store',
};

export interface HttpServerOptions {
  /** Default: http.host's. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  registry: Registry;
  health: () => HealthReport;
  log: Logger;
  /** Static files by URL path (`/`, `/app.js` …); none by default. */
  assets?: ReadonlyMap<string, Asset>;
  /** How long stop() lets in-flight requests finish before cutting connections, ms. Default `DEFAULTS.component.http`. */
  stopTimeoutMs?: number;
}

const JSON_TYPE = 'application/json; charset=utf-8';

export class HttpServer implements Component {
  readonly name = 'http';
  private server: Server | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: HttpServerOptions) {}

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => this.dispatch(req, res));
    const host = this.opts.host ?? DEFAULTS.config.http.host;
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
      const timer = setTimeout(() => server.closeAllConnections(), this.opts.stopTimeoutMs ?? DEFAULTS.component.http.stopTimeoutMs);
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
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const asset = this.opts.assets?.get(path);
    if (path !== '/healthz' && path !== '/metrics' && !asset) return send(req, res, 404, JSON_TYPE, json({ error: 'not found' }));
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(req, res, 405, JSON_TYPE, json({ error: 'method not allowed' }));
    }
    if (asset) return serveAsset(req, res, asset);
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

function send(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** An asset, with its cache headers; `304` when the client's ETag still matches. */
async function serveAsset(req: IncomingMessage, res: ServerResponse, asset: Asset): Promise<void> {
  let body: string | Buffer;
  let etag: string | undefined;
  if ('file' in asset) {
    // A file that changes while being read would pair an old ETag with new bytes: take the ETag from
    // the stat before the read, so at worst the next request fetches it again.
    const st = await stat(asset.file);
    etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    if (asset.cache === 'revalidate' && fresh(req, etag)) return notModified(res, asset, etag);
    body = await readFile(asset.file);
  } else {
    body = asset.body();
    etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    if (asset.cache === 'revalidate' && fresh(req, etag)) return notModified(res, asset, etag);
  }
  send(req, res, 200, asset.contentType, body, { ...cacheHeaders(asset, etag), ...asset.headers });
}

function cacheHeaders(asset: Asset, etag: string): Record<string, string> {
  return { 'cache-control': CACHE_CONTROL[asset.cache], ...(asset.cache === 'no-store' ? {} : { etag }) };
}

/** If-None-Match lists the ETag (weak comparison, RFC 9110 §13.1.2), or is `*`. */
function fresh(req: IncomingMessage, etag: string): boolean {
  const header = req.headers['if-none-match'];
  if (!header) return false;
  const weak = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => t.trim() === '*' || weak(t) === weak(etag));
}

function notModified(res: ServerResponse, asset: Asset, etag: string): void {
  res.writeHead(304, cacheHeaders(asset, etag));
  res.end();
}

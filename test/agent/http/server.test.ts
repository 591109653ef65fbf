/**
 * The HTTP server on a real socket (port 0), spoken to with node's fetch and a raw request.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { silentLogger } from '#agent/core/log.js';
import { createMetrics, INFERENCE_BUCKETS, METRIC_PREFIX } from '#agent/http/metrics.js';
import { HttpServer, type Asset, type HealthReport, type HttpServerOptions } from '#agent/http/server.js';

const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
});

async function start(opts: Partial<HttpServerOptions> = {}): Promise<{ server: HttpServer; base: string }> {
  const server = new HttpServer({
    port: 0,
    registry: createMetrics({ defaultMetrics: false }).registry,
    health: () => ({ ok: true, reasons: [] }),
    log: silentLogger,
    ...opts,
  });
  stops.push(() => server.stop());
  await server.start();
  const { host, port } = server.address();
  return { server, base: `http://${host}:${port}` };
}

/** A raw GET (no URL normalisation on the way, unlike fetch): the status. */
function rawStatus(port: number, path: string, method = 'GET'): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}

function capturingLogger(): { log: Logger; lines: { level: number; msg: string; err?: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

describe('metrics', () => {
  test('one private registry with every metric, prefixed, and the default process metrics', async () => {
    const m = createMetrics();
    m.samples.inc({ sensor: 'vibration' }, 3);
    m.windowsScored.inc({ model: 'vibration' });
    m.alerts.inc({ kind: 'machine', model: 'vibration', state: 'raised' });
    m.ingestDropped.inc({ reason: 'bad_payload' });
    m.sensorFaults.inc({ sensor: 'voltage', fault: 'out of range' }, 4);
    m.outboxEvicted.inc({ kind: 'telemetry' });
    m.inferenceSeconds.observe({ model: 'vibration' }, 0.004);
    m.outboxDepth.set({ kind: 'alerts' }, 2);
    m.outboxBytes.set({ kind: 'alerts' }, 512);
    m.sensorUp.set({ sensor: 'vibration' }, 1);
    m.baselineDrift.set({ model: 'vibration' }, 0.25);
    m.sensorState.set({ sensor: 'vibration', state: 'stale' }, 1);

    const text = await m.registry.metrics();
    for (const line of [
      'anomaly_agent_samples_total{sensor="vibration"} 3',
      'anomaly_agent_windows_scored_total{model="vibration"} 1',
      'anomaly_agent_alerts_total{kind="machine",model="vibration",state="raised"} 1',
      'anomaly_agent_ingest_dropped_total{reason="bad_payload"} 1',
      'anomaly_agent_sensor_faults_total{sensor="voltage",fault="out of range"} 4',
      'anomaly_agent_outbox_evicted_total{kind="telemetry"} 1',
      'anomaly_agent_inference_seconds_bucket{le="0.001",model="vibration"} 0',
      'anomaly_agent_inference_seconds_bucket{le="0.005",model="vibration"} 1',
      'anomaly_agent_inference_seconds_bucket{le="2",model="vibration"} 1',
      'anomaly_agent_inference_seconds_count{model="vibration"} 1',
      'anomaly_agent_outbox_depth{kind="alerts"} 2',
      'anomaly_agent_outbox_bytes{kind="alerts"} 512',
      'anomaly_agent_sensor_up{sensor="vibration"} 1',
      'anomaly_agent_baseline_drift{model="vibration"} 0.25',
      'anomaly_agent_sensor_state{sensor="vibration",state="stale"} 1',
    ]) {
      assert.ok(text.includes(line), `missing: ${line}`);
    }
    assert.equal(INFERENCE_BUCKETS[0], 0.001);
    assert.equal(INFERENCE_BUCKETS.at(-1), 2);
    assert.match(text, /^process_cpu_user_seconds_total /m);
    assert.match(text, /^nodejs_heap_size_used_bytes /m);

    const ours = m.registry.getMetricsAsArray().map((x) => x.name).filter((n) => n.startsWith(METRIC_PREFIX));
    assert.equal(ours.length, 12);
  });

  test('registries are independent of each other and of the global one', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.samples.inc({ sensor: 'rpm' });
    assert.match(await a.registry.metrics(), /anomaly_agent_samples_total\{sensor="rpm"\} 1/);
    assert.doesNotMatch(await b.registry.metrics(), /sensor="rpm"/);
    const { register } = await import('prom-client');
    assert.equal(register.getSingleMetric('anomaly_agent_samples_total'), undefined);
  });
});

describe('HttpServer', () => {
  test('healthz: 200 ok, 503 with reasons when unhealthy', async () => {
    let report: HealthReport = { ok: true, reasons: [] };
    const { base } = await start({ health: () => report });

    let res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await res.json(), { status: 'ok' });

    report = { ok: false, reasons: ['sensor vibration stale', 'mqtt disconnected'] };
    res = await fetch(`${base}/healthz?verbose=1`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'unhealthy', reasons: ['sensor vibration stale', 'mqtt disconnected'] });
  });

  test('metrics: Prometheus text with the registry content type', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.windowsScored.inc({ model: 'rpm' }, 7);
    const { base } = await start({ registry: m.registry });
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), m.registry.contentType);
    assert.match(await res.text(), /^anomaly_agent_windows_scored_total\{model="rpm"\} 7$/m);
  });

  test('HEAD answers headers only; other methods 405; unknown paths 404', async () => {
    const { base } = await start();
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');

    const post = await fetch(`${base}/healthz`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.body?.cancel();

    for (const path of ['/', '/health', '/metrics/x', '/healthz/']) {
      const res = await fetch(base + path);
      assert.equal(res.status, 404, path);
      await res.body?.cancel();
    }
  });

  test('a throwing health function is a logged 500, and the server keeps serving', async () => {
    const { log, lines } = capturingLogger();
    let calls = 0;
    const { base } = await start({
      log,
      health: () => {
        if (++calls === 1) throw new Error('buffer registry gone');
        return { ok: true, reasons: [] };
      },
    });
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { status: 'error' });
    assert.ok(lines.some((l) => l.level === 50 && l.msg === 'http handler failed' && l.err === 'buffer registry gone'));

    const again = await fetch(`${base}/healthz`);
    assert.equal(again.status, 200);
    await again.body?.cancel();
  });

  test('a failing metrics collection is a 500 too', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const { Gauge } = await import('prom-client');
    new Gauge({
      name: 'anomaly_agent_broken',
      help: 'collect() throws',
      registers: [m.registry],
      collect() {
        throw new Error('collector broke');
      },
    });
    const { base } = await start({ registry: m.registry });
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 500);
    await res.body?.cancel();
  });

  test('binds loopback by default; stop() twice is fine and frees the port, even with keep-alive', async () => {
    const { server, base } = await start();
    assert.equal(server.name, 'http');
    assert.equal(server.address().host, '127.0.0.1');
    // A keep-alive connection left open by fetch must not hold stop() up.
    const res = await fetch(`${base}/healthz`);
    await res.text();
    const t0 = performance.now();
    await Promise.all([server.stop(), server.stop()]);
    await server.stop();
    assert.ok(performance.now() - t0 < 1000, 'stop does not wait for idle keep-alive sockets');
    assert.throws(() => server.address(), /not started/);
    await assert.rejects(fetch(`${base}/healthz`));
  });

  test('a raw request with an odd URL is a 404, not a crash', async () => {
    const { server } = await start();
    const { port } = server.address();
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '//healthz/../%zz', method: 'GET' }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 404);
  });
});

describe('HttpServer: static assets', () => {
  const dirs: string[] = [];
  const stopAll: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stopAll) await s();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const tempDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'http-static-'));
    dirs.push(d);
    return d;
  };

  async function site(): Promise<{ base: string; port: number; file: string; assets: Map<string, Asset> }> {
    const dir = await tempDir();
    const file = join(dir, 'app.js');
    await writeFile(file, 'export const answer = 42;\n');
    await writeFile(join(dir, 'secret.txt'), 'not listed\n');
    let calls = 0;
    const assets = new Map<string, Asset>([
      ['/', { contentType: 'text/html; charset=utf-8', cache: 'revalidate', headers: { 'content-security-policy': "default-src 'self'" }, body: () => '<!doctype html><title>t</title>\n' }],
      ['/js/app.js', { contentType: 'text/javascript; charset=utf-8', cache: 'revalidate', file }],
      ['/vendor/x@1.0.0/x.js', { contentType: 'text/javascript; charset=utf-8', cache: 'immutable', file }],
      ['/config.json', { contentType: 'application/json; charset=utf-8', cache: 'no-store', body: () => JSON.stringify({ n: ++calls }) }],
    ]);
    const { server, base } = await start({ assets });
    stopAll.push(() => server.stop());
    return { base, port: server.address().port, file, assets };
  }

  test('content types, cache policies, HEAD; /healthz and /metrics still there', async () => {
    const { base } = await site();
    const index = await fetch(`${base}/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.equal(index.headers.get('content-security-policy'), "default-src 'self'");
    assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
    assert.match(index.headers.get('etag') ?? '', /^"[\w-]+"$/);
    assert.equal(await index.text(), '<!doctype html><title>t</title>\n');

    const js = await fetch(`${base}/js/app.js`);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(js.headers.get('cache-control'), 'no-cache');
    assert.equal(await js.text(), 'export const answer = 42;\n');

    const vendor = await fetch(`${base}/vendor/x@1.0.0/x.js`);
    assert.equal(vendor.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    await vendor.body?.cancel();

    const cfg = await fetch(`${base}/config.json`);
    assert.equal(cfg.headers.get('cache-control'), 'no-store');
    assert.equal(cfg.headers.get('etag'), null, 'nothing to revalidate: never stored');
    assert.deepEqual(await cfg.json(), { n: 1 });
    assert.deepEqual(await (await fetch(`${base}/config.json?x=1`)).json(), { n: 2 }, 'made at each request; the query is ignored');

    const head = await fetch(`${base}/js/app.js`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '26');
    assert.equal(await head.text(), '');

    const post = await fetch(`${base}/config.json`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.body?.cancel();

    for (const path of ['/healthz', '/metrics']) {
      const res = await fetch(base + path);
      assert.equal(res.status, 200, path);
      await res.body?.cancel();
    }
  });

  test('ETag: 304 while unchanged, 200 with a new ETag once the file changes', async () => {
    const { base, file } = await site();
    const first = await fetch(`${base}/js/app.js`);
    const etag = first.headers.get('etag')!;
    await first.text();
    assert.match(etag, /^W\/"/);
    const again = await fetch(`${base}/js/app.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get('etag'), etag);
    assert.equal(again.headers.get('cache-control'), 'no-cache');
    assert.equal(await again.text(), '');
    const listed = await fetch(`${base}/js/app.js`, { headers: { 'if-none-match': `"other", ${etag.slice(2)}` } });
    assert.equal(listed.status, 304, 'weak comparison, in a list');

    await writeFile(file, 'export const answer = 43;\n');
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    const changed = await fetch(`${base}/js/app.js`, { headers: { 'if-none-match': etag } });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.get('etag'), etag);
    assert.equal(await changed.text(), 'export const answer = 43;\n');

    const index = await fetch(`${base}/`);
    const tag = index.headers.get('etag')!;
    await index.text();
    assert.equal((await fetch(`${base}/`, { headers: { 'if-none-match': tag } })).status, 304);
  });

  test('only listed paths are served: traversal, encodings and near misses are 404', async () => {
    const { port } = await site();
    for (const path of [
      '/secret.txt',
      '/js/../secret.txt',
      '/js/%2e%2e/secret.txt',
      '/js/..%2fsecret.txt',
      '/js/app.js/',
      '/js/app.js%00',
      '/js//app.js',
      '/JS/app.js',
      '/js\\app.js',
      '/vendor/x@1.0.0/../../js/app.js',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/index.html',
      '/config.json/',
    ]) {
      assert.equal(await rawStatus(port, path), 404, path);
    }
    assert.equal(await rawStatus(port, '/js/app.js'), 200);
  });

  test('a listed file that has gone is a logged 500, and the server keeps serving', async () => {
    const { log, lines } = capturingLogger();
    const dir = await tempDir();
    const assets = new Map<string, Asset>([['/gone.js', { contentType: 'text/javascript; charset=utf-8', cache: 'revalidate', file: join(dir, 'never-written.js') }]]);
    const { server, base } = await start({ assets, log });
    stopAll.push(() => server.stop());
    const res = await fetch(`${base}/gone.js`);
    assert.equal(res.status, 500);
    await res.body?.cancel();
    assert.ok(lines.some((l) => l.level === 50 && l.msg === 'http handler failed'));
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
  });
});

/**
 * The visualizer's asset table (site.ts) served by the real HttpServer, and the web.* config keys.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, loadConfig, redacted } from '#agent/config/load.js';
import { silentLogger } from '#agent/core/log.js';
import { createMetrics } from '#agent/http/metrics.js';
import { HttpServer } from '#agent/http/server.js';
import { createSite, type PageConfig } from '#agent/web/site.js';

const require = createRequire(import.meta.url);
const version = (pkg: string) => (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version: string }).version;

describe('web site on the HTTP server', () => {
  let cfg: PageConfig = { brokerUrl: '', wsPort: 8083, username: 'viewer', password: 's3cret', prefix: 'anomaly' };
  const server = new HttpServer({
    port: 0,
    registry: createMetrics({ defaultMetrics: false }).registry,
    health: () => ({ ok: true, reasons: [] }),
    log: silentLogger,
    assets: createSite({ config: () => cfg }),
  });
  let base = '';
  after(() => server.stop());

  test('the page: its import map names the installed mqtt and uplot, and the CSP allows exactly that inline script', async () => {
    await server.start();
    base = `http://127.0.0.1:${server.address().port}`;
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    const html = await res.text();
    const map = /<script type="importmap">(.*?)<\/script>/s.exec(html)?.[1];
    assert.ok(map, 'an import map');
    assert.deepEqual(JSON.parse(map), {
      imports: { mqtt: `./vendor/mqtt@${version('mqtt')}/mqtt.esm.js`, uplot: `./vendor/uplot@${version('uplot')}/uPlot.esm.js` },
    });
    assert.ok(html.indexOf('type="importmap"') < html.indexOf('type="module"'), 'the import map comes before the first module');
    assert.ok(html.includes(`href="./vendor/uplot@${version('uplot')}/uPlot.min.css"`));
    const csp = res.headers.get('content-security-policy') ?? '';
    const hash = createHash('sha256').update(map).digest('base64');
    assert.ok(csp.includes(`script-src 'self' 'sha256-${hash}'`), csp);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /connect-src 'self' ws: wss:/);
    // Every URL in the page is relative: it works under a reverse proxy's sub-path too.
    for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) assert.match(m[1]!, /^\.\//, m[1]);
  });

  test('every script and stylesheet the page loads is served, with its type; vendor files are the packages’ own', async () => {
    const html = await (await fetch(`${base}/`)).text();
    const urls = [...html.matchAll(/(?:src|href)="\.\/([^"]+)"/g)].map((m) => m[1]!);
    const map = JSON.parse(/<script type="importmap">(.*?)<\/script>/s.exec(html)![1]!) as { imports: Record<string, string> };
    urls.push(...Object.values(map.imports).map((u) => u.slice(2)));
    // The page's modules, followed through their imports.
    const seen = new Set<string>();
    const queue = urls.filter((u) => u.endsWith('.js'));
    while (queue.length) {
      const u = queue.shift()!;
      if (seen.has(u)) continue;
      seen.add(u);
      const res = await fetch(`${base}/${u}`);
      assert.equal(res.status, 200, u);
      assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8', u);
      const text = await res.text();
      if (u.startsWith('vendor/')) continue;
      for (const m of text.matchAll(/^import .*? from '([^']+)';$/gm)) {
        const spec = m[1]!;
        if (!spec.startsWith('.')) {
          assert.ok(spec in map.imports, `${u} imports '${spec}', which the import map does not name`);
          continue;
        }
        queue.push(new URL(spec, `http://x/${u}`).pathname.slice(1));
      }
    }
    assert.ok(seen.has('js/web/page/app.js') && seen.has('js/core/topics.js') && seen.has('js/web/page/fleet.js'), [...seen].join(', '));
    for (const u of urls.filter((x) => !x.endsWith('.js'))) {
      const res = await fetch(`${base}/${u}`);
      assert.equal(res.status, 200, u);
      await res.body?.cancel();
    }
    const mqtt = await fetch(`${base}/${map.imports.mqtt!.slice(2)}`);
    assert.equal(mqtt.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const own = readFileSync(join(dirname(require.resolve('mqtt/package.json')), 'dist', 'mqtt.esm.js'));
    assert.ok(Buffer.from(await mqtt.arrayBuffer()).equals(own), 'the installed mqtt.esm.js, byte for byte');
  });

  test('/config.json: web.* and the broker port as of the request, never cached; tests and server code are not served', async () => {
    let res = await fetch(`${base}/config.json`);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await res.json(), cfg);
    cfg = { ...cfg, wsPort: null, brokerUrl: 'wss://broker.plant.example/mqtt' };
    res = await fetch(`${base}/config.json`);
    assert.deepEqual(await res.json(), cfg);
    for (const path of ['/js/web/site.js', '/js/web/series.test.js', '/js/web/page/app.js.map', '/js/web/chromium.js', '/js/http/server.js', '/js/config/schema.js']) {
      const r = await fetch(base + path);
      assert.equal(r.status, 404, path);
      await r.body?.cancel();
    }
  });
});

describe('web.* configuration', () => {
  test('defaults: served, broker URL from the page host, no credentials', () => {
    assert.deepEqual(loadConfig({ env: {} }).web, { enabled: true, brokerUrl: '', username: '', password: '' });
  });

  test('flags and env set them; the password is redacted when printed', () => {
    const c = loadConfig({ env: { ANOMALY_WEB_PASSWORD: 'pw' }, argv: ['--web-enabled', 'false', '--web-broker-url', 'wss://broker.example:8884/mqtt', '--web-username', 'viewer'] });
    assert.deepEqual(c.web, { enabled: false, brokerUrl: 'wss://broker.example:8884/mqtt', username: 'viewer', password: 'pw' });
    assert.equal(redacted(c).web.password, '[redacted]');
    assert.equal(redacted(c).web.username, 'viewer');
  });

  test('web.brokerUrl: a ws:// or wss:// URL without credentials in it', () => {
    for (const [url, re] of [
      ['mqtt://broker:1883', /^web\.brokerUrl: must be empty .* or a URL like ws:\/\/host:8083/],
      ['broker:8083', /^web\.brokerUrl: must be empty/],
      ['ws://viewer:pw@broker:8083', /^web\.brokerUrl: must not carry user:password@; set web\.username and web\.password/],
    ] as const) {
      try {
        loadConfig({ env: {}, argv: ['--web-broker-url', url] });
        assert.fail(`${url} accepted`);
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.problems.length, 1, err.problems.join('\n'));
        assert.match(err.problems[0]!, re);
        assert.ok(!err.message.includes(':pw@'), 'a password in a refused URL is not printed');
      }
    }
  });
});

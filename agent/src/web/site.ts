/**
 * The web visualizer's files, as the table of assets the HTTP server serves (http/server.ts).
 *
 * - `/` — page/index.html, with the import map that names where `mqtt` and `uplot` come from
 *   written in (and allowed by the Content-Security-Policy through its hash);
 * - `/style.css`, `/favicon.svg` — beside index.html in the package (agent/src/web/page/);
 * - `/js/…` — the page's modules as tsc built them, laid out as under dist/agent/src/ so that their
 *   relative imports (`../../core/topics.js`, the one topic module) resolve in the browser too;
 * - `/vendor/<package>@<version>/…` — mqtt.js's browser ESM build and uPlot, read from the installed
 *   packages (found through Node's resolution, at the files their package.json declares): versioned
 *   URLs, so browsers may cache them for good;
 * - `/config.json` — where the page connects and as whom (web.* config), never cached.
 *
 * Every URL is relative in the page, so it also works behind a reverse proxy under a sub-path.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../core/paths.js';
import type { Asset } from '../http/server.js';

/** What /config.json tells the page. */
export interface PageConfig {
  /** web.brokerUrl; '' = ws://<page host>:<wsPort>. */
  brokerUrl: string;
  /** The embedded broker's WebSocket port, or null when there is none (external broker, or wsPort 0). */
  wsPort: number | null;
  username: string;
  password: string;
  /** mqtt.prefix: topics are <prefix>/<dev>/…. */
  prefix: string;
}

export interface SiteOptions {
  /** Made at each request of /config.json (the broker's port is only known once it listens). */
  config: () => PageConfig;
}

/** The page's HTML, CSS and icon: in the package, beside the page's TypeScript sources. */
export const PAGE_STATIC_DIR = join(PACKAGE_ROOT, 'agent', 'src', 'web', 'page');
/** dist/agent/src/: the compiled tree the page's modules are served from. */
const COMPILED_ROOT = fileURLToPath(new URL('../', import.meta.url));
/** The page's modules, relative to COMPILED_ROOT; a test module there is not part of the page. */
const PAGE_MODULES_DIR = 'web/page';
const SHARED_MODULES = ['core/topics.js'];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
};

function contentType(file: string): string {
  const ext = file.slice(file.lastIndexOf('.'));
  const t = TYPES[ext];
  if (!t) throw new Error(`web: no content type for ${file}`);
  return t;
}

const IMPORT_MAP_MARK = '<!-- importmap -->';

interface VendorFile {
  /** Bare specifier the page imports (`mqtt`), or undefined for a stylesheet. */
  specifier?: string;
  url: string;
  file: string;
}

/**
 * A file of an installed package, where its package.json says it is: `field` walks the manifest
 * (e.g. exports → . → browser → import). Fails naming the package when the field or file is missing.
 */
function packageFile(pkg: string, field: string[]): { file: string; version: string } {
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  let v: unknown = manifest;
  for (const k of field) v = (v as Record<string, unknown> | undefined)?.[k];
  if (typeof v !== 'string') throw new Error(`web: ${pkg}'s package.json has no ${field.join(' → ')}`);
  const file = join(dirname(manifestPath), v);
  if (!existsSync(file)) throw new Error(`web: ${pkg}'s ${field.join(' → ')} (${file}) is missing`);
  return { file, version: String(manifest.version) };
}

function vendorFiles(): VendorFile[] {
  const mqtt = packageFile('mqtt', ['exports', '.', 'browser', 'import']);
  const uplot = packageFile('uplot', ['module']);
  const css = join(dirname(uplot.file), 'uPlot.min.css');
  if (!existsSync(css)) throw new Error(`web: uplot's stylesheet ${css} is missing`);
  const at = (name: string, version: string, file: string) => `vendor/${name}@${version}/${file.slice(file.lastIndexOf('/') + 1)}`;
  return [
    { specifier: 'mqtt', url: at('mqtt', mqtt.version, mqtt.file), file: mqtt.file },
    { specifier: 'uplot', url: at('uplot', uplot.version, uplot.file), file: uplot.file },
    { url: at('uplot', uplot.version, css), file: css },
  ];
}

/** The import map, as the exact text of its <script> element (the CSP hash covers these bytes). */
function importMapText(vendor: VendorFile[]): string {
  const imports = Object.fromEntries(vendor.filter((v) => v.specifier).map((v) => [v.specifier!, `./${v.url}`]));
  return JSON.stringify({ imports });
}

function csp(importMap: string): string {
  const hash = createHash('sha256').update(importMap).digest('base64');
  return [
    "default-src 'none'",
    `script-src 'self' 'sha256-${hash}'`,
    // uPlot positions its legend and cursor with inline styles.
    "style-src 'self' 'unsafe-inline'",
    // The broker may be any host (web.brokerUrl).
    "connect-src 'self' ws: wss:",
    "img-src 'self' data:",
    // mqtt.js runs its keepalive timer in a Worker made from a blob, which background tabs do not throttle.
    "worker-src blob:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The visualizer's asset table. Throws, naming what is missing, when a file cannot be found. */
export function createSite(o: SiteOptions): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const vendor = vendorFiles();
  const importMap = importMapText(vendor);
  const template = join(PAGE_STATIC_DIR, 'index.html');
  if (!readFileSync(template, 'utf8').includes(IMPORT_MAP_MARK)) throw new Error(`web: ${template} lacks the ${IMPORT_MAP_MARK} mark`);
  const css = vendor.find((v) => v.url.endsWith('.css'))!;
  const index: Asset = {
    contentType: TYPES['.html']!,
    cache: 'revalidate',
    headers: { 'content-security-policy': csp(importMap), 'referrer-policy': 'no-referrer' },
    body: () =>
      readFileSync(template, 'utf8')
        .replace(IMPORT_MAP_MARK, `<script type="importmap">${importMap}</script>`)
        .replace('<!-- vendor-css -->', `<link rel="stylesheet" href="./${css.url}">`),
  };
  assets.set('/', index);
  assets.set('/index.html', index);
  for (const name of ['style.css', 'favicon.svg']) assets.set(`/${name}`, { file: join(PAGE_STATIC_DIR, name), contentType: contentType(name), cache: 'revalidate' });

  const pageModules = readdirSync(join(COMPILED_ROOT, PAGE_MODULES_DIR)).filter((f) => f.endsWith('.js') && !f.endsWith('.test.js'));
  if (!pageModules.includes('app.js')) throw new Error(`web: ${join(COMPILED_ROOT, PAGE_MODULES_DIR, 'app.js')} is missing: build first`);
  for (const rel of [...pageModules.map((f) => `${PAGE_MODULES_DIR}/${f}`), ...SHARED_MODULES]) {
    assets.set(`/js/${rel}`, { file: join(COMPILED_ROOT, rel), contentType: TYPES['.js']!, cache: 'revalidate' });
  }
  for (const v of vendor) assets.set(`/${v.url}`, { file: v.file, contentType: contentType(v.file), cache: 'immutable' });
  assets.set('/config.json', { contentType: TYPES['.json']!, cache: 'no-store', body: () => JSON.stringify(o.config()) + '\n' });
  return assets;
}

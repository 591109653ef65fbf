/**
 * The web visualizer in a real headless Chromium (the system's, through playwright-core), against
 * the compiled daemon with its embedded broker, replaying a labelled 50 Hz seed file with an obvious
 * vibration fault at ×10, looped:
 * - the page loads from the daemon's HTTP server with no script error, connects over WebSocket, and
 *   shows the device online with its models and sensor health;
 * - live data moves: the readings received and the points drawn grow, and the charts' pixels change;
 * - an alert appears after a replayed fault: the raise the daemon logged, with its top features,
 *   then its clear; the score chart shades the episode;
 * - on a phone-sized screen nothing runs off the side;
 * - a broker restart is survived: the daemon (and its broker) stops — the page says so — and a new
 *   one starts on the same ports; the page reconnects by itself and the data moves again.
 * And against a broker that wants a login (aedes over WebSocket, in process): the page connects with
 * web.username / web.password from /config.json to the web.brokerUrl given there, and a wrong
 * password shows as a refused connection instead of an empty page.
 * And with a live feed the test publishes itself (aedes in process; sample time is wall time): a
 * chart brought on screen by a jump shows the current window, frame after frame, or nothing for a
 * frame or two, never the picture of when it was last drawn; no tick label of any chart runs off
 * its canvas.
 * A screenshot is taken every run (to a temporary directory; to docs/visualizer.png and
 * docs/visualizer-phone.png when UPDATE_SCREENSHOT=1).
 *
 * Skipped only when no Chromium executable can be found (CI installs one).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { Aedes, type AedesOptions, type AuthenticateError } from 'aedes';
import { connectAsync } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { silentLogger } from '#agent/core/log.js';
import { createMetrics } from '#agent/http/metrics.js';
import { HttpServer } from '#agent/http/server.js';
import { topic, topicFilter, type LearnPayload, type ScorePayload, type StatusPayload, type TelemetryPayload } from '#agent/core/topics.js';
import { Daemon, freePort, killAll, RAW_DATA, type Flags } from '../daemon/daemon-fixture.js';
import { chromiumMissing, launchChromium } from './chromium.js';
import { createSite, type PageConfig } from '#agent/web/site.js';

const DEV = 'viz-1';
const UPDATE = process.env.UPDATE_SCREENSHOT === '1';
/**
 * The 50 Hz profile. rpm_1200's test_02 has an obvious looseness episode (vibration) 59–79 s into
 * its 236 s; at ×10 that is 6 s after the start, and again every ~24 s with the loop.
 */
const PROFILE = 'rpm_1200';
const FILE = join(RAW_DATA, PROFILE, 'test', 'test_02.csv');
/**
 * One model at ×10 keeps the daemon light enough on a busy CI machine (its HTTP server shares the
 * event loop with scoring); the committed screenshot shows two, at half the speed.
 */
const MODELS = UPDATE ? ['vibration', 'multi-feature'] : ['vibration'];
const SPEED = UPDATE ? 5 : 10;
const PNG_MAGIC = '89504e470d0a1a0a';

after(killAll);

interface Ports {
  http: number;
  broker: number;
  ws: number;
}

function daemonFlags(ports: Ports, outbox: string): Flags {
  return {
    'device-id': DEV,
    'models-profile': PROFILE,
    'models-enabled': MODELS.join(','),
    'source-replay-file': FILE,
    'source-replay-speed': SPEED,
    'source-replay-loop': true,
    'http-port': ports.http,
    'broker-port': ports.broker,
    'broker-ws-port': ports.ws,
    'outbox-dir': outbox,
    'publish-scores': true,
  };
}

/** What the page shows, read through its data- attributes. */
function readPage(page: Page) {
  return page.evaluate(() => {
    const fig = (sel: string) => document.querySelector<HTMLElement>(sel)?.dataset ?? {};
    return {
      conn: document.querySelector<HTMLElement>('#conn')?.dataset.state,
      device: document.querySelector<HTMLElement>('#devices li[data-device]')?.dataset.state,
      rows: Number(fig('figure[data-sensor="vibration"]').rows ?? 0),
      rpmRows: Number(fig('figure[data-sensor="rpm"]').rows ?? 0),
      points: Number(fig('figure[data-sensor="vibration"]').points ?? 0),
      windows: Number(fig('figure[data-model="vibration"]').windows ?? 0),
      episodes: Number(fig('figure[data-model="vibration"]').episodes ?? 0),
      vibrationAlerting: document.querySelector('figure[data-model="vibration"]')?.classList.contains('alerting') ?? false,
      alerts: [...document.querySelectorAll<HTMLTableRowElement>('#alerts tbody tr')].map((tr) => ({
        id: tr.dataset.id,
        state: tr.dataset.state,
        model: tr.querySelector('.model')?.textContent,
        features: tr.querySelector('.features')?.textContent,
        score: tr.querySelector('.score')?.textContent,
        duration: tr.querySelector('.duration')?.textContent,
      })),
    };
  });
}

async function waitPage<T>(page: Page, what: string, probe: (s: Awaited<ReturnType<typeof readPage>>) => T | undefined | false, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: Awaited<ReturnType<typeof readPage>> | undefined;
  for (;;) {
    last = await readPage(page);
    const v = probe(last);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for the page: ${what}; it shows ${JSON.stringify({ ...last, alerts: last.alerts.length })}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The accel_x chart's pixels, to tell that drawing happens. */
function canvasPixels(page: Page): Promise<string> {
  return page.evaluate(() => document.querySelector<HTMLCanvasElement>('figure[data-sensor="vibration"] canvas')?.toDataURL() ?? '');
}

/**
 * Tick labels cut off by the edge of their chart: every drawn chart's canvas, read back, must have no
 * ink on its outermost rows and columns (nothing a chart draws belongs there; a label placed outside
 * the plot, like a decade below the score axis's range, shows there as the "- -" of its cut top).
 */
function clippedLabels(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('.plot:not([data-stale])')].flatMap((plot) => {
      const fig = plot.closest('figure')!;
      const name = `${fig.dataset.sensor ? 'sensor' : 'model'} ${fig.dataset.sensor ?? fig.dataset.model} #${[...fig.querySelectorAll('.plot')].indexOf(plot)}`;
      const canvas = plot.querySelector('canvas');
      if (!canvas) return [`${name}: no canvas`];
      const ctx = canvas.getContext('2d')!;
      const { width: w, height: h } = canvas;
      const ink = (x: number, y: number, cw: number, ch: number) => {
        const d = ctx.getImageData(x, y, cw, ch).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
        return n;
      };
      const edges = { top: ink(0, 0, w, 1), bottom: ink(0, h - 1, w, 1), left: ink(0, 0, 1, h), right: ink(w - 1, 0, 1, h) };
      return Object.entries(edges)
        .filter(([, n]) => n > 0)
        .map(([edge, n]) => `${name}: ${n} px of ink on the ${edge} edge of its ${w}×${h} canvas`);
    }),
  );
}

/** What one chart on screen showed in one frame: its .plot's data- attributes (see page/charts.ts). */
interface PlotFrame {
  name: string;
  sensor: boolean;
  stale: boolean;
  /** Computed visibility of the uPlot inside. */
  visibility: string;
  /** Date.now() in the page at that frame. */
  now: number;
  xMin: number;
  xMax: number;
  traceFrom: number;
  traceTo: number;
}

/** Scrolls to `y` at once, then reads every chart on screen in each of the next `frames` frames. */
function jumpAndWatch(page: Page, y: number, frames: number): Promise<PlotFrame[][]> {
  return page.evaluate(
    async ({ y, frames }) => {
      const read = (): PlotFrame[] =>
        [...document.querySelectorAll<HTMLElement>('.plot')]
          .filter((p) => {
            const r = p.getBoundingClientRect();
            return r.bottom > 0 && r.top < innerHeight;
          })
          .map((p) => {
            const fig = p.closest('figure')!;
            const d = p.dataset;
            return {
              name: `${fig.dataset.sensor ? 'sensor' : 'model'} ${fig.dataset.sensor ?? fig.dataset.model} #${[...fig.querySelectorAll('.plot')].indexOf(p)}`,
              sensor: fig.dataset.sensor !== undefined,
              stale: d.stale !== undefined,
              visibility: getComputedStyle(p.querySelector('.uplot')!).visibility,
              now: Date.now(),
              xMin: Number(d.xMin),
              xMax: Number(d.xMax),
              traceFrom: Number(d.traceFrom),
              traceTo: Number(d.traceTo),
            };
          });
      scrollTo(0, y);
      const out: PlotFrame[][] = [];
      // Read after the page's own frame callback (registered first, it runs first): what this frame paints.
      for (let i = 0; i < frames; i++) out.push(await new Promise<PlotFrame[]>((r) => requestAnimationFrame(() => r(read()))));
      return out;
    },
    { y, frames },
  );
}

async function screenshot(page: Page, dir: string, name: string, fullPage: boolean): Promise<string> {
  const path = UPDATE ? join(PACKAGE_ROOT, 'docs', name) : join(dir, name);
  await page.screenshot({ path, fullPage });
  const png = await readFile(path);
  assert.equal(png.subarray(0, 8).toString('hex'), PNG_MAGIC, `${path} is a PNG`);
  return path;
}

/**
 * A broker and the page without a daemon: aedes in process behind a WebSocket listener on loopback,
 * and the daemon's HTTP server serving the page, its /config.json made by `config` from the
 * broker's URL at each request.
 */
async function brokerAndPage(config: (wsUrl: string) => PageConfig, opts: AedesOptions = {}) {
  const aedes = await Aedes.createBroker(opts);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws, req) => aedes.handle(createWebSocketStream(ws), req));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const wsUrl = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const http = new HttpServer({ port: 0, registry: createMetrics({ defaultMetrics: false }).registry, health: () => ({ ok: true, reasons: [] }), log: silentLogger, assets: createSite({ config: () => config(wsUrl) }) });
  await http.start();
  return {
    aedes,
    wsUrl,
    pageUrl: `http://127.0.0.1:${http.address().port}/`,
    async close(): Promise<void> {
      await http.stop();
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      await new Promise<void>((r) => aedes.close(() => r()));
    },
  };
}

describe('web visualizer in headless Chromium', { skip: chromiumMissing() }, () => {
  test('loads, shows the device online, live data moving, an alert after a replayed fault, and survives a broker restart', { timeout: 240_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'anomaly-viz-'));
    let browser: Browser | undefined;
    try {
      const ports: Ports = { http: await freePort(), broker: await freePort(), ws: await freePort() };
      const flags = daemonFlags(ports, join(dir, 'outbox'));
      let daemon = new Daemon('agent', flags);
      await daemon.started(60_000);

      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1280, height: UPDATE ? 1500 : 1300 } });
      // A loaded machine: the daemon serves the page from the event loop it scores on.
      page.setDefaultTimeout(60_000);
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console: ${m.text()}`);
      });
      const res = await page.goto(`http://127.0.0.1:${ports.http}/`);
      assert.equal(res?.status(), 200);
      assert.equal(await page.title(), 'anomaly-agent · live');

      // Connected, the device online with its models and every sensor's health.
      await waitPage(page, 'connected, device online', (s) => s.conn === 'connected' && s.device === 'online', 20_000);
      assert.equal(await page.locator('#device-name').textContent(), DEV);
      assert.deepEqual((await page.locator('#device-meta .chip:not([data-sensor-health])').allTextContents()).sort(), [...MODELS].sort());
      assert.deepEqual((await page.locator('#device-meta [data-sensor-health]').allTextContents()).sort(), ['rpm: ok', 'temperature: ok', 'vibration: ok', 'voltage: ok']);

      // Live data moves: readings received and drawn, scores too, and the chart's pixels change.
      const first = await waitPage(page, 'vibration readings drawn', (s) => s.rows > 0 && s.points > 0 && s.windows > 0 && s, 20_000);
      const before = await canvasPixels(page);
      const moved = await waitPage(page, 'more readings and scores', (s) => s.rows > first.rows + 200 && s.windows > first.windows && s, 20_000);
      assert.ok(moved.points > 0);
      // 50 Hz × 20 s (1000 readings) on a ~460 px chart: decimated, never more than two points a pixel.
      const width = await page.locator('figure[data-sensor="vibration"] .plot').first().evaluate((e) => e.clientWidth);
      assert.ok(moved.points <= 2 * (width + 2), `points drawn ${moved.points} on ${width} px`);
      assert.notEqual(await canvasPixels(page), before, 'the vibration chart is redrawn as data comes');
      const cost = await page.evaluate(() => ({ fps: Number(document.body.dataset.fps), frameMs: Number(document.body.dataset.frameMs) }));
      t.diagnostic(`charts: ${cost.fps} frames/s, ${cost.frameMs} ms of script per frame (6 channels and ${MODELS.length} model(s), readings at ${SPEED} × 50 Hz)`);
      const sensors = await page.locator('figure[data-sensor]').evaluateAll((fs) => fs.map((f) => (f as HTMLElement).dataset.sensor));
      assert.deepEqual(sensors, ['rpm', 'temperature', 'vibration', 'voltage']);
      assert.equal(await page.locator('figure[data-sensor="vibration"] canvas').count(), 3, 'one chart per vibration channel');

      // A phone, opened now to have the same history at screenshot time: one column, nothing wider
      // than the screen, text readable without zoom.
      const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      phone.setDefaultTimeout(60_000);
      await phone.goto(`http://127.0.0.1:${ports.http}/`);
      await waitPage(phone, 'phone: device online with data', (s) => s.device === 'online' && s.rows > 0, 20_000);
      // Charts below the fold are not drawn; scrolled into view, they catch up.
      await phone.locator('figure[data-sensor="vibration"]').scrollIntoViewIfNeeded();
      await waitPage(phone, 'phone: vibration drawn once in view', (s) => s.points > 0, 20_000);
      await phone.evaluate(() => scrollTo(0, 0));
      const layout = await phone.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        font: parseFloat(getComputedStyle(document.body).fontSize),
        smallest: Math.min(...[...document.querySelectorAll('figcaption, #alerts td, #devices button')].map((e) => parseFloat(getComputedStyle(e).fontSize))),
      }));
      assert.ok(layout.scrollWidth <= 390, `the page is ${layout.scrollWidth} px wide on a 390 px screen`);
      assert.ok(layout.font >= 16 && layout.smallest >= 13, `font sizes: body ${layout.font} px, smallest ${layout.smallest} px`);

      // An alert after a replayed fault: the raise the daemon logged, top features, score, the model
      // shown alerting; then its clear. A raise seen live: a page opened mid-episode only gets the
      // clear, and the loop brings another.
      const seenRaised = (ids: string[]) => (s: Awaited<ReturnType<typeof readPage>>) =>
        s.vibrationAlerting && s.alerts.find((a) => a.model === 'vibration' && a.state === 'raised' && !ids.includes(a.id!));
      const raised = await waitPage(page, 'a vibration alert raised', seenRaised([]), 90_000);
      const logged = daemon.alerts().filter((a) => a.model === 'vibration' && a.state === 'raised');
      assert.ok(
        logged.some((a) => a.id === raised.id),
        `the page's alert ${raised.id} is one the daemon raised (${logged.map((a) => a.id).join(', ')})`,
      );
      assert.match(raised.features ?? '', /accel_[xyz] \d+%/);
      assert.match(raised.score ?? '', /× threshold/);
      const cleared = await waitPage(page, `alert ${raised.id} cleared`, (s) => s.alerts.find((a) => a.id === raised.id && a.state === 'cleared'), 60_000);
      assert.match(cleared.duration ?? '', /^\d+ s$/, 'a raised and cleared alert has a duration');
      const shown = await readPage(page);
      assert.ok(shown.episodes >= 1, 'the score chart has the episode to shade');
      if (UPDATE) {
        // For the picture: one more loop, so the charts have some history.
        const next = await waitPage(page, 'another vibration alert', seenRaised([raised.id!]), 120_000);
        await waitPage(page, `alert ${next.id} cleared`, (s) => s.alerts.find((a) => a.id === next.id && a.state === 'cleared'), 60_000);
      }
      assert.deepEqual(await clippedLabels(page), [], 'no tick label cut off by the edge of its chart');
      const shot = await screenshot(page, dir, 'visualizer.png', true);
      t.diagnostic(`screenshot: ${shot}`);

      t.diagnostic(`phone screenshot: ${await screenshot(phone, dir, 'visualizer-phone.png', false)}`);
      await phone.close();

      // Broker restart: the daemon and its embedded broker stop; the page notices.
      const beforeStop = await readPage(page);
      assert.deepEqual(errors, [], 'no script error while running');
      const stop = await daemon.stop('SIGTERM', 20_000);
      assert.equal(stop.code, 0);
      // The retained `offline` the agent sends on its way out may or may not get through its own
      // broker's shutdown; either way the page shows the device's state as the last one known.
      await waitPage(page, 'the page notices the broker is gone', (s) => s.conn === 'reconnecting', 15_000);
      assert.match((await page.locator('#devices li .state').first().evaluate((e) => e.textContent + getComputedStyle(e, '::after').content)) ?? '', /^(online|offline)( · \d+ alerts?)?" \(last known\)"$/);

      // A new daemon on the same ports; the page reconnects by itself and data moves again.
      daemon = new Daemon('agent (restarted)', flags);
      await daemon.started(60_000);
      await waitPage(page, 'reconnected, device online again', (s) => s.conn === 'connected' && s.device === 'online', 30_000);
      const again = await readPage(page);
      await waitPage(page, 'data moving after the restart', (s) => s.rows > Math.max(again.rows, beforeStop.rows) + 200 && s.points > 0 && s.windows > again.windows, 30_000);
      // What Chromium itself logs about a WebSocket whose server went away is not the page's error.
      const unexpected = errors.filter((e) => !/WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+[^']*' failed|WebSocket is already in CLOSING or CLOSED state/.test(e));
      assert.deepEqual(unexpected, [], 'no script error across the restart (failed reconnect attempts aside)');
      await daemon.stop('SIGTERM', 20_000);
    } finally {
      await browser?.close();
      await killAll();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('connects with the credentials from config.json to web.brokerUrl; a wrong password is shown as refused', { timeout: 60_000 }, async () => {
    const logins: { clientId: string; username: string | undefined; ok: boolean }[] = [];
    let pagePassword = 'right';
    const { wsUrl, pageUrl, close } = await brokerAndPage((url) => ({ brokerUrl: url, wsPort: null, username: 'viewer', password: pagePassword, prefix: 'site/a' }), {
      authenticate(client, username, password, done) {
        const ok = (username === 'viewer' && password?.toString() === 'right') || (username === 'agent' && password?.toString() === 'agent-pw');
        logins.push({ clientId: client.id, username, ok });
        if (ok) return done(null, true);
        const err = new Error('bad username or password') as AuthenticateError;
        err.returnCode = 4;
        done(err, false);
      },
    });
    const agent = await connectAsync(wsUrl, { username: 'agent', password: 'agent-pw', reconnectPeriod: 0 });
    let browser: Browser | undefined;
    try {
      const status: StatusPayload = { v: 1, t: Date.now(), state: 'online', version: 'test', models: [], sensors: { rpm: 'ok' } };
      await agent.publishAsync(topic('site/a', 'cred-1', 'status'), JSON.stringify(status), { qos: 1, retain: true });

      browser = await launchChromium();
      const page = await browser.newPage();
      await page.goto(pageUrl);
      await waitPage(page, 'connected with credentials, device online', (s) => s.conn === 'connected' && s.device === 'online', 20_000);
      assert.equal(await page.locator('#broker').textContent(), wsUrl);
      assert.ok(
        logins.some((l) => l.clientId.startsWith('anomaly-viz-') && l.username === 'viewer' && l.ok),
        JSON.stringify(logins),
      );
      // Telemetry of the selected device reaches its chart.
      // Telemetry is QoS 0 and not retained: sent until the page, subscribed once it selected the device, shows it.
      await waitPage(
        page,
        'telemetry from the agent drawn',
        (s) => {
          const t0 = Date.now();
          const tele: TelemetryPayload = { v: 1, t: t0, t0, periodMs: 50, channels: ['rpm'], ts: [t0, t0 + 50, t0 + 100], values: [[600], [601], [602]] };
          void agent.publishAsync(topic('site/a', 'cred-1', 'telemetry', 'rpm'), JSON.stringify(tele));
          return s.device === 'online' && Number(s.rpmRows) >= 3;
        },
        20_000,
      );

      // A wrong password: refused, and the page says so.
      pagePassword = 'wrong';
      await page.reload();
      await waitPage(page, 'refused', (s) => s.conn === 'error', 20_000);
      assert.equal(await page.locator('#conn').textContent(), 'refused');
      assert.match((await page.locator('#conn').getAttribute('title')) ?? '', /(not authori[sz]ed|bad user ?name or password).*web\.username and web\.password/i);
      // No retry with credentials that were refused (mqtt.js would try again every 2 s).
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(logins.filter((l) => l.username === 'viewer' && !l.ok).length, 1, JSON.stringify(logins));
      assert.equal((await readPage(page)).conn, 'error');
    } finally {
      await browser?.close();
      await agent.endAsync(true);
      await close();
    }
  });

  test('a learn run: a progress bar with phase, percent and ETA, then the reason a baseline was refused', { timeout: 60_000 }, async () => {
    const { wsUrl, pageUrl, close } = await brokerAndPage((url) => ({ brokerUrl: url, wsPort: null, username: '', password: '', prefix: 'anomaly' }));
    const agent = await connectAsync(wsUrl, { reconnectPeriod: 0 });
    let browser: Browser | undefined;
    try {
      const status: StatusPayload = { v: 1, t: Date.now(), state: 'online', version: 'test', models: [], sensors: { rpm: 'ok' } };
      await agent.publishAsync(topic('anomaly', 'learn-1', 'status'), JSON.stringify(status), { qos: 1, retain: true });
      const run: LearnPayload = { v: 1, t: Date.now(), id: 'learn-a', phase: 'collecting', percent: 42, etaS: 700, startedAt: Date.now(), minutes: 30, reason: 'bearing replaced' };
      await agent.publishAsync(topic('anomaly', 'learn-1', 'learn'), JSON.stringify(run), { qos: 1, retain: true });
      browser = await launchChromium();
      const page = await browser.newPage();
      await page.goto(pageUrl);
      const learn = () => page.evaluate(() => {
        const dd = document.querySelector<HTMLElement>('#learn');
        return dd ? { phase: dd.dataset.phase, bar: dd.querySelector('progress')?.value, text: dd.querySelector('.learn-text')?.textContent } : undefined;
      });
      const deadline = Date.now() + 20_000;
      let seen = await learn();
      while (seen?.phase !== 'collecting' && Date.now() < deadline) seen = (await new Promise((r) => setTimeout(r, 100)), await learn());
      assert.deepEqual(seen, { phase: 'collecting', bar: 42, text: 'collecting 42 %, about 700 s left (bearing replaced)' });
      const refusal = 'baseline refused: sensor channel voltage is stuck: 230 for 45 s from 08:01:10 (learn.stuckSeconds 30)';
      await agent.publishAsync(topic('anomaly', 'learn-1', 'learn'), JSON.stringify({ ...run, phase: 'refused', percent: 60, etaS: undefined, refusal }), { qos: 1, retain: true });
      while (seen?.phase !== 'refused' && Date.now() < deadline) seen = (await new Promise((r) => setTimeout(r, 100)), await learn());
      assert.deepEqual(seen, { phase: 'refused', bar: 60, text: `refused 60 %: ${refusal} (bearing replaced)` });
    } finally {
      await browser?.close();
      await agent.endAsync(true);
      await close();
    }
  });

  test('a chart scrolled into view shows the current window at once (or nothing), never an old one; no tick label is cut off', { timeout: 120_000 }, async () => {
    const PREFIX = 'site/live';
    const DEVICE_ID = 'live-1';
    const SENSORS: Record<string, string[]> = { rpm: ['rpm'], temperature: ['temperature'], vibration: ['accel_x', 'accel_y', 'accel_z'], voltage: ['voltage'] };
    /**
     * Scores in bands whose log axis uPlot would end at 0.3, 0.4, 0.5 of a decade (a decade label
     * below that, 0.1, drawn under the plot and cut by the canvas: the "- -" under a score chart).
     */
    const MODELS: Record<string, [number, number]> = { 'multi-feature': [0.33, 0.8], rpm: [0.42, 0.9], vibration: [0.55, 1.5] };
    const THRESHOLD = 3.3;
    const PERIOD_MS = 20;
    const HOP_MS = 500;
    /** How far the right edge of a chart on screen may trail the newest reading: the feed sends every 250 ms. */
    const LAG_MS = 3000;
    /** Long enough at one place that a chart left behind, shown as it was, would be far more than LAG_MS behind. */
    const DWELL_MS = 8000;

    const { aedes, wsUrl, pageUrl, close } = await brokerAndPage((url) => ({ brokerUrl: url, wsPort: null, username: '', password: '', prefix: PREFIX }));
    const agent = await connectAsync(wsUrl, { reconnectPeriod: 0 });
    // The page subscribes to the device's telemetry once it has picked the device (from its status).
    const subscribed = new Promise<void>((resolve) =>
      aedes.on('subscribe', (subs) => {
        if (subs.some((sub) => sub.topic === topicFilter(PREFIX, DEVICE_ID, 'telemetry'))) resolve();
      }),
    );
    let feed: NodeJS.Timeout | undefined;
    let browser: Browser | undefined;
    try {
      const status: StatusPayload = {
        v: 1,
        t: Date.now(),
        state: 'online',
        version: 'test',
        models: Object.keys(MODELS).map((m) => ({ model: m, name: `live/${m}`, sha256: '0'.repeat(64), drift: 0 })),
        sensors: Object.fromEntries(Object.keys(SENSORS).map((s) => [s, 'ok'])),
      };
      await agent.publishAsync(topic(PREFIX, DEVICE_ID, 'status'), JSON.stringify(status), { qos: 1, retain: true });

      browser = await launchChromium();
      // Narrow and short: one column, most charts far below the fold.
      const page = await browser.newPage({ viewport: { width: 390, height: 600 } });
      page.setDefaultTimeout(30_000);
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      await page.goto(pageUrl);
      let waited: NodeJS.Timeout | undefined;
      await Promise.race([subscribed, new Promise((_, reject) => (waited = setTimeout(() => reject(new Error('the page did not subscribe to the device\'s telemetry within 20 s')), 20_000)))]);
      clearTimeout(waited);

      // A live device: 50 Hz readings and a score every 500 ms, sample time = wall time; the first
      // batch brings the last 30 s, so the 20 s windows are full from the start.
      let fedTo = Math.floor((Date.now() - 30_000) / PERIOD_MS) * PERIOD_MS;
      let scoredTo = Math.floor(fedTo / HOP_MS) * HOP_MS;
      const send = () => {
        const now = Date.now();
        const ts: number[] = [];
        for (let t = fedTo + PERIOD_MS; t <= now; t += PERIOD_MS) ts.push(t);
        if (ts.length) {
          fedTo = ts.at(-1)!;
          for (const [sensor, channels] of Object.entries(SENSORS)) {
            const tele: TelemetryPayload = { v: 1, t: now, t0: ts[0]!, periodMs: PERIOD_MS, channels, ts, values: ts.map((t) => channels.map((_, c) => 100 + c + Math.sin(t / 300 + c))) };
            void agent.publishAsync(topic(PREFIX, DEVICE_ID, 'telemetry', sensor), JSON.stringify(tele));
          }
        }
        for (let w = scoredTo + HOP_MS; w <= now; w += HOP_MS) {
          scoredTo = w;
          for (const [model, [lo, hi]] of Object.entries(MODELS)) {
            const score: ScorePayload = { v: 1, t: now, windowEnd: w, score: lo + ((hi - lo) * (1 + Math.sin(w / 3000))) / 2, threshold: THRESHOLD, perFeature: {} };
            void agent.publishAsync(topic(PREFIX, DEVICE_ID, 'score', model), JSON.stringify(score));
          }
        }
      };
      send();
      feed = setInterval(send, 250);

      await page.waitForFunction(
        ({ sensors, models }) =>
          document.querySelectorAll('figure[data-sensor]').length === sensors &&
          document.querySelectorAll('figure[data-model]').length === models &&
          [...document.querySelectorAll<HTMLElement>('figure[data-sensor]')].every((f) => Number(f.dataset.rows) >= 1500) &&
          [...document.querySelectorAll<HTMLElement>('figure[data-model]')].every((f) => Number(f.dataset.windows) >= 60),
        { sensors: Object.keys(SENSORS).length, models: Object.keys(MODELS).length },
      );
      const layout = await page.evaluate(() => ({ height: document.documentElement.scrollHeight, lowest: Math.max(...[...document.querySelectorAll('.plot')].map((p) => p.getBoundingClientRect().top)) }));
      assert.ok(layout.lowest > 3 * 600, `the lowest chart starts ${layout.lowest} px down a 600 px screen: far below the fold`);

      /** Every chart on screen, in every frame: hidden while stale, else current and (a sensor's) full of trace. */
      const check = (where: string, frames: PlotFrame[][]): string[] => {
        const bad: string[] = [];
        frames.forEach((plots, i) => {
          for (const p of plots) {
            const at = `${where}, frame ${i}: ${p.name}`;
            if (p.stale) {
              if (p.visibility !== 'hidden') bad.push(`${at} is stale but shown`);
              continue;
            }
            if (!Number.isFinite(p.xMax)) {
              bad.push(`${at} is shown, never drawn`);
              continue;
            }
            const behind = p.now - p.xMax;
            if (!(Math.abs(behind) <= LAG_MS)) bad.push(`${at} shows a window ending ${(behind / 1000).toFixed(1)} s before now`);
            const span = p.xMax - p.xMin;
            const trace = Math.min(p.traceTo, p.xMax) - Math.max(p.traceFrom, p.xMin);
            if (p.sensor && !(trace >= 0.8 * span)) bad.push(`${at} has ${(trace / 1000).toFixed(1)} s of trace in its ${(span / 1000).toFixed(0)} s window`);
          }
        });
        const last = frames.at(-1)!;
        if (!last.length) bad.push(`${where}: no chart on screen`);
        for (const p of last) if (p.stale) bad.push(`${where}: ${p.name} still not drawn after ${frames.length} frames`);
        return bad;
      };

      // Down to the lowest charts after a while at the top, then back up after a while there.
      await new Promise((r) => setTimeout(r, DWELL_MS));
      const down = check('scrolled to the bottom', await jumpAndWatch(page, layout.height, 30));
      await new Promise((r) => setTimeout(r, DWELL_MS));
      const up = check('scrolled back to the top', await jumpAndWatch(page, 0, 30));
      assert.deepEqual([...down, ...up], [], 'what the charts on screen showed, frame by frame');

      // Every chart drawn at once (a screen taller than the page), and not one label off its canvas.
      await page.setViewportSize({ width: 390, height: layout.height + 600 });
      await page.waitForFunction(() => document.querySelectorAll('.plot').length > 0 && document.querySelectorAll('.plot[data-stale]').length === 0);
      assert.deepEqual(await clippedLabels(page), [], 'no tick label cut off by the edge of its chart');
      assert.deepEqual(errors, [], 'no script error');
    } finally {
      clearInterval(feed);
      await browser?.close();
      await agent.endAsync(true);
      await close();
    }
  });
});

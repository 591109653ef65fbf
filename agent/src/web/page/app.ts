/**
 * The web visualizer: connects to the broker over MQTT-over-WebSocket (URL and credentials from
 * /config.json), listens to every device's status and alerts, and to the selected device's telemetry
 * and scores, and draws them. mqtt.js reconnects by itself; on every (re)connect the page subscribes
 * again.
 *
 * Tests read the page through data- attributes: #conn[data-state], #devices li[data-device][data-state],
 * figure[data-sensor][data-rows], figure[data-model][data-windows], #alerts tr[data-id][data-state],
 * and on each chart's .plot what it shows (data-x-min, data-x-max, data-trace-from, data-trace-to,
 * data-stale: see charts.ts).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { checkLevel, topicFilter, type SensorAlertPayload } from '../../core/topics.js';
import type { PageConfig } from '../site.js';
import { channelColor, ScoreChart, SensorCharts, type Drawn } from './charts.js';
import { alertDuration, Fleet, type AlertEntry, type Device } from './fleet.js';

/** Most chart frames a second. */
const FPS = 30;
/** A device that sent nothing for this long is shown as silent. */
const SILENT_MS = 15_000;

const $ = <T extends HTMLElement>(sel: string): T => {
  const el = document.querySelector<T>(sel);
  if (!el) throw new Error(`page: ${sel} missing`);
  return el;
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toPrecision(a >= 100 ? 5 : 3);
}

function fmtDuration(ms: number | undefined): string {
  if (ms === undefined) return '–';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function fmtTime(t: number): string {
  const d = new Date(t);
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  return today ? time : `${d.toLocaleDateString()} ${time}`;
}

function fmtAgo(ms: number): string {
  return ms < 1500 ? 'just now' : `${fmtDuration(ms)} ago`;
}

/** The device named by the URL's #fragment, when it is one topic level. */
function deviceFromHash(): string | undefined {
  try {
    const dev = decodeURIComponent(location.hash.replace(/^#/, ''));
    return dev ? checkLevel('device id', dev) : undefined;
  } catch {
    return undefined; // bad %-escape, or '/', '+', '#' in it: not a device id
  }
}

/** A model's chip state: alerting while its newest episode is open. */
function alerting(d: Device, model: string): boolean {
  const eps = d.models.get(model)?.episodes;
  const last = eps?.at(-1);
  return last !== undefined && last.end === undefined;
}

class Page {
  private client: MqttClient | undefined;
  private selected: string | undefined;
  /** Filters subscribed for the selected device (telemetry, scores). */
  private deviceFilters: string[] = [];
  private charts = new Map<string, { drawn: Drawn; fig: HTMLElement; kind: 'sensor' | 'model'; key: object }>();
  private lastFrame = 0;
  private lastSlow = 0;
  /** Chart frames drawn, and the time they took (ms), since the last slow(): on <body> for a look at the cost. */
  private frames = 0;
  private frameMs = 0;
  private statsAt = 0;
  /** The broker refused our credentials: no more attempts until the page is reloaded. */
  private refused = false;

  constructor(
    private readonly cfg: PageConfig,
    private readonly fleet: Fleet,
  ) {}

  brokerUrl(): string {
    if (this.cfg.brokerUrl) return this.cfg.brokerUrl;
    if (!this.cfg.wsPort) return '';
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname}:${this.cfg.wsPort}`;
  }

  start(): void {
    const url = this.brokerUrl();
    $('#broker').textContent = url || 'no broker';
    if (!url) {
      this.setConn('error', 'no broker URL: set web.brokerUrl (the agent has no WebSocket listener of its own)');
    } else {
      this.connect(url);
    }
    this.selected = deviceFromHash();
    addEventListener('hashchange', () => this.select(deviceFromHash()));
    requestAnimationFrame((t) => this.frame(t));
    // The frame loop stops while the tab is hidden; texts (durations, "seen … ago") still tick.
    setInterval(() => this.slow(), 1000);
  }

  private connect(url: string): void {
    this.setConn('connecting', `connecting to ${url}`);
    const client = mqtt.connect(url, {
      clientId: `anomaly-viz-${Math.random().toString(16).slice(2, 10)}`,
      username: this.cfg.username || undefined,
      password: this.cfg.password || undefined,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      // Subscriptions are made again on every connect, below.
      resubscribe: false,
    });
    this.client = client;
    client.on('connect', () => {
      this.setConn('connected', `connected to ${url}`);
      const p = this.cfg.prefix;
      client.subscribe([topicFilter(p, '+', 'status'), topicFilter(p, '+', 'alerts'), topicFilter(p, '+', 'learn')], { qos: 1 });
      this.deviceFilters = [];
      if (this.selected) this.subscribeDevice(this.selected);
    });
    client.on('reconnect', () => this.refused || this.setConn('reconnecting', `reconnecting to ${url}`));
    client.on('offline', () => this.refused || this.setConn('reconnecting', `broker unreachable: ${url}; retrying`));
    client.on('error', (err) => {
      // CONNACK 4 (bad user name or password) / 5 (not authorized): retrying with the same
      // credentials cannot help, and would look like guessing. Stop, and say what to fix.
      const code = (err as { code?: unknown }).code;
      if (code === 4 || code === 5) {
        this.refused = true;
        client.end(true);
        this.setConn('error', `${url}: ${err.message}. Check web.username and web.password, then reload the page.`, 'refused');
        return;
      }
      this.setConn('error', `${url}: ${err.message}`);
    });
    client.on('message', (topic, payload) => this.fleet.handle(topic, payload));
  }

  private setConn(state: 'connecting' | 'connected' | 'reconnecting' | 'error', title: string, text: string = state): void {
    const c = $('#conn');
    c.dataset.state = state;
    c.textContent = text;
    // Without the broker, what the page shows is the last it heard: styled as such.
    document.body.dataset.conn = state;
    c.title = title;
  }

  private subscribeDevice(dev: string): void {
    const p = this.cfg.prefix;
    const filters = [topicFilter(p, dev, 'telemetry'), topicFilter(p, dev, 'score')];
    if (this.client?.connected) {
      if (this.deviceFilters.length) this.client.unsubscribe(this.deviceFilters);
      this.client.subscribe(filters, { qos: 0 });
    }
    this.deviceFilters = filters;
  }

  private select(dev: string | undefined): void {
    if (dev === this.selected || dev === undefined) return;
    this.selected = dev;
    if (location.hash !== `#${encodeURIComponent(dev)}`) history.replaceState(null, '', `#${encodeURIComponent(dev)}`);
    this.subscribeDevice(dev);
    this.clearCharts();
    this.renderDevices();
    this.renderDevice();
  }

  private frame(t: number): void {
    requestAnimationFrame((next) => this.frame(next));
    const changes = this.fleet.takeChanges();
    if (this.selected === undefined || !this.fleet.devices.has(this.selected)) {
      // First device to show itself, online ones first.
      const all = [...this.fleet.devices.values()];
      const pick = all.find((d) => d.status?.state === 'online') ?? all.find((d) => d.status);
      if (pick && this.selected === undefined) this.select(pick.id);
    }
    // An alert changes what the device list, the model chips and the figures say, too.
    if (changes.devices || changes.alerts) {
      this.renderDevices();
      this.renderDevice();
      if (changes.alerts) this.renderAlerts();
      this.slow();
    }
    if (t - this.lastFrame >= 1000 / FPS - 2) {
      this.lastFrame = t;
      const wall = Date.now();
      const t0 = performance.now();
      for (const c of this.charts.values()) c.drawn.frame(wall);
      this.frames++;
      // uPlot commits its redraws in microtasks queued above: this one runs after them.
      queueMicrotask(() => (this.frameMs += performance.now() - t0));
    }
    if (t - this.lastSlow >= 1000) this.slow();
  }

  /** Once a second: counters, durations, "seen … ago". */
  private slow(): void {
    this.lastSlow = performance.now();
    const now = Date.now();
    const now2 = performance.now();
    if (this.frames && now2 > this.statsAt) {
      document.body.dataset.fps = (this.frames / ((now2 - this.statsAt) / 1000)).toFixed(1);
      document.body.dataset.frameMs = (this.frameMs / this.frames).toFixed(2);
    }
    this.frames = this.frameMs = 0;
    this.statsAt = now2;
    for (const li of document.querySelectorAll<HTMLElement>('#devices li')) {
      const d = this.fleet.devices.get(li.dataset.device!);
      if (!d) continue;
      li.querySelector('.seen')!.textContent = d.lastMessageAt ? `seen ${fmtAgo(now - d.lastMessageAt)}` : '';
      li.classList.toggle('silent', now - d.lastMessageAt > SILENT_MS);
    }
    const dev = this.selected ? this.fleet.devices.get(this.selected) : undefined;
    for (const [name, c] of this.charts) {
      if (!dev) break;
      if (c.kind === 'sensor') {
        const sc = c.drawn as SensorCharts;
        c.fig.dataset.rows = String(sc.track.rows);
        c.fig.dataset.points = String(sc.points);
        sc.track.channels.forEach((_, i) => {
          const v = c.fig.querySelector(`[data-channel-value="${i}"]`);
          if (v) v.textContent = fmt(sc.latest(i));
        });
      } else {
        const mc = c.drawn as ScoreChart;
        const m = mc.track;
        c.fig.dataset.windows = String(m.windows);
        c.fig.dataset.points = String(mc.points);
        c.fig.dataset.episodes = String(m.episodes.length);
        const r = m.ring;
        const score = r.length ? r.valueAt(r.length - 1, 0) : NaN;
        c.fig.querySelector('.score')!.textContent = fmt(score);
        c.fig.querySelector('.threshold')!.textContent = fmt(m.threshold);
        const model = name.slice('model:'.length);
        const drift = dev.status?.models.find((s) => s.model === model)?.drift;
        const driftEl = c.fig.querySelector<HTMLElement>('.drift')!;
        driftEl.hidden = !(typeof drift === 'number' && drift > 0);
        if (!driftEl.hidden) driftEl.querySelector('.drift-value')!.textContent = fmt(drift!);
        const on = alerting(dev, model);
        c.fig.classList.toggle('alerting', on);
        c.fig.querySelector('.state')!.textContent = on ? 'ALERT' : 'normal';
      }
    }
    for (const tr of document.querySelectorAll<HTMLTableRowElement>('#alerts tr[data-open]')) {
      const a = this.fleet.alerts.find((x) => x.id === tr.dataset.id && x.dev === tr.dataset.dev);
      if (a) tr.querySelector('.duration')!.textContent = fmtDuration(alertDuration(a, now));
    }
    $('#bad').textContent = this.fleet.bad ? `${this.fleet.bad} malformed message(s) dropped` : '';
  }

  private renderDevices(): void {
    const list = $('#devices');
    const devices = [...this.fleet.devices.values()].sort((a, b) => a.id.localeCompare(b.id));
    $('#no-devices').hidden = devices.length > 0;
    list.replaceChildren(
      ...devices.map((d) => {
        const state = d.status?.state ?? 'unknown';
        const open = d.status?.models.filter((m) => alerting(d, m.model)).length ?? 0;
        const button = el(
          'button',
          { type: 'button', 'aria-pressed': String(d.id === this.selected) },
          el('span', { class: 'dot', 'aria-hidden': 'true' }),
          el('span', { class: 'name' }, d.id),
          el('span', { class: 'state' }, open ? `${state} · ${open} alert${open > 1 ? 's' : ''}` : state),
          el('span', { class: 'seen' }),
        );
        button.addEventListener('click', () => this.select(d.id));
        return el('li', { 'data-device': d.id, 'data-state': state, ...(open ? { 'data-alerting': '' } : {}) }, button);
      }),
    );
  }

  private renderDevice(): void {
    const d = this.selected ? this.fleet.devices.get(this.selected) : undefined;
    const section = $('#device');
    section.hidden = !d;
    if (!d) return;
    $('#device-name').textContent = d.id;
    const state = $('#device-state');
    state.textContent = d.status?.state ?? 'unknown';
    state.dataset.state = d.status?.state ?? 'unknown';
    const s = d.status;
    const meta = $('#device-meta');
    meta.replaceChildren(
      el('dt', {}, 'agent'),
      el('dd', {}, s ? `${s.version}` : '–'),
      el('dt', {}, 'models'),
      el('dd', {}, ...(s?.models.length ? s.models.map((m) => el('span', { class: `chip${alerting(d, m.model) ? ' bad' : ''}`, title: `${m.name} ${m.sha256.slice(0, 12)}` }, m.model)) : ['none'])),
      el('dt', {}, 'sensors'),
      el('dd', {}, ...(s ? Object.entries(s.sensors).map(([n, h]) => sensorChip(n, h, this.fleet.sensorFaults(d.id).get(n) ?? [])) : ['–'])),
      ...learnRow(d),
    );
    this.reconcileCharts(d);
  }

  /** One figure per sensor (its channels side by side) and per model; rebuilt when a track is replaced. */
  private reconcileCharts(d: Device): void {
    const want = new Map<string, object>();
    for (const [name, t] of d.sensors) want.set(`sensor:${name}`, t);
    for (const [name, t] of d.models) want.set(`model:${name}`, t);
    for (const [key, c] of this.charts) {
      if (want.get(key) !== c.key) {
        c.drawn.destroy();
        c.fig.remove();
        this.charts.delete(key);
      }
    }
    const sensors = $('#sensor-charts');
    const models = $('#model-charts');
    for (const [name, track] of [...d.sensors].sort(([a], [b]) => a.localeCompare(b))) {
      const key = `sensor:${name}`;
      if (this.charts.has(key)) continue;
      const plots = track.channels.map(() => el('div', { class: 'plot' }));
      const fig = el(
        'figure',
        { class: 'sensor', 'data-sensor': name, 'data-rows': '0', 'data-points': '0' },
        el('figcaption', {}, el('strong', {}, name)),
        ...track.channels.map((ch, i) =>
          el('div', { class: 'channel' }, el('div', { class: 'label' }, el('span', { class: 'swatch', style: `background:${channelColor(i)}` }), ch, ' ', el('span', { class: 'value', 'data-channel-value': String(i) }, '–')), plots[i]!),
        ),
      );
      insertSorted(sensors, fig, name, 'sensor');
      this.charts.set(key, { drawn: new SensorCharts(track, plots), fig, kind: 'sensor', key: track });
    }
    for (const [name, track] of [...d.models].sort(([a], [b]) => a.localeCompare(b))) {
      const key = `model:${name}`;
      if (this.charts.has(key)) continue;
      const plot = el('div', { class: 'plot' });
      const fig = el(
        'figure',
        { class: 'model', 'data-model': name, 'data-windows': '0', 'data-points': '0', 'data-episodes': '0' },
        el(
          'figcaption',
          {},
          el('strong', {}, name),
          ' ',
          el('span', { class: 'state' }, 'normal'),
          el(
            'span',
            { class: 'numbers' },
            'score ',
            el('span', { class: 'score' }, '–'),
            ' / threshold ',
            el('span', { class: 'threshold' }, '–'),
            // How far the model's baseline has moved from its training (status topic), when it has.
            el('span', { class: 'drift', hidden: '' }, ' · drift ', el('span', { class: 'drift-value' }, '–')),
          ),
        ),
        plot,
      );
      insertSorted(models, fig, name, 'model');
      this.charts.set(key, { drawn: new ScoreChart(track, plot), fig, kind: 'model', key: track });
    }
    $('#no-sensors').hidden = d.sensors.size > 0;
    $('#no-models').hidden = d.models.size > 0;
  }

  private clearCharts(): void {
    for (const c of this.charts.values()) {
      c.drawn.destroy();
      c.fig.remove();
    }
    this.charts.clear();
  }

  private renderAlerts(): void {
    const now = Date.now();
    const rows = this.fleet.alerts.map((a) => alertRow(a, now));
    $('#alerts tbody').replaceChildren(...rows);
    $('#no-alerts').hidden = rows.length > 0;
  }
}

function insertSorted(parent: HTMLElement, fig: HTMLElement, name: string, kind: 'sensor' | 'model'): void {
  const after = [...parent.querySelectorAll<HTMLElement>(`figure.${kind}`)].find((f) => (f.dataset[kind] ?? '') > name);
  parent.insertBefore(fig, after ?? null);
}

/** A sensor's health; a sensor fault names itself, its open alerts' details on hover. */
function sensorChip(name: string, health: string, faults: SensorAlertPayload[]): HTMLElement {
  const what = health === 'fault' && faults.length ? [...new Set(faults.map((f) => f.fault))].join(', ') : health;
  const title = faults.map((f) => `${f.fault}: ${f.detail}`).join('\n');
  return el('span', { class: `chip ${health === 'ok' ? 'ok' : 'bad'}`, 'data-sensor-health': health, ...(title ? { title } : {}) }, `${name}: ${what}`);
}

function alertRow(a: AlertEntry, now: number): HTMLTableRowElement {
  const open = !a.cleared;
  const cell = (label: string, cls: string, ...content: (Node | string)[]) => el('td', { 'data-label': label, class: cls }, ...content);
  const rowAttrs = { 'data-id': a.id, 'data-dev': a.dev, 'data-kind': a.kind, 'data-state': open ? 'raised' : 'cleared', ...(open ? { 'data-open': '' } : {}) };
  const stateCell = cell(
    'state',
    'state',
    el('span', { class: `badge ${open ? 'bad' : 'ok'}` }, open ? 'raised' : 'cleared'),
    ...(a.cleared?.reason ? [el('span', { class: 'reason' }, ` ${a.cleared.reason}`)] : []),
  );
  const time = (since: number) => cell('time', 'time', fmtTime(since));
  if (a.kind === 'sensor') {
    // A sensor fault has no score: the fault and what was read take the score's and features' cells.
    const p = (a.raised ?? a.cleared)!;
    const since = a.raised ? a.raised.t : a.cleared!.t - (alertDuration(a, now) ?? 0);
    return el(
      'tr',
      rowAttrs,
      time(since),
      cell('device', 'dev', a.dev),
      cell('sensor', 'model', a.subject, el('span', { class: 'kind' }, ' sensor fault')),
      stateCell,
      cell('duration', 'duration', fmtDuration(alertDuration(a, now))),
      cell('fault', 'score', p.fault),
      cell('detail', 'features', (a.cleared ?? a.raised)!.detail),
    );
  }
  // The worst window says most about an episode: a cleared alert carries it as `peak` (an agent of an
  // earlier version sent the peak as the cleared alert's own score).
  const worst = a.cleared?.peak ?? a.cleared ?? a.raised!;
  const kind = (a.cleared ?? a.raised!).kind ?? 'machine';
  const since = a.raised ? a.raised.t : a.cleared!.t - (alertDuration(a, now) ?? 0);
  const top = worst.topFeatures.map((f) => `${f.feature} ${f.share < 0.005 ? '<1' : Math.round(f.share * 100)}%`).join(' · ');
  const ratio = worst.threshold > 0 ? worst.score / worst.threshold : NaN;
  const peakLabel = open ? '' : 'peak ';
  return el(
    'tr',
    rowAttrs,
    time(since),
    cell('device', 'dev', a.dev),
    cell('model', 'model', a.subject, ...(kind === 'drift' ? [el('span', { class: 'kind' }, ' baseline drift')] : [])),
    stateCell,
    cell('duration', 'duration', fmtDuration(alertDuration(a, now))),
    cell('score', 'score', `${peakLabel}${fmt(worst.score)} `, el('span', { class: 'ratio' }, `(${fmt(ratio)}× ${kind === 'drift' ? 'limit' : 'threshold'})`)),
    cell('top features', 'features', top || '–'),
  );
}

async function main(): Promise<void> {
  let cfg: PageConfig;
  try {
    const res = await fetch('./config.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
    cfg = (await res.json()) as PageConfig;
  } catch (err) {
    const c = $('#conn');
    c.dataset.state = 'error';
    c.textContent = 'error';
    c.title = (err as Error).message;
    return;
  }
  new Page(cfg, new Fleet(cfg.prefix)).start();
}

void main();

/** The device's learn run as a progress bar and a line (phase, ETA, why refused), once it has learned. */
function learnRow(d: Device): HTMLElement[] {
  const l = d.learn;
  if (!l) return [];
  const ended = ['done', 'refused', 'failed', 'cancelled'].includes(l.phase);
  const text = `${l.phase} ${l.percent} %${l.etaS !== undefined && !ended ? `, about ${l.etaS} s left` : ''}${l.refusal ? `: ${l.refusal}` : ''}${l.reason ? ` (${l.reason})` : ''}`;
  return [
    el('dt', {}, 'learning'),
    el(
      'dd',
      { id: 'learn', 'data-phase': l.phase, 'data-percent': String(l.percent) },
      el('progress', { max: '100', value: String(l.percent), class: l.phase === 'refused' || l.phase === 'failed' ? 'bad' : '' }),
      el('span', { class: 'learn-text' }, text),
    ),
  ];
}

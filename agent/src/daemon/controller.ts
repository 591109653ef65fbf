import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { BrokerComponent } from '../../../broker/src/broker.js';
import { SensorBuffer, SampleRejectedError } from '../buffer/ring.js';
import type { AgentConfig } from '../config/schema.js';
import { redactUrl } from '../config/load.js';
import { systemClock, type Clock, type Timer } from '../core/clock.js';
import type { Component } from '../core/component.js';
import { channelIndex, type Sample } from '../core/sample.js';
import type { AlertEvent } from '../detect/detector.js';
import { createMetrics, type Metrics } from '../http/metrics.js';
import { HttpServer, type Asset, type HealthReport } from '../http/server.js';
import { BundleError, loadBundle } from '../model/bundle.js';
import { Outbox } from '../publish/outbox.js';
import { Publisher } from '../publish/publisher.js';
import type { SensorHealth, StatusPayload } from '../publish/topics.js';
import { createSource } from '../sources/registry.js';
import type { SampleSource } from '../sources/source.js';
import { createSite, type PageConfig } from '../web/site.js';
import { ModelRuntime } from './model-runtime.js';
import { ModelUpdateReceiver } from '../deploy/mqtt-update.js';
import { trustedKeys } from '../model/signature.js';
import { embeddedBrokerSettings, loopbackOf } from './embedded-broker.js';

/**
 * Rows kept per sensor. The windower reads each sample once, shortly after it arrives; the ring only
 * has to cover the lag between a push and the advance that reads it, with room for bursts.
 */
const RING_CAPACITY = 4096;
/** How long a bundle received over MQTT has to load and score its first window before it is rolled back. */
const UPDATE_LIVE_TIMEOUT_MS = 60_000;
/** How often sensor health is looked at: a change is logged and published on the status topic. */
const HEALTH_POLL_MS = 1000;
const HEALTH_STATES: readonly SensorHealth[] = ['ok', 'stale', 'error'];

export interface ControllerOptions {
  config: AgentConfig;
  log: Logger;
  version: string;
  clock?: Clock;
}

/**
 * The daemon: builds the components in data-flow order, starts them in that order and stops them in
 * reverse, each inside its own try/catch so one failing part is logged and the rest still stop.
 * It never touches `process`; the entry point owns signals and exit codes.
 */
export class Controller {
  readonly metrics: Metrics = createMetrics({ beforeScrape: () => this.mirrorMetrics() });
  /** Outbox evictions already added to the counter (the outbox keeps a running total). */
  private evictedReported = 0;
  private readonly clock: Clock;
  private readonly started: Component[] = [];
  private readonly buffers = new Map<string, SensorBuffer>();
  private readonly channels;
  private models = new Map<string, ModelRuntime>();
  private client: MqttClient | undefined;
  private publisher: Publisher | undefined;
  private updates: ModelUpdateReceiver | undefined;
  private outbox: Outbox | undefined;
  private source: SampleSource | undefined;
  private broker: BrokerComponent | undefined;
  private http: HttpServer | undefined;
  private lastSampleAt = 0;
  private startedAt = 0;
  private stopping: Promise<void> | undefined;
  /** The last SIGHUP reload; the next one waits for it. */
  private reloading: Promise<void> = Promise.resolve();
  /** Sensor health as last published, and the models waiting for a sensor. */
  private lastHealth: Record<string, SensorHealth> = {};
  private readonly paused = new Set<string>();
  /** Alerts the outbox could not take (disk full, I/O error): retried, never dropped. */
  private readonly unsaved: AlertEvent[] = [];

  constructor(private readonly o: ControllerOptions) {
    this.clock = o.clock ?? systemClock;
    this.channels = channelIndex(o.config.sensors);
  }

  private child(module: string): Logger {
    return this.o.log.child({ module });
  }

  /** Where the embedded broker listens, when there is one (tests connect there). */
  brokerAddress() {
    return this.broker?.address();
  }

  httpAddress() {
    return this.http?.address();
  }

  async start(): Promise<void> {
    const c = this.o.config;
    const log = this.child('controller');
    this.startedAt = this.clock.now();

    for (const [sensor, { channels }] of Object.entries(c.sensors)) {
      this.buffers.set(sensor, new SensorBuffer({ sensor, channels: channels.length, capacity: RING_CAPACITY }));
    }
    await this.loadModels(new Map());

    let url = c.mqtt.url;
    let credentials = { username: c.mqtt.username || undefined, password: c.mqtt.password || undefined };
    if (!url) {
      const embedded = await embeddedBrokerSettings(c.broker);
      this.broker = new BrokerComponent({ log: this.child('broker'), drainTimeoutMs: c.broker.drainTimeoutMs, host: c.broker.host, port: c.broker.port, wsPort: c.broker.wsPort, topicPrefix: c.mqtt.prefix, ...embedded.options });
      await this.startComponent(this.broker);
      url = `mqtt://${loopbackOf(c.broker.host)}:${this.broker.address().port}`;
      if (embedded.self) credentials = embedded.self;
    }

    this.outbox = new Outbox({ dir: c.outbox.dir, maxBytes: c.outbox.maxBytes, log: this.o.log, clock: this.clock });
    await this.startComponent(this.outbox);

    const clientId = c.mqtt.clientId || `anomaly-agent-${c.device.id}`;
    this.client = mqtt.connect(url, {
      clientId,
      // mqtt-packet would otherwise keep a Buffer for every 16-bit number (65,536 of them, ~6 MB of
      // heap) to save an allocation per packet id; the setting is global, so the embedded broker's
      // writes go without it too.
      writeCache: false,
      ...credentials,
      keepalive: c.mqtt.keepaliveS,
      reconnectPeriod: c.mqtt.reconnectMs,
      will: Publisher.lastWill(c.mqtt.prefix, c.device.id, this.statusBody(), this.clock.now()),
    });
    const mlog = this.child('mqtt');
    this.client.on('connect', () => mlog.info({ url: redactUrl(url) }, 'connected'));
    this.client.on('offline', () => mlog.warn({ url: redactUrl(url) }, 'broker unreachable; alerts go to the outbox'));
    this.client.on('error', (err) => mlog.warn({ err: err.message }, 'mqtt error'));
    this.started.push({ name: 'mqtt', start: async () => {}, stop: () => this.client!.endAsync() });

    this.publisher = new Publisher({
      client: this.client,
      outbox: this.outbox,
      prefix: c.mqtt.prefix,
      device: c.device.id,
      clock: this.clock,
      log: this.child('publisher'),
      channels: Object.fromEntries(Object.entries(c.sensors).map(([s, v]) => [s, v.channels])),
      telemetryIntervalMs: c.publish.telemetryIntervalMs,
      publishScores: c.publish.scores,
      status: () => this.statusBody(),
    });
    await this.startComponent(this.publisher);

    this.updates = new ModelUpdateReceiver({
      client: this.client,
      prefix: c.mqtt.prefix,
      device: c.device.id,
      dir: join(c.models.dir, '.updates'),
      install: { config: c, reload: () => this.reload(), liveProblem: (model, sha) => this.liveProblem(model, sha), timeoutMs: UPDATE_LIVE_TIMEOUT_MS },
      log: this.child('models'),
      now: () => this.clock.now(),
    });
    await this.updates.start();

    this.source = await createSource(c.source.kind, {
      sensors: c.sensors,
      clock: this.clock,
      log: this.o.log, // sources name their own module
      client: this.client,
      mqtt: {
        device: c.device.id,
        prefix: c.mqtt.prefix,
        onDropped: (reason) => this.metrics.ingestDropped.inc({ reason }),
      },
      replay: { ...c.source.replay },
      profile: c.models.profile,
      hardware: c.hardware,
      sim: c.source.sim,
    });
    this.source.onSample((s) => this.onSample(s));
    await this.startComponent(this.source);
    this.lastHealth = this.sensorHealth();
    let healthTimer: Timer | undefined;
    await this.startComponent({
      name: 'health-watch',
      start: async () => void (healthTimer = this.clock.setInterval(() => this.watchHealth(), HEALTH_POLL_MS)),
      stop: async () => healthTimer?.cancel(),
    });

    if (c.http.port > 0) {
      const assets = c.web.enabled ? this.webAssets() : undefined;
      this.http = new HttpServer({ host: c.http.host, port: c.http.port, registry: this.metrics.registry, health: () => this.health(), log: this.child('http'), ...(assets ? { assets } : {}) });
      await this.startComponent(this.http);
    }
    this.publisher.publishStatus();
    log.info({ device: c.device.id, models: [...this.models.keys()], source: c.source.kind, mqtt: redactUrl(url) }, 'agent started');
  }

  /** The web visualizer's files; none (logged) when they cannot be found: the daemon runs without its page. */
  private webAssets(): Map<string, Asset> | undefined {
    try {
      return createSite({ config: () => this.pageConfig() });
    } catch (err) {
      this.child('web').error({ err: (err as Error).message }, 'web visualizer not served');
      return undefined;
    }
  }

  private pageConfig(): PageConfig {
    const w = this.o.config.web;
    let wsPort: number | null = null;
    try {
      wsPort = this.broker?.address().wsPort ?? null;
    } catch {
      // The broker is stopping: no listener to point at.
    }
    return { brokerUrl: w.brokerUrl, wsPort, username: w.username, password: w.password, prefix: this.o.config.mqtt.prefix };
  }

  /** Stops sampling first and the broker last; bounded by shutdown.timeoutMs. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const log = this.child('controller');
      const all = (async () => {
        for (const c of [...this.started].reverse()) {
          if (c === this.publisher) for (const m of this.models.values()) m.flush();
          try {
            await c.stop();
          } catch (err) {
            log.error({ component: c.name, err: (err as Error).message }, 'component did not stop cleanly');
          }
        }
        for (const m of this.models.values()) m.dispose();
      })();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), this.o.config.shutdown.timeoutMs)));
      const result = await Promise.race([all, timeout]);
      clearTimeout(timer);
      if (result === 'timeout') log.error({ timeoutMs: this.o.config.shutdown.timeoutMs }, 'shutdown timed out');
      else log.info('agent stopped');
    })();
    return this.stopping;
  }

  /**
   * SIGHUP: loads every enabled bundle again. A bundle that fails a check is refused and the model
   * already running keeps running; one that loads replaces it, carrying an open episode over.
   */
  reload(): Promise<void> {
    // One at a time: two overlapping reloads would both replace (and dispose) the same runtimes.
    const run = this.reloading.then(() => this.reloadNow());
    this.reloading = run.catch(() => {});
    return run;
  }

  private async reloadNow(): Promise<void> {
    const previous = this.models;
    await this.loadModels(previous);
    for (const [name, old] of previous) if (this.models.get(name) !== old) old.dispose();
    this.publisher?.publishStatus();
  }

  /**
   * Is the pipeline moving? A sample arrived and some model scored a window within health.stallMs.
   * This, not the event loop merely running, is what feeds systemd's watchdog (daemon/notify.ts);
   * a broker outage is not a stall (alerts wait in the outbox).
   */
  progress(): { ok: boolean; why?: string } {
    const now = this.clock.now();
    const stall = this.o.config.health.stallMs;
    if (now - this.startedAt <= stall) return { ok: true };
    if (now - this.lastSampleAt > stall) return { ok: false, why: `no sample for ${Math.round((now - (this.lastSampleAt || this.startedAt)) / 1000)} s` };
    const lastScored = Math.max(0, ...[...this.models.values()].map((m) => m.lastScoredAt));
    if (now - lastScored > stall) return { ok: false, why: `no window scored for ${Math.round((now - (lastScored || this.startedAt)) / 1000)} s` };
    return { ok: true };
  }

  /** For an update received over MQTT: is `model` running bundle `sha256`, with a window scored since? */
  private async liveProblem(model: string, sha256: string): Promise<string | undefined> {
    const m = this.models.get(model);
    if (!m) return `the agent runs no ${model} model`;
    if (m.bundleSha256 !== sha256) return `the agent still runs ${model} ${m.bundleSha256.slice(0, 12)}…`;
    return m.lastScoredAt > 0 ? undefined : `the new ${model} bundle has not scored a window yet`;
  }

  health(): HealthReport {
    const reasons: string[] = [];
    const now = this.clock.now();
    const stall = this.o.config.health.stallMs;
    const since = (t: number) => `${Math.round((now - t) / 1000)} s`;
    if (now - this.startedAt > stall) {
      if (now - this.lastSampleAt > stall) reasons.push(`no sample for ${since(this.lastSampleAt || this.startedAt)}`);
      if (this.models.size === 0) reasons.push('no model loaded');
      for (const m of this.models.values()) {
        if (now - m.lastScoredAt > stall) reasons.push(`model ${m.model}: no window scored for ${since(m.lastScoredAt || this.startedAt)}`);
      }
    }
    for (const [sensor, h] of Object.entries(this.sensorHealth())) if (h !== 'ok') reasons.push(`sensor ${sensor} is ${h}`);
    const models = [...this.models.values()].map((m) => ({ model: m.model, sha256: m.bundleSha256 }));
    return { ok: reasons.length === 0, reasons, models };
  }

  /** Brings the gauges that mirror the outbox and the sensors up to date for a scrape. */
  private mirrorMetrics(): void {
    this.sensorHealth();
    const ob = this.outbox;
    if (!ob) return;
    for (const kind of ['alert', 'telemetry'] as const) {
      this.metrics.outboxDepth.set({ kind }, ob.depth[kind]);
      this.metrics.outboxBytes.set({ kind }, ob.bytes[kind]);
    }
    const evicted = ob.counters.evictedTelemetry;
    if (evicted > this.evictedReported) this.metrics.outboxEvicted.inc({ kind: 'telemetry' }, evicted - this.evictedReported);
    this.evictedReported = evicted;
  }

  private sensorHealth(): Record<string, SensorHealth> {
    const h = this.source?.health() ?? {};
    for (const sensor of Object.keys(this.o.config.sensors)) {
      this.metrics.sensorUp.set({ sensor }, h[sensor] === 'ok' ? 1 : 0);
      for (const state of HEALTH_STATES) this.metrics.sensorState.set({ sensor, state }, h[sensor] === state ? 1 : 0);
    }
    return h;
  }

  /**
   * A change of sensor health goes on the status topic at once. A model that needs a sensor which is
   * not ok gets no new windows (the windower holds no invented data across a gap): it is paused, and
   * the log says so; it resumes when the sensor delivers again (the first window needs seqLen rows).
   */
  private watchHealth(): void {
    const h = this.sensorHealth();
    const changed = Object.keys(h).filter((s) => h[s] !== this.lastHealth[s]);
    if (changed.length === 0) return;
    const log = this.child('health');
    for (const s of changed) {
      const level = h[s] === 'ok' ? 'info' : 'warn';
      log[level]({ sensor: s, health: h[s], was: this.lastHealth[s] }, `sensor ${s} is ${h[s]}`);
    }
    this.lastHealth = h;
    for (const m of this.models.values()) {
      const missing = [...m.sensors].filter((s) => h[s] !== undefined && h[s] !== 'ok');
      if (missing.length > 0 && !this.paused.has(m.model)) {
        this.paused.add(m.model);
        log.warn({ model: m.model, sensors: missing }, `model ${m.model} paused: no data from ${missing.map((s) => `${s} (${h[s]})`).join(', ')}`);
      } else if (missing.length === 0 && this.paused.delete(m.model)) {
        log.info({ model: m.model }, `model ${m.model} resumes: its sensors deliver again`);
      }
    }
    this.publisher?.publishStatus();
  }

  private statusBody(): Omit<StatusPayload, 'v' | 't' | 'state'> {
    return {
      version: this.o.version,
      models: [...this.models.values()].map((m) => ({ model: m.model, name: m.manifest.name, sha256: m.bundleSha256 })),
      sensors: this.sensorHealth(),
    };
  }

  private async startComponent(c: Component): Promise<void> {
    await c.start();
    this.started.push(c);
  }

  private async loadModels(previous: Map<string, ModelRuntime>): Promise<void> {
    const c = this.o.config;
    const log = this.child('models');
    const next = new Map<string, ModelRuntime>();
    // Read at every load, so a key added or revoked takes effect with the next SIGHUP.
    const trust = { keys: trustedKeys(await Promise.all(c.models.trustedKeys.map(async (f) => ({ pem: await readFile(f, 'utf8'), source: f })))), requireSigned: c.models.requireSigned };
    for (const modelType of c.models.enabled) {
      const dir = join(c.models.dir, c.models.profile, modelType);
      const old = previous.get(modelType);
      try {
        const bundle = await loadBundle(dir, { knownFeatures: [...this.channels.keys()], trust });
        // TensorFlow.js is loaded here, for the first bundle scored with it, if any is.
        const runtime = await ModelRuntime.create({
          bundle,
          channels: this.channels,
          buffers: this.buffers,
          detector: c.detector,
          maxBatch: c.scorer.maxBatch,
          engine: c.scorer.engine,
          backend: c.scorer.backend,
          log: this.child(`model:${modelType}`),
          onScore: (model, p) => this.publisher?.score(model, p),
          onAlert: (e) => this.onAlert(e),
          onScored: (model, seconds, windows) => {
            this.metrics.inferenceSeconds.observe({ model }, seconds);
            this.metrics.windowsScored.inc({ model }, windows);
          },
        });
        next.set(modelType, runtime);
        log.info({ model: modelType, bundle: bundle.manifest.name, threshold: bundle.manifest.threshold, engine: runtime.engine }, old ? 'model reloaded' : 'model loaded');
      } catch (err) {
        const why = err instanceof BundleError ? err.message : `bundle ${dir} refused: ${(err as Error).message}`;
        if (old) {
          next.set(modelType, old);
          log.error({ model: modelType }, `${why}; the running model stays`);
        } else {
          log.error({ model: modelType }, why);
        }
      }
    }
    // Swapped in one go, so the windows a replaced model formed while others loaded still count.
    for (const [name, runtime] of next) {
      const old = previous.get(name);
      if (old && old !== runtime) runtime.continueFrom(old);
    }
    this.models = next;
  }

  private onSample(s: Sample): void {
    const buf = this.buffers.get(s.sensor);
    if (!buf) {
      this.metrics.ingestDropped.inc({ reason: 'unknown_sensor' });
      return;
    }
    try {
      buf.push(s.t, s.values);
    } catch (err) {
      if (!(err instanceof SampleRejectedError)) throw err;
      this.metrics.ingestDropped.inc({ reason: err.reason });
      return;
    }
    this.lastSampleAt = this.clock.now();
    this.metrics.samples.inc({ sensor: s.sensor });
    this.publisher?.telemetry(s);
    for (const m of this.models.values()) if (m.sensors.has(s.sensor)) m.advance();
  }

  private onAlert(e: AlertEvent): void {
    this.metrics.alerts.inc({ model: e.model, state: e.state });
    this.child('detector').warn({ id: e.id, model: e.model, state: e.state, score: e.score, threshold: e.threshold, top: e.topFeatures.map((f) => f.feature) }, `alert ${e.state}`);
    this.unsaved.push(e);
    void this.saveAlerts();
  }

  /** Hands alerts to the publisher in order; one the outbox refuses is retried, never dropped. */
  private saving = false;
  private async saveAlerts(): Promise<void> {
    if (this.saving || !this.publisher) return;
    this.saving = true;
    try {
      while (this.unsaved.length > 0) {
        try {
          await this.publisher.alert(this.unsaved[0]!);
          this.unsaved.shift();
        } catch (err) {
          this.child('publisher').error({ err: (err as Error).message, pending: this.unsaved.length }, 'alert not stored; retrying in 1 s');
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    } finally {
      this.saving = false;
    }
  }
}

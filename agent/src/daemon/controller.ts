import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/schema.js';
import { redactUrl } from '../config/load.js';
import { systemClock, type Clock, type Timer } from '../core/clock.js';
import type { Component } from '../core/component.js';
import { DEFAULTS } from '../core/defaults.js';
import { ModelUpdateReceiver } from '../flash/mqtt-update.js';
import { createMetrics, type Metrics } from '../http/metrics.js';
import type { HealthReport } from '../http/server.js';
import { learnedOf } from '../model/bundle.js';
import { Outbox } from '../publish/outbox.js';
import type { StatusPayload } from '../core/topics.js';
import type { DaemonContext } from './context.js';
import { EmbeddedBroker } from './embedded-broker.js';
import { DaemonEvents } from './events.js';
import { HealthWatch } from './health.js';
import { HomeAssistantDiscovery } from './homeassistant.js';
import { Http } from './http.js';
import { Intake } from './intake.js';
import { Learner } from './learner.js';
import { Models } from './models.js';
import { MqttConnection } from './mqtt-connection.js';
import { Publishing } from './publishing.js';
import { Recorder } from './recorder.js';

/** How long a bundle received over MQTT has to load and score its first window before it is rolled back (as `models install --timeout`). */
const UPDATE_LIVE_TIMEOUT_MS = DEFAULTS.component.modelUpdate.liveTimeoutMs;

export interface ControllerOptions {
  config: AgentConfig;
  log: Logger;
  version: string;
  /** Default: the system clock. Tests drive a ManualClock. */
  clock?: Clock;
  /** Samplers (sim, hardware) on a thread of their own; default true. In-process tests on a ManualClock say false. */
  threads?: boolean;
}

/** A component may bring its gauges up to date before a Prometheus scrape. */
type Part = Component & { beforeScrape?(): void };

/**
 * The daemon: an ordered list of components (daemon/*.ts) on one clock, sharing a context and an
 * event bus. start() builds and starts them in data-flow order; stop() stops them in reverse, each
 * inside its own try/catch so one failing part is logged and the rest still stop. A new feature is
 * one more component: it listens on the bus (samples, scores, alerts, status) and is added to the
 * list below. The controller never touches `process`; the entry point owns signals and exit codes.
 *
 *   models → [embedded broker] → outbox → mqtt → publishing → model updates → home assistant → recorder → learner → source → health → [http]
 */
export class Controller {
  readonly metrics: Metrics = createMetrics({ beforeScrape: () => this.started.forEach((c) => c.beforeScrape?.()) });
  private readonly ctx: DaemonContext;
  private readonly started: Part[] = [];
  private readonly models: Models;
  private broker: EmbeddedBroker | undefined;
  private intake: Intake | undefined;
  private healthWatch: HealthWatch | undefined;
  private http: Http | undefined;
  private recorder: Recorder | undefined;
  private learnerPart: Learner | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly o: ControllerOptions) {
    const log = o.log;
    this.ctx = {
      config: o.config,
      version: o.version,
      clock: o.clock ?? systemClock,
      threads: o.threads ?? true,
      metrics: this.metrics,
      events: new DaemonEvents(log.child({ module: 'events' })),
      logger: log,
      log: (module) => log.child({ module }),
    };
    this.models = new Models(this.ctx);
  }

  /** Where the embedded broker listens, when there is one (tests connect there). */
  brokerAddress() {
    return this.broker?.address();
  }

  httpAddress() {
    return this.http?.address();
  }

  /** The background recording, while there is one (record.enabled). */
  recording() {
    return this.recorder?.current;
  }

  /** Learning on the gateway (learn.*). */
  learner(): Learner | undefined {
    return this.learnerPart;
  }

  async start(): Promise<void> {
    const { ctx } = this;
    const c = ctx.config;
    await this.use(this.models);
    const broker = c.mqtt.url ? undefined : (this.broker = await this.use(new EmbeddedBroker(ctx)));
    const target = () =>
      broker
        ? { url: broker.url(), ...broker.self }
        : { url: c.mqtt.url, username: c.mqtt.username || undefined, password: c.mqtt.password || undefined };
    const outbox = await this.use(new Outbox({ dir: c.outbox.dir, maxBytes: c.outbox.maxBytes, log: ctx.logger, clock: ctx.clock }));
    const mqtt = await this.use(new MqttConnection(ctx, target, () => this.status()));
    await this.use(new Publishing(ctx, mqtt.client, outbox, () => this.status()));
    await this.use(
      new ModelUpdateReceiver({
        client: mqtt.client,
        prefix: c.mqtt.prefix,
        device: c.device.id,
        dir: join(c.models.dir, '.updates'),
        install: { config: c, reload: () => this.reload(), liveProblem: (model, sha) => this.models.liveProblem(model, sha), timeoutMs: UPDATE_LIVE_TIMEOUT_MS },
        log: ctx.log('models'),
        now: () => ctx.clock.now(),
      }),
    );
    // Always there: turned off, it removes the discovery configs an earlier run left on the broker.
    await this.use(new HomeAssistantDiscovery(ctx, this.models, mqtt.client));
    this.recorder = await this.use(new Recorder(ctx));
    this.learnerPart = await this.use(
      new Learner(ctx, {
        client: () => mqtt.client,
        reload: () => this.reload(),
        liveProblem: (model, sha) => this.models.liveProblem(model, sha),
        learnedHere: (model) => this.models.all.get(model)?.manifest.baseline?.device === c.device.id,
      }),
    );
    const intake = (this.intake = await this.use(new Intake(ctx, this.models, () => mqtt.client)));
    this.healthWatch = await this.use(new HealthWatch(ctx, intake, this.models));
    if (c.http.port > 0) this.http = await this.use(new Http(ctx, () => this.health(), () => this.wsPort()));
    ctx.events.emit('status', undefined);
    ctx.log('controller').info({ device: c.device.id, models: [...this.models.all.keys()], source: c.source.kind, mqtt: redactUrl(target().url) }, 'agent started');
  }

  /** Stops sampling first and the broker last; bounded by shutdown.timeoutMs. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const log = this.ctx.log('controller');
      const all = (async () => {
        for (const c of [...this.started].reverse()) {
          try {
            await c.stop();
          } catch (err) {
            log.error({ component: c.name, err: (err as Error).message }, 'component did not stop cleanly');
          }
        }
      })();
      let timer: Timer | undefined;
      const timeout = new Promise<'timeout'>((r) => (timer = this.ctx.clock.setTimeout(() => r('timeout'), this.o.config.shutdown.timeoutMs)));
      const result = await Promise.race([all, timeout]);
      timer?.cancel();
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
    return this.models.reload();
  }

  /** For systemd's watchdog: is the pipeline moving? (health.ts) */
  progress(): { ok: boolean; why?: string } {
    return this.healthWatch?.progress() ?? { ok: true };
  }

  /** /healthz. */
  health(): HealthReport {
    return this.healthWatch?.report() ?? { ok: false, reasons: ['starting'], models: [] };
  }

  private status(): Omit<StatusPayload, 'v' | 't' | 'state'> {
    return {
      version: this.o.version,
      models: [...this.models.all.values()].map((m) => ({ model: m.model, name: m.manifest.name, sha256: m.bundleSha256, drift: m.drift, ...learnedOf(m.manifest) })),
      sensors: this.healthWatch?.sensors() ?? this.intake?.health() ?? {},
    };
  }

  private wsPort(): number | null {
    try {
      return this.broker?.address().wsPort ?? null;
    } catch {
      return null; // the broker is stopping: no listener to point at
    }
  }

  private async use<T extends Part>(c: T): Promise<T> {
    await c.start();
    this.started.push(c);
    return c;
  }
}

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SensorBuffer, SampleRejectedError } from '../buffer/ring.js';
import type { Component } from '../core/component.js';
import { channelIndex, type Sample } from '../core/sample.js';
import { BundleError, bundleDir, loadBundle } from '../model/bundle.js';
import { trustedKeys } from '../model/signature.js';
import { ModelRuntime } from '../pipeline/model-runtime.js';
import type { DaemonContext } from './context.js';
import { baselineOptions } from '../detect/baseline.js';

/**
 * Rows kept per sensor. The windower reads each sample once, shortly after it arrives; the ring only
 * has to cover the lag between a push and the advance that reads it, with room for bursts.
 */
const RING_CAPACITY = 4096;

/**
 * The models at work: one ring per sensor, and per enabled bundle a runtime (windower → scorer →
 * detector) reading those rings. Scores and alerts go out as events. SIGHUP (reload) loads every
 * bundle again; a bundle that fails a check is refused and the one running stays.
 */
export class Models implements Component {
  readonly name = 'models';
  private readonly buffers = new Map<string, SensorBuffer>();
  private readonly channels;
  private runtimes = new Map<string, ModelRuntime>();
  /** Models waiting for a sensor that is not ok (health.ts pauses and resumes them). */
  readonly paused = new Set<string>();
  /** The last reload; the next one waits for it. */
  private reloading: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: DaemonContext) {
    this.channels = channelIndex(ctx.config.sensors);
    for (const [sensor, { channels }] of Object.entries(ctx.config.sensors)) {
      this.buffers.set(sensor, new SensorBuffer({ sensor, channels: channels.length, capacity: RING_CAPACITY }));
    }
  }

  async start(): Promise<void> {
    await mkdir(this.ctx.config.models.dir, { recursive: true });
    await this.load(new Map());
  }

  /** Judges the windows already cut, then lets the scorers go. */
  async stop(): Promise<void> {
    for (const m of this.runtimes.values()) m.dispose();
  }

  /** The runtimes, by model type. */
  get all(): ReadonlyMap<string, ModelRuntime> {
    return this.runtimes;
  }

  /** When any model last scored a window (0: none yet). */
  lastScoredAt(): number {
    let t = 0;
    for (const m of this.runtimes.values()) t = Math.max(t, m.lastScoredAt);
    return t;
  }

  /**
   * A reading into its sensor's ring, and every model that reads the sensor forms what it now can.
   * False (counted by reason) when the ring refuses it: unknown sensor, wrong width, time going back.
   */
  accept(s: Sample): boolean {
    const buf = this.buffers.get(s.sensor);
    if (!buf) {
      this.ctx.metrics.ingestDropped.inc({ reason: 'unknown_sensor' });
      return false;
    }
    try {
      buf.push(s.t, s.values);
    } catch (err) {
      if (!(err instanceof SampleRejectedError)) throw err;
      this.ctx.metrics.ingestDropped.inc({ reason: err.reason });
      return false;
    }
    for (const m of this.runtimes.values()) if (m.sensors.has(s.sensor)) m.advance();
    return true;
  }

  /** Scores every model's pending windows now (before the publisher stops, so their alerts go out). */
  flush(): void {
    for (const m of this.runtimes.values()) m.flush();
  }

  reload(): Promise<void> {
    // One at a time: two overlapping reloads would both replace (and dispose) the same runtimes.
    const run = this.reloading.then(async () => {
      const previous = this.runtimes;
      await this.load(previous);
      for (const [name, old] of previous) if (this.runtimes.get(name) !== old) old.dispose();
      this.ctx.events.emit('status', undefined);
    });
    this.reloading = run.catch(() => {});
    return run;
  }

  /** For an update received over MQTT: is `model` running bundle `sha256`, with a window scored since? */
  async liveProblem(model: string, sha256: string): Promise<string | undefined> {
    const m = this.runtimes.get(model);
    if (!m) return `the agent runs no ${model} model`;
    if (m.bundleSha256 !== sha256) return `the agent still runs ${model} ${m.bundleSha256.slice(0, 12)}…`;
    return m.lastScoredAt > 0 ? undefined : `the new ${model} bundle has not scored a window yet`;
  }

  private async load(previous: Map<string, ModelRuntime>): Promise<void> {
    const c = this.ctx.config;
    const log = this.ctx.log('models');
    const next = new Map<string, ModelRuntime>();
    // Read at every load, so a key added or revoked takes effect with the next SIGHUP.
    const trust = { keys: trustedKeys(await Promise.all(c.models.trustedKeys.map(async (f) => ({ pem: await readFile(f, 'utf8'), source: f })))), requireSigned: c.models.requireSigned };
    for (const modelType of c.models.enabled) {
      const dir = bundleDir(c.models, modelType);
      const old = previous.get(modelType);
      try {
        const bundle = await loadBundle(dir, { knownFeatures: [...this.channels.keys()], trust });
        // TensorFlow.js is loaded here, for the first bundle scored with it, if any is.
        const runtime = await ModelRuntime.create({
          bundle,
          channels: this.channels,
          buffers: this.buffers,
          detector: c.detector,
          ...(c.baseline.enabled ? { baseline: baselineOptions(c.baseline) } : {}),
          maxBatch: c.scorer.maxBatch,
          engine: c.scorer.engine,
          backend: c.scorer.backend,
          log: this.ctx.log(`model:${modelType}`),
          now: () => this.ctx.clock.now(),
          onScore: (model, payload) => this.ctx.events.emit('score', { model, payload }),
          onAlert: (e) => this.ctx.events.emit('alert', e),
          onScored: (model, seconds, windows) => {
            this.ctx.metrics.inferenceSeconds.observe({ model }, seconds);
            this.ctx.metrics.windowsScored.inc({ model }, windows);
          },
        });
        next.set(modelType, runtime);
        log.info({ model: modelType, bundle: bundle.manifest.name, dir, threshold: bundle.manifest.threshold, engine: runtime.engine, kernel: runtime.kernel }, old ? 'model reloaded' : 'model loaded');
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
    this.runtimes = next;
  }
}

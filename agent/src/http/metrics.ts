/**
 * The daemon's Prometheus metrics, declared once. Each call builds its own Registry (never prom-client's
 * global one), so two daemons in one test process do not share counters.
 *
 * Our metrics are prefixed `anomaly_agent_`; the default process metrics keep their standard names
 * (`process_cpu_seconds_total`, `nodejs_eventloop_lag_seconds`, …) so stock dashboards work.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const METRIC_PREFIX = 'anomaly_agent_';

/** Inference time buckets, seconds: 1 ms to 2 s. */
export const INFERENCE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2];

export interface Metrics {
  readonly registry: Registry;
  /** Samples accepted into a sensor buffer. */
  readonly samples: Counter<'sensor'>;
  /** Windows run through a model. */
  readonly windowsScored: Counter<'model'>;
  /** Alert transitions; state is `raised` or `cleared`. */
  readonly alerts: Counter<'kind' | 'model' | 'sensor' | 'state'>;
  /** Readings withheld from the models as a sensor fault, by sensor and fault (out of range, stuck). */
  readonly sensorFaults: Counter<'sensor' | 'fault'>;
  /** Ingest messages or samples dropped, by reason (bad_payload, unknown_sensor, …). */
  readonly ingestDropped: Counter<'reason'>;
  /** Outbox entries evicted to stay within bounds, by kind (telemetry, score, …; alerts are never evicted). */
  readonly outboxEvicted: Counter<'kind'>;
  /** Seconds spent in one scoring call (scaling + predict + error), per model. */
  readonly inferenceSeconds: Histogram<'model'>;
  /** Messages waiting in the store-and-forward outbox, by kind. */
  readonly outboxDepth: Gauge<'kind'>;
  /** Bytes waiting in the store-and-forward outbox, by kind. */
  readonly outboxBytes: Gauge<'kind'>;
  /** 1 when the sensor delivers fresh samples, 0 when stale or failing. */
  readonly sensorUp: Gauge<'sensor'>;
  /** How far each model's baseline moved from its training (detect/baseline.ts), training ranges. */
  readonly baselineDrift: Gauge<'model'>;
  /** 1 for the sensor's health in the status topic (state ok, stale, error or fault), 0 for the others. */
  readonly sensorState: Gauge<'sensor' | 'state'>;
}

export interface MetricsOptions {
  /** Also collect prom-client's default process metrics (CPU, memory, event loop, GC). Default true. */
  defaultMetrics?: boolean;
  /**
   * Called once per scrape, before the values are read: where gauges that mirror another
   * component's state (outbox depth, sensor health) are brought up to date.
   */
  beforeScrape?: () => void;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const n = (name: string): string => METRIC_PREFIX + name;

  const metrics: Metrics = {
    registry,
    samples: new Counter({
      name: n('samples_total'),
      help: 'Samples accepted into a sensor buffer.',
      labelNames: ['sensor'] as const,
      registers,
    }),
    windowsScored: new Counter({
      name: n('windows_scored_total'),
      help: 'Windows scored by a model.',
      labelNames: ['model'] as const,
      registers,
    }),
    alerts: new Counter({
      name: n('alerts_total'),
      help: 'Alert transitions (kind = machine | drift | sensor; model for machine and drift, sensor for sensor; state = raised | cleared).',
      labelNames: ['kind', 'model', 'sensor', 'state'] as const,
      registers,
    }),
    sensorFaults: new Counter({
      name: n('sensor_faults_total'),
      help: 'Readings withheld from the models as a sensor fault (fault = out of range | stuck), by sensor.',
      labelNames: ['sensor', 'fault'] as const,
      registers,
    }),
    ingestDropped: new Counter({
      name: n('ingest_dropped_total'),
      help: 'Ingest messages dropped, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    outboxEvicted: new Counter({
      name: n('outbox_evicted_total'),
      help: 'Outbox entries evicted to stay within bounds, by kind.',
      labelNames: ['kind'] as const,
      registers,
    }),
    inferenceSeconds: new Histogram({
      name: n('inference_seconds'),
      help: 'Time for one scoring call (scale, predict, reconstruction error), seconds.',
      labelNames: ['model'] as const,
      buckets: INFERENCE_BUCKETS,
      registers,
    }),
    outboxDepth: new Gauge({
      name: n('outbox_depth'),
      help: 'Messages waiting in the store-and-forward outbox, by kind.',
      labelNames: ['kind'] as const,
      registers,
      // prom-client calls collect on every scrape; one hook for all mirrored values.
      collect: () => opts.beforeScrape?.(),
    }),
    outboxBytes: new Gauge({
      name: n('outbox_bytes'),
      help: 'Bytes waiting in the store-and-forward outbox, by kind.',
      labelNames: ['kind'] as const,
      registers,
    }),
    baselineDrift: new Gauge({
      name: n('baseline_drift'),
      help: "How far a model's notion of normal moved from its training, in training ranges (a drift alert at the limit).",
      labelNames: ['model'] as const,
      registers,
    }),
    sensorUp: new Gauge({
      name: n('sensor_up'),
      help: '1 when the sensor delivers fresh, plausible samples; 0 when stale, failing or a sensor fault.',
      labelNames: ['sensor'] as const,
      registers,
    }),
    sensorState: new Gauge({
      name: n('sensor_state'),
      help: 'Sensor health as in the status topic: 1 for the current state (ok, stale, error, fault), 0 for the others.',
      labelNames: ['sensor', 'state'] as const,
      registers,
    }),
  };

  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return metrics;
}

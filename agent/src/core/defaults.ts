/**
 * Every default of the product, in one place. Nothing else writes a default value down; each user
 * takes its own from here:
 *
 * - `DEFAULTS.config`: every key of the daemon's configuration. config/schema.ts takes each key's
 *   `default:` from it (the schema keeps format, doc, env var and flag), so `anomaly-agent config`,
 *   `run` and docs/configuration.md show these values; the components below fall back on the same
 *   values when a caller leaves an option out.
 * - `DEFAULTS.component`: options of components (sources, sampler, outbox, HTTP server, broker) that
 *   are no configuration key; the daemon never sets them.
 * - `DEFAULTS.broker`: `anomaly-broker`, the broker run on its own (broker/src/main.ts) — its flags
 *   and its --help text.
 * - `DEFAULTS.csv`: the seed's CSV format, which the CSV reader assumes.
 * - `DEFAULTS.dataset`, `DEFAULTS.train`, `DEFAULTS.cli`: the workstation commands' flags (data
 *   generate, train, evaluate, models, probe) and the functions behind them.
 *
 * Constants that nobody can set (ring sizes, poll intervals, physics) stay beside the code that uses
 * them. The values are frozen: a caller that wants another value passes it, it never edits these.
 * Rank 0 (core): imports only core.
 */
import { join } from 'node:path';
import { PACKAGE_ROOT } from './paths.js';
import { MODEL_TYPES, type ModelType, type ProfileName } from './profiles.js';
import { DEFAULT_SENSORS, type SensorLimits, type SensorSpec } from './sample.js';

/** The seed's CSV format: preprocess/csv.ts reads it unless told otherwise, and so does the replay source. */
const csv = { separator: ',', timeColumn: 'timestamp', timeFormat: 'auto' as const, maxErrors: 20 };

/** The daemon's configuration, keyed like `AgentConfig` (config/schema.ts checks that it is one). */
const config = {
  device: { id: 'motor-1' },
  mqtt: { url: '', prefix: 'anomaly', username: '', password: '', clientId: '', keepaliveS: 30, reconnectMs: 2000 },
  broker: {
    host: '127.0.0.1',
    port: 1883,
    wsPort: 8083,
    drainTimeoutMs: 5000,
    usersFile: '',
    tlsPort: 0,
    tlsCert: '',
    tlsKey: '',
    maxPacketBytes: 1024 * 1024,
  },
  http: { host: '127.0.0.1', port: 9464 },
  models: {
    dir: 'state/models',
    shippedDir: join(PACKAGE_ROOT, 'models'),
    profile: 'rpm_600' as ProfileName,
    enabled: [...MODEL_TYPES] as ModelType[],
    trustedKeys: [] as string[],
    requireSigned: false,
  },
  sensors: DEFAULT_SENSORS as SensorSpec,
  source: {
    kind: 'sim' as const,
    replay: {
      file: join(PACKAGE_ROOT, 'datas', 'raw', 'rpm_600', 'test', 'test_01.csv'),
      speed: 1,
      loop: true,
      separator: csv.separator,
      timeColumn: csv.timeColumn,
      timeFormat: csv.timeFormat,
      columns: {} as Record<string, string>,
    },
    sim: { seed: 1, load: 'auto' as number | 'auto', ambientC: 25, faults: '', machine: '', i2cErrorRate: 0 },
  },
  hardware: {
    i2cBus: 1,
    adxl345: { address: 0x53, rangeG: 16, odrHz: 100 },
    ads1115: { address: 0x48, fsrV: 4.096, dataRate: 128, mode: 'single' as const, input: 'AIN0', ratio: 100 },
    mcp9808: { address: 0x18, resolutionC: 0.0625 },
    rpm: { gpio: 17, gpioBase: 0, pulsesPerRev: 1, edge: 'falling' as const, debounceMs: 0.5, timeoutMs: 2000 },
    retries: 2,
    staleMs: 500,
    errorMs: 5000,
  },
  sensorFaults: {
    /**
     * Per channel: the plausible range of a reading [min, max]; `rest`, a value the channel reads
     * while the machine is stopped (plausible below min, never stuck); `stuckMs`, how long the same
     * value means a stuck sensor (0: never). For the seed's motor: 230 V supply, up to 3600 rpm,
     * indoors. README "Sensor faults" gives the reasoning for each.
     */
    channels: {
      accel_x: { min: -150, max: 150, stuckMs: 2000 },
      accel_y: { min: -150, max: 150, stuckMs: 2000 },
      accel_z: { min: -150, max: 150, stuckMs: 2000 },
      accel_x_rms: { min: 0, max: 150, stuckMs: 2000 },
      accel_y_rms: { min: 0, max: 150, stuckMs: 2000 },
      accel_z_rms: { min: 0, max: 150, stuckMs: 2000 },
      accel_x_peak: { min: 0, max: 300, stuckMs: 2000 },
      accel_y_peak: { min: 0, max: 300, stuckMs: 2000 },
      accel_z_peak: { min: 0, max: 300, stuckMs: 2000 },
      voltage: { min: 10, max: 300, rest: 0, stuckMs: 60_000 },
      rpm: { min: 1, max: 3600, rest: 0, stuckMs: 60_000 },
      temperature: { min: 5, max: 155, stuckMs: 3_600_000 },
    } as Record<string, SensorLimits>,
    clearMs: 10_000,
  },
  scorer: { engine: 'auto' as const, backend: 'auto' as const, maxBatch: 32 },
  /**
   * onDelaySpans 1: a load step on the plant-day motor (bench:drift) keeps the voltage and rpm models'
   * windows over for 1–3.5 s of their 5 s span, then they fall back to a fifth of the threshold.
   * stoppedVibration 0.1 m/s²: the simulated motor's axes vary by 0.17–0.31 m/s² (standard deviation
   * over a window) while it runs, 0.04–0.05 (the sensor's noise) when it stands, 0.07–0.11 while it
   * coasts down.
   */
  detector: { raiseK: 3, raiseN: 5, onDelaySpans: 1, stoppedBelow: 0.5, stoppedVibration: 0.1, clearM: 5, clearRatio: 0.8, cooldownMs: 30_000 },
  baseline: { enabled: true, followPerHour: 0.5, settleMs: 300_000, holdMs: 1_800_000, maxDrift: 1 },
  publish: { telemetryIntervalMs: 1000, scores: true },
  outbox: { dir: 'state/outbox', maxBytes: 16 * 1024 * 1024 },
  health: { stallMs: 15_000 },
  shutdown: { timeoutMs: 5000 },
  log: { level: 'info' as const },
  web: { enabled: true, brokerUrl: '', username: '', password: '' },
  homeassistant: { enabled: false, prefix: 'homeassistant' },
  record: { enabled: false, dir: 'state/recordings', maxBytes: 256 * 1024 * 1024, rotateBytes: 16 * 1024 * 1024, rotateMs: 3_600_000 },
  learn: {
    dir: 'state/learn',
    baselineMinutes: 30,
    /**
     * Fine-tuned from the running model (fromRunning), 6 epochs come within 12 % of the validation
     * loss that 15 from random weights reach, in 40 % of the time (30 min of a customer's rpm_1200
     * machine: vibration 0.0485 against 0.0489, voltage 0.0026 against 0.0023).
     */
    maxEpochs: 6,
    fromRunning: true,
    signingKey: '',
    /** ISO 10816-3 group 2 (15–300 kW) on a flexible foundation: the zone C/D boundary, mm/s RMS (docs/learning.md). */
    maxVelocityMmS: 7.1,
    stuckSeconds: 30,
    minCoverage: 0.95,
  },
};

/** Options of components that no configuration key sets. */
const component = {
  /** detect/baseline.ts: what the daemon's baseline holds fixed (docs/drift.md says why). */
  baseline: { referenceMs: 300_000, deadBand: 0.5, settleFraction: 0.5, steadyRange: 0.5, trialMs: 60_000 },
  /** sources/replay.ts: clock time between emission ticks; silence after which a sensor is stale. */
  replay: { tickMs: 25, staleMs: 5000 },
  /** sources/mqtt-ingest.ts (staleMs as the replay's: a sample stream from outside, not the sampler's grid). */
  mqttIngest: { staleMs: 5000, maxPayloadBytes: 4096, maxFutureMs: 3_600_000, burstMs: 10_000 },
  /** hw/sampler.ts: first retry delay (doubled per retry) and the longest wait between init attempts. */
  sampler: { retryDelayMs: 1, reinitMaxMs: 5000 },
  /** sources/hardware.ts: how often sampling statistics are logged (0 = never). */
  hardwareSource: { statsIntervalMs: 60_000 },
  /** publish/outbox.ts: telemetry fdatasync delay; dead bytes below which the log is not compacted. */
  outbox: { telemetrySyncMs: 1000, compactMinBytes: 1024 * 1024 },
  /** http/server.ts: how long stop() lets in-flight requests finish. */
  http: { stopTimeoutMs: 2000 },
  /** daemon/mqtt-connection.ts: how long stop() waits for the broker to acknowledge what is in flight (the offline status, alerts) before it closes the connection regardless. */
  mqtt: { closeTimeoutMs: 1000 },
  /** broker/src/broker.ts: upper bound on close(). */
  broker: { closeTimeoutMs: 5000 },
  /** A bundle received over MQTT (daemon) or installed with `models install` has this long to score its first window. */
  modelUpdate: { liveTimeoutMs: 60_000 },
  /** record/recording.ts: how often rows waiting in memory are written, ms. */
  record: { flushMs: 1000 },
};

/**
 * `anomaly-broker` (broker/src/main.ts). Its settings are the embedded broker's (`broker.*`,
 * `mqtt.prefix`, `log.level`) with one difference on purpose: no WebSocket listener unless asked —
 * the daemon opens one (broker.wsPort) for its own web page, which the standalone broker does not serve.
 */
const broker = {
  host: config.broker.host,
  port: config.broker.port,
  wsPort: 0,
  tlsPort: config.broker.tlsPort,
  topicPrefix: config.mqtt.prefix,
  maxPacketBytes: config.broker.maxPacketBytes,
  drainTimeoutMs: config.broker.drainTimeoutMs,
  logLevel: config.log.level,
};

/** The simulated dataset (motor/generate.ts, `anomaly-agent data generate`); the committed datas/raw is exactly this. */
const dataset = {
  seed: 1,
  trainMinutes: { rpm_600: 30, rpm_1200: 15 } as Record<ProfileName, number>,
  trainFiles: 10,
  testFiles: 6,
  /** 2024-01-08T06:00:00Z: a Monday morning shift; files are spread over the following days. */
  baseMs: Date.UTC(2024, 0, 8, 6, 0, 0),
  /** Where sets larger than the committed one go (git-ignored). */
  largeOut: 'datas/generated',
};

/** `anomaly-agent train` (and bench:train): the fit's settings and the trainer (train/trainer.ts). */
const train = { epochs: 15, patience: 3, batchSize: 64, seed: 42, trainer: 'fast' as const };

/** The other flags of the workstation commands. */
const cli = {
  /** Where data and bundles live unless told otherwise (the repository's own layout). */
  dirs: { data: 'datas/raw', models: 'models' },
  /** --log-level of train and evaluate (stderr). */
  logLevel: { train: 'info', evaluate: 'warn' },
  /** `models flash | install`. */
  models: {
    remoteAgent: 'sudo -n /usr/bin/env node /opt/anomaly-agent/dist/agent/src/cli/main.js',
    remoteConfig: '/etc/anomaly-agent/agent.json',
    reloadCommand: 'systemctl reload anomaly-agent',
    /** --timeout, s: the same time the daemon gives a bundle received over MQTT. */
    liveTimeoutS: component.modelUpdate.liveTimeoutMs / 1000,
    chunkBytes: 49152,
    prefix: config.mqtt.prefix,
  },
  /** `probe --bus`: the daemon's bus. */
  probe: { bus: config.hardware.i2cBus },
};

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

export const DEFAULTS = deepFreeze({ config, component, broker, csv, dataset, train, cli });

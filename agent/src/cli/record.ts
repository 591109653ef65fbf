import { parseArgs } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { channelLimits, SensorCheck } from '../buffer/sensor-check.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { loadCommandConfig } from './options.js';
import { redactUrl, sourceParts, type AgentConfig } from '../config/load.js';
import { loopbackOf } from '../core/address.js';
import { systemClock, type Clock } from '../core/clock.js';
import { createLogger } from '../core/log.js';
import { topicFilter } from '../core/topics.js';
import { sourceDeps } from '../daemon/intake.js';
import { recordingOptions, recordingSource } from '../daemon/recorder.js';
import type { RecordingSource } from '../record/manifest.js';
import { Recording, RecordingError, type RecordingStats } from '../record/recording.js';
import { createSource } from '../sources/registry.js';
import type { SampleSource } from '../sources/source.js';
import { TelemetrySource } from '../sources/telemetry.js';

/** How often a running `record` says how far it has got (stderr log), ms. */
const PROGRESS_MS = 60_000;

export interface RecordRunOptions {
  config: AgentConfig;
  /** Record a gateway's telemetry over MQTT instead of the configured source. */
  telemetry?: boolean;
  clock?: Clock;
  /** Samplers (sim, hardware) on a thread of their own, as in the daemon; default true. */
  threads?: boolean;
  log: Logger;
  /** Called once if the recording stops on an error (a full disk …). */
  onFail?: (err: RecordingError) => void;
}

/** A recording under way: the source feeding the writer. */
export interface RecordRun {
  recording: Recording;
  source: SampleSource;
  /** Stops the source, writes the rest, finishes the files and the manifest; idempotent. */
  stop(): Promise<RecordingStats>;
}

/** Where the broker is: mqtt.url, or the embedded broker of a daemon run with this configuration. */
function brokerUrl(c: AgentConfig): string {
  return c.mqtt.url || `mqtt://${loopbackOf(c.broker.host)}:${c.broker.port}`;
}

async function connect(c: AgentConfig, why: string): Promise<MqttClient> {
  const url = brokerUrl(c);
  try {
    return await connectAsync(url, {
      username: c.mqtt.username || undefined,
      password: c.mqtt.password || undefined,
      clientId: c.mqtt.clientId ? `${c.mqtt.clientId}-record` : undefined,
      reconnectPeriod: c.mqtt.reconnectMs,
      connectTimeout: 10_000,
    });
  } catch (err) {
    throw new Error(`cannot connect to the broker at ${redactUrl(url)} (${why}): ${(err as Error).message}`);
  }
}

/**
 * Starts recording: the configured source built as the daemon builds it (or a gateway's telemetry),
 * every sample into a Recording under record.dir. The source's own failure to start (no I2C bus, a
 * replay file that is not CSV) and the recording's (a directory it cannot write, a budget too small)
 * are thrown, with what was opened closed again.
 */
export async function startRecording(o: RecordRunOptions): Promise<RecordRun> {
  const c = o.config;
  const clock = o.clock ?? systemClock;
  const needsClient = o.telemetry === true || c.source.kind === 'mqtt';
  const client = needsClient ? await connect(c, o.telemetry ? "the gateway's telemetry" : 'the mqtt source') : undefined;
  let source: SampleSource | undefined;
  let recording: Recording | undefined;
  try {
    let described: RecordingSource;
    if (o.telemetry) {
      source = new TelemetrySource({ client: client!, sensors: c.sensors, clock, device: c.device.id, prefix: c.mqtt.prefix, log: o.log });
      described = { kind: 'telemetry', detail: { broker: redactUrl(brokerUrl(c)), topic: topicFilter(c.mqtt.prefix, c.device.id, 'telemetry') } };
    } else {
      source = await createSource(c.source.kind, sourceDeps(c, { clock, threads: o.threads ?? true, log: o.log, client }));
      described = recordingSource(c);
    }
    recording = new Recording({ ...recordingOptions(c, described), clock, log: o.log, onFail: o.onFail });
    await recording.open();
    const rec = recording;
    // The daemon's check before the rings, here before the file: a recording is training data, and a
    // sensor fault must not become someone's normal. (Telemetry carries only readings that passed it.)
    const check = o.telemetry ? undefined : recordCheck(c, o.log);
    source.onSample((s) => {
      if (!check || check.check(s)) rec.add(s);
    });
    await source.start();
  } catch (err) {
    await source?.stop().catch(() => {});
    await recording?.close();
    await client?.endAsync(true);
    throw err;
  }
  const rec = recording;
  const src = source;
  let stopped: Promise<RecordingStats> | undefined;
  return {
    recording: rec,
    source: src,
    stop: () =>
      (stopped ??= (async () => {
        await src.stop().catch((err: Error) => o.log.warn({ err: err.message }, 'the source did not stop cleanly'));
        await rec.close();
        await client?.endAsync();
        return rec.stats();
      })()),
  };
}

/** The sensor fault check of the configuration, logging each fault's start and end. */
function recordCheck(c: AgentConfig, log: Logger): SensorCheck {
  return new SensorCheck({
    sensors: c.sensors,
    limits: channelLimits(c.sensors, c.sensorFaults.channels, sourceParts(c)),
    clearMs: c.sensorFaults.clearMs,
    onAlert: (a) => log.warn({ sensor: a.sensor, fault: a.fault, detail: a.detail }, a.state === 'raised' ? `sensor ${a.sensor}: ${a.fault}; its readings are not recorded meanwhile` : `sensor ${a.sensor}: readings plausible again`),
    onWithheld: () => {},
  });
}

/** `record`'s own flags out of argv; the rest are the configuration's (loadConfig reports unknown ones). */
function ownFlags(argv: string[]): { duration?: string; telemetry: boolean; rest: string[] } {
  const { tokens } = parseArgs({ args: argv, options: { duration: { type: 'string' }, telemetry: { type: 'boolean' } }, strict: false, allowPositionals: true, tokens: true });
  const out: { duration?: string; telemetry: boolean; rest: string[] } = { telemetry: false, rest: [] };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'option' && t.name === 'telemetry') {
      if (t.value !== undefined) throw new UsageError('--telemetry takes no value');
      out.telemetry = true;
    } else if (t.kind === 'option' && t.name === 'duration') {
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith('--'))) throw new UsageError('--duration needs a value');
      out.duration = t.value;
    } else if (t.kind === 'option') {
      out.rest.push(t.rawName, ...(t.value !== undefined ? [t.value] : []));
    } else if (t.kind === 'positional') {
      out.rest.push(t.value);
    }
  }
  return out;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 2 : 0)} MiB`;

export const recordCommand: Command = {
  name: 'record',
  summary: "record what a source reads (or a gateway's telemetry) as seed-format CSV for train --data",
  usage: `usage: anomaly-agent record [--duration S] [--telemetry] [--config FILE] [--<key-flag> VALUE …]

Records the configured source — sim, hardware, replay or mqtt (source.kind), built exactly as
'anomaly-agent run' builds it from the same configuration — as seed-format CSV in record.dir, until
--duration has passed or SIGINT/SIGTERM. Then: anomaly-agent train --data <record.dir>.

  --duration S   stop after S seconds (default: run until a signal)
  --telemetry    record a gateway instead: subscribe to <prefix>/<dev>/telemetry/+ (device.id names
                 the gateway; sensors must be the gateway's)
The mqtt source and --telemetry connect to mqtt.url or, with it empty, to the embedded broker of a
daemon on this machine (broker.host:broker.port).

Rows: one per models.profile period (rpm_600 50 ms, rpm_1200 20 ms) on the grid the daemon's
windows use, each sensor's last reading held for at most five periods; a longer gap leaves a jump in
time, where training ends a segment. Files rec-<time>.csv rotate at record.rotateBytes or
record.rotateMs; the directory never exceeds record.maxBytes (the oldest file is deleted first);
manifest.json says what was recorded. Recording into a directory again carries it on (the same
device, profile and sensors). The daemon records in the background with --record-enabled true.
Every configuration flag applies ('anomaly-agent run --help' lists them); the record.* keys:
  --record-dir DIR  --record-max-bytes N  --record-rotate-bytes N  --record-rotate-ms N
`,
  async run(argv, io) {
    const { duration: durationText, telemetry, rest } = ownFlags(argv);
    let durationMs: number | undefined;
    if (durationText !== undefined) {
      const s = Number(durationText);
      if (!(s > 0) || !Number.isFinite(s)) throw new UsageError(`--duration must be a number of seconds > 0, got '${durationText}'`);
      durationMs = s * 1000;
    }
    const config = loadCommandConfig(rest, io);
    if (!config) return 1;
    const log = createLogger({ level: config.log.level, fd: 2 });
    let finish: (why: string) => void = () => {};
    const finished = new Promise<string>((resolve) => (finish = resolve));
    let failure: RecordingError | undefined;
    const run = await startRecording({
      config,
      telemetry,
      log,
      onFail: (err) => {
        failure = err;
        finish('failed');
      },
    });
    io.onSignal?.((signal) => {
      if (signal !== 'SIGHUP') finish(signal);
    });
    const timer = durationMs !== undefined ? systemClock.setTimeout(() => finish('duration'), durationMs) : undefined;
    const progress = systemClock.setInterval(() => log.info(run.recording.stats(), 'recording'), PROGRESS_MS);
    const started = Date.now();
    const why = await finished;
    timer?.cancel();
    progress.cancel();
    const s = await run.stop();
    if (failure) {
      io.err.write(`anomaly-agent record: ${failure.message}\n`);
      return 1;
    }
    const r = config.record;
    io.out(
      `recorded ${s.rows} rows (${((Date.now() - started) / 1000).toFixed(1)} s of ${telemetry ? `${config.device.id}'s telemetry` : config.source.kind}, a row every ${run.recording.periodMs} ms), ${s.gaps} gap(s), ${s.files} file(s) → ${r.dir} (${mib(s.bytes)} of ${mib(r.maxBytes)}${s.deletedFiles ? `; ${s.deletedFiles} oldest file(s) deleted` : ''}; stopped by ${why})`,
    );
    io.out(`train on it: anomaly-agent train --data ${r.dir}`);
    return 0;
  },
};

/**
 * What the page knows, built only from MQTT messages (topics and payloads of core/topics.ts):
 * devices and their last status, each sensor's recent readings, each model's recent scores and
 * episodes, and the alert log. No DOM here: node tests feed it messages and read it back.
 *
 * Everything is bounded: rings for readings and scores, a capped number of episodes per model and
 * of rows in the alert log. A payload that does not have the shape its topic promises is counted
 * and dropped.
 */
import { parseTopic, SCHEMA_VERSION, type AlertPayload, type LearnPayload, type ModelAlertPayload, type ScorePayload, type SensorAlertPayload, type StatusPayload, type TelemetryPayload, type TopFeature } from '../../core/topics.js';
import { Follower, Ring } from './series.js';

export interface FleetLimits {
  /** Rows kept per sensor (at 50 Hz, 8192 rows are 2.7 minutes). */
  telemetryRows: number;
  /** Windows kept per model. */
  scoreRows: number;
  /** Episodes kept per model, for shading. */
  episodes: number;
  /** Rows in the alert log. */
  alerts: number;
}

export const DEFAULT_LIMITS: FleetLimits = { telemetryRows: 8192, scoreRows: 4096, episodes: 50, alerts: 200 };

const SHOWN = ['status', 'telemetry', 'score', 'alerts', 'learn'] as const;
type Shown = (typeof SHOWN)[number];
const isShown = (name: string): name is Shown => (SHOWN as readonly string[]).includes(name);

export class SensorTrack {
  readonly ring: Ring;
  /** Rows received in all (keeps counting when the ring drops old ones). */
  rows = 0;
  readonly follower = new Follower();
  /** Bumped with every batch: charts redo their decimation when it changed. */
  version = 0;

  constructor(
    readonly channels: readonly string[],
    capacity: number,
  ) {
    this.ring = new Ring(channels.length, capacity);
  }
}

/** An anomaly episode in sample time, from its alerts: `end` is undefined while it is open. */
export interface Episode {
  id: string;
  since: number;
  end: number | undefined;
}

export class ModelTrack {
  /** Columns: score, threshold. */
  readonly ring: Ring;
  windows = 0;
  version = 0;
  threshold = NaN;
  perFeature: Record<string, number> = {};
  readonly episodes: Episode[] = [];

  constructor(capacity: number) {
    this.ring = new Ring(2, capacity);
  }

  /** Newest window end seen (sample time), NaN before any. */
  get lastWindowEnd(): number {
    return this.ring.lastT;
  }
}

export interface Device {
  id: string;
  status: StatusPayload | undefined;
  /** The last learn run's progress (retained on the learn topic), if it ever learned. */
  learn?: LearnPayload;
  /** Wall time (ms) of the last message from this device. */
  lastMessageAt: number;
  readonly sensors: Map<string, SensorTrack>;
  readonly models: Map<string, ModelTrack>;
}

/**
 * One alert incident: its raised and cleared payloads as they arrived (a page opened mid-episode
 * lacks the raise). `subject` is the model, or for a sensor's alert `sensor <name>`.
 */
export type AlertEntry = { id: string; dev: string; subject: string } & (
  | { kind: 'model'; raised: ModelAlertPayload | undefined; cleared: ModelAlertPayload | undefined }
  | { kind: 'sensor'; raised: SensorAlertPayload | undefined; cleared: SensorAlertPayload | undefined }
);

/** Which parts of the fleet changed since the view last looked. */
export interface Changes {
  devices: boolean;
  alerts: boolean;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

function envelope(p: unknown): p is Record<string, unknown> {
  return isObj(p) && p.v === SCHEMA_VERSION && isNum(p.t);
}

function isLearn(p: unknown): p is LearnPayload {
  return isObj(p) && p.v === SCHEMA_VERSION && typeof p.id === 'string' && typeof p.phase === 'string' && typeof p.percent === 'number' && (p.refusal === undefined || typeof p.refusal === 'string');
}

function isStatus(p: unknown): p is StatusPayload {
  return (
    envelope(p) &&
    (p.state === 'online' || p.state === 'offline') &&
    isStr(p.version) &&
    Array.isArray(p.models) &&
    p.models.every((m) => isObj(m) && isStr(m.model) && isStr(m.name)) &&
    isObj(p.sensors) &&
    Object.values(p.sensors).every(isStr)
  );
}

function isTelemetry(p: unknown): p is TelemetryPayload {
  if (!envelope(p) || !Array.isArray(p.channels) || !p.channels.every(isStr) || !Array.isArray(p.ts) || !Array.isArray(p.values)) return false;
  const n = p.channels.length;
  return n > 0 && p.ts.length === p.values.length && p.values.every((row) => Array.isArray(row) && row.length === n);
}

function isScore(p: unknown): p is ScorePayload {
  return envelope(p) && isNum(p.windowEnd) && isNum(p.score) && isNum(p.threshold) && (p.perFeature === undefined || isObj(p.perFeature));
}

function isTop(f: unknown): f is TopFeature {
  return isObj(f) && isStr(f.feature) && isNum(f.error) && isNum(f.share);
}

/** A model's alert (kinds machine and drift; an agent of an earlier version sends no kind: machine) or a sensor's. */
function isAlert(p: unknown): p is AlertPayload {
  return isModelAlert(p) || isSensorAlert(p);
}

function isSensorAlert(p: unknown): p is SensorAlertPayload {
  return (
    envelope(p) &&
    p.kind === 'sensor' &&
    isStr(p.id) &&
    isStr(p.sensor) &&
    (p.state === 'raised' || p.state === 'cleared') &&
    (p.fault === 'out of range' || p.fault === 'stuck') &&
    isStr(p.detail) &&
    isNum(p.since)
  );
}

function isModelAlert(p: unknown): p is ModelAlertPayload {
  return (
    envelope(p) &&
    (p.kind === undefined || p.kind === 'machine' || p.kind === 'drift') &&
    (p.peak === undefined || (isObj(p.peak) && isNum(p.peak.score) && isNum(p.peak.threshold) && Array.isArray(p.peak.topFeatures) && p.peak.topFeatures.every(isTop))) &&
    isStr(p.id) &&
    isStr(p.model) &&
    (p.state === 'raised' || p.state === 'cleared') &&
    isNum(p.score) &&
    isNum(p.threshold) &&
    isNum(p.since) &&
    Array.isArray(p.topFeatures) &&
    p.topFeatures.every(isTop)
  );
}

export class Fleet {
  readonly devices = new Map<string, Device>();
  /** Newest first. */
  readonly alerts: AlertEntry[] = [];
  /** Messages dropped: not JSON, or not the payload their topic promises. */
  bad = 0;
  private readonly changed: Changes = { devices: false, alerts: false };

  constructor(
    readonly prefix: string,
    readonly limits: FleetLimits = DEFAULT_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The changes since the last call, and forgets them. */
  takeChanges(): Changes {
    const c = { ...this.changed };
    this.changed.devices = this.changed.alerts = false;
    return c;
  }

  device(id: string): Device {
    let d = this.devices.get(id);
    if (!d) {
      d = { id, status: undefined, lastMessageAt: 0, sensors: new Map(), models: new Map() };
      this.devices.set(id, d);
      this.changed.devices = true;
    }
    return d;
  }

  /** Takes one MQTT message; returns false when it was dropped (not ours, or malformed). */
  handle(topic: string, payload: Uint8Array | string): boolean {
    const parsed = parseTopic(this.prefix, topic);
    // Only the topics the page shows; ingest and model updates are not for it.
    if (!parsed || !isShown(parsed.name)) return false;
    let p: unknown;
    try {
      p = JSON.parse(typeof payload === 'string' ? payload : new TextDecoder().decode(payload));
    } catch {
      this.bad++;
      return false;
    }
    const ok = this.apply(parsed.name, parsed.dev, parsed.param, p);
    if (!ok) this.bad++;
    return ok;
  }

  private apply(name: Shown, dev: string, param: string | undefined, p: unknown): boolean {
    switch (name) {
      case 'status':
        if (!isStatus(p)) return false;
        this.touch(dev).status = p;
        this.changed.devices = true;
        return true;
      case 'telemetry':
        if (!isTelemetry(p) || param === undefined) return false;
        this.telemetry(this.touch(dev), param, p);
        return true;
      case 'score':
        if (!isScore(p) || param === undefined) return false;
        this.score(this.touch(dev), param, p);
        return true;
      case 'alerts':
        if (!isAlert(p)) return false;
        this.alert(this.touch(dev), p);
        return true;
      case 'learn':
        if (!isLearn(p)) return false;
        this.touch(dev).learn = p;
        this.changed.devices = true;
        return true;
    }
  }

  private touch(dev: string): Device {
    const d = this.device(dev);
    d.lastMessageAt = this.now();
    return d;
  }

  private telemetry(d: Device, sensor: string, p: TelemetryPayload): void {
    let s = d.sensors.get(sensor);
    if (!s || s.channels.join('\u0000') !== p.channels.join('\u0000')) {
      s = new SensorTrack([...p.channels], this.limits.telemetryRows);
      d.sensors.set(sensor, s);
      this.changed.devices = true;
    }
    for (let i = 0; i < p.ts.length; i++) if (s.ring.push(p.ts[i]!, p.values[i]!)) s.rows++;
    s.follower.observe(s.ring.lastT, this.now());
    s.version++;
  }

  private model(d: Device, name: string): ModelTrack {
    let m = d.models.get(name);
    if (!m) {
      m = new ModelTrack(this.limits.scoreRows);
      d.models.set(name, m);
      this.changed.devices = true;
    }
    return m;
  }

  private score(d: Device, name: string, p: ScorePayload): void {
    const m = this.model(d, name);
    const before = m.ring.length;
    const last = m.lastWindowEnd;
    m.ring.push(p.windowEnd, [p.score, p.threshold]);
    // The ring started over: the episodes it shaded belong to the old timeline.
    if (p.windowEnd < last || m.ring.length < before) m.episodes.length = 0;
    m.windows++;
    m.threshold = p.threshold;
    m.perFeature = isObj(p.perFeature) ? p.perFeature : {};
    m.version++;
  }

  private alert(d: Device, p: AlertPayload): void {
    if (p.kind !== 'sensor') {
      p.kind ??= 'machine';
      if (p.kind === 'machine') this.episode(d, p);
    }
    let entry = this.alerts.find((a) => a.id === p.id && a.dev === d.id);
    if (!entry) {
      entry =
        p.kind === 'sensor'
          ? { id: p.id, dev: d.id, subject: `sensor ${p.sensor}`, kind: 'sensor', raised: undefined, cleared: undefined }
          : { id: p.id, dev: d.id, subject: p.model, kind: 'model', raised: undefined, cleared: undefined };
      this.alerts.unshift(entry);
      if (this.alerts.length > this.limits.alerts) this.alerts.pop();
    }
    // An id names one subject: a payload of the other kind under it is not this incident's.
    if ((entry.kind === 'sensor') !== (p.kind === 'sensor')) return;
    (entry as { raised?: AlertPayload; cleared?: AlertPayload })[p.state] = p;
    this.changed.alerts = true;
  }

  /** The open sensor alerts of a device, by sensor (what its health badge explains). */
  sensorFaults(dev: string): Map<string, SensorAlertPayload[]> {
    const out = new Map<string, SensorAlertPayload[]>();
    for (const a of this.alerts) {
      if (a.dev !== dev || a.kind !== 'sensor' || a.cleared || !a.raised) continue;
      out.set(a.raised.sensor, [...(out.get(a.raised.sensor) ?? []), a.raised]);
    }
    return out;
  }

  /** A machine episode shades its model's score chart. */
  private episode(d: Device, p: ModelAlertPayload): void {
    const m = this.model(d, p.model);
    let ep = m.episodes.find((e) => e.id === p.id);
    if (!ep) {
      ep = { id: p.id, since: p.since, end: undefined };
      m.episodes.push(ep);
      if (m.episodes.length > this.limits.episodes) m.episodes.shift();
    }
    // Cleared: the episode ends at the newest window scored by then (alert times are wall clock,
    // windows are sample time; a replay runs the two apart).
    if (p.state === 'cleared') ep.end = Math.max(ep.since, Number.isFinite(m.lastWindowEnd) ? m.lastWindowEnd : ep.since);
    m.version++;
  }
}

/** How long an incident lasted (or has lasted, while open), ms; undefined when it cannot be told. */
export function alertDuration(a: AlertEntry, now: number): number | undefined {
  // Raised and cleared carry wall-clock `t`: their difference is how long the alert stood. `since`
  // is sample time, which a replay runs ahead of the clock: only a fallback.
  if (a.raised && a.cleared) return Math.max(0, a.cleared.t - a.raised.t);
  if (a.raised) return Math.max(0, now - a.raised.t);
  if (a.cleared && a.cleared.t >= a.cleared.since) return a.cleared.t - a.cleared.since;
  return undefined;
}

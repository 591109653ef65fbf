/**
 * Where samples come from (DESIGN.md, data flow: "source ──Sample──▶ SensorBuffer"). Every source —
 * CSV replay, MQTT ingest, and later the I2C/GPIO drivers and the simulator — implements this one
 * interface, is built by `createSource` in registry.ts from configuration, and passes the shared
 * contract test in contract.ts (CONVENTIONS.md, habit 4).
 */
import type { Logger } from 'pino';
import type { Component } from '../core/component.js';
import type { Sample, SensorHealth, SensorSpec } from '../core/sample.js';

export interface SampleSource extends Component {
  /** Registry key this source was built from: 'replay', 'mqtt', 'sim', … */
  readonly kind: string;
  /**
   * Adds a consumer. Every sample goes to every handler, in registration order. Samples carry
   * `t` strictly increasing per sensor and `values` in the order of the sensor's channels.
   * A handler that throws is logged and does not stop the source or the other handlers.
   */
  onSample(handler: (s: Sample) => void): void;
  /** One entry per configured sensor (the `sensors` of the status payload). */
  health(): Record<string, SensorHealth>;
}

/**
 * The handler list every source keeps: fan-out with each handler isolated, so a consumer's bug
 * is logged (once per `errorWindowMs` burst) instead of unwinding into a timer or an MQTT
 * 'message' callback and killing the daemon.
 */
export class SampleHandlers {
  private readonly handlers: ((s: Sample) => void)[] = [];
  private lastErrorLog = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly getLog: () => Pick<Logger, 'error' | 'debug'>,
    private readonly now: () => number,
    private readonly errorWindowMs = 10_000,
  ) {}

  add(handler: (s: Sample) => void): void {
    this.handlers.push(handler);
  }

  emit(s: Sample): void {
    for (const h of this.handlers) {
      try {
        h(s);
      } catch (e) {
        this.reportError(s, e);
      }
    }
  }

  private reportError(s: Sample, e: unknown): void {
    const now = this.now();
    if (now - this.lastErrorLog < this.errorWindowMs) {
      this.suppressed++;
      return;
    }
    const log = this.getLog();
    const err = e instanceof Error ? e : new Error(String(e));
    log.error({ sensor: s.sensor, suppressed: this.suppressed }, `sample handler threw: ${err.message}`);
    log.debug({ err }, 'sample handler stack');
    this.lastErrorLog = now;
    this.suppressed = 0;
  }
}

/** All sensors with one health value (before start, after stop, on a failed subscription). */
export function allSensors(sensors: SensorSpec, h: SensorHealth): Record<string, SensorHealth> {
  const out: Record<string, SensorHealth> = {};
  for (const name of Object.keys(sensors)) out[name] = h;
  return out;
}

/**
 * Health from the last time (on the source's clock) each sensor produced a sample. A sensor that
 * has produced nothing yet is measured from `since` (the start), so a freshly started source is
 * 'ok' for one `staleMs` grace period and then 'stale' until data arrives.
 */
export function healthFromLastSeen(
  sensors: SensorSpec,
  lastSeen: ReadonlyMap<string, number>,
  since: number,
  now: number,
  staleMs: number,
): Record<string, SensorHealth> {
  const out: Record<string, SensorHealth> = {};
  for (const name of Object.keys(sensors)) out[name] = now - (lastSeen.get(name) ?? since) > staleMs ? 'stale' : 'ok';
  return out;
}

/** Shared option check: a positive finite number, with a message naming the option. */
export function positive(what: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new RangeError(`${what} must be a finite number > 0, got ${String(v)}`);
  return v;
}

/**
 * Sensor faults are not machine faults (DESIGN.md): every reading is checked here before it may enter
 * the rings. A reading outside its channel's plausible range, or a channel whose value has not moved
 * for its `stuckMs`, is a sensor fault: the reading is withheld (so never scored — the windower sees
 * a gap, which breaks windows instead of inventing data), counted, and the sensor's episode of that
 * fault is announced once, raised, then cleared once the sensor has read plausibly for `clearMs`.
 *
 * Time is the samples' own (`t`), as for the windows, so a replay at ×10 or a ManualClock judges the
 * same readings the same way. No allocation for a plausible reading.
 */
import { randomBytes } from 'node:crypto';
import type { SensorAlert } from '../core/alert.js';
import type { SensorFault } from '../core/payloads.js';
import type { Sample, SensorLimits, SensorSpec } from '../core/sample.js';

/**
 * Fewest equal readings that can make a stuck sensor, however long they span: a slow feed (one
 * reading a second, at a coarse resolution) repeats a value a few times by chance; ten times is no
 * chance.
 */
export const STUCK_MIN_READINGS = 10;

/** What a part can read at all (hw/build.ts partRanges), and how to say so. */
export interface PartRange {
  min: number;
  max: number;
  /** e.g. "the ADXL345 at ±16 g". */
  part: string;
}

/** A channel's limits as checked: the configured ones narrowed to its part's range, and where they came from. */
export interface ChannelLimits extends SensorLimits {
  /** Set when the part narrowed [min, max]. */
  part?: string;
}

/**
 * The limits every configured channel is checked against: its `sensorFaults.channels` entry, with
 * [min, max] narrowed to what its part can read where the source knows the part. Throws naming the
 * key when a channel has no entry, or when the entry and the part have no reading in common.
 */
export function channelLimits(sensors: SensorSpec, configured: Readonly<Record<string, SensorLimits>>, parts: Readonly<Record<string, PartRange>> = {}): Map<string, ChannelLimits> {
  const out = new Map<string, ChannelLimits>();
  for (const [sensor, { channels }] of Object.entries(sensors)) {
    for (const ch of channels) {
      const c = Object.hasOwn(configured, ch) ? configured[ch] : undefined;
      if (!c) throw new Error(`channel '${ch}' of sensor '${sensor}' has no entry: add "${ch}": {"min": …, "max": …, "stuckMs": …}`);
      const p = Object.hasOwn(parts, ch) ? parts[ch] : undefined;
      if (!p || (p.min <= c.min && p.max >= c.max)) {
        out.set(ch, { ...c });
        continue;
      }
      const min = Math.max(c.min, p.min);
      const max = Math.min(c.max, p.max);
      if (!(min < max)) throw new Error(`channel '${ch}': ${c.min}..${c.max} has no reading in common with what ${p.part} can read (${round(p.min)}..${round(p.max)})`);
      out.set(ch, { ...c, min, max, part: p.part });
    }
  }
  return out;
}

interface Episode {
  id: string;
  since: number;
  /** Sample time of the newest reading of this fault. */
  lastBadT: number;
  detail: string;
  withheld: number;
}

interface SensorState {
  readonly sensor: string;
  readonly channels: readonly string[];
  readonly limits: readonly ChannelLimits[];
  /** Per channel: the value of the current run of equal readings, when it began, how many. */
  readonly last: Float64Array;
  readonly sameSince: Float64Array;
  readonly sameCount: Uint32Array;
  readonly open: Partial<Record<SensorFault, Episode>>;
}

export interface SensorCheckOptions {
  sensors: SensorSpec;
  limits: ReadonlyMap<string, ChannelLimits>;
  /** A fault clears once its sensor has read plausibly for this long, ms of sample time. */
  clearMs: number;
  /** A sensor alert raised or cleared. */
  onAlert: (a: SensorAlert) => void;
  /** A reading withheld, and why (counted). */
  onWithheld: (sensor: string, fault: SensorFault) => void;
}

/** The open fault of a sensor, for status and /healthz. */
export interface OpenFault {
  fault: SensorFault;
  detail: string;
  since: number;
}

export class SensorCheck {
  private readonly states = new Map<string, SensorState>();

  constructor(private readonly o: SensorCheckOptions) {
    for (const [sensor, { channels }] of Object.entries(o.sensors)) {
      const limits = channels.map((ch) => {
        const l = o.limits.get(ch);
        if (!l) throw new Error(`sensor check: no limits for channel '${ch}' of sensor '${sensor}'`);
        return l;
      });
      const n = channels.length;
      this.states.set(sensor, { sensor, channels, limits, last: new Float64Array(n), sameSince: new Float64Array(n), sameCount: new Uint32Array(n), open: {} });
    }
  }

  /**
   * Judges one reading: true when it may go to the rings. A sample this check cannot judge (an
   * unknown sensor, the wrong number of values) passes, for the ring to refuse and count.
   */
  check(s: Sample): boolean {
    const st = this.states.get(s.sensor);
    if (!st || s.values.length !== st.channels.length) return true;
    const t = s.t;
    let range = -1;
    let stuck = -1;
    for (let i = 0; i < st.channels.length; i++) {
      const v = s.values[i]!;
      const l = st.limits[i]!;
      if (v === l.rest) {
        st.sameCount[i] = 0; // a standing machine may rest as long as it likes
        continue;
      }
      if (!(v >= l.min && v <= l.max)) {
        if (range < 0) range = i;
        st.sameCount[i] = 0; // an implausible reading is that fault, not also a stuck one
        continue;
      }
      if (st.sameCount[i] === 0 || v !== st.last[i]) {
        st.last[i] = v;
        st.sameSince[i] = t;
        st.sameCount[i] = 1;
      } else {
        st.sameCount[i]!++;
      }
      if (stuck < 0 && l.stuckMs > 0 && st.sameCount[i]! >= STUCK_MIN_READINGS && t - st.sameSince[i]! >= l.stuckMs) stuck = i;
    }
    this.judge(st, 'out of range', range, t, () => this.rangeDetail(st, range, s.values[range]!), t);
    this.judge(st, 'stuck', stuck, t, () => this.stuckDetail(st, stuck, t), stuck >= 0 ? st.sameSince[stuck]! : t);
    const fault: SensorFault | undefined = range >= 0 ? 'out of range' : stuck >= 0 ? 'stuck' : undefined;
    if (fault === undefined) return true;
    st.open[fault]!.withheld++;
    this.o.onWithheld(s.sensor, fault);
    return false;
  }

  /** Every sensor with an open fault, its faults. */
  faults(): Map<string, OpenFault[]> {
    const out = new Map<string, OpenFault[]>();
    for (const st of this.states.values()) {
      const open = (Object.entries(st.open) as [SensorFault, Episode][]).map(([fault, e]) => ({ fault, detail: e.detail, since: e.since }));
      if (open.length > 0) out.set(st.sensor, open);
    }
    return out;
  }

  /** Raises a fault at its first bad reading, and clears it after clearMs of readings without it. */
  private judge(st: SensorState, fault: SensorFault, channel: number, t: number, detail: () => string, since: number): void {
    const ep = st.open[fault];
    if (channel >= 0) {
      if (ep) {
        ep.lastBadT = t;
        return;
      }
      const e: Episode = { id: `${st.sensor}-${t.toString(36).padStart(9, '0')}-${randomBytes(4).toString('hex')}`, since, lastBadT: t, detail: detail(), withheld: 0 };
      st.open[fault] = e;
      this.o.onAlert({ id: e.id, kind: 'sensor', sensor: st.sensor, state: 'raised', fault, detail: e.detail, since: e.since });
    } else if (ep && t - ep.lastBadT >= this.o.clearMs) {
      delete st.open[fault];
      const detail = `${ep.detail}; ${ep.withheld} reading${ep.withheld === 1 ? '' : 's'} withheld in ${seconds(ep.lastBadT - ep.since)}`;
      this.o.onAlert({ id: ep.id, kind: 'sensor', sensor: st.sensor, state: 'cleared', fault, detail, since: ep.since, reason: 'readings plausible again' });
    }
  }

  private rangeDetail(st: SensorState, i: number, v: number): string {
    const l = st.limits[i]!;
    const rest = l.rest !== undefined ? ` (or ${round(l.rest)} at rest)` : '';
    return `${st.channels[i]} read ${round(v)}, outside its plausible range ${round(l.min)}..${round(l.max)}${rest}${l.part ? `, narrowed to what ${l.part} can read` : ''}`;
  }

  private stuckDetail(st: SensorState, i: number, t: number): string {
    const l = st.limits[i]!;
    return `${st.channels[i]} read ${round(st.last[i]!)} unchanged for ${seconds(t - st.sameSince[i]!)} (${st.sameCount[i]} readings; stuck after ${seconds(l.stuckMs)})`;
  }
}

const round = (v: number): string => String(Number(v.toPrecision(6)));
const seconds = (ms: number): string => `${Number((ms / 1000).toPrecision(3))} s`;

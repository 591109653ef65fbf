/**
 * Is a recorded baseline fit to be learned as this machine's normal? Learning a baseline that holds
 * a gap, a dead sensor or a machine that is already damaged would teach the models that this is
 * normal, so each problem refuses it with a sentence that says what was found (daemon/learner.ts
 * adds the one thing the rows cannot show: an alert raised while it was recorded).
 *
 * - gaps: any step between rows longer than the recording's maxGapMs (the recording lists them);
 * - too little data: fewer rows than `minCoverage` of one per period over the baseline's length, or
 *   too few to cut MIN_VAL_WINDOWS validation windows (the threshold is a quantile of those);
 * - a stuck sensor: a channel repeating exactly the same value for `stuckSeconds` or longer (a
 *   live sensor's noise changes its last digit every read); a flat one: the same value throughout.
 *   Slow channels (temperature) legitimately sit on one quantisation step for minutes, so they are
 *   only judged flat over a baseline of SLOW_FLAT_MS or more;
 * - a damaged machine: vibration velocity in the "damaged" zone of ISO 20816-style limits
 *   (velocityMmS below; docs/learning.md says which limits and why).
 */
import { PROFILES, SHAPE_CHANNELS, type ProfileName } from '../core/profiles.js';
import type { Series } from '../preprocess/csv.js';
import { TRAIN_FRACTION } from './pipeline.js';

/** The threshold is a quantile of the validation windows: fewer than this and it means little. */
export const MIN_VAL_WINDOWS = 10;
/** A slow channel is judged flat only over a baseline at least this long, ms. */
export const SLOW_FLAT_MS = 10 * 60_000;
/** Velocity is estimated block by block (the mean of a block removed: gravity, sensor offset, slow drift), ms. */
const VELOCITY_BLOCK_MS = 10_000;
const ACCEL_AXES = ['accel_x', 'accel_y', 'accel_z'];

export interface BaselineCheckOptions {
  profile: ProfileName;
  /** The baseline's intended length, ms. */
  durationMs: number;
  /** Gaps the recording counted. */
  gaps: number;
  minCoverage: number;
  stuckSeconds: number;
  maxVelocityMmS: number;
}

export interface BaselineVerdict {
  /** Empty when the baseline may be learned. */
  problems: string[];
  rows: number;
  t0: number;
  t1: number;
  /** Highest axis' velocity, mm/s RMS, when the baseline has accelerometer channels. */
  velocityMmS?: number;
  velocityAxis?: string;
}

const clock = (t: number) => new Date(t).toISOString().slice(11, 19);

export function checkBaseline(series: readonly Series[], o: BaselineCheckOptions): BaselineVerdict {
  const profile = PROFILES[o.profile];
  const rows = series.reduce((s, x) => s + x.rows, 0);
  const t0 = series.length > 0 && series[0]!.rows > 0 ? series[0]!.t[0]! : NaN;
  const last = series.at(-1);
  const t1 = last && last.rows > 0 ? last.t[last.rows - 1]! : NaN;
  const problems: string[] = [];

  if (o.gaps > 0) problems.push(`${o.gaps} gap${o.gaps === 1 ? '' : 's'} in the baseline (a sensor silent for more than ${(5 * profile.periodMs) / 1000} s): learn again when the readings are steady`);

  const expected = Math.floor(o.durationMs / profile.periodMs);
  // Validation windows from the last (1 − TRAIN_FRACTION) of the rows, cut every hop.
  const needed = Math.ceil((profile.seqLen + (MIN_VAL_WINDOWS - 1) * profile.hop) / (1 - TRAIN_FRACTION));
  if (rows < o.minCoverage * expected || rows < needed) {
    const why = rows < needed ? `at least ${needed} rows (${Math.ceil((needed * profile.periodMs) / 60_000)} min) are needed to learn a ${o.profile} model` : `${Math.round(o.minCoverage * 100)} % of ${expected} expected (learn.minCoverage)`;
    problems.push(`too little data: ${rows} rows of ${profile.periodMs} ms; ${why}`);
  }

  const columns = series.length > 0 ? Object.keys(series[0]!.columns) : [];
  for (const ch of columns) {
    const slow = (SHAPE_CHANNELS as readonly string[]).includes(ch);
    const run = longestRun(series, ch);
    if (run.flat && rows > 1) {
      if (!slow || t1 - t0 >= SLOW_FLAT_MS) problems.push(`sensor channel ${ch} is flat: ${fmt(run.value)} in every row`);
    } else if (!slow && run.ms >= o.stuckSeconds * 1000) {
      problems.push(`sensor channel ${ch} is stuck: ${fmt(run.value)} for ${Math.round(run.ms / 1000)} s from ${clock(run.from)} (learn.stuckSeconds ${o.stuckSeconds})`);
    }
  }

  const v = velocity(series, profile.nominalRpm);
  if (v && v.mmS >= o.maxVelocityMmS) {
    problems.push(`vibration velocity ${v.mmS.toFixed(1)} mm/s RMS (${v.axis}) is in the damaged zone (≥ ${o.maxVelocityMmS} mm/s, learn.maxVelocityMmS): a machine in this state is not learned as normal`);
  }
  return { problems, rows, t0, t1, ...(v ? { velocityMmS: v.mmS, velocityAxis: v.axis } : {}) };
}

const fmt = (x: number) => String(Math.round(x * 1e6) / 1e6);

/** The longest run in time of exactly equal consecutive values of a channel (within one file), and whether it holds one value throughout. */
function longestRun(series: readonly Series[], ch: string): { flat: boolean; ms: number; from: number; value: number } {
  let best = { ms: -1, from: NaN, value: NaN };
  let flat = true;
  const first = series[0]?.columns[ch]?.[0];
  for (const s of series) {
    const x = s.columns[ch]!;
    let start = 0;
    for (let i = 1; i <= s.rows; i++) {
      if (i < s.rows && x[i] === x[start]) continue;
      const ms = s.t[i - 1]! - s.t[start]!;
      if (ms > best.ms) best = { ms, from: s.t[start]!, value: x[start]! };
      if (x[start] !== first) flat = false;
      start = i;
    }
  }
  return { flat, ...best };
}

/**
 * Vibration velocity, mm/s RMS, of the accelerometer axis that moves most. ISO 20816 measures RMS
 * velocity over 10–1000 Hz; the channels here are sampled every 20–50 ms, below the shaft's own
 * harmonics, and alias them. But the RMS of a sampled sinusoid is its RMS whatever the aliasing, so
 * each block's acceleration RMS (its mean removed) is converted as the 1× line would be:
 * v = a / (2π · shaft frequency), with the speed from the rpm channel (the profile's nominal speed
 * without one). Exact for the 1× line that residual unbalance makes; for the harmonics (higher
 * frequency, less velocity per m/s²) and for broadband noise it overestimates — a conservative
 * guard, which refuses sooner rather than later.
 */
export function velocity(series: readonly Series[], nominalRpm: number): { mmS: number; axis: string } | undefined {
  const axes = series.length > 0 ? ACCEL_AXES.filter((a) => a in series[0]!.columns) : [];
  if (axes.length === 0) return undefined;
  const sumSq = new Float64Array(axes.length);
  let blocks = 0;
  for (const s of series) {
    const rpm = s.columns.rpm;
    for (let a = 0; a < s.rows; ) {
      let b = a;
      while (b < s.rows && s.t[b]! - s.t[a]! < VELOCITY_BLOCK_MS) b++;
      if (b - a >= 10) {
        let shaftRpm = nominalRpm;
        if (rpm) {
          let r = 0;
          for (let i = a; i < b; i++) r += rpm[i]!;
          // A stopped or barely turning shaft has no 1× line to convert at; its vibration is judged at nominal speed.
          shaftRpm = Math.max(r / (b - a), nominalRpm / 4);
        }
        const omega = 2 * Math.PI * (shaftRpm / 60);
        axes.forEach((axis, k) => {
          const x = s.columns[axis]!;
          let mean = 0;
          for (let i = a; i < b; i++) mean += x[i]!;
          mean /= b - a;
          let ss = 0;
          for (let i = a; i < b; i++) ss += (x[i]! - mean) ** 2;
          sumSq[k]! += (ss / (b - a)) / (omega * omega);
        });
        blocks++;
      }
      a = b;
    }
  }
  if (blocks === 0) return undefined;
  let k = 0;
  for (let i = 1; i < axes.length; i++) if (sumSq[i]! > sumSq[k]!) k = i;
  return { mmS: Math.sqrt(sumSq[k]! / blocks) * 1000, axis: axes[k]! };
}

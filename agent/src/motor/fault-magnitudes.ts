/**
 * Fault magnitudes per intensity, and the sensor-side constants (full-scale rails) the sensor
 * faults need. One table, so the simulator, the dataset README and the tests agree on what
 * "subtle" means.
 *
 * Calibration rule: `subtle` is barely above what normal running already does (a model that
 * catches it is good), `moderate` is what a vibration analyst would flag on a route, `obvious`
 * is unmistakable on a plot.
 */
import type { Channel } from '../core/profiles.js';
import { INTENSITIES, type FaultKind, type Intensity } from '../core/faults.js';

export interface FaultMagnitude {
  /** Imbalance: multiplier of the radial 1x amplitude (mass unbalance force ∝ m·e·ω²). */
  imbalance1x: number;
  /** Misalignment: added radial 2x, axial 1x/2x and radial 3x amplitudes, m/s². */
  misalign2xRadial: number;
  misalignAxial: number;
  misalign3x: number;
  /** Bearing: peak acceleration of one outer-race impact's ringing, m/s². */
  bearingImpact: number;
  /** Looseness: amplitude of the (half-)harmonic series, m/s². */
  looseHarmonics: number;
  /** Looseness: fraction of the radial peak cut off by the truncated (clipped) response. */
  looseClip: number;
  /** Looseness: probability of a knock per revolution, and its peak acceleration, m/s². */
  looseKnockProb: number;
  looseKnock: number;
  /** Sag: relative dip of the supply voltage. */
  sagDepth: number;
  /** Swell: relative rise of the supply voltage. */
  swellRise: number;
  /**
   * Overheating: multiplier of the thermal resistance (cooling loss), and the time constant of the
   * extra rise. The short constant is the fan/airflow loss seen at the frame sensor, not the
   * motor's bulk (minutes): that is what makes a fault visible within a 20–40 s span.
   */
  overheatRth: number;
  /** Hunting: relative amplitude of the speed oscillation. */
  huntingAmp: number;
  /** Dropout: fraction of reads that return 0 (1 = the channel is dead). */
  dropoutFraction: number;
}

export const FAULT_MAGNITUDES: Record<Intensity, FaultMagnitude> = {
  subtle: {
    imbalance1x: 1.35,
    misalign2xRadial: 0.08,
    misalignAxial: 0.06,
    misalign3x: 0.03,
    bearingImpact: 0.5,
    looseHarmonics: 0.08,
    looseClip: 0.15,
    looseKnockProb: 0.2,
    looseKnock: 0.5,
    sagDepth: 0.03,
    swellRise: 0.02,
    overheatRth: 1.15,
    huntingAmp: 0.01,
    dropoutFraction: 0.1,
  },
  moderate: {
    imbalance1x: 2.0,
    misalign2xRadial: 0.25,
    misalignAxial: 0.2,
    misalign3x: 0.1,
    bearingImpact: 2.0,
    looseHarmonics: 0.25,
    looseClip: 0.35,
    looseKnockProb: 0.5,
    looseKnock: 2.0,
    sagDepth: 0.08,
    swellRise: 0.05,
    overheatRth: 1.7,
    huntingAmp: 0.03,
    dropoutFraction: 0.5,
  },
  obvious: {
    imbalance1x: 3.5,
    misalign2xRadial: 0.7,
    misalignAxial: 0.6,
    misalign3x: 0.3,
    bearingImpact: 6.0,
    looseHarmonics: 0.6,
    looseClip: 0.6,
    looseKnockProb: 0.9,
    looseKnock: 6.0,
    sagDepth: 0.2,
    swellRise: 0.12,
    overheatRth: 4.0,
    huntingAmp: 0.08,
    dropoutFraction: 1.0,
  },
};

/** Time constant of the extra temperature rise while cooling is lost, s. */
export const OVERHEAT_TAU_S = 120;
/**
 * Time constant of its decay once cooling is restored, s. A real frame cools over minutes; we
 * let the fan-side sensor recover fast so the aftermath of a labelled span does not spill far
 * into the ≥ 30 s of normal running that follows it (a deliberate compromise for labelled data).
 */
export const OVERHEAT_RECOVER_TAU_S = 12;

/**
 * Full-scale readings a sensor reports when its converter saturates or a register reads
 * 0x7FFF/0x8000. Accel: ADXL345 at ±16 g → ±16·9.80665 = ±156.9 m/s². Voltage: a 0–400 V RMS
 * measurement front end. RPM: a 6000 rpm tachometer range. Temperature: MCP9808's largest code,
 * +255.9375 °C.
 */
export const SENSOR_RAILS: Record<Channel, { lo: number; hi: number }> = {
  accel_x: { lo: -156.9, hi: 156.9 },
  accel_y: { lo: -156.9, hi: 156.9 },
  accel_z: { lo: -156.9, hi: 156.9 },
  voltage: { lo: 0, hi: 400 },
  rpm: { lo: 0, hi: 6000 },
  temperature: { lo: -40, hi: 255.9375 },
};

/** Channels each machine fault visibly acts on (primary first). Sensor faults name their own. */
export const FAULT_CHANNELS: Record<Exclude<FaultKind, 'stuck' | 'dropout'>, Channel[]> = {
  imbalance: ['accel_x', 'accel_y'],
  misalignment: ['accel_x', 'accel_y', 'accel_z'],
  bearing: ['accel_x', 'accel_y', 'accel_z'],
  looseness: ['accel_x', 'accel_y', 'accel_z'],
  // A sag/swell changes the induction motor's slip (torque ∝ V²), so rpm moves too.
  sag: ['voltage', 'rpm'],
  swell: ['voltage', 'rpm'],
  overheating: ['temperature'],
  // The shaft phase follows the oscillating speed, so the vibration is frequency-modulated.
  hunting: ['rpm', 'accel_x', 'accel_y', 'accel_z'],
};

/**
 * Default channels for the sensor faults when the caller does not name them. Chosen so that the
 * intensity is honest: a single radial axis frozen at its last value is subtle, the whole
 * accelerometer hanging (all three data registers stop updating) is moderate, a rail is obvious.
 */
export const SENSOR_FAULT_DEFAULT_CHANNELS: Record<'stuck' | 'dropout', Record<Intensity, Channel[]>> = {
  stuck: { subtle: ['accel_x'], moderate: ['accel_x', 'accel_y', 'accel_z'], obvious: ['accel_x'] },
  dropout: { subtle: ['accel_x'], moderate: ['accel_y'], obvious: ['accel_z'] },
};

/**
 * Channel choices the dataset generator draws from, per intensity. Subtle sensor faults sit on
 * channels where the symptom is small (a radial axis whose mean is ~0 reading 0 now and then;
 * a noisy channel losing its noise); obvious ones may hit any channel.
 */
export const SENSOR_FAULT_CHANNEL_CHOICES: Record<'stuck' | 'dropout', Record<Intensity, Channel[][]>> = {
  stuck: {
    subtle: [['accel_x'], ['accel_y'], ['voltage'], ['rpm']],
    moderate: [['accel_x', 'accel_y', 'accel_z'], ['voltage', 'rpm']],
    obvious: [['accel_x'], ['accel_y'], ['accel_z'], ['voltage'], ['rpm'], ['temperature']],
  },
  dropout: {
    subtle: [['accel_x'], ['accel_y']],
    moderate: [['accel_x'], ['accel_y'], ['accel_z'], ['rpm']],
    obvious: [['accel_z'], ['voltage'], ['rpm'], ['temperature'], ['accel_x', 'accel_y', 'accel_z']],
  },
};

/**
 * Bearing wear that grows by itself: an outer-race defect whose impacts strengthen continuously
 * from the onset, through the `subtle` and `moderate` impacts of FAULT_MAGNITUDES, to `obvious` after
 * `obviousAfterMs`, and on past it. The impact grows as u^exponent (u = time since onset over
 * obviousAfterMs): a spall that widens slowly at first and faster as it grows. It is the same
 * bearing physics as the switched fault, with a time-dependent impact instead of a fixed one.
 */
export interface BearingWear {
  /** When the defect begins, ms epoch (simulation time). */
  onsetMs: number;
  /** From onset to the `obvious` impact, ms (> 0). */
  obviousAfterMs: number;
  /** Growth exponent (≥ 1; default 2: accelerating wear). */
  exponent?: number;
}

export const BEARING_WEAR_EXPONENT = 2;

/** Checks a wear schedule, naming what is wrong. */
export function checkBearingWear(w: BearingWear): void {
  if (!Number.isFinite(w.onsetMs)) throw new RangeError(`bearing wear: onsetMs must be a finite time, got ${w.onsetMs}`);
  if (!(w.obviousAfterMs > 0 && Number.isFinite(w.obviousAfterMs))) throw new RangeError(`bearing wear: obviousAfterMs must be > 0, got ${w.obviousAfterMs}`);
  const p = w.exponent ?? BEARING_WEAR_EXPONENT;
  if (!(p >= 1 && Number.isFinite(p))) throw new RangeError(`bearing wear: exponent must be ≥ 1, got ${p}`);
}

/** Peak impact of the worn bearing at tMs, m/s² at 600 rpm (0 before the onset). */
export function bearingWearImpact(w: BearingWear, tMs: number): number {
  if (tMs <= w.onsetMs) return 0;
  const u = (tMs - w.onsetMs) / w.obviousAfterMs;
  return FAULT_MAGNITUDES.obvious.bearingImpact * Math.pow(u, w.exponent ?? BEARING_WEAR_EXPONENT);
}

/** When the worn bearing's impact reaches an intensity's (ms epoch). */
export function bearingWearReachesMs(w: BearingWear, intensity: Intensity): number {
  const frac = FAULT_MAGNITUDES[intensity].bearingImpact / FAULT_MAGNITUDES.obvious.bearingImpact;
  return w.onsetMs + w.obviousAfterMs * Math.pow(frac, 1 / (w.exponent ?? BEARING_WEAR_EXPONENT));
}

/** The highest intensity the wear has reached at tMs, or 'none'. */
export function bearingWearIntensity(w: BearingWear, tMs: number): Intensity | 'none' {
  let reached: Intensity | 'none' = 'none';
  for (const i of INTENSITIES) if (tMs >= bearingWearReachesMs(w, i)) reached = i;
  return reached;
}

/**
 * Another motor than the one the shipped models learned: a customer's machine, for learning on the
 * gateway (`npm run bench:learn`, `source.sim.machine`). Two motors of one type differ in their
 * rated speed (pole count, supply frequency, a drive's setpoint), their residual unbalance (balancing
 * grade, coupling, what is mounted on the shaft), how much warmer than the air they run (size,
 * insulation class, cooling) and in their sensors' offsets (an accelerometer's zero-g offset, a
 * voltage divider's tolerance, a temperature sensor on a warmer spot of the frame). Every field is
 * optional and absent means the project's motor, so the dataset and the shipped models see the motor
 * they always saw.
 */
import type { Channel } from '../core/profiles.js';

/** Channels a sensor offset applies to: not rpm, which a pulse pickup counts from the shaft (no offset). */
export const OFFSET_CHANNELS = ['accel_x', 'accel_y', 'accel_z', 'voltage', 'temperature'] as const satisfies readonly Channel[];
export type OffsetChannel = (typeof OFFSET_CHANNELS)[number];

export interface MachineVariant {
  /** Shaft speed without slip, rev/min, instead of the profile's nominal speed (vibration grows with it). */
  ratedRpm?: number;
  /** Residual unbalance: factor on the healthy machine's 1x vibration (1: the project's motor). */
  imbalance?: number;
  /** Frame temperature rise over ambient: factor on the project's motor's rise (1: the same). */
  rise?: number;
  /** Added to the readings, in each channel's units (m/s², V, °C). */
  offsets?: Partial<Record<OffsetChannel, number>>;
}

/** Limits a variant is checked against: a motor, not a different kind of machine. */
const LIMITS = { ratedRpm: [100, 3600], imbalance: [0, 10], rise: [0.2, 3] } as const;

/** Why a variant is not a motor this simulator can be, or undefined. */
export function machineProblem(m: MachineVariant): string | undefined {
  for (const key of ['ratedRpm', 'imbalance', 'rise'] as const) {
    const v = m[key];
    const [lo, hi] = LIMITS[key];
    if (v !== undefined && !(Number.isFinite(v) && v >= lo && v <= hi)) return `${key} must be within ${lo}..${hi}, got ${v}`;
  }
  for (const [c, v] of Object.entries(m.offsets ?? {})) {
    if (!(OFFSET_CHANNELS as readonly string[]).includes(c)) return `offset.${c}: offsets apply to ${OFFSET_CHANNELS.join(', ')}`;
    if (!Number.isFinite(v)) return `offset.${c} must be a finite number, got ${v}`;
  }
  return undefined;
}

/**
 * `source.sim.machine`: key=value pairs joined by commas — ratedRpm, imbalance, rise, and
 * offset.<channel> — e.g. `ratedRpm=1140,imbalance=1.6,rise=1.25,offset.temperature=1.5`; '' is the
 * project's motor. Returns the variant, or why the text is not one.
 */
export function parseMachine(text: string): MachineVariant | string {
  const m: MachineVariant = {};
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq).trim();
    const raw = eq < 0 ? '' : item.slice(eq + 1).trim();
    const v = Number(raw);
    if (raw === '' || !Number.isFinite(v)) return `'${item}': expected key=number`;
    if (key === 'ratedRpm' || key === 'imbalance' || key === 'rise') m[key] = v;
    else if (key.startsWith('offset.')) (m.offsets ??= {})[key.slice(7) as OffsetChannel] = v;
    else return `'${item}': unknown key '${key}' (ratedRpm, imbalance, rise, offset.<channel>)`;
  }
  const problem = machineProblem(m);
  return problem === undefined ? m : problem;
}

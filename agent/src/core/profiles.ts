/**
 * The seed's data contract in one place: channels, speed profiles and model types.
 * Everything that needs to know "which columns does the vibration model read" or
 * "how often does rpm_1200 sample" imports it from here.
 */

/** CSV columns after `timestamp`, in the seed's order. */
export const CHANNELS = ['accel_x', 'accel_y', 'accel_z', 'voltage', 'rpm', 'temperature'] as const;
export type Channel = (typeof CHANNELS)[number];

export const MODEL_TYPES = ['vibration', 'voltage', 'rpm', 'temperature', 'multi-feature'] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

/** Features each model type reads, in order (seed: REQUIRED_FEATURES). */
export const MODEL_FEATURES: Record<ModelType, readonly Channel[]> = {
  vibration: ['accel_x', 'accel_y', 'accel_z'],
  voltage: ['voltage'],
  rpm: ['rpm'],
  temperature: ['temperature'],
  'multi-feature': CHANNELS,
};

/**
 * Channels too slow to show anything but their level inside one window; the models that read them
 * also get their window shape as an input (preprocess/shape.ts).
 */
export const SHAPE_CHANNELS: readonly Channel[] = ['temperature'];

export interface Profile {
  name: ProfileName;
  /** Nominal shaft speed, rev/min. */
  nominalRpm: number;
  /** Sample period of every channel, ms. */
  periodMs: number;
  /** Window length in samples (seed configuration). */
  seqLen: number;
  /** Samples between consecutive windows on the device. */
  hop: number;
  /** Samples between consecutive training windows: coarser than `hop` so training fits a CPU budget. */
  trainHop: number;
  /** LSTM sizes of the encoder (decoder mirrors them). */
  units: readonly number[];
}

export const PROFILE_NAMES = ['rpm_600', 'rpm_1200'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export const PROFILES: Record<ProfileName, Profile> = {
  rpm_600: { name: 'rpm_600', nominalRpm: 600, periodMs: 50, seqLen: 100, hop: 10, trainHop: 25, units: [64, 32] },
  rpm_1200: { name: 'rpm_1200', nominalRpm: 1200, periodMs: 20, seqLen: 250, hop: 25, trainHop: 75, units: [64, 32] },
};

/**
 * The longest step between two rows that is still one unbroken run, for data sampled every
 * `periodMs`: five periods (DESIGN.md, maxGapMs). Training cuts windows only inside such runs, the
 * device's windower breaks a window at a longer gap, and a recording ends its segment there.
 */
export function defaultMaxGapMs(periodMs: number): number {
  return periodMs * 5;
}

export function isProfileName(s: string): s is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(s);
}
export function isModelType(s: string): s is ModelType {
  return (MODEL_TYPES as readonly string[]).includes(s);
}

/**
 * Fault vocabulary shared by the motor simulator (which injects faults) and the evaluator
 * (which reports what each model catches per kind and intensity).
 */
export const FAULT_KINDS = [
  'imbalance', // 1x shaft-frequency amplitude growth
  'misalignment', // 2x (and some 3x) growth, axial component
  'bearing', // periodic impacts at a bearing defect frequency ringing a structural resonance
  'looseness', // many harmonics, clipped/truncated response, random knocks
  'sag', // supply voltage dip
  'swell', // supply voltage rise
  'overheating', // cooling loss: temperature climbs above what load and ambient explain
  'hunting', // speed oscillation at a low frequency
  'stuck', // sensor fault: a channel frozen at one value
  'dropout', // sensor fault: a channel reads zero
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const INTENSITIES = ['subtle', 'moderate', 'obvious'] as const;
export type Intensity = (typeof INTENSITIES)[number];

/** Parts of the emulated rig a fault command can unplug and replug. */
export const SIM_PARTS = ['adxl345', 'ads1115', 'mcp9808', 'tach'] as const;
export type SimPart = (typeof SIM_PARTS)[number];

/** Errors a fault command can make the emulated I2C bus fail with (hw/i2c.ts I2C_ERROR_CODES says what each is). */
export const BUS_ERROR_CODES = ['EIO', 'ENXIO', 'EREMOTEIO', 'ETIMEDOUT'] as const;
export type BusErrorCode = (typeof BUS_ERROR_CODES)[number];

/** One labelled fault span in a test file. Times are ms epoch, [startMs, endMs). */
export interface FaultEpisode {
  kind: FaultKind;
  intensity: Intensity;
  startMs: number;
  endMs: number;
  /** Channels the fault acts on (e.g. ['accel_x'] for a stuck accelerometer axis). */
  channels: string[];
}

/** Sidecar written next to test CSVs: `faults.json` = { "<file name>": FaultEpisode[] }. */
export type FaultManifest = Record<string, FaultEpisode[]>;
export const FAULT_MANIFEST_FILE = 'faults.json';

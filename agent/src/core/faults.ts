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

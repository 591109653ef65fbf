/**
 * A recording directory: seed-format CSV files (`rec-<first row, UTC>.csv`, the one being written
 * `….csv.part`) and `manifest.json` beside them, which says what was recorded — the source, the
 * device, the sample period and profile, the sensors and columns, the chips when known, the time
 * span — and how the disk budget has treated it. `train --data <dir>` reads the manifest to know the
 * profile, and the CSVs as any training data.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isProfileName, type ProfileName } from '../core/profiles.js';
import type { SensorSpec } from '../core/sample.js';
import type { PartDescription } from '../hw/build.js';

export const MANIFEST_FILE = 'manifest.json';
export const RECORDING_KIND = 'anomaly-agent recording';
export const RECORDING_VERSION = 1;

/** rec-20240108T060000.020Z.csv: names sort as the files' times do. */
const FILE_NAME = /^rec-\d{8}T\d{6}\.\d{3}Z\.csv(\.part)?$/;

/** The file a recording starts at row time `t` (ms epoch). */
export function recordingFileName(t: number): string {
  const iso = new Date(t).toISOString(); // 2024-01-08T06:00:00.020Z
  return `rec-${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 23)}Z.csv`;
}

/** Whether `name` is one of a recording's data files (finished, or `.part` while written): the only files the budget may delete. */
export function isRecordingFile(name: string): boolean {
  return FILE_NAME.test(name);
}

/** Where the samples came from. */
export interface RecordingSource {
  /** sim, hardware, replay, mqtt (ingest) or telemetry (a gateway's, over MQTT). */
  kind: string;
  /** The parts read, when known (sim: emulated; hardware: on the bus). */
  chips?: (PartDescription & { emulated?: boolean })[];
  /** Kind-specific facts: the replayed file, the broker and topic, the simulator's seed … */
  detail?: Record<string, unknown>;
}

export interface RecordedFile {
  name: string;
  /** The source kind its rows came from. */
  source: string;
  /** First and last row time, ms epoch. */
  t0: number;
  t1: number;
  rows: number;
  bytes: number;
  /** Gaps inside the file: [last row before, first row after], the first 20 of them. */
  gaps: [number, number][];
  /** All gaps inside the file. */
  gapCount: number;
  /** Being written (`.part`): its figures are as of the manifest's `updated`. */
  open?: true;
}

export interface RecordingManifest {
  kind: typeof RECORDING_KIND;
  version: typeof RECORDING_VERSION;
  device: string;
  source: RecordingSource;
  /** The speed profile whose period the rows are on (`train` trains this profile's models). */
  profile: ProfileName;
  periodMs: number;
  /** A step between rows longer than this is a gap (the end of a segment). */
  maxGapMs: number;
  sensors: SensorSpec;
  /** The CSV columns after `timestamp`. */
  columns: string[];
  /** Over the files present. */
  span: { t0: number; t1: number; from: string; to: string; rows: number; gaps: number } | null;
  budget: { maxBytes: number; rotateBytes: number; rotateMs: number; bytes: number; deletedFiles: number; deletedRows: number };
  /** Oldest first. */
  files: RecordedFile[];
  /** ms epoch of this version of the manifest. */
  updated: number;
}

/** Limit on the gap spans listed per file (all are counted). */
export const GAPS_LISTED = 20;

/** A recording's manifest, checked enough to trust its profile and layout; undefined when `dir` has no manifest.json. */
export async function readRecordingManifest(dir: string): Promise<RecordingManifest | undefined> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${path}: ${(err as Error).message}`);
  }
  let m: Partial<RecordingManifest>;
  try {
    m = JSON.parse(text) as Partial<RecordingManifest>;
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const bad = (why: string): never => {
    throw new Error(`${path}: not a recording manifest: ${why}`);
  };
  if (typeof m !== 'object' || m === null || m.kind !== RECORDING_KIND) bad(`'kind' must be '${RECORDING_KIND}'`);
  if (m.version !== RECORDING_VERSION) bad(`version ${String(m.version)}, this agent reads version ${RECORDING_VERSION}`);
  if (typeof m.profile !== 'string' || !isProfileName(m.profile)) bad(`profile '${String(m.profile)}' is not one this agent knows`);
  if (typeof m.periodMs !== 'number' || !(m.periodMs > 0)) bad('periodMs must be a number > 0');
  if (typeof m.maxGapMs !== 'number' || !(m.maxGapMs > 0)) bad('maxGapMs must be a number > 0');
  if (!Array.isArray(m.columns) || m.columns.some((c) => typeof c !== 'string')) bad('columns must be a list of channel names');
  if (typeof m.device !== 'string') bad('device must be a string');
  if (!Array.isArray(m.files)) bad('files must be a list');
  return m as RecordingManifest;
}

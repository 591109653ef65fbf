/**
 * The rows of a recording: samples of several sensors, which arrive separately and each at its own
 * instants, put on the profile's grid — one row every `periodMs`, a column per channel — by the
 * device's own rule. The rule is not written again here: a Windower (buffer/windower.ts) with
 * windows of one row over one channel of every sensor decides which grid rows exist, so a recording
 * holds exactly the rows the daemon's models would have formed from the same samples:
 *
 * - a row sits on g = k·periodMs and holds, per sensor, the newest sample with t ≤ g (held, never
 *   interpolated), and is formed once every sensor has a sample at or after g;
 * - a sensor whose held sample is older than maxGapMs at g (the age rule), or two samples of one
 *   sensor more than maxGapMs apart (the step rule), is a gap: no row is formed across it.
 *
 * The values are read exactly (float64) from the rings at the row's time; the windower's own
 * (scaled, float32) copy is not used.
 *
 * Marking a gap so training sees it: training breaks its windows where two consecutive rows are more
 * than maxGapMs apart (preprocess/sequences.ts). The age rule alone leaves such a jump in the rows,
 * but the step rule can break the run with rows still one period apart (a sensor silent for
 * 5½ periods, all rows held within maxGapMs). So after any gap the rows before the first one more
 * than maxGapMs after the last row written are left out (at most maxGapMs / periodMs rows): the
 * file then shows the gap as a jump in time that `train` reads as the end of a segment.
 */
import { SensorBuffer, SampleRejectedError } from '../buffer/ring.js';
import { Windower } from '../buffer/windower.js';
import type { Sample, SensorSpec } from '../core/sample.js';
import { CHANNELS } from '../core/profiles.js';

/**
 * Rows kept per sensor: the longest lag between a sensor's samples and the slowest sensor's is what
 * they must cover — a gateway's telemetry arrives a second's batch per sensor at a time.
 */
const RING_CAPACITY = 4096;

export interface AlignerOptions {
  sensors: SensorSpec;
  periodMs: number;
  maxGapMs: number;
  /**
   * Called for every row, in time order: its grid time, the values in `columns` order (a reused
   * array: copy what you keep), and the end of the previous segment when a gap came before it
   * (NaN otherwise, and for the very first row).
   */
  onRow: (t: number, values: Float64Array, gapAfter: number) => void;
}

/** Why a sample was not taken (ring rejections, and a sensor that is not configured). */
export type AlignerRejection = 'unknown_sensor' | SampleRejectedError['reason'];

/** The CSV columns for these sensors: the seed's channels in the seed's order, then the others in configuration order. */
export function columnsOf(sensors: SensorSpec): string[] {
  const all = Object.values(sensors).flatMap((s) => s.channels);
  return [...CHANNELS.filter((c) => all.includes(c)), ...all.filter((c) => !(CHANNELS as readonly string[]).includes(c))];
}

export class RowAligner {
  readonly columns: readonly string[];
  /** Rows handed to onRow. */
  rows = 0;
  /** Gaps that broke the run (each followed by a row). */
  gaps = 0;
  /** Rows left out after a gap so that it shows in the file (see the header). */
  skipped = 0;
  /** Samples refused, by reason. */
  readonly rejected: Partial<Record<AlignerRejection, number>> = {};

  private readonly buffers = new Map<string, SensorBuffer>();
  private readonly windower: Windower;
  /** Per column: its sensor's ring and the channel's index in it. */
  private readonly cells: { buf: SensorBuffer; index: number }[];
  private readonly row: Float64Array;
  private readonly maxGapMs: number;
  private readonly onRow: AlignerOptions['onRow'];
  /** The windower's gap and overrun count at the last row it formed. */
  private breaksSeen = 0;
  /** Time of the last row handed out; NaN before the first. */
  private lastT = NaN;
  /** A gap came after lastT and no row has been handed out since. */
  private gapOpen = false;

  constructor(o: AlignerOptions) {
    this.maxGapMs = o.maxGapMs;
    this.onRow = o.onRow;
    const sensorNames = Object.keys(o.sensors);
    if (sensorNames.length === 0) throw new Error('aligner: no sensors');
    for (const [sensor, { channels }] of Object.entries(o.sensors)) {
      this.buffers.set(sensor, new SensorBuffer({ sensor, channels: channels.length, capacity: RING_CAPACITY }));
    }
    this.columns = columnsOf(o.sensors);
    const where = new Map<string, { sensor: string; index: number }>();
    for (const [sensor, { channels }] of Object.entries(o.sensors)) channels.forEach((ch, index) => where.set(ch, { sensor, index }));
    this.cells = this.columns.map((ch) => {
      const w = where.get(ch)!;
      return { buf: this.buffers.get(w.sensor)!, index: w.index };
    });
    this.row = new Float64Array(this.columns.length);
    // One feature per sensor (its first channel) is enough: gaps are a sensor's, not a channel's.
    const features = sensorNames.map((s) => o.sensors[s]!.channels[0]!);
    this.windower = new Windower({
      features,
      channels: where,
      buffers: this.buffers,
      periodMs: o.periodMs,
      seqLen: 1,
      hop: 1,
      maxGapMs: o.maxGapMs,
      scaler: { features, min: features.map(() => 0), max: features.map(() => 1) },
      onWindow: (w) => this.formed(w.endT),
    });
  }

  /** Takes one sample and hands out every row it completes; false (counted) when it is refused. */
  push(s: Sample): boolean {
    const buf = this.buffers.get(s.sensor);
    if (buf === undefined) {
      this.reject('unknown_sensor');
      return false;
    }
    try {
      buf.push(s.t, s.values);
    } catch (err) {
      if (!(err instanceof SampleRejectedError)) throw err;
      this.reject(err.reason);
      return false;
    }
    this.windower.advance();
    return true;
  }

  private reject(why: AlignerRejection): void {
    this.rejected[why] = (this.rejected[why] ?? 0) + 1;
  }

  private formed(t: number): void {
    const breaks = this.windower.gaps + this.windower.overruns;
    if (breaks !== this.breaksSeen) {
      this.breaksSeen = breaks;
      if (this.lastT === this.lastT) this.gapOpen = true; // a break before the first row is no gap of the recording
    }
    if (this.gapOpen && t - this.lastT <= this.maxGapMs) {
      this.skipped++;
      return;
    }
    const cells = this.cells;
    for (let j = 0; j < cells.length; j++) {
      const { buf, index } = cells[j]!;
      // The newest sample at or before t: the one the windower held for this row (still in the ring).
      this.row[j] = buf.values[buf.slotOf(buf.indexAtOrBefore(t)) * buf.channels + index]!;
    }
    const gapAfter = this.gapOpen ? this.lastT : NaN;
    if (this.gapOpen) this.gaps++;
    this.gapOpen = false;
    this.lastT = t;
    this.rows++;
    this.onRow(t, this.row, gapAfter);
  }
}

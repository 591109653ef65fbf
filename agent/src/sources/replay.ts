/**
 * CSV replay: a recorded file played back as if the sensors were live, at real speed or ×`speed`,
 * optionally looping — for demos, soak tests and for replaying other datasets (SKAB) through the
 * same pipeline as the device. The file is read with preprocess/csv.ts, the one CSV reader.
 *
 * Time re-basing (all arithmetic in ms):
 * - Let t0 be the file's first timestamp, D = t[last] − t0 its duration, P its period (the median
 *   spacing of consecutive rows) and S = clock.now() when start() has read the file.
 * - Row i of pass k (k = 0, 1, … when looping) has the offset  off = (t[i] − t0) + k·(D + P):
 *   every pass is shifted by the file duration plus one period, so time only moves forward.
 * - The emitted sample carries  t = S + off + k·LOOP_SEAM_MS  — the file's own spacing, whatever
 *   the speed, so windows and models see the period they were trained on. The end of a recording
 *   and its start are not continuous running: the seam is a silence in sample time longer than any
 *   bundle's maxGapMs, so no window joins them (a joined window is a step that looks like a fault).
 *   The silence costs no wall-clock wait: rows stay due at the times below.
 * - It is due on the clock at  S + off / speed, and is emitted by the first tick strictly after
 *   that instant. Ticks run every `tickMs` of clock time and emit every row that has become due
 *   (one timer, not one per row): replaying for X ms at speed v emits exactly the rows whose offset
 *   is < X·v. At speed 1 sample times equal due times; at speed v > 1 they run ahead of the clock.
 * - A restart (start after stop) replays from the first row with S = clock.now(), except that the
 *   sample times continue after the last emitted one (+ one period) if that is later — at speed
 *   v > 1 it can be — so t never goes backwards for a consumer that outlives the restart.
 */
import type { Logger } from 'pino';
import type { Clock, Timer } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';
import { channelIndex, type Sample, type SensorHealth, type SensorSpec } from '../core/sample.js';
import { CsvError, readCsvFile, type Series, type TimeFormat } from '../preprocess/csv.js';
import { allSensors, healthFromLastSeen, positive, SampleHandlers, type SampleSource } from './source.js';

export interface ReplayOptions {
  /** CSV file to replay. */
  file: string;
  sensors: SensorSpec;
  clock: Clock;
  log?: Logger;
  /** Playback rate: 1 = real time, 10 = ten times faster. Default: source.replay.speed's. */
  speed?: number;
  /** Start over after the last row (time keeps increasing). Default: source.replay.loop's (on). */
  loop?: boolean;
  /** Cell separator, default the seed's (preprocess/csv.ts). SKAB: ';'. */
  separator?: string;
  /** Timestamp column, default the seed's. SKAB: 'datetime'. */
  timeColumn?: string;
  /** How timestamps are written (see preprocess/csv.ts), default the seed's. */
  timeFormat?: TimeFormat;
  /** File column → channel name, for files whose headers are not channel names. */
  columns?: Readonly<Record<string, string>>;
  /** Clock time between emission ticks, ms. Default `DEFAULTS.component.replay`. */
  tickMs?: number;
  /** A sensor that emitted nothing for this long (clock time) is 'stale', ms. Default `DEFAULTS.component.replay`. */
  staleMs?: number;
}

/** source.replay.* of the configuration and the replay's own options (core/defaults.ts). */
const REPLAY_DEFAULTS = { speed: DEFAULTS.config.source.replay.speed, loop: DEFAULTS.config.source.replay.loop, ...DEFAULTS.component.replay };

/** Sample-time silence between looping passes (see the header). */
export const LOOP_SEAM_MS = 60_000;

interface Prepared {
  series: Series;
  /** Per sensor, its channels' columns in channel order. */
  sensors: { name: string; cols: Float64Array[] }[];
  duration: number;
  period: number;
}

export class ReplaySource implements SampleSource {
  readonly kind = 'replay';
  readonly name = 'source:replay';
  private readonly handlers = new SampleHandlers(() => this.log, () => this.opts.clock.now());
  private log: Logger = silentLogger;
  private data: Prepared | undefined;
  private timer: Timer | undefined;
  private running = false;
  /** Bumped by stop() so a start() still reading the file does not resume afterwards. */
  private generation = 0;
  /** Clock time of start (due times are measured from it). */
  private startedAt = 0;
  /** Sample time of the first row (S above, unless a restart had to move it forward). */
  private tBase = 0;
  /** Last emitted sample time, kept across restarts. */
  private lastT = -Infinity;
  private row = 0;
  private pass = 0;
  private lastEmit = new Map<string, number>();
  private finished = false;

  constructor(private readonly opts: ReplayOptions) {}

  onSample(handler: (s: Sample) => void): void {
    this.handlers.add(handler);
  }

  async start(): Promise<void> {
    if (this.running) return;
    const gen = ++this.generation;
    const o = this.opts;
    this.log = (o.log ?? silentLogger).child({ module: 'replay' });
    const speed = positive('replay speed', o.speed ?? REPLAY_DEFAULTS.speed);
    const tickMs = positive('replay tickMs', o.tickMs ?? REPLAY_DEFAULTS.tickMs);
    positive('replay staleMs', o.staleMs ?? REPLAY_DEFAULTS.staleMs);
    const data = await prepare(o);
    if (gen !== this.generation) return; // stopped while reading
    this.data = data;
    this.startedAt = o.clock.now();
    this.tBase = Math.max(this.startedAt, this.lastT + (data.period || 1));
    this.row = 0;
    this.pass = 0;
    this.finished = false;
    this.lastEmit = new Map();
    this.running = true;
    this.timer = o.clock.setInterval(() => this.tick(), tickMs);
    this.log.info(
      { file: o.file, rows: data.series.rows, durationMs: data.duration, periodMs: data.period, speed, loop: o.loop ?? REPLAY_DEFAULTS.loop },
      `replaying ${data.series.rows} rows of ${o.file} at ×${speed}`,
    );
  }

  async stop(): Promise<void> {
    this.generation++;
    this.timer?.cancel();
    this.timer = undefined;
    if (!this.running) return;
    this.running = false;
    this.log.info({ file: this.opts.file, pass: this.pass, row: this.row }, 'replay stopped');
  }

  health(): Record<string, SensorHealth> {
    if (!this.running) return allSensors(this.opts.sensors, 'stale');
    return healthFromLastSeen(this.opts.sensors, this.lastEmit, this.startedAt, this.opts.clock.now(), this.opts.staleMs ?? REPLAY_DEFAULTS.staleMs);
  }

  /** Emits every row that has become due since the last tick. */
  private tick(): void {
    const d = this.data;
    if (!this.running || d === undefined) return;
    const now = this.opts.clock.now();
    const limit = (now - this.startedAt) * (this.opts.speed ?? REPLAY_DEFAULTS.speed);
    const { t } = d.series;
    const t0 = t[0]!;
    const rows = d.series.rows;
    const loop = this.opts.loop ?? REPLAY_DEFAULTS.loop;
    let emitted = false;
    for (;;) {
      const off = t[this.row]! - t0 + this.pass * (d.duration + d.period);
      if (!(off < limit)) break;
      const ts = this.tBase + off + this.pass * LOOP_SEAM_MS;
      this.lastT = ts;
      for (const s of d.sensors) {
        const values = new Array<number>(s.cols.length);
        for (let c = 0; c < s.cols.length; c++) values[c] = s.cols[c]![this.row]!;
        this.handlers.emit({ sensor: s.name, t: ts, values });
      }
      emitted = true;
      if (++this.row === rows) {
        this.row = 0;
        this.pass++;
        if (!loop) {
          this.finished = true;
          break;
        }
      }
      if (!this.running) return; // a handler stopped us
    }
    if (emitted) for (const s of d.sensors) this.lastEmit.set(s.name, now);
    if (this.finished) {
      this.timer?.cancel();
      this.timer = undefined;
      this.log.info({ file: this.opts.file, rows }, 'replay reached the end of the file');
    }
  }
}

/** Reads the file and lays out the columns per sensor; errors name the file, column and sensor. */
async function prepare(o: ReplayOptions): Promise<Prepared> {
  const index = channelIndex(o.sensors); // rejects a channel declared twice
  const required = [...index.keys()];
  if (required.length === 0) throw new Error(`replay ${o.file}: no sensors configured`);
  const timeColumn = o.timeColumn ?? DEFAULTS.csv.timeColumn;
  let series: Series;
  try {
    series = await readCsvFile(o.file, {
      separator: o.separator,
      timeColumn,
      parseTime: o.timeFormat,
      rename: o.columns,
      requiredColumns: required,
    });
  } catch (e) {
    throw missingColumnError(o, e, required, timeColumn) ?? e;
  }
  const loop = o.loop ?? REPLAY_DEFAULTS.loop;
  if (loop && series.rows < 2) throw new Error(`replay ${o.file}: looping needs at least 2 rows to know the period, the file has ${series.rows}`);
  const sensors = Object.entries(o.sensors).map(([name, { channels }]) => ({ name, cols: channels.map((ch) => series.columns[ch]!) }));
  const duration = series.t[series.rows - 1]! - series.t[0]!;
  return { series, sensors, duration, period: medianStep(series.t) };
}

/**
 * The CSV reader reports absent header columns by their (renamed) channel names; turn that into a
 * message that also says which file column was expected and which sensor needs it.
 */
function missingColumnError(o: ReplayOptions, e: unknown, required: string[], timeColumn: string): Error | undefined {
  if (!(e instanceof CsvError)) return undefined;
  const headerIssue = e.issues.find((i) => i.message.startsWith('header lacks required column'));
  if (headerIssue === undefined) return undefined;
  const fileColumnOf = new Map<string, string>();
  for (const [col, ch] of Object.entries(o.columns ?? {})) fileColumnOf.set(ch, col);
  const sensorOf = channelIndex(o.sensors);
  const lines: string[] = [];
  const mentions = (name: string) => headerIssue.message.includes(`'${name}'`);
  if (mentions(timeColumn)) lines.push(`time column '${timeColumn}' is missing (option timeColumn)`);
  for (const ch of required) {
    if (!mentions(ch)) continue;
    const col = fileColumnOf.get(ch) ?? ch;
    const mapped = col !== ch ? ` (mapped to channel '${ch}' by the columns option)` : '';
    lines.push(`column '${col}'${mapped} is missing; sensor '${sensorOf.get(ch)!.sensor}' needs it`);
  }
  if (lines.length === 0) return undefined;
  const hint = headerIssue.message.includes('is the separator') ? ` ${headerIssue.message.slice(headerIssue.message.indexOf('('))}` : '';
  return new Error(`replay ${o.file}: ${lines.join('; ')}${hint}`, { cause: e });
}

function medianStep(t: Float64Array): number {
  if (t.length < 2) return 0;
  const steps = new Float64Array(t.length - 1);
  for (let i = 1; i < t.length; i++) steps[i - 1] = t[i]! - t[i - 1]!;
  steps.sort();
  return steps[steps.length >> 1]!;
}

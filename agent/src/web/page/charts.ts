/**
 * The page's charts, drawn with uPlot: one per sensor channel (the last TELEMETRY_SPAN_MS of
 * readings, scrolling smoothly) and one per model (its score against its threshold over the last
 * SCORE_SPAN_MS, log scale, episodes shaded). Data is decimated to about one bucket per pixel before
 * it reaches uPlot, and only when new data came; between batches a frame only moves the x scale.
 * A chart far from the screen is not drawn, nor shown when it comes back until it has been drawn
 * again (see Sized).
 *
 * Each plot's host says what it shows, for tests and for a look in the inspector: data-x-min and
 * data-x-max (its x range, ms of sample time), data-trace-from and data-trace-to (the first and
 * last point handed to uPlot, ms), and data-stale while what it holds is out of date (hidden then).
 */
import uPlot from 'uplot';
import { decimate, recentSpacing, withGaps, type GappedColumns } from './series.js';
import type { ModelTrack, SensorTrack } from './fleet.js';

/** Readings shown, in sample time. */
export const TELEMETRY_SPAN_MS = 20_000;
/** Scores shown, in sample time. */
export const SCORE_SPAN_MS = 5 * 60_000;

const PALETTE = ['#1f6feb', '#1a7f37', '#bc4c00', '#8250df', '#bf3989', '#0a7f86'];
const AXIS = { stroke: '#57606a', grid: { stroke: '#eaeef2', width: 1 }, ticks: { stroke: '#d0d7de', width: 1 }, font: '12px system-ui, sans-serif' };
const SCORE_COLOR = '#1f6feb';
const THRESHOLD_COLOR = '#cf222e';
const EPISODE_FILL = 'rgba(207, 34, 46, 0.14)';

export function channelColor(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

/** Something the frame loop drives. */
export interface Drawn {
  frame(wall: number): void;
  destroy(): void;
}

/** How many of the ascending xs (nulls aside, there are none in x) lie in [min, max]. */
function countWithin(xs: readonly number[], min: number, max: number): number {
  const first = (v: number, strict: boolean) => {
    let lo = 0;
    let hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (strict ? xs[mid]! <= v : xs[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return first(max, true) - first(min, false);
}

/**
 * Points further apart than this are not joined: five times the data's own spacing, and never less
 * than what decimation itself puts between points (up to a bucket and a half).
 */
function gapMs(spacing: number, bucket: number): number {
  return Math.max(Number.isFinite(spacing) ? 5 * spacing : 0, 2.5 * bucket, 250);
}

/**
 * How far beyond the screen a chart is still drawn (IntersectionObserver rootMargin: half the
 * screen's height above and below), so that one scrolled to at an ordinary pace is current when it
 * appears.
 */
const NEAR_MARGIN = '50% 0px';

/**
 * Keeps a uPlot as wide as its host, and knows whether the host is near the screen: only then is
 * the chart drawn. A chart that was not drawn since it came near is stale — its host has
 * data-stale, and the style sheet hides the plot — so a chart brought back by a jump (End, a
 * scrollbar drag, a link) is blank for the frame or two until it is drawn, never the picture of the
 * moment it left: that would be a time axis far behind the others, with the trace of back then.
 * `onNear` is called when the host comes near, to draw at once instead of at the next frame.
 */
class Sized {
  /** Near the screen. False until the observer first reports: where a new chart is, is not known before. */
  near = false;
  private readonly ro: ResizeObserver;
  private readonly io: IntersectionObserver;

  constructor(
    readonly host: HTMLElement,
    readonly plot: uPlot,
    private readonly height: number,
    onNear: () => void,
  ) {
    host.dataset.stale = '';
    this.ro = new ResizeObserver(() => this.fit());
    this.ro.observe(host);
    this.io = new IntersectionObserver(
      (es) => {
        const near = es.at(-1)!.isIntersecting;
        if (near === this.near) return;
        this.near = near;
        if (near) onNear();
        else host.dataset.stale = '';
      },
      { rootMargin: NEAR_MARGIN },
    );
    this.io.observe(host);
  }

  get stale(): boolean {
    return this.host.dataset.stale !== undefined;
  }

  get width(): number {
    return Math.max(120, Math.floor(this.host.clientWidth));
  }

  /**
   * After drawing: the plot is current, and shown. `x` is its x range and `xs` the x column handed
   * to uPlot (seconds, as uPlot has them), recorded on the host in ms; none for a chart with no data.
   */
  drawn(x?: { min: number; max: number }, xs?: ArrayLike<number>): void {
    const d = this.host.dataset;
    if (x) {
      d.xMin = String(Math.round(x.min * 1000));
      d.xMax = String(Math.round(x.max * 1000));
    }
    if (xs?.length) {
      d.traceFrom = String(Math.round(xs[0]! * 1000));
      d.traceTo = String(Math.round(xs[xs.length - 1]! * 1000));
    }
    if (d.stale !== undefined) delete d.stale;
  }

  private fit(): void {
    if (this.width !== this.plot.width) this.plot.setSize({ width: this.width, height: this.height });
  }

  destroy(): void {
    this.ro.disconnect();
    this.io.disconnect();
    this.plot.destroy();
  }
}

/** A sensor's channels, one small chart each, decimated together once per batch. */
export class SensorCharts implements Drawn {
  private readonly charts: { sized: Sized; version: number }[] = [];
  private cols: GappedColumns | undefined;
  private colsVersion = 0;
  private decimatedAt = -1;
  private decimatedBucket = NaN;
  /** Points per channel in view at the last frame (decimated: at most about two a pixel). */
  points = 0;

  constructor(
    readonly track: SensorTrack,
    hosts: HTMLElement[],
    height = 120,
  ) {
    track.channels.forEach((ch, i) => {
      const host = hosts[i]!;
      const opts: uPlot.Options = {
        width: Math.max(120, host.clientWidth),
        height,
        legend: { show: false },
        cursor: { sync: { key: 'telemetry' }, drag: { x: false, y: false } },
        scales: { x: { time: true } },
        axes: [{ ...AXIS, size: 28 }, { ...AXIS, size: 56 }],
        series: [{}, { label: ch, stroke: channelColor(i), width: 1.25, points: { show: false } }],
      };
      const plot = new uPlot(opts, [new Float64Array(0), new Float64Array(0)], host);
      this.charts.push({ sized: new Sized(host, plot, height, () => this.frame(Date.now())), version: 0 });
    });
  }

  frame(wall: number): void {
    if (!this.charts.some((c) => c.sized.near)) return;
    const edge = this.track.follower.edge(wall);
    if (!Number.isFinite(edge)) return;
    const bucket = TELEMETRY_SPAN_MS / this.charts[0]!.sized.width;
    if (this.decimatedAt !== this.track.version || bucket !== this.decimatedBucket) {
      // Up to the newest reading: the edge moves on into it until the next batch.
      const cols = decimate(this.track.ring, edge - TELEMETRY_SPAN_MS - bucket, this.track.ring.lastT, bucket);
      this.cols = withGaps(cols, gapMs(recentSpacing(this.track.ring), bucket));
      this.colsVersion++;
      this.decimatedAt = this.track.version;
      this.decimatedBucket = bucket;
    }
    const cols = this.cols!;
    const x = { min: (edge - TELEMETRY_SPAN_MS) / 1000, max: edge / 1000 };
    this.points = countWithin(cols[0], x.min, x.max);
    this.charts.forEach((c, i) => {
      // A chart off screen is skipped, and catches up with the data when it comes back.
      if (!c.sized.near) return;
      const plot = c.sized.plot;
      plot.batch(() => {
        if (c.version !== this.colsVersion) plot.setData([cols[0], cols[i + 1]!], false);
        c.version = this.colsVersion;
        plot.setScale('x', x);
      });
      c.sized.drawn(x, cols[0]);
    });
  }

  /** The newest reading of channel i, NaN before any. */
  latest(i: number): number {
    const r = this.track.ring;
    return r.length ? r.valueAt(r.length - 1, i) : NaN;
  }

  destroy(): void {
    for (const c of this.charts) c.sized.destroy();
  }
}

/** Smallest value drawn on the log scale (a score of exactly 0 has no place on it). */
const LOG_FLOOR = 1e-9;

/**
 * The powers of ten within [min, max] (the score axis spans whole decades, so both ends are among
 * them), at most `most` of them: beyond that every second, third… decade, counted from the top.
 * A label outside the range would be drawn outside the plot, and cut off by the canvas's edge.
 */
export function decades(min: number, max: number, most = 6): number[] {
  const lo = Math.ceil(Math.log10(Math.max(min, LOG_FLOOR)) - 1e-9);
  const hi = Math.floor(Math.log10(Math.max(max, LOG_FLOOR)) + 1e-9);
  const step = Math.max(1, Math.ceil((hi - lo + 1) / Math.max(1, most)));
  const out: number[] = [];
  for (let k = hi; k >= lo; k -= step) out.unshift(10 ** k);
  return out;
}

/** The score axis's range: the data's, widened to whole decades (uPlot's own rounds its bottom down to 0.3 or 0.4 of one only). */
export function decadeRange(min: number | null, max: number | null): [number | null, number | null] {
  if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [null, null];
  return uPlot.rangeLog(Math.max(min, LOG_FLOOR), Math.max(max, LOG_FLOOR), 10, true);
}

/** 0.001, 0.1, 1, 10, 1k, 100k, 10M; '' for no value (uPlot passes null for a label it dropped). */
export function compact(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '';
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return String(+v.toPrecision(3));
}

/** A model's score and threshold, log scale, with its episodes shaded. */
export class ScoreChart implements Drawn {
  private readonly sized: Sized;
  private drawnVersion = -1;
  points = 0;

  constructor(
    readonly track: ModelTrack,
    host: HTMLElement,
    height = 150,
  ) {
    const opts: uPlot.Options = {
      width: Math.max(120, host.clientWidth),
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { distr: 3, log: 10, range: (_u, min, max) => decadeRange(min, max) } },
      axes: [
        { ...AXIS, size: 28 },
        {
          ...AXIS,
          size: 48,
          // Powers of ten only: a log scale's in-between lines would hide the shaded episodes.
          splits: (_u, _i, min, max) => decades(min, max),
          values: (_u, splits) => splits.map(compact),
        },
      ],
      series: [
        {},
        { label: 'score', stroke: SCORE_COLOR, width: 1.5, points: { show: false } },
        { label: 'threshold', stroke: THRESHOLD_COLOR, width: 1.25, dash: [6, 4], points: { show: false } },
      ],
      hooks: { drawClear: [(u) => this.shade(u)] },
    };
    const plot = new uPlot(opts, [new Float64Array(0), new Float64Array(0), new Float64Array(0)], host);
    this.sized = new Sized(host, plot, height, () => this.frame());
  }

  frame(): void {
    // Far from the screen: not drawn. Near, drawn when new scores came or when what it holds is stale.
    if (!this.sized.near || (this.drawnVersion === this.track.version && !this.sized.stale)) return;
    this.drawnVersion = this.track.version;
    const r = this.track.ring;
    if (!r.length) return this.sized.drawn();
    const last = r.lastT;
    const bucket = SCORE_SPAN_MS / this.sized.width;
    const raw = decimate(r, last - SCORE_SPAN_MS, last, bucket);
    for (const y of raw.slice(1)) for (let i = 0; i < y.length; i++) if (!(y[i]! > LOG_FLOOR)) y[i] = LOG_FLOOR;
    this.points = raw[0].length;
    const cols = withGaps(raw, gapMs(recentSpacing(r), bucket));
    const plot = this.sized.plot;
    // Until SCORE_SPAN_MS of scores have come, the chart spans what there is (at least a minute).
    const x = { min: Math.max(last - SCORE_SPAN_MS, Math.min(r.firstT, last - 60_000)) / 1000, max: last / 1000 };
    plot.batch(() => {
      plot.setData(cols, false);
      plot.setScale('x', x);
    });
    this.sized.drawn(x, cols[0]);
  }

  /** Episodes as red bands behind the lines; an open one runs to the newest window. */
  private shade(u: uPlot): void {
    const eps = this.track.episodes;
    if (!eps.length) return;
    const { left, top, width, height } = u.bbox;
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = EPISODE_FILL;
    for (const e of eps) {
      const end = e.end ?? this.track.lastWindowEnd;
      const x0 = Math.max(left, u.valToPos(e.since / 1000, 'x', true));
      const x1 = Math.min(left + width, u.valToPos(end / 1000, 'x', true));
      // At least two device pixels wide, so a short episode still shows.
      if (x1 >= left && x0 <= left + width) ctx.fillRect(x0, top, Math.max(2, x1 - x0), height);
    }
    ctx.restore();
  }

  destroy(): void {
    this.sized.destroy();
  }
}

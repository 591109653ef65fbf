/**
 * Dependency-free SVG charts for the evaluation report. Plain strings, so they can be written next to the
 * markdown, opened in any browser or image viewer, and checked in tests without a DOM.
 *
 * Layout is computed here (no CSS, no scripts, no external fonts) so the file renders the same in a
 * browser, GitHub's markdown preview and rsvg-convert.
 */
import type { FaultEpisode } from '../core/faults.js';
import type { WindowScore } from './metrics.js';

const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';
const COLORS = {
  score: '#1f77b4',
  flagged: '#d62728',
  fault: '#ff7f0e',
  threshold: '#6a3d9a',
  alert: '#7b1010',
  normal: '#1f77b4',
  axis: '#333',
  grid: '#e3e3e3',
  text: '#222',
};
/** Span opacity by intensity: a glance tells subtle from obvious without another colour to learn. */
const SPAN_OPACITY: Record<string, number> = { subtle: 0.12, moderate: 0.2, obvious: 0.3 };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Coordinates rounded to 0.1 px: sub-pixel precision beyond that only bloats the file. */
function n(x: number): string {
  return String(Math.round(x * 10) / 10);
}

/** Rough text width for layout without font metrics (DejaVu/Helvetica average ≈ 0.6 em). */
export function textWidth(s: string, fontSize: number): number {
  return s.length * fontSize * 0.6;
}

/** Short human form of a score: decimals in a readable range, otherwise 1.2e-3. */
export function formatValue(v: number): string {
  if (v === 0) return '0';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 0.01 && a < 10000) return String(Number(v.toPrecision(3)));
  const [m, e] = v.toExponential(1).split('e');
  const mant = m!.replace(/\.0$/, '');
  return `${mant}e${Number(e)}`;
}

/** ms → m:ss, or h:mm:ss from an hour on (relative times in a test file). */
export function formatClock(ms: number): string {
  const sign = ms < 0 ? '-' : '';
  const total = Math.round(Math.abs(ms) / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${sign}${h}:${String(m).padStart(2, '0')}:${ss}` : `${sign}${m}:${ss}`;
}

/** 1/2/5 × 10^k step giving about `count` intervals over `range`. */
export function niceStep(range: number, count: number): number {
  if (!(range > 0)) return 1;
  const raw = range / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** Time steps people read on a clock (s): 1 2 5 10 15 30 s, 1 2 5 10 15 30 min, 1 2 h … */
const TIME_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${n(x)}" y="${n(y)}" ${attrs}>${escapeXml(s)}</text>`;
}

function svgOpen(width: number, height: number, title: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${n(width)}" height="${n(height)}" viewBox="0 0 ${n(width)} ${n(height)}" ${FONT} font-size="11">\n` +
    `<title>${escapeXml(title)}</title>\n` +
    `<rect x="0" y="0" width="${n(width)}" height="${n(height)}" fill="#fff"/>\n`
  );
}

/** Keep every point when sparse; otherwise per pixel column keep the min and max (in time order) so
 * spikes survive the thinning — a decimated chart must not hide the one window that alarmed. */
function decimate<T>(pts: T[], xOf: (p: T) => number, yOf: (p: T) => number, maxPoints: number): T[] {
  if (pts.length <= maxPoints) return pts;
  const out: T[] = [];
  let col = NaN;
  let lo: T | null = null;
  let hi: T | null = null;
  const flush = () => {
    if (lo === null || hi === null) return;
    if (lo === hi) out.push(lo);
    else if (xOf(lo) <= xOf(hi)) out.push(lo, hi);
    else out.push(hi, lo);
  };
  for (const p of pts) {
    const c = Math.floor(xOf(p));
    if (c !== col) {
      flush();
      col = c;
      lo = hi = p;
    } else {
      // screen y grows downwards: smaller y = larger value
      if (yOf(p) > yOf(lo!)) lo = p;
      if (yOf(p) < yOf(hi!)) hi = p;
    }
  }
  flush();
  return out;
}

export interface TimelineInput {
  title: string;
  windows: readonly WindowScore[];
  episodes: readonly FaultEpisode[];
  threshold: number;
  /** Time origin (ms epoch) for the x axis; default: earliest window start or episode start. */
  t0?: number;
  /** Total width, px; default 900. */
  width?: number;
  /** Height before caption rows are added, px; default 300. */
  height?: number;
  /** Alerts the daemon's path raised on this file: drawn as bars along the top, since → clear (or the end). */
  alerts?: readonly { since: number; raisedAt: number; clearedAt: number | null }[];
}

/**
 * Reconstruction error over time for one test file: score at each window's endT (when the device knows
 * it), log y axis, threshold line, shaded fault spans captioned "kind (intensity)", flagged windows as red
 * dots plus a red strip along the bottom of the plot.
 */
export function timelineSvg(input: TimelineInput): string {
  const width = input.width ?? 900;
  const baseHeight = input.height ?? 300;
  const { threshold } = input;
  const ws = [...input.windows].sort((a, b) => a.endT - b.endT);
  const eps = [...input.episodes].sort((a, b) => a.startMs - b.startMs);

  const times = [...ws.flatMap((w) => [w.startT, w.endT]), ...eps.flatMap((e) => [e.startMs, e.endMs])];
  const t0 = input.t0 ?? (times.length ? Math.min(...times) : 0);
  let tEnd = times.length ? Math.max(...times) : t0 + 1000;
  if (tEnd <= t0) tEnd = t0 + 1000;

  const left = 72;
  const right = 18;
  const plotL = left;
  const plotR = width - right;
  const plotW = plotR - plotL;
  const xOf = (t: number) => plotL + ((t - t0) / (tEnd - t0)) * plotW;

  // Caption rows: greedy interval packing so no two captions overlap; each row adds 13 px of height.
  const capFont = 10.5;
  const rowEnds: number[] = [];
  const captions = eps.map((e) => {
    const label = `${e.kind} (${e.intensity})`;
    const w = textWidth(label, capFont);
    const spanX = Math.max(plotL, Math.min(plotR, xOf(e.startMs)));
    const x = Math.max(plotL, Math.min(spanX, plotR - w));
    let row = rowEnds.findIndex((end) => end + 8 <= x);
    if (row === -1) {
      if (rowEnds.length < 6) {
        row = rowEnds.length;
        rowEnds.push(0);
      } else row = rowEnds.indexOf(Math.min(...rowEnds)); // pathological crowding: overlap beats a 40-row header
    }
    rowEnds[row] = x + w;
    return { e, label, x, spanX, row };
  });
  const capRows = Math.max(1, rowEnds.length);
  // Legend items: a 16 px swatch drawn by `swatch(x, y)` and its label; they wrap onto a second row when the width runs out.
  const legendItems: [swatch: (x: number, y: number) => string, label: string][] = [
    [(x, y) => `<line x1="${n(x)}" y1="${y}" x2="${n(x + 16)}" y2="${y}" stroke="${COLORS.score}" stroke-width="2"/>`, 'score (window error ÷ normal)'],
    [(x, y) => `<circle cx="${n(x + 8)}" cy="${y}" r="3" fill="${COLORS.flagged}"/>`, 'flagged window (score > threshold)'],
    [
      (x, y) => `<line x1="${n(x)}" y1="${y}" x2="${n(x + 16)}" y2="${y}" stroke="${COLORS.threshold}" stroke-width="1.5" stroke-dasharray="5 3"/>`,
      `threshold ${formatValue(threshold)}`,
    ],
    [(x, y) => `<rect x="${n(x)}" y="${y - 5}" width="16" height="10" fill="${COLORS.fault}" fill-opacity="0.3"/>`, 'fault episode (labelled)'],
  ];
  if (input.alerts) legendItems.push([(x, y) => `<rect x="${n(x)}" y="${y - 3}" width="16" height="6" fill="${COLORS.alert}"/>`, "alert up (daemon's path)"]);
  const legendAt: { x: number; y: number }[] = [];
  let lx = plotL;
  let ly = 38;
  for (const [, label] of legendItems) {
    const w = 22 + textWidth(label, 11);
    if (lx > plotL && lx + w > plotR) {
      lx = plotL;
      ly += 16;
    }
    legendAt.push({ x: lx, y: ly });
    lx += w + 18;
  }
  const capTop = ly + 10;
  const plotT = capTop + capRows * 13 + 6;
  const plotH = Math.max(120, baseHeight - 140);
  const plotB = plotT + plotH;
  const height = plotB + 44;

  // Log y domain over positive finite scores and the threshold, widened to whole decades.
  const pos = ws.map((w) => w.score).filter((s) => s > 0 && Number.isFinite(s));
  if (threshold > 0) pos.push(threshold);
  const lo = pos.length ? Math.min(...pos) : 1e-3;
  const hi = pos.length ? Math.max(...pos) : 1;
  let dLo = Math.floor(Math.log10(lo));
  let dHi = Math.ceil(Math.log10(hi));
  if (dHi <= dLo) dHi = dLo + 1;
  const yOfLog = (l: number) => plotB - ((Math.min(dHi, Math.max(dLo, l)) - dLo) / (dHi - dLo)) * plotH;
  // Zero or negative scores (impossible for an MSE, but cheap to survive) sit on the bottom edge.
  const yOf = (v: number) => (v > 0 ? yOfLog(Math.log10(v)) : plotB);

  const parts: string[] = [svgOpen(width, height, input.title)];
  parts.push(text(plotL, 20, input.title, `font-size="14" font-weight="bold" fill="${COLORS.text}"`));

  legendItems.forEach(([swatch, label], i) => {
    const { x, y } = legendAt[i]!;
    parts.push(swatch(x, y));
    parts.push(text(x + 22, y + 4, label, `fill="${COLORS.text}"`));
  });

  // Fault spans under everything else, so the score line stays visible on top of them.
  for (const c of captions) {
    const x1 = Math.max(plotL, xOf(c.e.startMs));
    const x2 = Math.min(plotR, xOf(c.e.endMs));
    const w = Math.max(2, x2 - x1); // an episode shorter than a pixel must still show
    const op = SPAN_OPACITY[c.e.intensity] ?? 0.2;
    parts.push(
      `<rect class="fault-span" data-kind="${escapeXml(c.e.kind)}" data-intensity="${escapeXml(c.e.intensity)}" x="${n(x1)}" y="${n(plotT)}" width="${n(w)}" height="${n(plotH)}" fill="${COLORS.fault}" fill-opacity="${op}"/>`,
    );
    const cy = capTop + c.row * 13 + 10;
    parts.push(`<line x1="${n(c.spanX)}" y1="${n(cy + 2)}" x2="${n(c.spanX)}" y2="${n(plotT)}" stroke="${COLORS.fault}" stroke-width="1"/>`);
  }
  // Captions after all leader lines, with a white halo: a leader from an upper row passes through the
  // lower rows and would otherwise strike through their text.
  for (const c of captions) {
    const cy = capTop + c.row * 13 + 10;
    parts.push(
      text(c.x + (c.x === c.spanX ? 3 : 0), cy, c.label, `class="fault-caption" font-size="${capFont}" fill="#8a4500" stroke="#fff" stroke-width="3" paint-order="stroke"`),
    );
  }

  // Y grid and ticks: every decade (every other one when there are many); 2 and 5 as well when the
  // whole chart spans a single decade, otherwise it would have two ticks.
  const decades = dHi - dLo;
  const dStep = decades > 8 ? 2 : 1;
  const yTicks: number[] = [];
  for (let d = dLo; d <= dHi; d += dStep) yTicks.push(d);
  if (decades === 1) yTicks.push(dLo + Math.log10(2), dLo + Math.log10(5));
  for (const l of yTicks) {
    const y = yOfLog(l);
    parts.push(`<line x1="${n(plotL)}" y1="${n(y)}" x2="${n(plotR)}" y2="${n(y)}" stroke="${COLORS.grid}" stroke-width="1"/>`);
    parts.push(`<line x1="${n(plotL - 4)}" y1="${n(y)}" x2="${n(plotL)}" y2="${n(y)}" stroke="${COLORS.axis}"/>`);
    parts.push(text(plotL - 7, y + 4, formatValue(10 ** l), `text-anchor="end" fill="${COLORS.text}"`));
  }
  parts.push(
    text(0, 0, 'score: error ÷ normal (log)', `transform="translate(16 ${n(plotT + plotH / 2)}) rotate(-90)" text-anchor="middle" fill="${COLORS.text}"`),
  );

  // X ticks on a clock-friendly step; ~90 px per label keeps "12:30" labels well apart.
  const spanS = (tEnd - t0) / 1000;
  const want = Math.max(2, Math.floor(plotW / 90));
  const stepS = TIME_STEPS_S.find((s) => spanS / s <= want) ?? niceStep(spanS, want);
  for (let s = 0; s <= spanS + 1e-9; s += stepS) {
    const x = xOf(t0 + s * 1000);
    parts.push(`<line x1="${n(x)}" y1="${n(plotT)}" x2="${n(x)}" y2="${n(plotB)}" stroke="${COLORS.grid}" stroke-width="1"/>`);
    parts.push(`<line x1="${n(x)}" y1="${n(plotB)}" x2="${n(x)}" y2="${n(plotB + 4)}" stroke="${COLORS.axis}"/>`);
    parts.push(text(x, plotB + 16, formatClock(s * 1000), `text-anchor="middle" fill="${COLORS.text}"`));
  }
  parts.push(text(plotL + plotW / 2, plotB + 34, `time from file start (${spanS >= 3600 ? 'h:mm:ss' : 'm:ss'})`, `text-anchor="middle" fill="${COLORS.text}"`));

  // Score line, broken where the data has a gap (no window for > 3 median hops) so it does not invent a trend.
  const hops: number[] = [];
  for (let i = 1; i < ws.length; i++) hops.push(ws[i]!.endT - ws[i - 1]!.endT);
  hops.sort((a, b) => a - b);
  const medHop = hops.length ? hops[Math.floor(hops.length / 2)]! : 0;
  const segments: { x: number; y: number }[][] = [];
  let seg: { x: number; y: number }[] = [];
  for (let i = 0; i < ws.length; i++) {
    if (i > 0 && medHop > 0 && ws[i]!.endT - ws[i - 1]!.endT > 3 * medHop) {
      segments.push(seg);
      seg = [];
    }
    seg.push({ x: xOf(ws[i]!.endT), y: yOf(ws[i]!.score) });
  }
  segments.push(seg);
  for (const s of segments) {
    if (s.length === 0) continue;
    const pts = decimate(s, (p) => p.x, (p) => p.y, plotW * 2);
    if (pts.length === 1) {
      parts.push(`<circle cx="${n(pts[0]!.x)}" cy="${n(pts[0]!.y)}" r="1.5" fill="${COLORS.score}"/>`);
      continue;
    }
    parts.push(
      `<polyline class="score" fill="none" stroke="${COLORS.score}" stroke-width="1.2" stroke-linejoin="round" points="${pts.map((p) => `${n(p.x)},${n(p.y)}`).join(' ')}"/>`,
    );
  }

  // Flagged windows: dots (thinned to one per pixel column) and merged runs as a strip.
  const flagged = ws.filter((w) => w.score > threshold);
  const dots = decimate(
    flagged.map((w) => ({ x: xOf(w.endT), y: yOf(w.score) })),
    (p) => p.x,
    (p) => p.y,
    plotW,
  );
  for (const d of dots) parts.push(`<circle class="flagged" cx="${n(d.x)}" cy="${n(d.y)}" r="2.2" fill="${COLORS.flagged}"/>`);
  const runs: [number, number][] = [];
  for (const w of flagged) {
    const last = runs[runs.length - 1];
    if (last && w.startT <= last[1]) last[1] = Math.max(last[1], w.endT);
    else runs.push([w.startT, w.endT]);
  }
  for (const [s, e] of runs) {
    const x1 = Math.max(plotL, xOf(s));
    const x2 = Math.min(plotR, xOf(e));
    parts.push(`<rect class="flagged-run" x="${n(x1)}" y="${n(plotB - 5)}" width="${n(Math.max(1.5, x2 - x1))}" height="5" fill="${COLORS.flagged}" fill-opacity="0.8"/>`);
  }

  // Alerts as the daemon raised them: a bar along the top from since to the clear, a tick at the raise.
  for (const a of input.alerts ?? []) {
    const x1 = Math.max(plotL, xOf(a.since));
    const x2 = Math.min(plotR, xOf(a.clearedAt ?? tEnd));
    const xr = Math.max(plotL, Math.min(plotR, xOf(a.raisedAt)));
    parts.push(`<rect class="alert-span" x="${n(x1)}" y="${n(plotT + 1)}" width="${n(Math.max(1.5, x2 - x1))}" height="6" fill="${COLORS.alert}"/>`);
    parts.push(`<line class="alert-raise" x1="${n(xr)}" y1="${n(plotT + 1)}" x2="${n(xr)}" y2="${n(plotT + 14)}" stroke="${COLORS.alert}" stroke-width="1.5"/>`);
  }

  // Threshold line on top, with a haloed label so it reads over the score line.
  if (threshold > 0) {
    const y = yOf(threshold);
    parts.push(
      `<line class="threshold" x1="${n(plotL)}" y1="${n(y)}" x2="${n(plotR)}" y2="${n(y)}" stroke="${COLORS.threshold}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
    );
    parts.push(
      text(plotR - 4, y - 5, `threshold ${formatValue(threshold)}`, `text-anchor="end" fill="${COLORS.threshold}" stroke="#fff" stroke-width="3" paint-order="stroke" font-weight="bold"`),
    );
  }

  if (ws.length === 0) parts.push(text(plotL + plotW / 2, plotT + plotH / 2, 'no windows', `text-anchor="middle" fill="#888"`));

  // Plot frame last, so spans and runs never draw over the axes.
  parts.push(`<rect x="${n(plotL)}" y="${n(plotT)}" width="${n(plotW)}" height="${n(plotH)}" fill="none" stroke="${COLORS.axis}" stroke-width="1"/>`);
  parts.push('</svg>\n');
  return parts.join('\n');
}

export interface HistogramInput {
  title: string;
  /** Scores of normal windows. */
  normal: readonly number[];
  /** Scores of fault windows. */
  fault: readonly number[];
  threshold: number;
  /** Number of bins over the log10 range; default 40. */
  bins?: number;
  width?: number;
  height?: number;
}

/**
 * Histogram of log10(score) for normal vs fault windows, each as a share of its own class (normal windows
 * usually outnumber fault windows 10:1, raw counts would flatten the fault bars), overlaid with
 * transparency, plus the threshold as a vertical line. Where the two humps overlap is what no threshold
 * can separate.
 */
export function histogramSvg(input: HistogramInput): string {
  const width = input.width ?? 900;
  const height = input.height ?? 300;
  const bins = Math.max(1, Math.floor(input.bins ?? 40));
  const { threshold } = input;
  // Non-positive scores have no log; pin them at a floor well below anything a float32 MSE reports.
  const FLOOR = 1e-12;
  const lg = (v: number) => Math.log10(Math.max(FLOOR, Math.min(Number.MAX_VALUE, v)));
  const ln = input.normal.map(lg);
  const lf = input.fault.map(lg);
  const all = [...ln, ...lf];
  if (threshold > 0) all.push(lg(threshold));
  let xMin = all.length ? Math.min(...all) : -3;
  let xMax = all.length ? Math.max(...all) : 0;
  if (xMax - xMin < 0.5) {
    const mid = (xMin + xMax) / 2;
    xMin = mid - 0.25;
    xMax = mid + 0.25;
  }
  const pad = (xMax - xMin) * 0.03;
  xMin -= pad;
  xMax += pad;
  const bw = (xMax - xMin) / bins;
  const hist = (vals: number[]) => {
    const h = new Array<number>(bins).fill(0);
    for (const v of vals) h[Math.min(bins - 1, Math.max(0, Math.floor((v - xMin) / bw)))]!++;
    return h.map((c) => (vals.length ? (100 * c) / vals.length : 0));
  };
  const hn = hist(ln);
  const hf = hist(lf);
  const yMaxRaw = Math.max(1, ...hn, ...hf);
  const yStep = niceStep(yMaxRaw, 4);
  const yMax = Math.ceil(yMaxRaw / yStep) * yStep;

  const plotL = 60;
  const plotR = width - 18;
  const plotT = 48;
  const plotB = height - 44;
  const plotW = plotR - plotL;
  const plotH = plotB - plotT;
  const xOf = (l: number) => plotL + ((l - xMin) / (xMax - xMin)) * plotW;
  const yOf = (p: number) => plotB - (p / yMax) * plotH;

  const parts: string[] = [svgOpen(width, height, input.title)];
  parts.push(text(plotL, 20, input.title, `font-size="14" font-weight="bold" fill="${COLORS.text}"`));

  // Legend on its own row under the title.
  const legendItems: [string, string, string][] = [
    [COLORS.normal, `normal windows (n=${input.normal.length})`, 'legend-normal'],
    [COLORS.fault, `fault windows (n=${input.fault.length})`, 'legend-fault'],
  ];
  let lx = plotL;
  for (const [color, label, cls] of legendItems) {
    parts.push(`<rect class="${cls}" x="${n(lx)}" y="31" width="14" height="10" fill="${color}" fill-opacity="0.55"/>`);
    parts.push(text(lx + 20, 40, label, `fill="${COLORS.text}"`));
    lx += 20 + textWidth(label, 11) + 20;
  }
  parts.push(`<line x1="${n(lx)}" y1="36" x2="${n(lx + 16)}" y2="36" stroke="${COLORS.threshold}" stroke-width="1.5" stroke-dasharray="5 3"/>`);
  parts.push(text(lx + 22, 40, 'threshold', `fill="${COLORS.text}"`));

  // Y grid.
  for (let p = 0; p <= yMax + 1e-9; p += yStep) {
    const y = yOf(p);
    parts.push(`<line x1="${n(plotL)}" y1="${n(y)}" x2="${n(plotR)}" y2="${n(y)}" stroke="${COLORS.grid}"/>`);
    parts.push(text(plotL - 6, y + 4, `${Number(p.toPrecision(3))}%`, `text-anchor="end" fill="${COLORS.text}"`));
  }
  parts.push(text(0, 0, '% of class windows', `transform="translate(14 ${n(plotT + plotH / 2)}) rotate(-90)" text-anchor="middle" fill="${COLORS.text}"`));

  // X ticks at whole decades, or half/tenth decades when the range is narrow.
  const span = xMax - xMin;
  const xStep = span > 12 ? 2 : span > 2.5 ? 1 : span > 1 ? 0.5 : 0.1;
  const xTicks: number[] = [];
  for (let l = Math.ceil(xMin / xStep) * xStep; l <= xMax + 1e-9; l += xStep) xTicks.push(l);
  // With only a few decades, whole-decade labels are too sparse to read a score off: add 2× and 5×.
  if (xStep === 1 && span <= 5) {
    for (let d = Math.floor(xMin); d <= xMax; d++)
      for (const m of [Math.log10(2), Math.log10(5)]) if (d + m >= xMin && d + m <= xMax) xTicks.push(d + m);
  }
  for (const l of xTicks) {
    const x = xOf(l);
    parts.push(`<line x1="${n(x)}" y1="${n(plotB)}" x2="${n(x)}" y2="${n(plotB + 4)}" stroke="${COLORS.axis}"/>`);
    parts.push(text(x, plotB + 16, formatValue(10 ** l), `text-anchor="middle" fill="${COLORS.text}"`));
  }
  parts.push(text(plotL + plotW / 2, plotB + 34, 'window score: reconstruction error ÷ normal (log scale)', `text-anchor="middle" fill="${COLORS.text}"`));

  const bars = (h: number[], color: string, cls: string) => {
    for (let i = 0; i < bins; i++) {
      if (h[i] === 0) continue;
      const x1 = xOf(xMin + i * bw);
      const x2 = xOf(xMin + (i + 1) * bw);
      const y = yOf(h[i]!);
      parts.push(`<rect class="${cls}" x="${n(x1)}" y="${n(y)}" width="${n(Math.max(0.5, x2 - x1 - 0.5))}" height="${n(plotB - y)}" fill="${color}" fill-opacity="0.55"/>`);
    }
  };
  bars(hn, COLORS.normal, 'bar-normal');
  bars(hf, COLORS.fault, 'bar-fault');

  if (threshold > 0) {
    const x = xOf(lg(threshold));
    parts.push(`<line class="threshold" x1="${n(x)}" y1="${n(plotT)}" x2="${n(x)}" y2="${n(plotB)}" stroke="${COLORS.threshold}" stroke-width="1.5" stroke-dasharray="6 4"/>`);
    const label = `threshold ${formatValue(threshold)}`;
    // Label on the side with room, so it never runs off the plot.
    const toLeft = x + 6 + textWidth(label, 11) > plotR;
    parts.push(
      text(toLeft ? x - 5 : x + 5, plotT + 13, label, `text-anchor="${toLeft ? 'end' : 'start'}" fill="${COLORS.threshold}" stroke="#fff" stroke-width="3" paint-order="stroke" font-weight="bold"`),
    );
  }
  if (input.normal.length + input.fault.length === 0)
    parts.push(text(plotL + plotW / 2, plotT + plotH / 2, 'no labelled windows', `text-anchor="middle" fill="#888"`));
  parts.push(`<rect x="${n(plotL)}" y="${n(plotT)}" width="${n(plotW)}" height="${n(plotH)}" fill="none" stroke="${COLORS.axis}"/>`);
  parts.push('</svg>\n');
  return parts.join('\n');
}

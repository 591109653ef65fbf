/**
 * Alert-level metrics: what a plant hears. The window-level figures (metrics.ts) judge each window on
 * its own against the threshold; the daemon instead turns windows into alerts (detector: k of n over,
 * m low to clear, a cooldown; the baseline may move the notion of normal), one per episode. Here the
 * alerts the daemon's path raised on a labelled file are matched with its fault episodes. Pure
 * functions on times, so the rules can be checked on hand-made cases (ALERT_RULES states them).
 *
 * A window ending at e covers [e − windowMs, e] (windowMs = (seqLen − 1) × periodMs, the span of its
 * samples, as metrics.ts's windows) and overlaps an episode [startMs, endMs) when
 * e − windowMs < endMs and e ≥ startMs — metrics.ts's overlap rule.
 */
import type { ModelAlert } from '../core/alert.js';
import type { FaultEpisode } from '../core/faults.js';
import { compareIntensities } from './metrics.js';

export const ALERT_RULES =
  'Alerts are those of kind machine the daemon\'s path raised (drift alerts are counted apart). An alert spans the windows ' +
  'from its `since` (the first over window of the k-of-n that raised it) to the window that cleared it, or to the last ' +
  'window of the file when it never cleared; a window ending at e covers [e − window length, e]. ' +
  'An alert is true when one of its windows overlaps a fault episode (window start < episode end and window end ≥ episode ' +
  'start), otherwise false. An episode is detected when the window that raised an alert overlaps it: raised at or after the ' +
  'episode start and less than one window length after its end; delay = raise time − episode start (the earliest such alert). ' +
  'An alert already open when an episode starts does not detect it. ' +
  'Overrun of a true alert = its clear − (the latest end of its episodes + one window length): how long it stayed up after ' +
  'the last window holding fault rows (to the last window of the file when it never cleared). ' +
  'Hours of normal running = length of the union of the spans of the judged windows that overlap no episode (metrics.ts\'s ' +
  'normal windows); false alerts per hour = false alerts / those hours. ' +
  'Alert-level F1 on a set of intensities: recall = detected episodes of those intensities / their episodes, precision = ' +
  'true alerts / all alerts (an alert on an episode of any intensity is true), F1 = 2PR/(P+R), 0 when P + R = 0.';

const MS_PER_HOUR = 3_600_000;

/** One alert as a span of windows. */
export interface AlertSpan {
  id: string;
  /** The raised alert's since: windowEnd of the first over window of the k-of-n that raised it. */
  since: number;
  /** windowEnd of the window that raised it. */
  raisedAt: number;
  /** windowEnd of the window that cleared it; null when still open at the end of the file. */
  clearedAt: number | null;
  /** The episode's peak score ÷ threshold (the cleared alert's peak; the raising window's while open). */
  peakRatio: number;
  /** Why it cleared (detector / baseline), null while open. */
  reason: string | null;
}

/** One file as the daemon's path judged it. */
export interface AlertFile {
  file: string;
  /** windowEnd of every judged window, in order. */
  windowEnds: readonly number[];
  alerts: readonly AlertSpan[];
  /** Drift alerts raised on this file. */
  driftAlerts: number;
  episodes: readonly FaultEpisode[];
}

export interface AlertEpisodeResult {
  file: string;
  kind: string;
  intensity: string;
  startMs: number;
  endMs: number;
  detected: boolean;
  /** raisedAt of the earliest detecting alert − startMs; null when missed. */
  delayMs: number | null;
}

/** One alert judged: which episodes it is about, or, for a false one, what came before it. */
export interface AlertResult extends AlertSpan {
  file: string;
  /** The episodes its windows overlap ("kind (intensity)"); empty for a false alert. */
  episodes: string[];
  /**
   * True alert: how long it stayed up after the last window holding rows of its episodes (clear −
   * (latest episode end + window length)), ≥ 0; to the file's last window when it never cleared.
   * null for a false alert.
   */
  overrunMs: number | null;
  /** False alert: the last episode that ended at or before its since, and how long before the raise it ended. */
  after: { kind: string; intensity: string; endMs: number; msBeforeRaise: number } | null;
}

export interface AlertMetrics {
  windowMs: number;
  alerts: number;
  trueAlerts: number;
  falseAlerts: number;
  driftAlerts: number;
  normalHours: number;
  /** null when there is no normal running. */
  falseAlertsPerHour: number | null;
  episodes: AlertEpisodeResult[];
  byIntensity: Record<string, { episodes: number; detected: number; meanDelayMs: number | null }>;
  /** Alert-level figures on the focus intensities (default obvious). */
  focus: { intensities: string[]; episodes: number; detected: number; recall: number; precision: number; f1: number };
  /** How long true alerts stayed up after their episode (AlertResult.overrunMs); null when there is none. */
  overrun: { meanMs: number | null; maxMs: number | null; openAtEnd: number };
  /** Every alert, file by file in time order. */
  alertList: AlertResult[];
}

/** Pairs raised and cleared machine alerts (in the order the daemon emitted them) into spans; drift alerts are skipped. */
export function alertSpans(alerts: readonly ModelAlert[]): AlertSpan[] {
  const spans: AlertSpan[] = [];
  const open = new Map<string, AlertSpan>();
  for (const a of alerts) {
    if (a.kind !== 'machine') continue;
    if (a.state === 'raised') {
      const s: AlertSpan = { id: a.id, since: a.since, raisedAt: a.windowEnd, clearedAt: null, peakRatio: a.score / a.threshold, reason: null };
      open.set(a.id, s);
      spans.push(s);
      continue;
    }
    const s = open.get(a.id);
    if (!s) throw new Error(`alert ${a.id} cleared but never raised`);
    open.delete(a.id);
    s.clearedAt = a.windowEnd;
    s.reason = a.reason ?? null;
    if (a.peak) s.peakRatio = a.peak.score / a.peak.threshold;
  }
  return spans;
}

/** Length of the union of [a, b] intervals, ms. */
function unionLength(spans: [number, number][]): number {
  spans.sort((x, y) => x[0] - y[0]);
  let total = 0;
  let s = -Infinity;
  let e = -Infinity;
  for (const [a, b] of spans) {
    if (a > e) {
      if (e > s) total += e - s;
      s = a;
      e = b;
    } else if (b > e) e = b;
  }
  if (e > s) total += e - s;
  return total;
}

/** Does the time span [from − windowMs, to] of windows ending in [from, to] overlap the episode? */
const windowsOverlap = (from: number, to: number, windowMs: number, e: Pick<FaultEpisode, 'startMs' | 'endMs'>) =>
  from - windowMs < e.endMs && to >= e.startMs;

export function alertMetrics(files: readonly AlertFile[], windowMs: number, opts: { focusIntensities?: readonly string[] } = {}): AlertMetrics {
  if (!(windowMs >= 0)) throw new RangeError(`window length must be ≥ 0 ms, got ${windowMs}`);
  const focusIntensities = [...(opts.focusIntensities ?? ['obvious'])];
  const episodes: AlertEpisodeResult[] = [];
  const alertList: AlertResult[] = [];
  let alerts = 0;
  let trueAlerts = 0;
  let driftAlerts = 0;
  let normalMs = 0;
  for (const f of files) {
    const lastWindow = f.windowEnds.length ? f.windowEnds[f.windowEnds.length - 1]! : -Infinity;
    const eps = [...f.episodes].sort((a, b) => a.startMs - b.startMs);
    driftAlerts += f.driftAlerts;
    for (const a of f.alerts) {
      alerts++;
      const to = a.clearedAt ?? Math.max(lastWindow, a.raisedAt);
      const mine = eps.filter((e) => windowsOverlap(a.since, to, windowMs, e));
      if (mine.length) {
        trueAlerts++;
        const lastEnd = Math.max(...mine.map((e) => e.endMs));
        alertList.push({ file: f.file, ...a, episodes: mine.map((e) => `${e.kind} (${e.intensity})`), overrunMs: Math.max(0, to - (lastEnd + windowMs)), after: null });
        continue;
      }
      const before = eps.filter((e) => e.endMs <= a.since).pop();
      alertList.push({
        file: f.file,
        ...a,
        episodes: [],
        overrunMs: null,
        after: before ? { kind: before.kind, intensity: before.intensity, endMs: before.endMs, msBeforeRaise: a.raisedAt - before.endMs } : null,
      });
    }
    for (const e of eps) {
      const raisers = f.alerts.filter((a) => windowsOverlap(a.raisedAt, a.raisedAt, windowMs, e)).map((a) => a.raisedAt);
      const delayMs = raisers.length ? Math.min(...raisers) - e.startMs : null;
      episodes.push({ file: f.file, kind: e.kind, intensity: e.intensity, startMs: e.startMs, endMs: e.endMs, detected: delayMs !== null, delayMs });
    }
    const normal: [number, number][] = [];
    for (const end of f.windowEnds) if (!eps.some((e) => windowsOverlap(end, end, windowMs, e))) normal.push([end - windowMs, end]);
    normalMs += unionLength(normal);
  }

  const byIntensity: AlertMetrics['byIntensity'] = {};
  const ints = [...new Set(episodes.map((e) => e.intensity))].sort(compareIntensities);
  for (const i of ints) {
    const list = episodes.filter((e) => e.intensity === i);
    const delays = list.filter((e) => e.delayMs !== null).map((e) => e.delayMs!);
    byIntensity[i] = { episodes: list.length, detected: delays.length, meanDelayMs: delays.length ? delays.reduce((s, d) => s + d, 0) / delays.length : null };
  }
  const focusEps = episodes.filter((e) => focusIntensities.includes(e.intensity));
  const detected = focusEps.filter((e) => e.detected).length;
  const recall = focusEps.length === 0 ? 0 : detected / focusEps.length;
  const precision = alerts === 0 ? 0 : trueAlerts / alerts;
  const normalHours = normalMs / MS_PER_HOUR;
  const overruns = alertList.filter((a) => a.overrunMs !== null).map((a) => a.overrunMs!);
  return {
    windowMs,
    alerts,
    trueAlerts,
    falseAlerts: alerts - trueAlerts,
    driftAlerts,
    normalHours,
    falseAlertsPerHour: normalHours === 0 ? null : (alerts - trueAlerts) / normalHours,
    episodes,
    byIntensity,
    focus: {
      intensities: focusIntensities,
      episodes: focusEps.length,
      detected,
      recall,
      precision,
      f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
    },
    overrun: {
      meanMs: overruns.length ? overruns.reduce((x, y) => x + y, 0) / overruns.length : null,
      maxMs: overruns.length ? Math.max(...overruns) : null,
      openAtEnd: alertList.filter((a) => a.clearedAt === null).length,
    },
    alertList,
  };
}

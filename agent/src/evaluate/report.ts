/**
 * The evaluation report: markdown plus SVG charts for a person deciding whether a bundle is good enough,
 * and a compact plain-text table for the terminal. Pure: the caller writes the strings to disk
 * (`<out>/REPORT.md` beside `<out>/report/<svg name>`), so tests need no file system.
 */
import { INTENSITIES } from '../core/faults.js';
import {
  compareIntensities,
  groupStats,
  DETECTION_RULE,
  FALSE_ALARM_RULE,
  LABELLING_RULE,
  type Confusion,
  type EvalFile,
  type EvaluationMetrics,
  type GroupStats,
} from './metrics.js';
import { ALERT_RULES, type AlertFile, type AlertMetrics } from './alert-metrics.js';
import { formatClock, formatValue, histogramSvg, timelineSvg } from './svg.js';

export interface ReportInput {
  bundleName: string;
  profile: string;
  modelType: string;
  features: readonly string[];
  threshold: number;
  /** How the threshold was chosen, in words (e.g. "99.5th percentile of validation scores × 1.1"). */
  thresholdRule: string;
  metrics: EvaluationMetrics;
  files: readonly EvalFile[];
  /** Free text, or key/value pairs shown as a table (epochs, final loss, training windows, …). */
  trainingSummary?: string | Record<string, string | number | boolean | null>;
  /** Folder of the SVGs relative to the markdown file; default 'report'. */
  imageDir?: string;
  /** Acceptance criterion on the focus subset (default: F1 ≥ 0.9 and precision ≥ 0.9). */
  acceptance?: { minF1: number; minPrecision: number } | null;
  /** The same files through the daemon's path (evaluate/alert-eval.ts): its alerts, scored; `detection` in words. */
  alerts?: { metrics: AlertMetrics; files: readonly AlertFile[]; detection: string };
}

export interface RenderedReport {
  markdown: string;
  /** `name` is a bare file name (e.g. `timeline-test_01.svg`); markdown links to `<imageDir>/<name>`. */
  svgs: { name: string; svg: string }[];
}

export const DEFAULT_ACCEPTANCE = { minF1: 0.9, minPrecision: 0.9 } as const;

/** Three decimals: enough to tell 0.899 from 0.9 against the acceptance line. */
function f3(x: number | null): string {
  return x === null ? 'n/a' : x.toFixed(3);
}
function pct(x: number | null): string {
  return x === null ? 'n/a' : `${(100 * x).toFixed(x > 0 && x < 0.01 ? 2 : 1)}%`;
}
/** Detection delays are seconds for most faults; minutes only for slow ones like overheating. */
export function formatDuration(ms: number | null): string {
  if (ms === null) return 'n/a';
  if (Math.abs(ms) < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatClock(ms);
}

/**
 * Text from data (file names, kinds, the threshold rule) inside markdown: `|` would split a table cell,
 * a newline would end the table, and `<`/`&` could be taken as inline HTML by the renderer.
 */
export function md(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
}

/** File name → safe SVG file stem (names come from the test set, not from us). */
export function slugify(file: string): string {
  const base = file.replace(/^.*[\\/]/, '').replace(/\.csv$/i, '');
  return base.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '') || 'file';
}

function mdTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function confusionRow(name: string, c: Confusion): string[] {
  return [name, String(c.tp + c.fn), String(c.tp), String(c.fp), String(c.tn), String(c.fn), f3(c.precision), f3(c.recall), f3(c.f1), f3(c.auc)];
}

/** Intensities in vocabulary order, plus any unknown ones that occur in the data. */
function intensityColumns(m: EvaluationMetrics): string[] {
  const seen = new Set<string>(INTENSITIES);
  for (const k of Object.keys(m.byIntensity)) seen.add(k);
  return [...seen].sort(compareIntensities);
}

/** One kind × intensity cell: "detected/episodes · window recall · mean delay", MISSED when none caught. */
function cell(g: GroupStats | undefined): string {
  if (!g || g.episodes === 0) return '—';
  const det = `${g.detected}/${g.episodes}`;
  if (g.detected === 0) return `**MISSED** ${det} · ${pct(g.windowRecall)}`;
  const partial = g.detected < g.episodes ? ' (partial)' : '';
  return `${det}${partial} · ${pct(g.windowRecall)} · ${formatDuration(g.meanDelayMs)}`;
}

function acceptanceMet(c: Confusion, a: { minF1: number; minPrecision: number }): boolean {
  return c.tp + c.fn > 0 && c.f1 >= a.minF1 && c.precision >= a.minPrecision;
}

export function renderReport(input: ReportInput): RenderedReport {
  const m = input.metrics;
  const dir = (input.imageDir ?? 'report').replace(/\/+$/, '');
  // null: no acceptance bar for this model (it only sees some of the channels the faults act on).
  const acc = input.acceptance === null ? null : (input.acceptance ?? DEFAULT_ACCEPTANCE);
  const focusName = m.focus.intensities.join('+') || 'none';
  const focusHasData = m.focus.tp + m.focus.fn > 0;
  const met = acc !== null && acceptanceMet(m.focus, acc);
  const verdict = focusHasData ? (met ? 'met' : 'NOT met') : `not measurable (no ${focusName} fault windows)`;
  const accText = acc === null ? '' : `acceptance (F1 ≥ ${acc.minF1} and precision ≥ ${acc.minPrecision}) **${verdict}**`;
  const allEps = m.episodes.length;
  const detEps = m.episodes.filter((e) => e.detected).length;
  const fa = m.falseAlarms;

  const out: string[] = [];
  out.push(`# Evaluation: ${md(input.bundleName)}`, '');
  out.push(
    `**Summary:** \`${md(input.profile)}/${md(input.modelType)}\` (${input.features.map(md).join(', ')}), threshold ${formatValue(input.threshold)}. ` +
      `${focusName.charAt(0).toUpperCase()}${focusName.slice(1)} faults: precision ${f3(m.focus.precision)}, recall ${f3(m.focus.recall)}, F1 ${f3(m.focus.f1)} — ` +
      (accText ? `${accText}. ` : '') +
      `All faults: P ${f3(m.overall.precision)} · R ${f3(m.overall.recall)} · F1 ${f3(m.overall.f1)}; ` +
      `${detEps}/${allEps} episodes detected; ${fa.eventsPerHour === null ? 'n/a' : fa.eventsPerHour.toFixed(2)} false alarms/h; ROC AUC ${f3(m.overall.auc)}.`,
    '',
  );
  out.push(`**Threshold:** ${formatValue(input.threshold)} (${input.threshold}) — ${md(input.thresholdRule)}`, '');
  out.push(
    `**Data:** ${m.counts.files} test file(s), ${m.counts.windows} windows: ${m.counts.normal} normal, ${m.counts.fault} fault, ` +
      `${m.counts.mixed} mixed (excluded from P/R/F1 and AUC, see the labelling rule below).`,
    '',
  );

  out.push('## Precision, recall, F1 (window level)', '');
  const confRows = [confusionRow('all faults', m.overall), confusionRow(`**${focusName} only**${acc ? ' (acceptance)' : ''}`, m.focus)];
  for (const [int, c] of Object.entries(m.byIntensityConfusion)) {
    if (m.focus.intensities.length === 1 && m.focus.intensities[0] === int) continue; // already shown
    confRows.push(confusionRow(`${md(int)} only`, c));
  }
  out.push(mdTable(['subset', 'fault windows', 'TP', 'FP', 'TN', 'FN', 'precision', 'recall', 'F1', 'ROC AUC'], confRows), '');
  out.push(
    `"Subtle only" etc. = fault windows of episodes of that intensity + all normal windows; fault windows of other ` +
      `intensities are left out, false alarms count against every subset.`,
    '',
  );
  out.push(
    `**${focusName.charAt(0).toUpperCase()}${focusName.slice(1)} faults only:** precision ${f3(m.focus.precision)}, recall ${f3(m.focus.recall)}, F1 ${f3(m.focus.f1)} ` +
      `(TP ${m.focus.tp}, FP ${m.focus.fp}, FN ${m.focus.fn})${accText ? ` — ${accText}` : ''}.`,
    '',
  );

  out.push('## What the model catches, per fault kind × intensity', '');
  out.push(
    'P/R/F1: that kind\'s fault windows against all normal windows. ' +
      'Each intensity cell: episodes detected / episodes · window recall inside the episodes · mean detection delay. ' +
      '**MISSED** = no episode in that cell raised a single flagged window; — = no such episode in the test data.',
    '',
  );
  const ints = intensityColumns(m);
  const kindRows: string[][] = [];
  for (const [kind, byInt] of Object.entries(m.byKindIntensity)) {
    const g = m.byKind[kind]!;
    const c = m.byKindConfusion[kind];
    const prf = c ? [f3(c.precision), f3(c.recall), f3(c.f1)] : ['n/a', 'n/a', 'n/a'];
    kindRows.push([md(kind), ...prf, ...ints.map((i) => cell(byInt[i])), cell(g), formatDuration(g.maxDelayMs)]);
  }
  const totals = ints.map((i) => cell(m.byIntensity[i]));
  const allGroup = groupStats(m.episodes);
  const o = m.overall;
  kindRows.push(['**all kinds**', f3(o.precision), f3(o.recall), f3(o.f1), ...totals, cell(allGroup), formatDuration(allGroup.maxDelayMs)]);
  out.push(mdTable(['kind', 'P', 'R', 'F1', ...ints.map(md), 'all intensities', 'max delay'], kindRows), '');
  if (allEps === 0) out.push('_No fault episodes in the test data._', '');

  if (allEps > 0) {
    out.push('### Per episode', '');
    const fileStart = new Map(input.files.map((f) => [f.file, fileOrigin(f)]));
    const rows = m.episodes.map((e) => [
      md(e.file),
      md(e.kind),
      md(e.intensity),
      formatClock(e.startMs - (fileStart.get(e.file) ?? e.startMs)),
      formatDuration(e.endMs - e.startMs),
      md(e.channels.join(', ')),
      e.detected ? 'yes' : '**MISSED**',
      formatDuration(e.delayMs),
      e.faultWindows ? `${e.flaggedFaultWindows}/${e.faultWindows}` : 'n/a',
      e.maxScore === null ? 'n/a' : formatValue(e.maxScore),
      md(e.topFeatures.join(', ')) || '—',
    ]);
    out.push(
      mdTable(['file', 'kind', 'intensity', 'start', 'duration', 'channels', 'detected', 'delay', 'fault windows flagged', 'max score', 'top features'], rows),
      '',
    );
  }

  out.push('## False alarms on normal data', '');
  out.push(
    `${fa.flaggedNormalWindows} of ${fa.normalWindows} normal windows flagged (${pct(fa.rate)}); ` +
      `${fa.events} false alarm event(s) over ${fa.normalHours.toFixed(2)} h of normal running = ` +
      `${fa.eventsPerHour === null ? 'n/a' : fa.eventsPerHour.toFixed(2)} events/h ` +
      `(${fa.windowsPerHour === null ? 'n/a' : fa.windowsPerHour.toFixed(1)} flagged windows/h).`,
    '',
  );

  if (input.alerts) out.push(...alertSection(input.alerts, fa.eventsPerHour, new Map(input.files.map((f) => [f.file, fileOrigin(f)]))));

  // Charts. Names are made unique, two test files may share a stem in different folders.
  const svgs: RenderedReport['svgs'] = [];
  const used = new Set<string>();
  const uniqueName = (stem: string) => {
    let name = `${stem}.svg`;
    for (let i = 2; used.has(name); i++) name = `${stem}-${i}.svg`;
    used.add(name);
    return name;
  };
  out.push('## Charts', '');
  const normal: number[] = [];
  const fault: number[] = [];
  for (const f of input.files)
    for (const w of f.windows) {
      if (w.labelFraction === 0) normal.push(w.score);
      else if (w.labelFraction === 1) fault.push(w.score);
    }
  const histName = uniqueName('histogram');
  svgs.push({
    name: histName,
    svg: histogramSvg({
      title: `${input.bundleName}: score distribution, normal vs fault windows (mixed excluded)`,
      normal,
      fault,
      threshold: input.threshold,
    }),
  });
  out.push(`![score histogram](${dir}/${histName})`, '');
  for (const f of input.files) {
    const name = uniqueName(`timeline-${slugify(f.file)}`);
    svgs.push({
      name,
      svg: timelineSvg({
        title: `${input.bundleName} · ${f.file}`,
        windows: f.windows,
        episodes: f.episodes,
        threshold: input.threshold,
        t0: fileOrigin(f),
        ...(input.alerts ? { alerts: input.alerts.files.find((a) => a.file === f.file)?.alerts ?? [] } : {}),
      }),
    });
    out.push(`### ${md(f.file)}`, '', `![timeline ${md(f.file)}](${dir}/${name})`, '');
  }

  if (input.trainingSummary !== undefined) {
    out.push('## Training', '');
    if (typeof input.trainingSummary === 'string') out.push(input.trainingSummary, '');
    else
      out.push(
        mdTable(
          ['', ''],
          Object.entries(input.trainingSummary).map(([k, v]) => [md(k), md(v === null ? 'n/a' : String(v))]),
        ),
        '',
      );
  }

  out.push('## Definitions', '');
  out.push(`- **Labelling:** ${LABELLING_RULE}`);
  out.push(`- **Detection:** ${DETECTION_RULE}`);
  out.push(`- **False alarms:** ${FALSE_ALARM_RULE}`);
  if (input.alerts) out.push(`- **Alerts (daemon's path):** ${ALERT_RULES}`);
  out.push(
    '- **ROC AUC:** probability that a random fault window scores higher than a random normal window ' +
      '(ties count ½; Mann–Whitney U with mid-ranks) — how well the score separates the classes whatever the threshold.',
    '',
  );
  return { markdown: out.join('\n'), svgs };
}

function perHour(x: number | null): string {
  return x === null ? 'n/a' : `${x.toFixed(1)}/h`;
}

/** The alert-level figures, in the report: what a plant running this bundle would have heard. */
function alertSection(a: NonNullable<ReportInput['alerts']>, windowEventsPerHour: number | null, origin: ReadonlyMap<string, number>): string[] {
  const m = a.metrics;
  const focus = m.focus.intensities.join('+');
  const out = ['## Alerts through the daemon\'s path', ''];
  out.push(
    `Each test file replayed on its own into the daemon's pipeline (windower → scorer → detector → baseline) with the daemon's ` +
      `default settings: ${md(a.detection)}.`,
    '',
  );
  out.push(
    `**${m.alerts} alert(s), ${m.falseAlerts} false** over ${m.normalHours.toFixed(2)} h of normal running = ` +
      `**${perHour(m.falseAlertsPerHour)} false alerts** (window level: ${perHour(windowEventsPerHour)} false alarm events). ` +
      `${focus.charAt(0).toUpperCase()}${focus.slice(1)} episodes alerted ${m.focus.detected}/${m.focus.episodes}: ` +
      `alert-level recall ${f3(m.focus.recall)}, precision ${f3(m.focus.precision)}, **F1 ${f3(m.focus.f1)}**. ` +
      `True alerts stayed up ${formatDuration(m.overrun.meanMs)} on average after their episode (at most ${formatDuration(m.overrun.maxMs)}; ` +
      `${m.overrun.openAtEnd} still open at the end of a file). Drift alerts: ${m.driftAlerts}.`,
    '',
  );
  const ints = Object.keys(m.byIntensity);
  out.push(
    mdTable(
      ['', ...ints.map(md)],
      [
        ['episodes alerted', ...ints.map((i) => `${m.byIntensity[i]!.detected}/${m.byIntensity[i]!.episodes}`)],
        ['mean delay', ...ints.map((i) => formatDuration(m.byIntensity[i]!.meanDelayMs))],
      ],
    ),
    '',
  );
  if (m.alertList.length) {
    const rel = (file: string, t: number | null) => (t === null ? 'open' : formatClock(t - (origin.get(file) ?? t)));
    out.push(
      mdTable(
        ['file', 'since', 'raised', 'cleared', 'peak ÷ threshold', 'cleared because', 'about', 'stayed up after'],
        m.alertList.map((x) => [
          md(x.file),
          rel(x.file, x.since),
          rel(x.file, x.raisedAt),
          rel(x.file, x.clearedAt),
          x.peakRatio.toFixed(2),
          md(x.reason ?? '—'),
          x.episodes.length
            ? md(x.episodes.join(', '))
            : `**false**${x.after ? ` — ${formatDuration(x.after.msBeforeRaise)} after ${md(x.after.kind)} (${md(x.after.intensity)}) ended` : ''}`,
          formatDuration(x.overrunMs),
        ]),
      ),
      '',
    );
  }
  return out;
}

/** Time origin for a file's charts and episode start times: its first window or episode. */
function fileOrigin(f: EvalFile): number {
  let t = Infinity;
  for (const w of f.windows) t = Math.min(t, w.startT);
  for (const e of f.episodes) t = Math.min(t, e.startMs);
  return Number.isFinite(t) ? t : 0;
}

/** Pad columns; numbers right-aligned so digits line up, text left-aligned. */
function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = /^[-+]?[\d.]+(%|\/\d+| s)?$|^n\/a$|^-$/;
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i > 0 && numeric.test(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n');
}

/**
 * Compact plain-text tables for the terminal: P/R/F1 per model, then per model × fault kind the
 * episodes detected (per intensity, MISSED when none), window recall and delays.
 */
export function formatMetricsTable(models: readonly { model: string; metrics: EvaluationMetrics }[] | EvaluationMetrics): string {
  // Array.isArray does not narrow readonly arrays, hence the explicit type.
  const list: readonly { model: string; metrics: EvaluationMetrics }[] =
    'overall' in models ? [{ model: 'model', metrics: models }] : models;
  const head = ['model', 'TP', 'FP', 'TN', 'FN', 'P', 'R', 'F1', 'focus', 'focus P', 'focus R', 'focus F1', 'AUC', 'FA/h'];
  const rows = list.map(({ model, metrics: m }) => [
    model,
    String(m.overall.tp),
    String(m.overall.fp),
    String(m.overall.tn),
    String(m.overall.fn),
    f3(m.overall.precision),
    f3(m.overall.recall),
    f3(m.overall.f1),
    m.focus.intensities.join('+'),
    f3(m.focus.precision),
    f3(m.focus.recall),
    f3(m.focus.f1),
    f3(m.overall.auc),
    m.falseAlarms.eventsPerHour === null ? 'n/a' : m.falseAlarms.eventsPerHour.toFixed(2),
  ]);
  const ints = [...new Set(list.flatMap(({ metrics }) => [...INTENSITIES, ...Object.keys(metrics.byIntensity)]))].sort(compareIntensities);
  const kHead = ['model', 'kind', 'P', 'R', 'F1', 'detected', ...ints, 'mean delay', 'max delay'];
  const kRows: string[][] = [];
  for (const { model, metrics: m } of list) {
    for (const [kind, g] of Object.entries(m.byKind)) {
      const byInt = m.byKindIntensity[kind] ?? {};
      const c = m.byKindConfusion[kind];
      kRows.push([
        model,
        kind,
        f3(c?.precision ?? null),
        f3(c?.recall ?? null),
        f3(c?.f1 ?? null),
        `${g.detected}/${g.episodes}`,
        ...ints.map((i) => {
          const c = byInt[i];
          if (!c) return '-';
          return c.detected === 0 ? `MISSED 0/${c.episodes}` : `${c.detected}/${c.episodes}`;
        }),
        formatDuration(g.meanDelayMs),
        formatDuration(g.maxDelayMs),
      ]);
    }
  }
  const parts = [textTable(head, rows)];
  if (kRows.length) parts.push('', textTable(kHead, kRows));
  return parts.join('\n');
}

/**
 * Per model, the alert-level figures beside the window-level false alarms (what the daemon would
 * have raised; evaluate/alert-metrics.ts).
 */
export function formatAlertTable(rows: readonly { model: string; alerts: AlertMetrics; window: EvaluationMetrics }[]): string {
  const ints = [...new Set(rows.flatMap((r) => [...INTENSITIES, ...Object.keys(r.alerts.byIntensity)]))].sort(compareIntensities);
  const head = ['model', 'alerts', 'false', 'normal h', 'false/h', 'window FA ev/h', ...ints.map((i) => `${i} alerted`), 'focus R', 'P', 'F1', 'overrun mean', 'max', 'drift'];
  const body = rows.map(({ model, alerts: m, window: w }) => [
    model,
    String(m.alerts),
    String(m.falseAlerts),
    m.normalHours.toFixed(3),
    m.falseAlertsPerHour === null ? 'n/a' : m.falseAlertsPerHour.toFixed(2),
    w.falseAlarms.eventsPerHour === null ? 'n/a' : w.falseAlarms.eventsPerHour.toFixed(2),
    ...ints.map((i) => (m.byIntensity[i] ? `${m.byIntensity[i]!.detected}/${m.byIntensity[i]!.episodes}` : '-')),
    f3(m.focus.recall),
    f3(m.focus.precision),
    f3(m.focus.f1),
    formatDuration(m.overrun.meanMs),
    formatDuration(m.overrun.maxMs),
    String(m.driftAlerts),
  ]);
  return textTable(head, body);
}

/** The issue's line: false alerts per hour through the daemon's path beside the window-level figure. */
export function falseAlertLine(profile: string, model: string, alerts: AlertMetrics, window: EvaluationMetrics): string {
  const fmt = (x: number | null) => (x === null ? 'n/a' : x.toFixed(1));
  return `${profile} ${model}: false alerts ${fmt(alerts.falseAlertsPerHour)}/h (window-level false alarm events ${fmt(window.falseAlarms.eventsPerHour)}/h)`;
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FaultEpisode } from '#agent/core/faults.js';
import { computeMetrics, LABELLING_RULE, type EvalFile, type WindowScore } from '#agent/evaluate/metrics.js';
import { formatMetricsTable, md, renderReport, slugify } from '#agent/evaluate/report.js';
import { xmlProblems } from './xmlcheck.js';

const T0 = 1_700_000_000_000;
const ep = (kind: FaultEpisode['kind'], intensity: FaultEpisode['intensity'], a: number, b: number): FaultEpisode => ({
  kind,
  intensity,
  startMs: T0 + a * 1000,
  endMs: T0 + b * 1000,
  channels: ['accel_x'],
});

/** 1 s windows every 1 s; score 1 outside faults, `inside` within episode spans. */
function file(name: string, seconds: number, episodes: FaultEpisode[], inside: (e: FaultEpisode) => number): EvalFile {
  const windows: WindowScore[] = [];
  for (let s = 0; s < seconds; s++) {
    const startT = T0 + s * 1000;
    const endT = startT + 999;
    const hit = episodes.filter((e) => startT < e.endMs && endT >= e.startMs);
    const full = hit.some((e) => startT >= e.startMs && endT < e.endMs);
    windows.push({ startT, endT, score: hit.length ? Math.max(...hit.map(inside)) : 1, labelFraction: full ? 1 : hit.length ? 0.5 : 0 });
  }
  return { file: name, windows, episodes };
}

const FILES = [
  file('a|b<x>.csv', 120, [ep('imbalance', 'obvious', 10, 20), ep('bearing', 'subtle', 40, 50), ep('sag', 'moderate', 70, 80)], (e) =>
    e.kind === 'bearing' ? 1 : 100,
  ),
  file('sub/c.csv', 60, [ep('imbalance', 'subtle', 10, 30)], () => 1),
];
const THRESHOLD = 10;
const METRICS = computeMetrics(FILES, THRESHOLD);

function render(extra: Partial<Parameters<typeof renderReport>[0]> = {}) {
  return renderReport({
    bundleName: 'rpm_600/vibration',
    profile: 'rpm_600',
    modelType: 'vibration',
    features: ['accel_x', 'accel_y', 'accel_z'],
    threshold: THRESHOLD,
    thresholdRule: 'p99.5 of validation × 1.2',
    metrics: METRICS,
    files: FILES,
    trainingSummary: { epochs: 3, 'val loss': 0.01 },
    ...extra,
  });
}

test('markdown: summary, tables, a row per fault kind, MISSED cells, labelling rule, image links', () => {
  const { markdown, svgs } = render();
  assert.match(markdown, /^# Evaluation: rpm_600\/vibration/);
  assert.match(markdown, /\*\*Summary:\*\*/);
  assert.match(markdown, /\| all faults \| /);
  assert.match(markdown, /\| \*\*obvious only\*\* \(acceptance\) \| /);
  assert.match(markdown, /Obvious faults only:\*\* precision 1\.000, recall 1\.000, F1 1\.000/);
  assert.match(markdown, /\(TP \d+, FP \d+, FN \d+\) — acceptance \(F1 ≥ 0\.9 and precision ≥ 0\.9\) \*\*met\*\*/);
  assert.doesNotMatch(render({ acceptance: null }).markdown, /acceptance/, "no acceptance bar when there is none");
  for (const kind of ['imbalance', 'bearing', 'sag']) assert.match(markdown, new RegExp(`^\\| ${kind} \\|`, 'm'), kind);
  // imbalance: obvious caught, subtle missed; bearing subtle missed
  const imbalance = markdown.split('\n').find((l) => l.startsWith('| imbalance |'))!;
  const cells = imbalance.split(' | ');
  const ic = METRICS.byKindConfusion.imbalance!;
  assert.deepEqual(cells.slice(1, 4), [ic.precision, ic.recall, ic.f1].map((x) => x.toFixed(3)), 'per-kind P/R/F1');
  assert.match(cells[4]!, /\*\*MISSED\*\* 0\/1/, 'subtle column');
  assert.equal(cells[5], '—', 'no moderate imbalance episode');
  assert.match(cells[6]!, /^1\/1 · 100\.0% · 1\.0 s$/, 'obvious column: detected, full window recall, delay = endT − start');
  assert.match(markdown, /^\| bearing \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| \*\*MISSED\*\* 0\/1/m);
  assert.match(markdown, /^\| \*\*all kinds\*\* \|/m);
  assert.ok(markdown.includes(LABELLING_RULE));
  for (const s of svgs) assert.ok(markdown.includes(`](report/${s.name})`), s.name);
  assert.deepEqual(
    svgs.map((s) => s.name),
    ['histogram.svg', `timeline-${slugify('a|b<x>.csv')}.svg`, 'timeline-c.svg'],
  );
  assert.match(markdown, /\| epochs \| 3 \|/);
});

test('markdown escapes file names (table pipes, HTML) and every SVG is well-formed', () => {
  const { markdown, svgs } = render();
  assert.ok(!markdown.includes('a|b<x>'));
  assert.ok(markdown.includes(md('a|b<x>.csv')));
  assert.equal(md('a|b<x>&'), 'a\\|b&lt;x&gt;&amp;');
  for (const s of svgs) assert.deepEqual(xmlProblems(s.svg), [], s.name);
  assert.equal(svgs.filter((s) => s.name.startsWith('timeline-')).length, FILES.length);
  const tl = svgs.find((s) => s.name === 'timeline-c.svg')!.svg;
  assert.equal((tl.match(/class="fault-span"/g) ?? []).length, 1);
});

test('acceptance reads NOT met when the focus subset misses', () => {
  const bad = computeMetrics(FILES, THRESHOLD, { focusIntensities: ['subtle'] });
  const { markdown } = renderReport({
    bundleName: 'x',
    profile: 'rpm_600',
    modelType: 'vibration',
    features: ['accel_x'],
    threshold: THRESHOLD,
    thresholdRule: 'r',
    metrics: bad,
    files: FILES,
  });
  assert.match(markdown, /\*\*NOT met\*\*/);
  assert.ok(!markdown.includes('## Training'));
});

test('formatMetricsTable: one row per model, per model × kind rows with MISSED', () => {
  const t = formatMetricsTable([
    { model: 'vibration', metrics: METRICS },
    { model: 'multi-feature', metrics: METRICS },
  ]);
  const lines = t.split('\n');
  assert.ok(lines.some((l) => /^vibration\s+\d+\s+\d+/.test(l)));
  assert.ok(lines.some((l) => /^multi-feature\s+/.test(l)));
  for (const kind of ['imbalance', 'bearing', 'sag']) assert.ok(lines.some((l) => l.startsWith('vibration') && l.includes(` ${kind} `)), kind);
  assert.ok(lines.some((l) => l.includes('bearing') && l.includes('MISSED 0/1')));
  // numbers right-aligned under their header: the TP column ends where "TP" ends
  const end = lines[0]!.indexOf(' TP') + 3;
  const row = lines.find((l) => l.startsWith('vibration'))!;
  assert.match(row[end - 1]!, /\d/);
  assert.equal(row[end], ' ');
  assert.match(formatMetricsTable(METRICS), /^model\s+TP/);
});

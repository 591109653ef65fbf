import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FaultEpisode } from '#agent/core/faults.js';
import type { WindowScore } from '#agent/evaluate/metrics.js';
import { escapeXml, formatClock, formatValue, histogramSvg, timelineSvg } from '#agent/evaluate/svg.js';
import { xmlProblems } from './xmlcheck.js';

const T0 = 1_700_000_000_000;
function windows(n: number, score: (i: number) => number, hopMs = 500, lenMs = 4950): WindowScore[] {
  return Array.from({ length: n }, (_, i) => ({ startT: T0 + i * hopMs, endT: T0 + i * hopMs + lenMs, score: score(i), labelFraction: 0 }));
}
const EPS: FaultEpisode[] = [
  { kind: 'imbalance', intensity: 'obvious', startMs: T0 + 20_000, endMs: T0 + 40_000, channels: ['accel_x'] },
  { kind: 'stuck', intensity: 'subtle', startMs: T0 + 41_000, endMs: T0 + 42_000, channels: ['accel_y'] },
  { kind: 'dropout', intensity: 'moderate', startMs: T0 + 42_000, endMs: T0 + 43_000, channels: ['accel_z'] },
];

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;

test('xmlProblems catches what it is meant to catch', () => {
  assert.deepEqual(xmlProblems('<svg><g><rect/></g><text x="1">a &amp; b</text></svg>'), []);
  assert.ok(xmlProblems('<svg><g></svg>').length > 0, 'misnested');
  assert.ok(xmlProblems('<svg><g>').length > 0, 'unclosed');
  assert.ok(xmlProblems('<svg><text>a < b</text></svg>').length > 0, 'raw <');
  assert.ok(xmlProblems('<svg><text>a & b</text></svg>').length > 0, 'raw &');
  assert.ok(xmlProblems('<svg><rect x="1" x="2"/></svg>').length > 0, 'duplicate attribute');
  assert.ok(xmlProblems('<svg><rect x=1/></svg>').length > 0, 'unquoted attribute');
  assert.ok(xmlProblems('<svg/><svg/>').length > 0, 'two roots');
});

test('escapeXml escapes all five specials', () => {
  assert.equal(escapeXml(`a<b&c>"d'`), 'a&lt;b&amp;c&gt;&quot;d&apos;');
});

test('formatters', () => {
  assert.equal(formatClock(0), '0:00');
  assert.equal(formatClock(65_000), '1:05');
  assert.equal(formatClock(3_725_000), '1:02:05');
  assert.equal(formatValue(0.0026), '2.6e-3');
  assert.equal(formatValue(0.001), '1e-3');
  assert.equal(formatValue(0.0335), '0.0335');
  assert.equal(formatValue(1), '1');
});

test('timeline: well-formed, one span and one caption per episode, threshold line, flagged dots, escaped title', () => {
  const ws = windows(120, (i) => (i >= 40 && i < 80 ? 0.05 : 0.001 * (1 + (i % 3) / 10)));
  const svg = timelineSvg({ title: 'motor <1> & "2"', windows: ws, episodes: EPS, threshold: 0.003 });
  assert.deepEqual(xmlProblems(svg), []);
  assert.equal(count(svg, /class="fault-span"/g), EPS.length);
  assert.equal(count(svg, /class="fault-caption"/g), EPS.length);
  assert.match(svg, />imbalance \(obvious\)</);
  assert.equal(count(svg, /<line class="threshold"/g), 1);
  assert.equal(count(svg, /class="flagged"/g), 40);
  assert.ok(svg.includes('motor &lt;1&gt; &amp; &quot;2&quot;'));
  assert.ok(!svg.includes('motor <1>'));
  // the two adjacent short episodes must get different caption rows (no overlapping text)
  const ys = [...svg.matchAll(/<text x="([\d.]+)" y="([\d.]+)" class="fault-caption"/g)].map((m) => Number(m[2]));
  assert.equal(new Set(ys.slice(1)).size, 2);
});

test('timeline: alerts of the daemon\'s path as bars from since to the clear (or the end), a legend entry, the legend wrapping', () => {
  const ws = windows(120, () => 0.001);
  const plain = timelineSvg({ title: 't', windows: ws, episodes: EPS, threshold: 0.003 });
  assert.equal(count(plain, /alert up/g), 0);
  const t0 = ws[0]!.startT;
  const alerts = [
    { since: t0 + 10_000, raisedAt: t0 + 11_000, clearedAt: t0 + 20_000 },
    { since: t0 + 30_000, raisedAt: t0 + 31_000, clearedAt: null },
  ];
  const svg = timelineSvg({ title: 't', windows: ws, episodes: EPS, threshold: 0.003, alerts });
  assert.deepEqual(xmlProblems(svg), []);
  assert.equal(count(svg, /class="alert-span"/g), 2);
  assert.equal(count(svg, /class="alert-raise"/g), 2);
  assert.match(svg, /alert up \(daemon&apos;s path\)/);
  // Every legend label stays inside the 900 px canvas.
  const legend = [...svg.matchAll(/<text x="([\d.]+)" y="(42|58)" fill="#222">([^<]*)</g)];
  assert.equal(legend.length, 5);
  assert.ok(legend.some((m) => m[2] === '58'), 'the fifth entry wraps onto a second row');
  for (const m of legend) assert.ok(Number(m[1]) + m[3]!.length * 6.6 <= 900, `legend '${m[3]}' runs off the canvas`);
});

test('timeline: thinning keeps a single spike among many windows, line breaks at data gaps', () => {
  const ws = windows(20_000, (i) => (i === 12_345 ? 10 : 0.001), 100);
  const svg = timelineSvg({ title: 't', windows: ws, episodes: [], threshold: 1 });
  assert.deepEqual(xmlProblems(svg), []);
  assert.equal(count(svg, /class="flagged"/g), 1);
  const poly = svg.match(/<polyline class="score"[^>]*points="([^"]*)"/)![1]!;
  const ys = poly.split(' ').map((p) => Number(p.split(',')[1]));
  assert.ok(ys.length < 5000, `thinned to ${ys.length} points`);
  assert.ok(Math.min(...ys) < 70, 'spike (score 10, top of the axis) is still drawn');
  const gappy = [...windows(10, () => 0.001), ...windows(10, () => 0.001).map((w) => ({ ...w, startT: w.startT + 600_000, endT: w.endT + 600_000 }))];
  assert.equal(count(timelineSvg({ title: 'g', windows: gappy, episodes: [], threshold: 1 }), /<polyline class="score"/g), 2);
});

test('timeline and histogram survive empty input and zero scores', () => {
  for (const svg of [
    timelineSvg({ title: 'e', windows: [], episodes: [], threshold: 0.01 }),
    timelineSvg({ title: 'z', windows: windows(5, () => 0), episodes: EPS, threshold: 0 }),
    histogramSvg({ title: 'h', normal: [], fault: [], threshold: 0.01 }),
    histogramSvg({ title: 'h0', normal: [0, 0], fault: [1], threshold: 0.5 }),
  ]) {
    assert.deepEqual(xmlProblems(svg), []);
    assert.ok(!/NaN|Infinity/.test(svg), 'no NaN/Infinity coordinates');
  }
});

test('histogram: well-formed, both classes, legend with counts, threshold marked, escaped title', () => {
  const normal = Array.from({ length: 200 }, (_, i) => 0.001 * (1 + (i % 10) / 10));
  const fault = Array.from({ length: 50 }, (_, i) => 0.02 * (1 + (i % 5) / 5));
  const svg = histogramSvg({ title: 'a<b & c', normal, fault, threshold: 0.003 });
  assert.deepEqual(xmlProblems(svg), []);
  assert.ok(svg.includes('a&lt;b &amp; c'));
  assert.ok(count(svg, /class="bar-normal"/g) > 0);
  assert.ok(count(svg, /class="bar-fault"/g) > 0);
  assert.match(svg, /normal windows \(n=200\)/);
  assert.match(svg, /fault windows \(n=50\)/);
  assert.equal(count(svg, /<line class="threshold"/g), 1);
  // bar heights are shares of each class: the fault bars sum to 100 % just like the normal ones
  const heights = (cls: string) => [...svg.matchAll(new RegExp(`class="${cls}"[^>]*height="([\\d.]+)"`, 'g'))].reduce((s, m) => s + Number(m[1]), 0);
  assert.ok(Math.abs(heights('bar-normal') - heights('bar-fault')) < 2);
});

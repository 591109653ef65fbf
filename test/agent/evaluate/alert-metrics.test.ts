/**
 * Alert-level counting on a small hand-made case; every expected figure below is worked out by hand
 * from ALERT_RULES (see the comments), not by the code under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertMetrics, alertSpans, type AlertFile, type AlertSpan } from '#agent/evaluate/alert-metrics.js';
import type { ModelAlert } from '#agent/core/alert.js';
import type { FaultEpisode } from '#agent/core/faults.js';

const WINDOW_MS = 1000; // a window ending at e covers [e − 1000, e]
const ends = (from: number, to: number) => Array.from({ length: (to - from) / 500 + 1 }, (_, i) => from + 500 * i);
const ep = (kind: FaultEpisode['kind'], intensity: FaultEpisode['intensity'], startMs: number, endMs: number): FaultEpisode => ({ kind, intensity, startMs, endMs, channels: [] });
const span = (id: string, since: number, raisedAt: number, clearedAt: number | null): AlertSpan => ({ id, since, raisedAt, clearedAt, peakRatio: 2, reason: clearedAt === null ? null : 'back to normal' });

const fileA: AlertFile = {
  file: 'a.csv',
  windowEnds: ends(1000, 20_000),
  episodes: [ep('sag', 'obvious', 5000, 8000), ep('swell', 'subtle', 12_000, 13_000), ep('bearing', 'obvious', 16_000, 17_000)],
  alerts: [
    span('a1', 5500, 6500, 9500), // true (sag); raised inside it: detects it, delay 1500; overrun 9500 − (8000 + 1000) = 500
    span('a2', 10_000, 11_000, 11_500), // windows [9000, 11500]: after the sag's last window (< 8000), before the swell: false
    span('a3', 13_500, 13_800, null), // windows [12500, 20000]: true; raised 13800 − 1000 < 13000: detects the swell, delay 1800;
    // already open when the bearing starts: does not detect it; overrun to the last window 20000 − (17000 + 1000) = 2000
  ],
  driftAlerts: 0,
};
const fileB: AlertFile = { file: 'b.csv', windowEnds: ends(1000, 10_000), episodes: [], alerts: [span('b1', 3000, 4000, 6000)], driftAlerts: 1 };

test('alert-level counting: false alerts, detection, F1, overrun and normal hours on a hand-made case', () => {
  const m = alertMetrics([fileA, fileB], WINDOW_MS);
  assert.equal(m.alerts, 4);
  assert.equal(m.trueAlerts, 2);
  assert.equal(m.falseAlerts, 2);
  assert.equal(m.driftAlerts, 1);
  // Normal windows of a.csv end at 1000–4500, 9000–11500, 14000–15500, 18000–20000 → spans [0, 4500],
  // [8000, 11500], [13000, 15500], [17000, 20000] = 4500 + 3500 + 2500 + 3000; b.csv [0, 10000].
  assert.equal(m.normalHours, 23_500 / 3_600_000);
  assert.ok(Math.abs(m.falseAlertsPerHour! - 2 / (23_500 / 3_600_000)) < 1e-9);
  assert.deepEqual(
    m.episodes.map((e) => [e.kind, e.detected, e.delayMs]),
    [
      ['sag', true, 1500],
      ['swell', true, 1800],
      ['bearing', false, null],
    ],
  );
  assert.deepEqual(m.byIntensity, { subtle: { episodes: 1, detected: 1, meanDelayMs: 1800 }, obvious: { episodes: 2, detected: 1, meanDelayMs: 1500 } });
  // Obvious: recall 1/2; precision 2 true of 4 alerts; F1 = 2·0.5·0.5 / 1.
  assert.deepEqual(m.focus, { intensities: ['obvious'], episodes: 2, detected: 1, recall: 0.5, precision: 0.5, f1: 0.5 });
  assert.deepEqual(m.overrun, { meanMs: 1250, maxMs: 2000, openAtEnd: 1 });
  const byId = new Map(m.alertList.map((a) => [a.id, a]));
  assert.deepEqual(byId.get('a1')!.episodes, ['sag (obvious)']);
  assert.deepEqual(byId.get('a3')!.episodes, ['swell (subtle)', 'bearing (obvious)']);
  assert.deepEqual(byId.get('a2')!.after, { kind: 'sag', intensity: 'obvious', endMs: 8000, msBeforeRaise: 3000 });
  assert.equal(byId.get('b1')!.after, null);
  assert.equal(byId.get('b1')!.overrunMs, null);
});

test('an alert raised one window length after an episode ended is false; one whose window still holds its last row detects it', () => {
  const episodes = [ep('sag', 'obvious', 5000, 8000)];
  const late = alertMetrics([{ file: 'x', windowEnds: ends(1000, 12_000), episodes, alerts: [span('l', 9000, 9000, 10_000)], driftAlerts: 0 }], WINDOW_MS);
  assert.equal(late.falseAlerts, 1); // window [8000, 9000] starts at the episode's end: no overlap with [5000, 8000)
  assert.equal(late.focus.detected, 0);
  const edge = alertMetrics([{ file: 'x', windowEnds: ends(1000, 12_000), episodes, alerts: [span('e', 8500, 8500, 10_000)], driftAlerts: 0 }], WINDOW_MS);
  assert.equal(edge.falseAlerts, 0); // window [7500, 8500] holds rows before 8000
  assert.deepEqual(edge.episodes.map((e) => e.delayMs), [3500]);
  assert.equal(edge.focus.f1, 1);
});

test('no alerts and no episodes: every figure is 0 or n/a, never a perfect score', () => {
  const m = alertMetrics([{ file: 'x', windowEnds: [], episodes: [], alerts: [], driftAlerts: 0 }], WINDOW_MS);
  assert.equal(m.falseAlertsPerHour, null);
  assert.deepEqual(m.focus, { intensities: ['obvious'], episodes: 0, detected: 0, recall: 0, precision: 0, f1: 0 });
  assert.deepEqual(m.overrun, { meanMs: null, maxMs: null, openAtEnd: 0 });
});

test('alertSpans pairs raised and cleared machine alerts by id and skips drift alerts', () => {
  const base = { model: 'temperature', topFeatures: [] };
  const alerts: ModelAlert[] = [
    { ...base, kind: 'machine', id: 'm1', state: 'raised', score: 3, threshold: 2, since: 100, windowEnd: 200 },
    { ...base, kind: 'drift', id: 'd1', state: 'raised', score: 1, threshold: 1, since: 250, windowEnd: 250 },
    { ...base, kind: 'machine', id: 'm1', state: 'cleared', score: 1, threshold: 2, since: 100, windowEnd: 900, reason: 'settled at a new level', peak: { score: 8, threshold: 2, topFeatures: [] } },
    { ...base, kind: 'machine', id: 'm2', state: 'raised', score: 5, threshold: 2, since: 1000, windowEnd: 1100 },
  ];
  assert.deepEqual(alertSpans(alerts), [
    { id: 'm1', since: 100, raisedAt: 200, clearedAt: 900, peakRatio: 4, reason: 'settled at a new level' },
    { id: 'm2', since: 1000, raisedAt: 1100, clearedAt: null, peakRatio: 2.5, reason: null },
  ]);
  assert.throws(() => alertSpans([alerts[2]!]), /alert m1 cleared but never raised/);
});

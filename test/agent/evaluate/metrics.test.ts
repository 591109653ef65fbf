import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FaultEpisode } from '#agent/core/faults.js';
import {
  classifyWindow,
  computeMetrics,
  confusion,
  episodeResults,
  falseAlarms,
  precisionRecallF1,
  rocAuc,
  type EvalFile,
  type WindowScore,
} from '#agent/evaluate/metrics.js';

const w = (startT: number, endT: number, score: number, labelFraction: number, perFeature?: Record<string, number>): WindowScore => ({
  startT,
  endT,
  score,
  labelFraction,
  ...(perFeature ? { perFeature } : {}),
});

const E1: FaultEpisode = { kind: 'imbalance', intensity: 'obvious', startMs: 100, endMs: 200, channels: ['accel_x'] };
const E2: FaultEpisode = { kind: 'bearing', intensity: 'subtle', startMs: 300, endMs: 400, channels: ['accel_y'] };

/**
 * Hand example, threshold 1 (flagged = score > 1):
 *   normal: w1 0.5 TN, w2 1.5 FP, w3 1.0 TN (equal is not over), w11 0.1 TN, w12 7 FP, w13 8 FP
 *   mixed : w4 0.2, w8 5 (excluded from the confusion, but w8 overlaps E1)
 *   fault : E1 → w5 1.0 FN, w6 3 TP, w7 4 TP;  E2 → w9 0.9 FN, w10 0.95 FN
 * overall TP 2 FP 3 TN 3 FN 3 → P 2/5, R 2/5, F1 0.4
 */
const HAND: EvalFile = {
  file: 'hand.csv',
  episodes: [E2, E1], // deliberately out of order
  windows: [
    w(0, 9, 0.5, 0),
    w(10, 19, 1.5, 0),
    w(20, 29, 1.0, 0),
    w(90, 109, 0.2, 0.5),
    w(100, 119, 1.0, 1, { accel_x: 2, accel_y: 0.1 }),
    w(120, 139, 3, 1, { accel_x: 5, accel_y: 1 }),
    w(140, 159, 4, 1),
    w(190, 209, 5, 0.5),
    w(300, 319, 0.9, 1),
    w(320, 339, 0.95, 1),
    w(500, 519, 0.1, 0),
    w(520, 539, 7, 0),
    w(530, 549, 8, 0),
  ],
};

test('classifyWindow: 0 normal, 1 fault, anything between mixed', () => {
  assert.equal(classifyWindow(0), 'normal');
  assert.equal(classifyWindow(1), 'fault');
  assert.equal(classifyWindow(0.01), 'mixed');
  assert.equal(classifyWindow(0.99), 'mixed');
});

test('precisionRecallF1 defines 0/0 as 0', () => {
  assert.deepEqual(precisionRecallF1(0, 0, 0), { precision: 0, recall: 0, f1: 0 });
  assert.deepEqual(precisionRecallF1(0, 3, 0), { precision: 0, recall: 0, f1: 0 });
  const r = precisionRecallF1(3, 1, 2);
  assert.equal(r.precision, 0.75);
  assert.equal(r.recall, 0.6);
  assert.ok(Math.abs(r.f1 - (2 * 0.75 * 0.6) / 1.35) < 1e-12);
});

test('confusion on the hand example: exact counts, mixed windows excluded, strict threshold', () => {
  const c = confusion([HAND], 1);
  assert.deepEqual({ tp: c.tp, fp: c.fp, tn: c.tn, fn: c.fn }, { tp: 2, fp: 3, tn: 3, fn: 3 });
  assert.equal(c.precision, 0.4);
  assert.equal(c.recall, 0.4);
  assert.ok(Math.abs(c.f1 - 0.4) < 1e-12);
  // 11 labelled windows counted, the 2 mixed ones not
  assert.equal(c.tp + c.fp + c.tn + c.fn, 11);
});

test('confusion restricted to intensities keeps all normal windows and only that intensity’s fault windows', () => {
  const ob = confusion([HAND], 1, (e) => e.intensity === 'obvious');
  assert.deepEqual({ tp: ob.tp, fp: ob.fp, tn: ob.tn, fn: ob.fn }, { tp: 2, fp: 3, tn: 3, fn: 1 });
  assert.equal(ob.precision, 0.4);
  assert.ok(Math.abs(ob.recall - 2 / 3) < 1e-12);
  assert.ok(Math.abs(ob.f1 - 0.5) < 1e-12);
  const sub = confusion([HAND], 1, (e) => e.intensity === 'subtle');
  assert.deepEqual({ tp: sub.tp, fp: sub.fp, tn: sub.tn, fn: sub.fn }, { tp: 0, fp: 3, tn: 3, fn: 2 });
  assert.deepEqual([sub.precision, sub.recall, sub.f1], [0, 0, 0]);
  // a fault window attributable to no episode drops out of every restricted subset
  const orphan: EvalFile = { file: 'o.csv', episodes: [], windows: [w(0, 9, 5, 1), w(10, 19, 0, 0)] };
  const oc = confusion([orphan], 1, (e) => e.intensity === 'obvious');
  assert.equal(oc.tp + oc.fn, 0);
  assert.equal(confusion([orphan], 1).tp, 1);
});

test('rocAuc: hand examples with ties, degenerate cases, and agreement with brute force', () => {
  // pairs: (1,1) ½, (1,2) 0, (2,1) 1, (2,2) ½, (3,1) 1, (3,2) 1 → 4/6
  assert.ok(Math.abs(rocAuc([1, 2, 3], [1, 2])! - 2 / 3) < 1e-12);
  assert.equal(rocAuc([2, 3], [1]), 1);
  assert.equal(rocAuc([1], [2, 3]), 0);
  assert.equal(rocAuc([5, 5], [5, 5, 5]), 0.5);
  assert.equal(rocAuc([], [1]), null);
  assert.equal(rocAuc([1], []), null);
  let seed = 7;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  for (let trial = 0; trial < 20; trial++) {
    const p = Array.from({ length: 1 + Math.floor(rnd() * 30) }, () => Math.floor(rnd() * 8));
    const q = Array.from({ length: 1 + Math.floor(rnd() * 30) }, () => Math.floor(rnd() * 8));
    let wins = 0;
    for (const a of p) for (const b of q) wins += a > b ? 1 : a === b ? 0.5 : 0;
    assert.ok(Math.abs(rocAuc(p, q)! - wins / (p.length * q.length)) < 1e-12);
  }
});

test('AUC of the hand example (fault 1.0 ties normal 1.0): 14.5/30', () => {
  assert.ok(Math.abs(confusion([HAND], 1).auc! - 14.5 / 30) < 1e-12);
});

test('episodeResults: detection, exact delay, window recall, top features', () => {
  const [r1, r2] = episodeResults([HAND], 1);
  assert.equal(r1!.kind, 'imbalance'); // sorted by start
  assert.equal(r1!.windows, 5); // w4 (mixed, starts before), w5, w6, w7, w8 (mixed, ends after)
  assert.equal(r1!.faultWindows, 3);
  assert.equal(r1!.flaggedFaultWindows, 2);
  assert.ok(Math.abs(r1!.windowRecall! - 2 / 3) < 1e-12);
  assert.equal(r1!.detected, true);
  assert.equal(r1!.delayMs, 39); // first flagged overlapping window is w6, endT 139, episode starts at 100
  assert.equal(r1!.maxScore, 5);
  assert.deepEqual(r1!.topFeatures, ['accel_x', 'accel_y']);
  assert.equal(r2!.kind, 'bearing');
  assert.equal(r2!.detected, false);
  assert.equal(r2!.delayMs, null);
  assert.equal(r2!.windowRecall, 0);
  assert.deepEqual(r2!.topFeatures, []);
});

test('detection uses only windows overlapping the episode; a mixed window can detect', () => {
  const ep: FaultEpisode = { kind: 'sag', intensity: 'moderate', startMs: 1000, endMs: 1010, channels: ['voltage'] };
  const before: EvalFile = { file: 'b', episodes: [ep], windows: [w(980, 999, 9, 0), w(1010, 1029, 9, 0)] };
  const [rb] = episodeResults([before], 1);
  assert.equal(rb!.detected, false, 'flagged windows ending before the start or starting at the end do not count');
  assert.equal(rb!.windowRecall, null, 'an episode shorter than a window has no fault windows: recall n/a, not 0');
  const straddle: EvalFile = { file: 's', episodes: [ep], windows: [w(985, 1004, 0.5, 0.25), w(990, 1009, 2, 0.5)] };
  const [rs] = episodeResults([straddle], 1);
  assert.equal(rs!.delayMs, 9);
});

test('falseAlarms: rate, runs of consecutive flagged normal windows, hours of normal running', () => {
  const fa = falseAlarms([HAND], 1);
  assert.equal(fa.normalWindows, 6);
  assert.equal(fa.flaggedNormalWindows, 3);
  assert.equal(fa.rate, 0.5);
  assert.equal(fa.events, 2); // w2 alone; w12+w13 overlap → one run
  // union of [0,9] [10,19] [20,29] [500,519] [520,539]∪[530,549] = 9+9+9+19+29 = 75 ms
  assert.equal(fa.normalHours, 75 / 3_600_000);
  assert.ok(Math.abs(fa.eventsPerHour! - 2 / (75 / 3_600_000)) < 1e-6);
  // A data gap longer than a hop splits a run; windows one hop apart (hop = length) do not.
  const gap: EvalFile = { file: 'g', episodes: [], windows: [w(0, 9, 2, 0), w(10, 19, 2, 0), w(20, 29, 2, 0), w(500, 509, 2, 0)] };
  assert.equal(falseAlarms([gap], 1).events, 2);
  const none = falseAlarms([{ file: 'n', episodes: [], windows: [] }], 1);
  assert.equal(none.rate, null);
  assert.equal(none.eventsPerHour, null);
});

test('computeMetrics: groups, focus subset, order-independent and JSON-safe', () => {
  const m = computeMetrics([HAND], 1);
  assert.deepEqual(m.counts, { files: 1, windows: 13, normal: 6, fault: 5, mixed: 2 });
  assert.deepEqual(m.focus.intensities, ['obvious']);
  assert.equal(m.focus.tp, 2);
  assert.equal(m.focus.fn, 1);
  assert.deepEqual(Object.keys(m.byKind), ['imbalance', 'bearing']); // FAULT_KINDS order
  assert.deepEqual(m.byKind.imbalance, {
    episodes: 1,
    detected: 1,
    faultWindows: 3,
    flaggedFaultWindows: 2,
    windowRecall: 2 / 3,
    meanDelayMs: 39,
    maxDelayMs: 39,
  });
  assert.equal(m.byKindIntensity.bearing!.subtle!.detected, 0);
  assert.equal(m.byKindIntensity.bearing!.obvious, undefined);
  assert.deepEqual(Object.keys(m.byIntensity), ['subtle', 'obvious']);
  assert.equal(m.byIntensityConfusion.subtle!.fn, 2);
  assert.deepEqual(m.files[0], { file: 'hand.csv', windows: 13, normal: 6, fault: 5, mixed: 2, flagged: 6, episodes: 2, detected: 1 });

  const json = JSON.stringify(m);
  assert.deepEqual(JSON.parse(json), m, 'JSON round trip loses nothing (no Infinity, NaN, undefined)');
  const shuffled: EvalFile = { ...HAND, windows: [...HAND.windows].reverse() };
  assert.equal(JSON.stringify(computeMetrics([shuffled], 1)), json, 'window order does not matter');

  const m2 = computeMetrics([HAND], 1, { focusIntensities: ['subtle', 'obvious'] });
  assert.equal(m2.focus.tp + m2.focus.fn, 5);
});

test('computeMetrics rejects inputs that would give plausible wrong numbers', () => {
  assert.throws(() => computeMetrics([{ file: 'x', episodes: [], windows: [w(0, 9, NaN, 0)] }], 1), /NaN/);
  assert.throws(() => computeMetrics([{ file: 'x', episodes: [], windows: [w(0, 9, 1, 1.5)] }], 1), /labelFraction/);
  assert.throws(() => computeMetrics([HAND], NaN), /threshold/);
  const inf = computeMetrics([{ file: 'x', episodes: [E1], windows: [w(100, 119, Infinity, 1)] }], 1);
  assert.equal(JSON.parse(JSON.stringify(inf)).episodes[0].maxScore, Number.MAX_VALUE);
});

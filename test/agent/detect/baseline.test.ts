import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Baseline, BaselineOptionsError, DRIFT_CLEAR, type BaselineOptions, type BaselineWindow } from '#agent/detect/baseline.js';

const PERIOD = 1000;
const OPTS: BaselineOptions = { followPerHour: 3.6, referenceMs: 10_000, deadBand: 0.1, settleMs: 20_000, holdMs: 0, settleFraction: 0.5, steadyRange: 0.05, trialMs: 10_000, maxDrift: 1 };

/** A window of two features at these levels; healthy unless told otherwise. */
const win = (windowEnd: number, levels: number[], o: Partial<BaselineWindow> = {}): BaselineWindow => ({ windowEnd, ratio: 0.3, levels, open: false, peakRatio: null, low: true, ...o });

/** Feeds `n` windows from `t0` on, each from `make(i)`; returns the time after the last and any drift alerts. */
function feed(b: Baseline, t0: number, n: number, make: (t: number, i: number) => BaselineWindow, cleared = (): number | null => null) {
  const alerts = [];
  let t = t0;
  for (let i = 0; i < n; i++, t += PERIOD) {
    const a = b.observe(make(t, i), cleared());
    if (a) alerts.push(a);
  }
  return { t, alerts };
}

test('the reference is the healthy levels first seen; a level that drifts past the dead band is followed, no faster than followPerHour', () => {
  const b = new Baseline('m', ['a', 'b'], OPTS);
  let { t } = feed(b, 0, 11, (t) => win(t, [0.5, 0.2]));
  assert.deepEqual([...b.offsets], [0, 0], 'nothing moves while the reference is learned');
  // a drifts up by 0.5 training ranges in one step and stays: healthy windows (the model still finds them low)
  ({ t } = feed(b, t, 100, (t) => win(t, [1.0, 0.2])));
  // 3.6 ranges/h = 0.001 per second: 100 s move it at most 0.1
  assert.ok(b.offsets[0]! > 0.09 && b.offsets[0]! <= 0.1 + 1e-9, `offset ${b.offsets[0]} after 100 s at 0.001/s`);
  assert.equal(b.offsets[1], 0, 'b stayed at its reference');
  ({ t } = feed(b, t, 1000, (t) => win(t, [1.0, 0.2])));
  assert.ok(Math.abs(b.offsets[0]! - 0.4) < 0.01, `held within the dead band of the reference: ${b.offsets[0]}`);
  assert.ok(Math.abs(b.drift - b.offsets[0]!) < 1e-12);
  // back to the reference: the offset returns
  feed(b, t, 1000, (t) => win(t, [0.5, 0.2]));
  assert.ok(Math.abs(b.offsets[0]!) < 1e-9, `offset back to 0: ${b.offsets[0]}`);
});

test('nothing is followed while a window is high or an episode is open', () => {
  const b = new Baseline('m', ['a', 'b'], OPTS);
  let { t } = feed(b, 0, 11, (t) => win(t, [0.5, 0.5]));
  ({ t } = feed(b, t, 500, (t) => win(t, [2, 0.5], { ratio: 1.5, low: false })));
  assert.deepEqual([...b.offsets], [0, 0], 'high windows');
  feed(b, t, 500, (t) => win(t, [2, 0.5], { ratio: 2, open: true, peakRatio: 3, low: false }));
  assert.deepEqual([...b.offsets], [0, 0], 'an open episode');
});

test('an episode that holds steady well under its peak is tried at its new level, and its clear says so', () => {
  const b = new Baseline('m', ['a', 'b'], OPTS);
  let { t } = feed(b, 0, 40, (t) => win(t, [0.5, 0.3]));
  assert.equal(b.clearReason, 'back to normal');
  // the episode: a peak of 8× at a jump, then a steady 2× at a new level of a
  ({ t } = feed(b, t, 5, (t) => win(t, [0.9, 0.3], { ratio: 8, open: true, peakRatio: 8, low: false })));
  ({ t } = feed(b, t, 15, (t) => win(t, [0.8, 0.3], { ratio: 2, open: true, peakRatio: 8, low: false })));
  assert.deepEqual([...b.offsets], [0, 0], 'not yet settled: 15 s of the 20 s');
  ({ t } = feed(b, t, 7, (t) => win(t, [0.8, 0.3], { ratio: 2, open: true, peakRatio: 8, low: false })));
  assert.ok(Math.abs(b.offsets[0]! - 0.3) < 1e-9 && Math.abs(b.offsets[1]!) < 1e-9, `the new level maps onto the old: ${[...b.offsets]}`);
  assert.equal(b.clearReason, 'settled at a new level');
  // the detector clears under the trial offsets
  feed(b, t, 1, (t) => win(t, [0.8, 0.3], { ratio: 0.2, open: false, peakRatio: null }), () => 8);
  assert.equal(b.settles, 1);
  assert.equal(b.clearReason, 'back to normal');
  assert.ok(Math.abs(b.offsets[0]! - 0.3) < 1e-9, 'the new level stays the normal one');
});

test("an episode raised right after a clear settles against the cleared one's peak", () => {
  const b = new Baseline('m', ['a'], OPTS);
  let { t } = feed(b, 0, 40, (t) => win(t, [0.5]));
  ({ t } = feed(b, t, 10, (t) => win(t, [0.9], { ratio: 8, open: true, peakRatio: 8, low: false })));
  ({ t } = feed(b, t, 1, (t) => win(t, [0.6], { ratio: 0.5 }), () => 8));
  // re-raised at 2.5× with its own peak 3: over half of it, but under half of the 8 just cleared
  ({ t } = feed(b, t, 25, (t) => win(t, [0.7], { ratio: 2.5, open: true, peakRatio: 3, low: false })));
  assert.equal(b.clearReason, 'settled at a new level');
  assert.ok(Math.abs(b.offsets[0]! - 0.2) < 1e-9, `re-based from the levels before the first episode: ${b.offsets[0]}`);
  // long after a clear, the old peak no longer counts
  const c = new Baseline('m', ['a'], OPTS);
  ({ t } = feed(c, 0, 40, (t) => win(t, [0.5])));
  ({ t } = feed(c, t, 1, (t) => win(t, [0.5], { ratio: 0.5 }), () => 8));
  ({ t } = feed(c, t, 5 * 20 + 5, (t) => win(t, [0.5])));
  feed(c, t, 25, (t) => win(t, [0.7], { ratio: 2.5, open: true, peakRatio: 3, low: false }));
  assert.equal(c.clearReason, 'back to normal');
});

test('hold: a step to a new steady level that scores at its peak is tried after holdMs; a score still rising is not', () => {
  const b = new Baseline('m', ['a'], { ...OPTS, holdMs: 60_000 });
  let { t } = feed(b, 0, 40, (t) => win(t, [0.5]));
  ({ t } = feed(b, t, 55, (t) => win(t, [0.8], { ratio: 4, open: true, peakRatio: 4, low: false })));
  assert.equal(b.clearReason, 'back to normal', 'not yet: 55 s of the 60 s');
  ({ t } = feed(b, t, 10, (t) => win(t, [0.8], { ratio: 4, open: true, peakRatio: 4, low: false })));
  assert.equal(b.clearReason, 'settled at a new level');
  assert.ok(Math.abs(b.offsets[0]! - 0.3) < 1e-9);
  // rising by more than HOLD_RISE over the span: never held
  const c = new Baseline('m', ['a'], { ...OPTS, holdMs: 60_000 });
  ({ t } = feed(c, 0, 40, (t) => win(t, [0.5])));
  feed(c, t, 300, (_t, i) => win(_t, [0.8], { ratio: 2 + i * 0.01, open: true, peakRatio: 2 + i * 0.01, low: false }));
  assert.equal(c.clearReason, 'back to normal');
});

test('a trial that does not clear in time is undone: what is wrong is not a level', () => {
  const b = new Baseline('m', ['a'], OPTS);
  let { t } = feed(b, 0, 40, (t) => win(t, [0.5]));
  ({ t } = feed(b, t, 30, (t) => win(t, [0.7], { ratio: 2, open: true, peakRatio: 8, low: false })));
  assert.equal(b.clearReason, 'settled at a new level');
  ({ t } = feed(b, t, 12, (t) => win(t, [0.7], { ratio: 2, open: true, peakRatio: 8, low: false })));
  assert.equal(b.offsets[0], 0, 'undone');
  assert.equal(b.clearReason, 'back to normal');
  assert.equal(b.settles, 0);
});

test('a fault that keeps growing, or whose levels wander, never settles', () => {
  const b = new Baseline('m', ['a'], OPTS);
  let { t } = feed(b, 0, 40, (t) => win(t, [0.5]));
  ({ t } = feed(b, t, 300, (_t, i) => win(_t, [0.6], { ratio: 2 + i * 0.05, open: true, peakRatio: 2 + i * 0.05, low: false })));
  assert.equal(b.clearReason, 'back to normal', 'growing: every window is its own peak');
  feed(b, t, 300, (_t, i) => win(_t, [0.6 + (i % 10) * 0.02], { ratio: 2, open: true, peakRatio: 30, low: false }));
  assert.equal(b.clearReason, 'back to normal', 'a level that moves by 0.18 is not steady (steadyRange 0.05)');
});

test('drift at the limit raises a drift alert; it clears once the drift falls under the clear share of the limit', () => {
  const b = new Baseline('m', ['a', 'b'], { ...OPTS, followPerHour: 36, maxDrift: 0.5 });
  const { t } = feed(b, 0, 11, (t) => win(t, [0.5, 0.5]));
  let r = feed(b, t, 200, (t) => win(t, [2, 0.5]));
  assert.equal(r.alerts.length, 1);
  const raised = r.alerts[0]!;
  assert.equal(raised.kind, 'drift');
  assert.equal(raised.state, 'raised');
  assert.equal(raised.threshold, 0.5);
  assert.ok(raised.score >= 0.5);
  assert.deepEqual(raised.topFeatures.map((f) => f.feature), ['a']);
  assert.ok(Math.abs(b.drift - 0.5) < 1e-9, 'held at the limit');
  r = feed(b, r.t, 200, (t) => win(t, [0.5, 0.5]));
  assert.equal(r.alerts.length, 1);
  const cleared = r.alerts[0]!;
  assert.equal(cleared.state, 'cleared');
  assert.equal(cleared.id, raised.id);
  assert.equal(cleared.reason, 'back within limit');
  assert.ok(cleared.score < DRIFT_CLEAR * 0.5);
});

test('a bad option is refused, naming it', () => {
  assert.throws(() => new Baseline('m', ['a'], { ...OPTS, settleFraction: 1 }), (e: Error) => e instanceof BaselineOptionsError && /settleFraction must be in \(0, 1\), got 1/.test(e.message));
  assert.throws(() => new Baseline('m', ['a'], { ...OPTS, maxDrift: 0 }), /maxDrift must be a number > 0, got 0/);
  assert.throws(() => new Baseline('m', ['a'], { ...OPTS, followPerHour: NaN }), /followPerHour must be a number ≥ 0, got NaN/);
});

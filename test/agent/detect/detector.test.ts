import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '#agent/core/rng.js';
import { toAlertPayload, type ModelAlert } from '#agent/core/alert.js';
import type { Score } from '#agent/core/score.js';
import { isPayload, payloadProblem } from '#agent/core/payloads.js';
import { SCHEMA_VERSION } from '#agent/core/topics.js';
import { type DetectorOptions, Detector, DetectorInputError, DetectorOptionsError, DetectorStateError, defaultId } from '#agent/detect/detector.js';

const T = 1; // threshold
const PERIOD = 1000; // ms between windows

function ids(prefix = 'inc'): () => string {
  let n = 0;
  return () => `${prefix}-${++n}`;
}

function make(over: Partial<DetectorOptions> = {}): Detector {
  return new Detector({ model: 'vibration', threshold: T, raiseK: 3, raiseN: 5, clearM: 3, clearRatio: 0.8, cooldownMs: 0, newId: ids(), ...over });
}

const pf = (score: number) => ({ accel_x: score * 0.5, accel_y: score * 0.3, accel_z: score * 0.2 });

/** Feeds scores at windowEnd = start + i·PERIOD; returns the events with the index of their window. */
function run(d: Detector, scores: number[], start = 0): { i: number; e: ModelAlert }[] {
  const out: { i: number; e: ModelAlert }[] = [];
  scores.forEach((score, i) => {
    const e = d.observe({ windowEnd: start + i * PERIOD, score, perFeature: pf(score) });
    if (e) out.push({ i, e });
  });
  return out;
}

test('k-of-n: raises exactly at the k-th over-threshold window among the last n', () => {
  const d = make();
  // over at 0, 2, 4 → the third over window (index 4) is within the 5-window span 0..4.
  const ev = run(d, [2, 0.5, 1.5, 0.5, 3, 3]);
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.i, 4);
  const e = ev[0]!.e;
  assert.deepEqual(
    { id: e.id, model: e.model, state: e.state, score: e.score, threshold: e.threshold, since: e.since, windowEnd: e.windowEnd },
    { id: 'inc-1', model: 'vibration', state: 'raised', score: 3, threshold: 1, since: 0, windowEnd: 4000 },
  );
  assert.equal(d.isOpen(), true);
});

test('a score equal to the threshold is not over it', () => {
  const d = make({ raiseK: 1, raiseN: 1 });
  assert.deepEqual(run(d, [1, 1, 1]), []);
  assert.equal(run(d, [1.0000001]).length, 1);
});

test('isolated spikes (fewer than k in any n) never raise', () => {
  const d = make();
  // two over windows in every 5 at most: pattern over, over, low, low, low, …
  const scores = Array.from({ length: 500 }, (_, i) => (i % 5 < 2 ? 50 : 0.1));
  assert.deepEqual(run(d, scores), []);
  // spikes every 3rd window: at most 2 in any 5
  const d2 = make();
  assert.deepEqual(run(d2, Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? 9 : 0.2))), []);
});

test('since is the windowEnd of the first over-threshold window among the last n', () => {
  const d = make();
  // index 0 is over but falls out of the 5-window span by the time the 3rd over arrives at index 6
  const ev = run(d, [5, 0.1, 0.1, 2, 0.1, 2, 2], 10_000);
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.i, 6);
  assert.equal(ev[0]!.e.since, 10_000 + 3 * PERIOD);
  // the cleared alert carries the same since
  const c = run(d, [0.1, 0.1, 0.1], 20_000);
  assert.equal(c[0]!.e.state, 'cleared');
  assert.equal(c[0]!.e.since, 13_000);
});

test('long episode oscillating around the threshold: exactly one raised and one cleared', () => {
  const d = make();
  const rng = new Rng(7);
  const scores = [
    ...Array.from({ length: 20 }, () => 0.3),
    // straddles the threshold, never under clearRatio·threshold = 0.8
    ...Array.from({ length: 400 }, (_, i) => 1 + 0.15 * Math.sin(i / 3) + rng.range(-0.04, 0.04)),
    ...Array.from({ length: 10 }, () => 0.3),
  ];
  const ev = run(d, scores);
  assert.deepEqual(
    ev.map((x) => x.e.state),
    ['raised', 'cleared'],
  );
  assert.equal(ev[0]!.e.id, ev[1]!.e.id);
  assert.equal(ev[1]!.i, 422, 'cleared at the third quiet window');
});

test('hysteresis: windows between clearRatio·threshold and threshold keep it open', () => {
  const d = make({ raiseK: 1, raiseN: 1, clearM: 2 });
  assert.equal(run(d, [2])[0]!.e.state, 'raised');
  assert.deepEqual(run(d, Array.from({ length: 100 }, () => 0.85), 1000), []);
  assert.deepEqual(run(d, [0.8, 0.8, 0.8], 200_000), [], 'exactly clearRatio·threshold is not under it');
  assert.equal(d.isOpen(), true);
  const c = run(d, [0.79, 0.5], 300_000);
  assert.equal(c.length, 1);
  assert.equal(c[0]!.e.state, 'cleared');
});

test('clear after exactly m consecutive low windows; a high or in-band window restarts the count', () => {
  const d = make({ raiseK: 1, raiseN: 1, clearM: 3 });
  run(d, [5]);
  assert.deepEqual(run(d, [0.1, 0.1, 3, 0.1, 0.1, 0.9, 0.1, 0.1], 1000), [], 'runs of 2 never clear');
  const c = run(d, [0.1], 100_000);
  assert.equal(c.length, 1, 'the third consecutive low window clears');
  assert.equal(c[0]!.e.state, 'cleared');

  const d1 = make({ raiseK: 1, raiseN: 1, clearM: 1 });
  run(d1, [5]);
  assert.equal(run(d1, [0.1], 1000).length, 1, 'm = 1 clears on the first low window');
});

test('cleared carries its own window, why it ended, and the peak of the episode: score, threshold, top features; same id and since', () => {
  const d = make({ raiseK: 2, raiseN: 3, clearM: 2 });
  const w = (windowEnd: number, score: number, perFeature: Record<string, number>) => d.observe({ windowEnd, score, perFeature });
  assert.equal(w(0, 0.2, { a: 0.1 }), null);
  assert.equal(w(1000, 7, { a: 1, b: 5, c: 1 }), null); // first over: the peak, though before the raise
  const r = w(2000, 2, { a: 1, b: 0.5, c: 0.5 })!;
  assert.equal(r.state, 'raised');
  assert.equal(r.score, 2);
  assert.equal(r.since, 1000);
  assert.deepEqual(r.topFeatures.map((f) => f.feature), ['a', 'b', 'c']);
  assert.equal(w(3000, 4, { a: 4 }), null);
  assert.equal(w(4000, 0.1, { a: 0.1 }), null);
  const c = w(5000, 0.1, { a: 0.1 })!;
  assert.deepEqual(c, {
    kind: 'machine',
    id: r.id,
    model: 'vibration',
    state: 'cleared',
    score: 0.1,
    threshold: 1,
    topFeatures: [{ feature: 'a', error: 0.1, share: 1 }],
    since: 1000,
    windowEnd: 5000,
    reason: 'back to normal',
    peak: {
      score: 7,
      threshold: 1,
      topFeatures: [
        { feature: 'b', error: 5, share: 5 / 7 },
        { feature: 'a', error: 1, share: 1 / 7 },
        { feature: 'c', error: 1, share: 1 / 7 },
      ],
    },
  });
  assert.equal(d.observe({ windowEnd: 6000, score: 5, perFeature: { a: 5 } }), null);
  const again = d.observe({ windowEnd: 7000, score: 5, perFeature: { a: 5 } })!;
  assert.equal(again.state, 'raised');
  d.observe({ windowEnd: 8000, score: 0.1, perFeature: { a: 0.1 } });
  assert.equal(d.observe({ windowEnd: 9000, score: 0.1, perFeature: { a: 0.1 } }, 'settled at a new level')!.reason, 'settled at a new level', "the caller's reason");
});

test('on-delay: a run of over windows shorter than it never raises; a longer one raises once it has held that long', () => {
  // A transient: 4 s of over windows (a load step passing through a 5 s window), every 20 s.
  const transient = [0.1, 4, 6, 5, 3, 2, 0.1, 0.1, 0.1, 0.1];
  const d = make({ onDelayMs: 5000 });
  assert.deepEqual(run(d, Array.from({ length: 20 }, () => transient).flat()), [], 'transients are let by');
  // The same detector without the on-delay raises on the first of them.
  assert.deepEqual(run(make(), transient).map((x) => x.e.state), ['raised', 'cleared']);

  // A condition: the run starts at 2000 (first over window), k-of-n holds from 4000; 2000 + 5000 → raises at 7000.
  const d2 = make({ onDelayMs: 5000 });
  const ev = run(d2, [0.1, 0.1, 9, 1.2, 2, 0.5, 1.5, 1.5, 1.5, 1.5]);
  assert.deepEqual(ev.map((x) => [x.i, x.e.state, x.e.since]), [[7, 'raised', 2000]]);
  // its peak is the worst window of the run, though it has left the k-of-n history by then
  const c = run(d2, [0.1, 0.1, 0.1], 10_000);
  assert.equal(c[0]!.e.state, 'cleared');
  assert.equal(c[0]!.e.peak!.score, 9);
});

test('on-delay: a break in the k-of-n condition, or reset(), starts it again', () => {
  const d = make({ onDelayMs: 4000 });
  // over 0–3 s, then three low windows (2 of the last 5 over: the run ends), over again from 7 s
  const ev = run(d, [2, 2, 2, 2, 0.1, 0.1, 0.1, 2, 2, 2, 2, 2, 2, 2]);
  assert.deepEqual(ev.map((x) => [x.i, x.e.since]), [[11, 7000]]);

  const d2 = make({ onDelayMs: 4000 });
  run(d2, [2, 2, 2, 2]);
  d2.reset();
  const ev2 = run(d2, [2, 2, 2, 2, 2, 2], 4000);
  assert.deepEqual(ev2.map((x) => [x.e.windowEnd, x.e.since]), [[8000, 4000]]);
});

test('on-delay: a snapshot carries the run under way', () => {
  const d = make({ onDelayMs: 5000 });
  run(d, [3, 3, 3, 3]); // run since 0, not yet 5 s
  const next = new Detector({ model: 'vibration', threshold: T, raiseK: 3, raiseN: 5, clearM: 3, clearRatio: 0.8, cooldownMs: 0, onDelayMs: 5000, newId: ids() }, JSON.parse(JSON.stringify(d.state())));
  assert.equal(next.observe({ windowEnd: 4000, score: 3, perFeature: {} }), null);
  const e = next.observe({ windowEnd: 5000, score: 3, perFeature: {} })!;
  assert.deepEqual([e.state, e.since], ['raised', 0]);
  // an older snapshot, without a run, takes it from the k-of-n history it carries
  const { run: _dropped, ...old } = d.state();
  const fresh = new Detector({ model: 'vibration', threshold: T, raiseK: 3, raiseN: 5, clearM: 3, clearRatio: 0.8, cooldownMs: 0, onDelayMs: 5000, newId: ids() }, old);
  const e2 = fresh.observe({ windowEnd: 5000, score: 3, perFeature: {} })!;
  assert.deepEqual([e2.state, e2.since], ['raised', 0]);
  assert.throws(() => new Detector({ model: 'vibration', threshold: T, raiseK: 3, raiseN: 5, clearM: 3, clearRatio: 0.8, cooldownMs: 0 }, { ...d.state(), run: { since: 'x' } } as never), DetectorStateError);
});

test('cooldown blocks a re-raise until it ends, then allows one (windows during it count)', () => {
  const d = make({ raiseK: 2, raiseN: 3, clearM: 1, cooldownMs: 10_000 });
  const ev1 = run(d, [5, 5, 0.1]); // raise at 1000, clear at 2000
  assert.deepEqual(ev1.map((x) => [x.i, x.e.state]), [[1, 'raised'], [2, 'cleared']]);
  // from 3000 on, over every window; cooldown ends at windowEnd ≥ 12000
  const ev2 = run(d, Array.from({ length: 15 }, () => 5), 3000);
  assert.equal(ev2.length, 1);
  assert.equal(ev2[0]!.e.state, 'raised');
  assert.equal(ev2[0]!.e.windowEnd, 12_000, 'raises at the first window at which the cooldown has ended');
  assert.equal(ev2[0]!.e.since, 3000, 'since = the first over window of the run, which began inside the cooldown');
  assert.equal(ev2[0]!.e.id, 'inc-2');

  // cooldown 0: may raise again right after a clear, but the closed episode's windows do not count
  const d0 = make({ raiseK: 2, raiseN: 5, clearM: 1, cooldownMs: 0 });
  const ev3 = run(d0, [5, 5, 5, 0.1, 5, 0.1, 5]);
  assert.deepEqual(ev3.map((x) => [x.i, x.e.state, x.e.since]), [[1, 'raised', 0], [3, 'cleared', 0], [6, 'raised', 4000]]);
});

test('cooldown: a below-threshold window at the end of the cooldown does not raise; the next over one does', () => {
  const d = make({ raiseK: 2, raiseN: 6, clearM: 1, cooldownMs: 5000 });
  run(d, [5, 5, 0.1]); // clear at 2000, cooldown until 7000
  const ev = run(d, [5, 5, 0.1, 0.1, 0.1, 5], 3000); // at 7000 the k-of-n holds but the window is low
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.e.windowEnd, 8000);
  assert.equal(ev[0]!.e.score, 5);
  assert.equal(ev[0]!.e.since, 3000);
});

test('the raised alert names this window\'s top features', () => {
  const d = make({ raiseK: 1, raiseN: 1 });
  const e = d.observe({ windowEnd: 5, score: 3, perFeature: { accel_x: 0.1, accel_y: 2, accel_z: 0.5, voltage: 0.4 } })!;
  assert.deepEqual(e.topFeatures.map((f) => f.feature), ['accel_y', 'accel_z', 'voltage']);
  assert.equal(e.topFeatures[0]!.share, 2 / 3);
  const s = e.topFeatures.reduce((a, f) => a + f.share, 0);
  assert.ok(s <= 1);
});

test('toAlertPayload: exactly the AlertPayload fields', () => {
  const d = make({ raiseK: 1, raiseN: 1, clearM: 1 });
  const e = d.observe({ windowEnd: 5, score: 3, perFeature: { a: 1 } })!;
  const p = toAlertPayload(e, 123);
  assert.deepEqual(p, { v: SCHEMA_VERSION, t: 123, id: 'inc-1', kind: 'machine', model: 'vibration', state: 'raised', score: 3, threshold: 1, topFeatures: [{ feature: 'a', error: 1, share: 1 }], since: 5 });
  const c = toAlertPayload(d.observe({ windowEnd: 10, score: 0.5, perFeature: { a: 0.5 } })!, 124);
  assert.deepEqual(c, {
    v: SCHEMA_VERSION,
    t: 124,
    id: 'inc-1',
    kind: 'machine',
    model: 'vibration',
    state: 'cleared',
    score: 0.5,
    threshold: 1,
    topFeatures: [{ feature: 'a', error: 0.5, share: 1 }],
    since: 5,
    reason: 'back to normal',
    peak: { score: 3, threshold: 1, topFeatures: [{ feature: 'a', error: 1, share: 1 }] },
  });
  assert.ok(isPayload('alerts', p) && isPayload('alerts', c), payloadProblem('alerts', c));
});

test('snapshot round trip (through JSON) continues an open episode in a new detector', () => {
  const d = make({ raiseK: 2, raiseN: 3, clearM: 2 });
  const ev = run(d, [0.1, 9, 2, 3, 0.1]);
  assert.equal(ev.length, 1);
  const snap = JSON.parse(JSON.stringify(d.state()));
  assert.equal(snap.open.id, 'inc-1');
  assert.equal(snap.open.since, 1000);
  assert.equal(snap.open.peak.score, 9);
  assert.equal(snap.open.lowRun, 1);
  // a new bundle with another threshold carries the episode over
  const d2 = new Detector({ model: 'vibration', threshold: 2, raiseK: 2, raiseN: 3, clearM: 2, clearRatio: 0.8, cooldownMs: 0, newId: ids('new') }, snap);
  assert.equal(d2.isOpen(), true);
  assert.equal(d2.getThreshold(), 2);
  const c = d2.observe({ windowEnd: 5000, score: 0.1, perFeature: { a: 0.1 } })!;
  assert.equal(c.state, 'cleared', 'the low run carried over: second low window clears');
  assert.equal(c.id, 'inc-1');
  assert.equal(c.since, 1000);
  assert.equal(c.peak!.score, 9);
  assert.equal(c.peak!.threshold, 1, 'the peak keeps the threshold it was judged against');
  // state() is a copy
  const s = d2.state();
  s.history.push({ windowEnd: 1, score: 1, threshold: 1 });
  assert.equal(d2.state().history.length, 0);
});

test('snapshot carries the k-of-n history and the cooldown', () => {
  const d = make({ raiseK: 2, raiseN: 3, clearM: 1, cooldownMs: 5000 });
  run(d, [5, 5, 0.1, 5]); // raise@1000, clear@2000, over@3000 in cooldown
  const d3 = new Detector({ model: 'vibration', threshold: T, raiseK: 2, raiseN: 3, clearM: 1, clearRatio: 0.8, cooldownMs: 5000, newId: ids() }, d.state());
  assert.equal(d3.observe({ windowEnd: 4000, score: 5, perFeature: {} }), null, 'still in cooldown');
  const e = d3.observe({ windowEnd: 7000, score: 5, perFeature: {} })!;
  assert.equal(e.state, 'raised');
  assert.equal(e.since, 3000);
});

test('snapshot for another model or malformed is refused with DetectorStateError', () => {
  const snap = make().state();
  assert.throws(() => new Detector({ model: 'voltage', threshold: 1, raiseK: 1, raiseN: 1, clearM: 1, clearRatio: 1, cooldownMs: 0 }, snap), {
    name: 'DetectorStateError',
    message: /model 'vibration'/,
  });
  const broken = { ...snap, history: [{ windowEnd: 'x' }] } as unknown as typeof snap;
  assert.throws(() => new Detector({ model: 'vibration', threshold: 1, raiseK: 1, raiseN: 1, clearM: 1, clearRatio: 1, cooldownMs: 0 }, broken), DetectorStateError);
});

test('reset keeps an open episode open and clears only the k-of-n history', () => {
  const d = make({ raiseK: 2, raiseN: 3, clearM: 2 });
  run(d, [5, 5]);
  assert.equal(d.isOpen(), true);
  d.reset();
  assert.equal(d.isOpen(), true);
  assert.equal(run(d, [5, 5, 5], 10_000).length, 0, 'no second raise for the same open episode');
  const c = run(d, [0.1, 0.1], 20_000);
  assert.deepEqual(c.map((x) => [x.e.state, x.e.id]), [['cleared', 'inc-1']]);

  const h = make({ raiseK: 2, raiseN: 3 });
  run(h, [5]);
  h.reset();
  assert.deepEqual(run(h, [5], 5000), [], 'the over window before the gap no longer counts');
  assert.equal(run(h, [5], 6000)[0]!.e.since, 5000);
});

test('setThreshold applies to later windows; an open episode stays open', () => {
  const d = make({ raiseK: 1, raiseN: 1, clearM: 1 });
  run(d, [1.5]);
  d.setThreshold(10);
  assert.equal(d.getThreshold(), 10);
  const c = d.observe({ windowEnd: 1000, score: 1.5, perFeature: {} })!;
  assert.equal(c.state, 'cleared', '1.5 < 0.8·10 now');
  assert.equal(c.threshold, 10);
  assert.equal(c.peak!.threshold, 1, 'the peak keeps the threshold it was judged against');
  assert.equal(d.observe({ windowEnd: 2000, score: 9, perFeature: {} }), null);
  assert.throws(() => d.setThreshold(0), { name: 'DetectorOptionsError', message: /threshold must be a finite number > 0, got 0/ });
  assert.throws(() => d.setThreshold(NaN), DetectorOptionsError);
});

test('non-finite score (or per-feature error, or windowEnd) throws DetectorInputError and changes nothing', () => {
  const d = make({ raiseK: 2, raiseN: 3 });
  run(d, [5]);
  const before = JSON.stringify(d.state());
  const bads: Score[] = [
    { windowEnd: 1000, score: NaN, perFeature: {} },
    { windowEnd: 1000, score: Infinity, perFeature: {} },
    { windowEnd: 1000, score: -Infinity, perFeature: {} },
    { windowEnd: NaN, score: 5, perFeature: {} },
    { windowEnd: 1000, score: 5, perFeature: { a: NaN } },
    { windowEnd: 1000, score: 5, perFeature: { a: -1 } },
  ];
  for (const bad of bads) {
    assert.throws(() => d.observe(bad), (err: unknown) => {
      assert.ok(err instanceof DetectorInputError);
      assert.equal(err.name, 'DetectorInputError');
      assert.equal(err.model, 'vibration');
      assert.match(err.message, /^detector 'vibration': .* the window is ignored$/);
      return true;
    });
    assert.equal(JSON.stringify(d.state()), before);
  }
  assert.throws(() => d.observe({ windowEnd: 1, score: NaN, perFeature: {} }), { field: 'score', message: /score NaN is not a finite number \(scorer failure\)/ });
  assert.equal(run(d, [5], 1000)[0]!.e.state, 'raised', 'the next good window continues as if the bad ones never came');
});

test('option validation: named errors', () => {
  const base: DetectorOptions = { model: 'vibration', threshold: 1, raiseK: 3, raiseN: 5, clearM: 3, clearRatio: 0.8, cooldownMs: 0 };
  const cases: [Partial<DetectorOptions>, string, RegExp][] = [
    [{ raiseK: 6 }, 'raiseK', /raiseK \(6\) must be ≤ raiseN \(5\)/],
    [{ raiseK: 0 }, 'raiseK', /raiseK must be an integer ≥ 1, got 0/],
    [{ raiseK: 1.5 }, 'raiseK', /raiseK must be an integer ≥ 1/],
    [{ raiseN: 0 }, 'raiseN', /raiseN must be an integer ≥ 1, got 0/],
    [{ clearM: 0 }, 'clearM', /clearM must be an integer ≥ 1, got 0/],
    [{ clearRatio: 0 }, 'clearRatio', /clearRatio must be in \(0, 1\], got 0/],
    [{ clearRatio: 1.01 }, 'clearRatio', /clearRatio must be in \(0, 1\], got 1.01/],
    [{ clearRatio: NaN }, 'clearRatio', /clearRatio/],
    [{ threshold: 0 }, 'threshold', /threshold must be a finite number > 0, got 0/],
    [{ threshold: -1 }, 'threshold', /threshold/],
    [{ threshold: Infinity }, 'threshold', /threshold/],
    [{ cooldownMs: -1 }, 'cooldownMs', /cooldownMs must be a finite number ≥ 0, got -1/],
    [{ onDelayMs: -1 }, 'onDelayMs', /onDelayMs must be a finite number ≥ 0, got -1/],
    [{ onDelayMs: NaN }, 'onDelayMs', /onDelayMs/],
    [{ model: '' }, 'model', /model must be a non-empty string/],
  ];
  for (const [patch, option, message] of cases) {
    assert.throws(() => new Detector({ ...base, ...patch }), (err: unknown) => {
      assert.ok(err instanceof DetectorOptionsError, String(err));
      assert.ok(err instanceof RangeError);
      assert.equal(err.name, 'DetectorOptionsError');
      assert.equal(err.option, option);
      assert.match(err.message, message);
      return true;
    });
  }
  assert.doesNotThrow(() => new Detector({ ...base, raiseK: 5, clearRatio: 1, clearM: 1 }));
});

test('default ids: model, time-sortable, unique', () => {
  const a = defaultId('vibration', 1_700_000_000_000);
  const b = defaultId('vibration', 1_700_000_000_001);
  assert.match(a, /^vibration-[0-9a-z]{9}-[0-9a-f]{8}$/);
  assert.ok(a < b);
  assert.ok(defaultId('m', 1_000) < defaultId('m', 1_700_000_000_000), 'zero-padded, so shorter times sort first');
  const d = new Detector({ model: 'rpm', threshold: 1, raiseK: 1, raiseN: 1, clearM: 1, clearRatio: 1, cooldownMs: 0 });
  const r = d.observe({ windowEnd: 0, score: 2, perFeature: {} })!;
  assert.match(r.id, /^rpm-/);
  assert.equal(d.observe({ windowEnd: 1, score: 0, perFeature: {} })!.id, r.id);
  assert.notEqual(d.observe({ windowEnd: 2, score: 2, perFeature: {} })!.id, r.id);
});

test('window time stepping back does not lengthen the cooldown', () => {
  const d = make({ raiseK: 1, raiseN: 1, clearM: 1, cooldownMs: 5000 });
  run(d, [5, 0.1], 100_000); // clear at 101000, cooldown until 106000
  assert.equal(d.observe({ windowEnd: 103_000, score: 0.1, perFeature: {} }), null); // 2 s of cooldown elapsed
  assert.equal(d.observe({ windowEnd: 3_000, score: 0.1, perFeature: {} }), null); // clock steps back 100 s
  assert.equal(d.observe({ windowEnd: 5_000, score: 5, perFeature: {} }), null, '4 s elapsed');
  assert.equal(d.observe({ windowEnd: 6_000, score: 5, perFeature: {} })?.state, 'raised', '5 s elapsed');
});

test('property: 1000 random score sequences → raised/cleared strictly alternate with matching ids', () => {
  const rng = new Rng(20240601);
  let raises = 0;
  for (let seq = 0; seq < 1000; seq++) {
    const raiseN = 1 + rng.int(6);
    const opts: DetectorOptions = {
      model: 'multi-feature',
      threshold: rng.range(0.5, 2),
      raiseN,
      raiseK: 1 + rng.int(raiseN),
      clearM: 1 + rng.int(5),
      clearRatio: rng.pick([1, 0.9, 0.7, 0.5]),
      cooldownMs: rng.pick([0, 0, 3000, 20_000]),
      onDelayMs: rng.pick([0, 0, 4000, 10_000]),
      newId: ids(`s${seq}`),
    };
    let d = new Detector(opts);
    const len = 20 + rng.int(300);
    const level = rng.range(0.3, 1.5); // sequences from mostly quiet to mostly anomalous
    let t = 0;
    let last: ModelAlert | null = null;
    let lastClear = -Infinity;
    const seen = new Set<string>();
    const overTimes: number[] = []; // over windows since the last raise/clear/reset, for the k-of-n check
    let runSince: number | null = null; // first over window of the run through which k-of-n has held
    for (let i = 0; i < len; i++) {
      t += PERIOD;
      const r = rng.next();
      if (r < 0.01) {
        d.reset();
        overTimes.length = 0;
        runSince = null;
        t += 30_000;
      } else if (r < 0.02) {
        d = new Detector(opts, JSON.parse(JSON.stringify(d.state())));
      }
      const score = Math.max(0, level * opts.threshold * (1 + rng.gauss() * 0.6));
      const th = d.getThreshold();
      const windowStart = t - (raiseN - 1) * PERIOD;
      if (!d.isOpen()) {
        if (score > th) overTimes.push(t);
        while (overTimes.length && overTimes[0]! < windowStart) overTimes.shift();
        runSince = overTimes.length >= opts.raiseK ? (runSince ?? overTimes[0]!) : null;
      }
      const e = d.observe({ windowEnd: t, score, perFeature: { a: score / 3, b: score / 3, c: score / 6, d: score / 6 } });
      if (!e) continue;
      if (e.state === 'raised') {
        raises++;
        assert.ok(last === null || last.state === 'cleared', `seq ${seq}: raised after raised`);
        assert.ok(!seen.has(e.id), `seq ${seq}: id reused`);
        seen.add(e.id);
        assert.ok(e.score > e.threshold);
        assert.ok(t - lastClear >= opts.cooldownMs, `seq ${seq}: raised inside the cooldown`);
        assert.ok(overTimes.length >= opts.raiseK, `seq ${seq}: raised with ${overTimes.length} < k over windows`);
        assert.equal(e.since, runSince);
        assert.ok(t - e.since >= opts.onDelayMs!, `seq ${seq}: raised before the on-delay`);
        assert.ok(e.since > lastClear && e.since <= t);
        overTimes.length = 0;
        runSince = null;
      } else {
        assert.ok(last !== null && last.state === 'raised', `seq ${seq}: cleared without raised`);
        assert.equal(e.id, last.id);
        assert.equal(e.since, last.since);
        assert.ok(e.peak!.score >= last.score, 'peak ≥ raising score (fixed threshold)');
        assert.ok(e.score < opts.clearRatio * e.threshold, 'the clearing window is low');
        lastClear = t;
        overTimes.length = 0;
        runSince = null;
      }
      assert.ok(e.topFeatures.length <= 3 && e.topFeatures.reduce((s, f) => s + f.share, 0) <= 1);
      last = e;
    }
  }
  assert.ok(raises > 500, `the property test exercised raises (${raises})`);
});

/**
 * The plant-day physics of the motor simulator (motor/simulator.ts, load.ts, fault-magnitudes.ts):
 * ambient day/night cycle, stops and warm-up, a night load band, sensor ageing and bearing wear that
 * grows by itself. Each is opt-in: without it the motor is the one the dataset was generated from.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROFILES } from '#agent/core/profiles.js';
import { MotorSimulator, type MotorOptions } from '#agent/motor/simulator.js';
import { LoadSchedule, inHours } from '#agent/motor/load.js';
import { FAULT_MAGNITUDES, bearingWearImpact, bearingWearIntensity, bearingWearReachesMs, type BearingWear } from '#agent/motor/fault-magnitudes.js';

const T0 = Date.UTC(2024, 0, 8, 6, 0, 0);
const MIN = 60_000;
const HOUR = 60 * MIN;

function sim(extra: Partial<MotorOptions> = {}): MotorSimulator {
  return new MotorSimulator({ profile: PROFILES.rpm_600, seed: 7, startMs: T0, ambientC: 25, load: 0.5, ...extra });
}

/** Amplitude and phase (rad) of the component of `ys` (sampled at `ts`) at period `periodMs`. */
function tone(ts: number[], ys: number[], periodMs: number): { amp: number; phase: number } {
  let c = 0;
  let s = 0;
  for (let i = 0; i < ts.length; i++) {
    const w = (2 * Math.PI * ts[i]!) / periodMs;
    c += ys[i]! * Math.cos(w);
    s += ys[i]! * Math.sin(w);
  }
  c = (2 * c) / ts.length;
  s = (2 * s) / ts.length;
  return { amp: Math.hypot(c, s), phase: Math.atan2(s, c) };
}

test('no plant-day option: readings are those of the default motor, bit for bit; a wear not yet begun changes nothing', () => {
  const a = sim({ load: undefined });
  const b = sim({ load: undefined, stops: [] });
  const c = sim({ load: undefined, bearingWear: { onsetMs: T0 + HOUR, obviousAfterMs: HOUR } });
  for (let t = T0; t < T0 + 5 * MIN; t += 50) {
    const r = a.sampleAt(t);
    assert.deepEqual(b.sampleAt(t), r);
    assert.deepEqual(c.sampleAt(t), r);
  }
});

test('ambient cycle: the ambient swings with its amplitude, warmest at its hour; the frame follows it through its time constant', () => {
  // The default cycle is a day: the ambient at 15:00 and 03:00 (the motor's first instant, no integration needed).
  const warm = new MotorSimulator({ profile: PROFILES.rpm_600, seed: 7, startMs: Date.UTC(2024, 0, 8, 15), ambientCycle: { amplitudeK: 4 } });
  const cold = new MotorSimulator({ profile: PROFILES.rpm_600, seed: 7, startMs: Date.UTC(2024, 0, 8, 3), ambientCycle: { amplitudeK: 4 } });
  const swing = warm.state().ambientC - cold.state().ambientC;
  assert.ok(Math.abs(swing - 8) < 1, `15:00 − 03:00 ambient ${swing.toFixed(2)} K, want 8 ± 1 (wander ±0.3 each)`);

  // A one-hour cycle, so the frame's response shows in a few simulated hours: a first-order lag of
  // τ = 12 min at ω = 2π/1 h passes 1/√(1+(ωτ)²) = 0.62 of the swing, ωτ = 0.90 rad (8.6 min) late.
  const P = HOUR;
  const m = sim({ ambientCycle: { amplitudeK: 4, periodMs: P, warmestHour: 0 }, thermalTauMin: 12 });
  m.advanceTo(T0 + 2 * P); // past the start-up transient
  const ts: number[] = [];
  const amb: number[] = [];
  const frame: number[] = [];
  for (let t = T0 + 2 * P; t < T0 + 4 * P; t += 10_000) {
    m.advanceTo(t);
    const s = m.state();
    ts.push(t);
    amb.push(s.ambientC);
    frame.push(s.frameC);
  }
  const a = tone(ts, amb, P);
  const f = tone(ts, frame, P);
  assert.ok(Math.abs(a.amp - 4) < 0.3, `ambient amplitude ${a.amp.toFixed(2)}`);
  const wt = (2 * Math.PI * P) / P / 5; // ωτ with τ = P/5 = 12 min
  const gain = 1 / Math.hypot(1, wt);
  assert.ok(Math.abs(f.amp / a.amp - gain) < 0.06, `frame/ambient amplitude ${(f.amp / a.amp).toFixed(3)}, first-order lag gives ${gain.toFixed(3)}`);
  const lag = (((f.phase - a.phase) % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI);
  assert.ok(Math.abs(lag - Math.atan(wt)) < 0.12, `frame lags ambient by ${lag.toFixed(3)} rad, first-order lag gives ${Math.atan(wt).toFixed(3)}`);
});

test('stop and start: the motor coasts down and cools 3× slower; started again it runs up at once and warms with its time constant', () => {
  const stop = { fromMs: T0 + MIN, toMs: T0 + 61 * MIN };
  const m = sim({ stops: [stop], thermalTauMin: 12 });
  const ref = sim({ thermalTauMin: 12 }); // the same motor never stopped: its frame sits at the equilibrium
  m.advanceTo(stop.fromMs - 1);
  assert.ok(m.state().on);
  m.advanceTo(stop.fromMs);
  assert.ok(!m.state().on);
  const hot = m.state().frameC;
  const ambient = m.state().ambientC;

  m.advanceTo(stop.fromMs + 30_000);
  assert.ok(!m.state().on && m.state().rpm < 1, `30 s after the stop: ${m.state().rpm.toFixed(2)} rpm`);
  // Standing still the accelerometer reads gravity and its noise, nothing of the shaft.
  let sq = 0;
  const n = 2000;
  for (let i = 0; i < n; i++) sq += m.sampleAt(stop.fromMs + 30_000 + i * 7).accel_x ** 2;
  assert.ok(Math.sqrt(sq / n) < 0.06, `accel_x RMS standing still ${Math.sqrt(sq / n).toFixed(3)} m/s²`);

  m.advanceTo(stop.toMs);
  const cooled = (hot - m.state().frameC) / (hot - ambient);
  const want = 1 - Math.exp(-60 / 36);
  assert.ok(Math.abs(cooled - want) < 0.04, `cooled ${(100 * cooled).toFixed(1)} % of the rise in 60 min, standstill τ 36 min gives ${(100 * want).toFixed(1)} %`);

  m.advanceTo(stop.toMs + 2000);
  assert.ok(m.state().on && m.state().rpm > 0.95 * 600, `2 s after the start: ${m.state().rpm.toFixed(0)} rpm`);

  const cold = m.state().frameC;
  ref.advanceTo(stop.toMs + 12 * MIN);
  m.advanceTo(stop.toMs + 12 * MIN);
  const left = (ref.state().frameC - m.state().frameC) / (ref.state().frameC - cold);
  assert.ok(Math.abs(left - Math.exp(-1)) < 0.05, `after one time constant ${(100 * left).toFixed(1)} % of the warm-up is left, want e⁻¹ = 36.8 %`);
});

test('night load band: changes in the night hours draw from the band, the day keeps the schedule it had', () => {
  const night = { min: 0.3, max: 0.6, fromHour: 22, toHour: 6 };
  const plain = new LoadSchedule(11, T0);
  const banded = new LoadSchedule(11, T0, { night });
  plain.at(T0 + 48 * HOUR);
  banded.at(T0 + 48 * HOUR);
  assert.equal(banded.segments.length, plain.segments.length);
  let nights = 0;
  banded.segments.forEach((s, i) => {
    const p = plain.segments[i]!;
    assert.equal(s.t0, p.t0);
    assert.equal(s.t1, p.t1);
    if (inHours(s.t0, 22, 6)) {
      nights++;
      assert.ok(s.to >= 0.3 && s.to <= 0.6, `night level ${s.to} at ${new Date(s.t0).toISOString()}`);
    } else assert.equal(s.to, p.to);
  });
  assert.ok(nights > 50, `${nights} night changes in two days`);
  assert.ok(inHours(Date.UTC(2024, 0, 8, 23, 30), 22, 6) && inHours(Date.UTC(2024, 0, 8, 5, 59), 22, 6) && !inHours(Date.UTC(2024, 0, 8, 6), 22, 6));
  assert.throws(() => new LoadSchedule(1, T0, { night: { min: 0.5, max: 0.2, fromHour: 22, toHour: 6 } }), /night band needs 0 ≤ min ≤ max/);
});

test('sensor ageing: the temperature offset creeps at its rate, the accelerometer noise grows at its rate', () => {
  const clean = sim({ quantizeTemperature: false });
  const aged = sim({ quantizeTemperature: false, ageing: { temperatureOffsetKPerDay: 2.4, accelNoisePerDay: 24 } });
  const t = T0 + HOUR; // 1/24 day: +0.1 K, noise × 2
  let d2 = 0;
  const n = 400;
  for (let i = 0; i < n; i++) {
    const a = aged.sampleAt(t + i * 50);
    const c = clean.sampleAt(t + i * 50);
    if (i === 0) assert.ok(Math.abs(a.temperature - c.temperature - 0.1) < 1e-9, `offset ${a.temperature - c.temperature}`);
    d2 += (a.accel_x - c.accel_x) ** 2; // the extra noise alone: the same draws, scaled by 1 more
  }
  const extra = Math.sqrt(d2 / n);
  assert.ok(Math.abs(extra - 0.045) < 0.008, `extra accel noise ${extra.toFixed(4)} m/s², want the noise floor once more (0.045)`);
});

test('bearing wear: its impact passes subtle, moderate and obvious at the times its schedule says, and the vibration grows with it', () => {
  const w: BearingWear = { onsetMs: T0 + MIN, obviousAfterMs: 20 * MIN };
  for (const i of ['subtle', 'moderate', 'obvious'] as const) {
    const at = bearingWearReachesMs(w, i);
    assert.ok(Math.abs(bearingWearImpact(w, at) - FAULT_MAGNITUDES[i].bearingImpact) < 1e-9, i);
    assert.equal(bearingWearIntensity(w, at - 1), i === 'subtle' ? 'none' : i === 'moderate' ? 'subtle' : 'moderate');
    assert.equal(bearingWearIntensity(w, at), i);
  }
  assert.equal(bearingWearReachesMs(w, 'obvious'), T0 + 21 * MIN);
  assert.ok(Math.abs(bearingWearReachesMs(w, 'moderate') - (w.onsetMs + 20 * MIN * Math.sqrt(2 / 6))) < 1e-6, 'quadratic growth');
  assert.equal(bearingWearImpact(w, w.onsetMs), 0);
  assert.throws(() => sim({ bearingWear: { onsetMs: T0, obviousAfterMs: 0 } }), /obviousAfterMs must be > 0/);

  // Peak acceleration over 2 s read at 2 kHz (the impacts ring at ~400 Hz), before the onset and at each level.
  const m = sim({ bearingWear: w });
  const peak = (from: number) => {
    let p = 0;
    for (let i = 0; i < 4000; i++) p = Math.max(p, Math.abs(m.sampleAt(from + i * 0.5).accel_y));
    return p;
  };
  const healthy = peak(T0);
  const subtle = peak(bearingWearReachesMs(w, 'subtle'));
  const moderate = peak(bearingWearReachesMs(w, 'moderate'));
  const obvious = peak(bearingWearReachesMs(w, 'obvious'));
  assert.ok(healthy < moderate && moderate < obvious, `peaks: healthy ${healthy.toFixed(2)}, subtle ${subtle.toFixed(2)}, moderate ${moderate.toFixed(2)}, obvious ${obvious.toFixed(2)} m/s²`);
  assert.ok(obvious > 3 * healthy, `obvious wear peaks at ${obvious.toFixed(2)} m/s², healthy ${healthy.toFixed(2)}`);
});

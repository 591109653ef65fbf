import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROFILES, type Channel } from '#agent/core/profiles.js';
import type { FaultKind, Intensity } from '#agent/core/faults.js';
import { MotorSimulator, type MotorOptions, type MotorReading } from '#agent/motor/simulator.js';
import { FAULT_MAGNITUDES, SENSOR_RAILS } from '#agent/motor/fault-magnitudes.js';
import { Rng, SmoothNoise, deriveSeed } from '#agent/core/rng.js';
import { meanStd, toneAmplitude } from './spectrum.js';

const T0 = Date.UTC(2024, 0, 8, 6, 0, 0);

function sim(extra: Partial<MotorOptions> = {}): MotorSimulator {
  return new MotorSimulator({ profile: PROFILES.rpm_600, seed: 7, startMs: T0, ambientC: 25, load: 0.5, ...extra });
}

interface Capture {
  ch: Record<Channel, number[]>;
  shaftHz: number; // mean true shaft frequency over the capture
  tEnd: number;
}

/** Sample every channel at fsHz for seconds, starting at tStart. */
function capture(m: MotorSimulator, tStart: number, fsHz: number, seconds: number): Capture {
  const ch: Record<Channel, number[]> = { accel_x: [], accel_y: [], accel_z: [], voltage: [], rpm: [], temperature: [] };
  const n = Math.round(fsHz * seconds);
  let hz = 0;
  let t = tStart;
  for (let i = 0; i < n; i++) {
    t = tStart + (i * 1000) / fsHz;
    const r = m.sampleAt(t);
    for (const k of Object.keys(ch) as Channel[]) ch[k].push(r[k]);
    hz += m.state().shaftHz;
  }
  return { ch, shaftHz: hz / n, tEnd: t };
}

test('rng: deterministic, uniform-ish and gaussian-ish', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xa = Array.from({ length: 5 }, () => a.next());
  assert.deepEqual(xa, Array.from({ length: 5 }, () => b.next()));
  assert.notDeepEqual(xa, Array.from({ length: 5 }, () => c.next()));
  const g = new Rng(1);
  const xs = Array.from({ length: 20000 }, () => g.gauss());
  const { mean, std } = meanStd(xs);
  assert.ok(Math.abs(mean) < 0.03, `gauss mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 0.03, `gauss std ${std}`);
  assert.notEqual(deriveSeed(1, 'rpm_600'), deriveSeed(1, 'rpm_1200'));
  assert.equal(deriveSeed(1, 'x', 3), deriveSeed(1, 'x', 3));
  // SmoothNoise is a function of time only: the same t gives the same value whatever was asked before.
  const n1 = new SmoothNoise(5, 's', 100);
  const n2 = new SmoothNoise(5, 's', 100);
  n1.at(T0 + 12345);
  assert.equal(n1.at(T0 + 777), n2.at(T0 + 777));
});

test('determinism: same seed → identical samples, different seed → different', () => {
  const run = (seed: number): MotorReading[] => {
    const m = new MotorSimulator({ profile: PROFILES.rpm_1200, seed, startMs: T0 });
    const out: MotorReading[] = [];
    for (let i = 0; i < 3000; i++) {
      if (i === 1000) m.setFault('bearing', 'moderate');
      if (i === 2000) m.setFault('dropout', 'subtle');
      out.push(m.sampleAt(T0 + i * 3));
    }
    return out;
  };
  assert.deepEqual(run(3), run(3));
  assert.notDeepEqual(run(3), run(4));
});

test('time must not go backwards', () => {
  const m = sim();
  m.sampleAt(T0 + 100);
  m.sampleAt(T0 + 100); // same instant is fine
  assert.throws(() => m.sampleAt(T0 + 99), RangeError);
});

test('vibration: 1x line at shaft frequency, 2x smaller, nothing between; gravity on z', () => {
  const m = sim();
  const c = capture(m, T0, 2000, 4);
  const f = c.shaftHz;
  assert.ok(f > 9.5 && f < 10, `shaft ${f} Hz`);
  const a1 = toneAmplitude(c.ch.accel_x, 2000, f);
  const a2 = toneAmplitude(c.ch.accel_x, 2000, 2 * f);
  const between = toneAmplitude(c.ch.accel_x, 2000, 1.5 * f);
  const below = toneAmplitude(c.ch.accel_x, 2000, 0.6 * f);
  assert.ok(a1 > 0.2 && a1 < 0.4, `1x amplitude ${a1}`);
  assert.ok(a2 > 0.05 && a2 < a1 / 2, `2x amplitude ${a2}`);
  assert.ok(between < a1 / 8 && below < a1 / 8, `off-line ${between}, ${below} vs 1x ${a1}`);
  const z = meanStd(c.ch.accel_z);
  assert.ok(Math.abs(z.mean - 9.81) < 0.01, `gravity ${z.mean}`);
  assert.ok(Math.abs(meanStd(c.ch.accel_x).mean) < 0.02);
});

test('vibration is a continuous-time signal: 1x found at the same place from a fast and a slow sampler', () => {
  // Two identical machines, one read at 3200 Hz and one at 400 Hz: the 1x amplitude agrees.
  const fast = capture(sim(), T0, 3200, 2);
  const slow = capture(sim(), T0, 400, 2);
  const af = toneAmplitude(fast.ch.accel_y, 3200, fast.shaftHz);
  const as = toneAmplitude(slow.ch.accel_y, 400, slow.shaftHz);
  assert.ok(Math.abs(af - as) / af < 0.1, `fast ${af} vs slow ${as}`);
});

test('imbalance raises 1x (radial), misalignment raises 2x and axial', () => {
  const base = capture(sim(), T0, 2000, 4);
  const mi = sim();
  mi.setFault('imbalance', 'obvious');
  const imb = capture(mi, T0 + 1, 2000, 4); // onset ramp (0.5 s) is inside the window; still ≥ 3x
  const mm = sim();
  mm.setFault('misalignment', 'obvious');
  const mis = capture(mm, T0 + 1, 2000, 4);
  const f = base.shaftHz;
  const r1 = toneAmplitude(imb.ch.accel_x, 2000, f) / toneAmplitude(base.ch.accel_x, 2000, f);
  const r2 = toneAmplitude(mis.ch.accel_x, 2000, 2 * f) / toneAmplitude(base.ch.accel_x, 2000, 2 * f);
  const rz = toneAmplitude(mis.ch.accel_z, 2000, 2 * f) / toneAmplitude(base.ch.accel_z, 2000, 2 * f);
  const r1mis = toneAmplitude(mis.ch.accel_x, 2000, f) / toneAmplitude(base.ch.accel_x, 2000, f);
  assert.ok(r1 > 2.8 && r1 < 4, `imbalance 1x ×${r1}`);
  assert.ok(r2 > 3, `misalignment 2x ×${r2}`);
  assert.ok(rz > 5, `misalignment axial 2x ×${rz}`);
  assert.ok(Math.abs(r1mis - 1) < 0.15, `misalignment leaves radial 1x alone: ×${r1mis}`);
  // Intensities are ordered.
  const ratio = (i: Intensity): number => {
    const m = sim();
    m.setFault('imbalance', i);
    m.advanceTo(T0 + 1000);
    return toneAmplitude(capture(m, T0 + 1000, 2000, 4).ch.accel_x, 2000, f) / toneAmplitude(base.ch.accel_x, 2000, f);
  };
  const [s, mo, o] = [ratio('subtle'), ratio('moderate'), ratio('obvious')];
  assert.ok(s > 1.15 && s < mo && mo < o, `imbalance ratios ${s} ${mo} ${o}`);
});

test('bearing defect: impacts at BPFO ringing a resonance (envelope spectrum)', () => {
  const fs = 3200;
  const m = sim();
  m.setFault('bearing', 'obvious');
  const c = capture(m, T0, fs, 3);
  const h = capture(sim(), T0, fs, 3);
  const diff = (x: number[]): number[] => x.slice(1).map((v, i) => v - (x[i] as number));
  const dx = diff(c.ch.accel_x);
  const env = dx.map((v) => v * v);
  const bpfo = 3.05 * c.shaftHz;
  const atBpfo = toneAmplitude(env, fs, bpfo);
  const off = Math.max(toneAmplitude(env, fs, 0.77 * bpfo), toneAmplitude(env, fs, 1.31 * bpfo));
  assert.ok(atBpfo > 3 * off, `envelope at BPFO ${atBpfo} vs off ${off}`);
  const hf = meanStd(dx).std / meanStd(diff(h.ch.accel_x)).std;
  assert.ok(hf > 3, `high-frequency energy ×${hf}`);
  // A 50 ms sampler still catches parts of the bursts: its spread grows.
  const slowFault = sim();
  slowFault.setFault('bearing', 'obvious');
  const s1 = meanStd(capture(slowFault, T0, 20, 30).ch.accel_x).std;
  const s0 = meanStd(capture(sim(), T0, 20, 30).ch.accel_x).std;
  assert.ok(s1 > 2 * s0, `50 ms sampling std ${s1} vs ${s0}`);
});

test('looseness: half-harmonics appear and the vertical response is truncated', () => {
  const m = sim();
  m.setFault('looseness', 'obvious');
  m.advanceTo(T0 + 1000);
  const c = capture(m, T0 + 1000, 2000, 4);
  const h = capture(sim(), T0 + 1000, 2000, 4);
  const f = h.shaftHz;
  const half = toneAmplitude(c.ch.accel_y, 2000, 0.5 * f) / Math.max(1e-3, toneAmplitude(h.ch.accel_y, 2000, 0.5 * f));
  assert.ok(half > 5, `0.5x grew ×${half}`);
  const y = meanStd(c.ch.accel_y);
  assert.ok(y.mean < -0.03, `truncated positive peaks pull the mean down: ${y.mean}`);
});

test('speed: slip grows with load, rpm below nominal', () => {
  const light = capture(sim({ load: 0.3 }), T0, 20, 20);
  const full = capture(sim({ load: 1.0 }), T0, 20, 20);
  const r03 = meanStd(light.ch.rpm).mean;
  const r10 = meanStd(full.ch.rpm).mean;
  assert.ok(r10 < r03 && r03 < 600, `rpm ${r03} at 30 %, ${r10} at 100 %`);
  const s03 = 1 - r03 / 600;
  const s10 = 1 - r10 / 600;
  assert.ok(s03 > 0.01 && s03 < 0.025, `slip at 30 % ${s03}`);
  assert.ok(s10 > 0.03 && s10 < 0.05, `slip at 100 % ${s10}`);
  // Not constant: the speed wanders by a few tenths of a percent.
  const sd = meanStd(light.ch.rpm).std / r03;
  assert.ok(sd > 0.001 && sd < 0.006, `speed wander ${sd}`);
});

test('temperature: starts settled, rises towards the new equilibrium after a load step', () => {
  const m = sim({ load: 0.3 });
  const start = m.state().frameC;
  assert.ok(start > 25 + 5 && start < 25 + 20, `settled at 30 % load: ${start}`);
  m.setLoad(1.0);
  const temps: number[] = [];
  for (let s = 1; s <= 90 * 60; s++) {
    const r = m.sampleAt(T0 + s * 1000);
    if (s % 600 === 0) temps.push(r.temperature);
  }
  // 10-minute marks: rising, slowing down, settled by the end (τ = 12 min).
  for (let i = 1; i < temps.length; i++) assert.ok(temps[i]! >= temps[i - 1]! - 0.3, `temps ${temps}`);
  assert.ok(temps[0]! - start > 8, `first 10 min rose ${temps[0]! - start}`);
  assert.ok(temps[8]! - temps[7]! < 0.6, `settled: ${temps}`);
  const rise = temps[8]! - 25;
  assert.ok(rise > 35 && rise < 55, `full-load frame rise ${rise} K`);
  // Quantised like an MCP9808.
  assert.equal(temps[8]! / 0.0625, Math.round(temps[8]! / 0.0625));
});

test('overheating: temperature climbs within a fault span, relaxes after it', () => {
  const m = sim({ load: 0.6 });
  const ref = sim({ load: 0.6 });
  m.setFault('overheating', 'obvious');
  const during = capture(m, T0, 1, 30);
  const base = capture(ref, T0, 1, 30);
  const d = during.ch.temperature.at(-1)! - base.ch.temperature.at(-1)!;
  assert.ok(d > 4, `obvious overheating +${d} K in 30 s`);
  m.clearFault('overheating');
  const after = capture(m, T0 + 31_000, 1, 60).ch.temperature.at(-1)!;
  const afterRef = capture(ref, T0 + 31_000, 1, 60).ch.temperature.at(-1)!;
  assert.ok(after - afterRef < 0.5, `relaxed: ${after} vs ${afterRef}`);
  const sub = sim({ load: 0.6 });
  sub.setFault('overheating', 'subtle');
  const ds = capture(sub, T0, 1, 30).ch.temperature.at(-1)! - base.ch.temperature.at(-1)!;
  assert.ok(ds > 0.1 && ds < d / 4, `subtle +${ds} K`);
});

test('sag and swell move the voltage by the intensity amount, and switch off again', () => {
  for (const [kind, sign, key] of [
    ['sag', -1, 'sagDepth'],
    ['swell', 1, 'swellRise'],
  ] as const) {
    for (const i of ['subtle', 'moderate', 'obvious'] as const) {
      const m = sim();
      const before = meanStd(capture(m, T0, 50, 5).ch.voltage).mean;
      m.setFault(kind, i);
      const during = meanStd(capture(m, T0 + 5100, 50, 5).ch.voltage).mean;
      const expected = sign * FAULT_MAGNITUDES[i][key];
      const got = during / before - 1;
      assert.ok(Math.abs(got - expected) < 0.005, `${kind} ${i}: ${got} vs ${expected}`);
      m.clearFault(kind);
      const after = meanStd(capture(m, T0 + 10_200, 50, 5).ch.voltage).mean;
      assert.ok(Math.abs(after / before - 1) < 0.005, `${kind} cleared: ${after} vs ${before}`);
    }
  }
  // A deep sag slows an induction motor (slip ∝ 1/V²).
  const m = sim({ load: 0.8 });
  const rpm0 = meanStd(capture(m, T0, 50, 5).ch.rpm).mean;
  m.setFault('sag', 'obvious');
  const rpm1 = meanStd(capture(m, T0 + 6000, 50, 5).ch.rpm).mean;
  assert.ok(rpm0 - rpm1 > 5, `rpm ${rpm0} → ${rpm1}`);
});

test('hunting: speed oscillates at the chosen frequency with the intensity amplitude', () => {
  const m = sim();
  m.setFault('hunting', 'obvious', { freqHz: 1.25 });
  m.advanceTo(T0 + 2000);
  const c = capture(m, T0 + 2000, 50, 16);
  const amp = toneAmplitude(c.ch.rpm, 50, 1.25) / meanStd(c.ch.rpm).mean;
  assert.ok(Math.abs(amp - 0.08) < 0.015, `hunting amplitude ${amp}`);
  const h = capture(sim(), T0 + 2000, 50, 16);
  assert.ok(toneAmplitude(h.ch.rpm, 50, 1.25) / 600 < 0.002);
  const fault = m.activeFaults().find((f) => f.kind === 'hunting');
  assert.equal(fault?.freqHz, 1.25);
});

test('stuck: subtle freezes at the last value, obvious sits on the rail; clearing restores', () => {
  const m = sim();
  capture(m, T0, 50, 2);
  const last = m.sampleAt(T0 + 2000);
  m.setFault('stuck', 'subtle', { channels: ['accel_x', 'voltage'] });
  const c = capture(m, T0 + 2050, 50, 3);
  assert.ok(c.ch.accel_x.every((v) => v === last.accel_x));
  assert.ok(c.ch.voltage.every((v) => v === last.voltage));
  assert.ok(meanStd(c.ch.accel_y).std > 0.05, 'other channels keep moving');
  m.setFault('stuck', 'obvious', { channels: ['accel_z', 'temperature'] });
  const o = capture(m, T0 + 5100, 50, 1);
  assert.ok(o.ch.accel_z.every((v) => v === SENSOR_RAILS.accel_z.hi), `${o.ch.accel_z[0]}`);
  assert.ok(o.ch.temperature.every((v) => v === SENSOR_RAILS.temperature.hi));
  assert.equal(m.activeFaults().length, 1, 'setting a fault again replaces it');
  m.clearFault('stuck');
  const after = capture(m, T0 + 6200, 50, 2);
  assert.ok(meanStd(after.ch.accel_z).std > 0.02 && Math.abs(meanStd(after.ch.accel_z).mean - 9.81) < 0.05);
  assert.deepEqual(m.activeFaults(), []);
});

test('dropout: obvious reads 0 always, subtle now and then', () => {
  const m = sim();
  m.setFault('dropout', 'obvious', { channels: ['rpm'] });
  const o = capture(m, T0, 50, 2);
  assert.ok(o.ch.rpm.every((v) => v === 0));
  assert.ok(o.ch.voltage.every((v) => v > 200));
  m.setFault('dropout', 'subtle', { channels: ['accel_z'] });
  const s = capture(m, T0 + 2100, 200, 20);
  const zeros = s.ch.accel_z.filter((v) => v === 0).length / s.ch.accel_z.length;
  assert.ok(Math.abs(zeros - FAULT_MAGNITUDES.subtle.dropoutFraction) < 0.03, `zero fraction ${zeros}`);
});

test('faults switch on and off at run time and are listed', () => {
  const m = sim();
  const kinds: FaultKind[] = ['imbalance', 'sag', 'stuck'];
  m.sampleAt(T0);
  for (const k of kinds) m.setFault(k, 'moderate');
  assert.deepEqual(m.activeFaults().map((f) => f.kind).sort(), [...kinds].sort());
  const sag = m.activeFaults().find((f) => f.kind === 'sag');
  assert.deepEqual(sag?.channels, ['voltage', 'rpm']);
  assert.equal(sag?.sinceMs, T0);
  m.clearFault('sag');
  assert.deepEqual(m.activeFaults().map((f) => f.kind).sort(), ['imbalance', 'stuck']);
  m.clearAllFaults();
  assert.deepEqual(m.activeFaults(), []);
  assert.throws(() => m.setFault('stuck', 'subtle', { channels: [] }), RangeError);
});

test('automatic load schedule changes the operating point every few minutes', () => {
  const m = new MotorSimulator({ profile: PROFILES.rpm_1200, seed: 11, startMs: T0 });
  const loads: number[] = [];
  for (let s = 0; s < 30 * 60; s += 5) {
    m.advanceTo(T0 + s * 1000);
    loads.push(m.load);
  }
  const lo = Math.min(...loads);
  const hi = Math.max(...loads);
  assert.ok(lo >= 0.28 && hi <= 1.03, `load range ${lo}..${hi}`);
  assert.ok(hi - lo > 0.15, `load varies: ${lo}..${hi}`);
  // Manual override and back.
  m.setLoad(0.42);
  m.advanceTo(T0 + 31 * 60_000);
  assert.ok(Math.abs(m.load - 0.42) < 0.03);
});

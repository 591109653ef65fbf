/**
 * Another motor (motor/machine.ts): each field does what it says and nothing else, and no variant is
 * the project's motor bit for bit (the committed datas/raw staying what the generator writes is
 * generate.test.ts's check).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROFILES, type Channel } from '#agent/core/profiles.js';
import { parseMachine, type MachineVariant } from '#agent/motor/machine.js';
import { MotorSimulator } from '#agent/motor/simulator.js';
import { meanStd, toneAmplitude } from './spectrum.js';

const T0 = Date.UTC(2024, 0, 8, 6, 0, 0);

function capture(machine: MachineVariant | undefined, seconds: number, fsHz = 2000) {
  const m = new MotorSimulator({ profile: PROFILES.rpm_1200, seed: 11, startMs: T0, ambientC: 25, load: 0.5, ...(machine ? { machine } : {}) });
  const ch: Record<Channel, number[]> = { accel_x: [], accel_y: [], accel_z: [], voltage: [], rpm: [], temperature: [] };
  let hz = 0;
  const n = Math.round(fsHz * seconds);
  for (let i = 0; i < n; i++) {
    const r = m.sampleAt(T0 + (i * 1000) / fsHz);
    for (const k of Object.keys(ch) as Channel[]) ch[k].push(r[k]);
    hz += m.state().shaftHz;
  }
  return { ch, shaftHz: hz / n, frameC: m.state().frameC };
}

test('parseMachine: key=value pairs; a bad key, value or range is named', () => {
  assert.deepEqual(parseMachine(''), {});
  assert.deepEqual(parseMachine('ratedRpm=1140, imbalance=1.6,rise=1.25,offset.temperature=1.5,offset.accel_x=-0.2'), {
    ratedRpm: 1140,
    imbalance: 1.6,
    rise: 1.25,
    offsets: { temperature: 1.5, accel_x: -0.2 },
  });
  assert.equal(parseMachine('speed=1000'), "'speed=1000': unknown key 'speed' (ratedRpm, imbalance, rise, offset.<channel>)");
  assert.equal(parseMachine('rise=warm'), "'rise=warm': expected key=number");
  assert.equal(parseMachine('ratedRpm'), "'ratedRpm': expected key=number");
  assert.equal(parseMachine('ratedRpm=50'), 'ratedRpm must be within 100..3600, got 50');
  assert.equal(parseMachine('offset.rpm=3'), 'offset.rpm: offsets apply to accel_x, accel_y, accel_z, voltage, temperature');
  assert.throws(() => new MotorSimulator({ profile: PROFILES.rpm_600, seed: 1, startMs: T0, machine: { rise: 0 } }), /^RangeError: machine: rise must be within 0\.2\.\.3, got 0$/);
});

test('an empty variant is the project motor, reading for reading', () => {
  const a = capture(undefined, 2, 500);
  const b = capture({}, 2, 500);
  assert.deepEqual(b.ch, a.ch);
});

test('offsets move their channel by exactly the offset, and nothing else', () => {
  const a = capture(undefined, 2, 500);
  const b = capture({ offsets: { accel_z: -0.3, voltage: 2.5, temperature: 1.5 } }, 2, 500);
  const shift = (c: Channel) => b.ch[c].map((v, i) => v - a.ch[c][i]!);
  for (const [c, d] of [['accel_z', -0.3], ['voltage', 2.5], ['temperature', 1.5]] as const) {
    for (const x of shift(c)) assert.ok(Math.abs(x - d) < 1e-9, `${c} moved ${x}, not ${d}`);
  }
  for (const c of ['accel_x', 'accel_y', 'rpm'] as const) assert.deepEqual(b.ch[c], a.ch[c]);
});

test('rated speed sets the shaft speed (and the vibration grows with it); imbalance scales the 1x line; rise the frame rise', () => {
  const a = capture(undefined, 4);
  const b = capture({ ratedRpm: 1140, imbalance: 1.6, rise: 1.25 }, 4);
  // Same slip, so the speed scales with the rated speed.
  assert.ok(Math.abs(b.shaftHz / a.shaftHz - 1140 / 1200) < 0.002, `shaft ${a.shaftHz} → ${b.shaftHz} Hz`);
  assert.ok(Math.abs(meanStd(b.ch.rpm).mean / meanStd(a.ch.rpm).mean - 0.95) < 0.002);
  // 1x: ×1.6 for the unbalance, ×√(1140/1200) for the lower speed.
  const ratio = toneAmplitude(b.ch.accel_x, 2000, b.shaftHz) / toneAmplitude(a.ch.accel_x, 2000, a.shaftHz);
  assert.ok(Math.abs(ratio - 1.6 * Math.sqrt(1140 / 1200)) < 0.08, `1x ratio ${ratio}`);
  // Started settled: the rise over ambient (25 °C, ± its slow wander) is 1.25 times the project motor's.
  const riseRatio = (b.frameC - 25) / (a.frameC - 25);
  assert.ok(Math.abs(riseRatio - 1.25) < 0.03, `rise ratio ${riseRatio}`);
});

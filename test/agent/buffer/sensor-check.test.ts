/** The sensor fault check in front of the rings (buffer/sensor-check.ts), fed samples by hand. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { channelLimits, SensorCheck, STUCK_MIN_READINGS } from '#agent/buffer/sensor-check.js';
import type { SensorAlert } from '#agent/core/alert.js';
import { DEFAULTS } from '#agent/core/defaults.js';
import { DEFAULT_SENSORS } from '#agent/core/sample.js';
import { payloadProblem } from '#agent/core/payloads.js';
import { toAlertPayload } from '#agent/core/alert.js';
import { partRanges } from '#agent/hw/build.js';

const T0 = 1_700_000_000_000;
const PERIOD = 50;

function rig(clearMs = 1000) {
  const alerts: SensorAlert[] = [];
  const withheld = new Map<string, number>();
  const check = new SensorCheck({
    sensors: DEFAULT_SENSORS,
    limits: channelLimits(DEFAULT_SENSORS, DEFAULTS.config.sensorFaults.channels),
    clearMs,
    onAlert: (a) => alerts.push(a),
    onWithheld: (sensor, fault) => withheld.set(`${sensor}/${fault}`, (withheld.get(`${sensor}/${fault}`) ?? 0) + 1),
  });
  return { check, alerts, withheld };
}

/** A healthy accelerometer: noise of a few LSB around gravity on z. */
const accel = (i: number) => [((i * 7) % 5) * 0.038 - 0.08, ((i * 3) % 4) * 0.038, 9.81 + ((i * 11) % 3) * 0.038];

test('sensor check: a reading outside the range is withheld and counted; one alert per episode, cleared after clearMs of plausible readings', () => {
  const { check, alerts, withheld } = rig(1000);
  let t = T0;
  const voltage = (v: number) => check.check({ sensor: 'voltage', t: (t += PERIOD), values: [v] });
  for (let i = 0; i < 20; i++) assert.equal(voltage(230 + (i % 3) * 0.1), true);
  // The reported case: bare numbers between 0 and 1.
  const bad = [0.42, 0.07, 0.93, 0.5, 0.11];
  for (const v of bad) assert.equal(voltage(v), false, `${v} V withheld`);
  assert.equal(alerts.length, 1, 'one alert for the episode, not one per reading');
  const raised = alerts[0]!;
  assert.equal(raised.kind, 'sensor');
  assert.equal(raised.sensor, 'voltage');
  assert.equal(raised.fault, 'out of range');
  assert.equal(raised.state, 'raised');
  assert.equal(raised.since, T0 + 21 * PERIOD);
  assert.equal(raised.detail, 'voltage read 0.42, outside its plausible range 10..300 (or 0 at rest)');
  assert.equal(withheld.get('voltage/out of range'), bad.length);
  assert.deepEqual([...check.faults()], [['voltage', [{ fault: 'out of range', detail: raised.detail, since: raised.since }]]]);
  assert.equal(payloadProblem('alerts', toAlertPayload(raised, t)), undefined);

  // A bad reading within clearMs of plausible ones keeps the episode open.
  for (let i = 0; i < 10; i++) assert.equal(voltage(231), true);
  assert.equal(voltage(400.5), false);
  assert.equal(alerts.length, 1);
  // 1000 ms of plausible readings (20 × 50 ms) clear it, once.
  for (let i = 0; i < 19; i++) voltage(231 + (i % 2) * 0.01);
  assert.equal(alerts.length, 1, 'not yet: 950 ms');
  voltage(231);
  assert.equal(alerts.length, 2);
  const cleared = alerts[1]!;
  assert.equal(cleared.state, 'cleared');
  assert.equal(cleared.id, raised.id);
  assert.equal(cleared.reason, 'readings plausible again');
  assert.match(cleared.detail, /^voltage read 0\.42, .*; 6 readings withheld in 0\.75 s$/);
  assert.equal(check.faults().size, 0);
  assert.equal(payloadProblem('alerts', toAlertPayload(cleared, t)), undefined);
  assert.equal(voltage(0), true, 'a voltage resting at 0 (supply off) is plausible');
  assert.equal(alerts.length, 2);
});

test('sensor check: a channel that stops moving is stuck after its stuckMs and at least STUCK_MIN_READINGS readings; its readings are withheld until it moves', () => {
  const { check, alerts, withheld } = rig(500);
  let t = T0;
  const vib = (values: number[]) => check.check({ sensor: 'vibration', t: (t += PERIOD), values });
  for (let i = 0; i < 100; i++) assert.equal(vib(accel(i)), true, 'a living accelerometer');
  // accel_x freezes at its last value (the data register stops updating); y and z go on.
  const frozen = accel(99)[0]!;
  const stuckAt = t;
  let passed = 0;
  for (let i = 100; i < 200; i++) if (vib([frozen, accel(i)[1]!, accel(i)[2]!])) passed++;
  // The value froze at the last living reading; 39 more readings (1950 ms) pass, the 40th is 2 s on.
  assert.equal(passed, 39, 'readings pass until the value has been the same for stuckMs');
  assert.equal(alerts.length, 1);
  const a = alerts[0]!;
  assert.equal(a.fault, 'stuck');
  assert.equal(a.since, stuckAt, 'the episode began when the value froze');
  assert.equal(a.detail, `accel_x read ${Number(frozen.toPrecision(6))} unchanged for 2 s (41 readings; stuck after 2 s)`);
  assert.equal(withheld.get('vibration/stuck'), 61);
  // It moves again: the readings pass at once; the alert clears after clearMs.
  for (let i = 200; i < 209; i++) assert.equal(vib(accel(i)), true);
  assert.equal(alerts.length, 1);
  vib(accel(209));
  vib(accel(210));
  assert.equal(alerts.length, 2);
  assert.equal(alerts[1]!.state, 'cleared');
  assert.equal(alerts[1]!.reason, 'readings plausible again');
});

test('sensor check: a machine at rest is not a stuck sensor; too few equal readings are chance; stuckMs 0 never judges', () => {
  const { check, alerts } = rig();
  let t = T0;
  // A standing shaft reads 0 rpm for an hour.
  for (let i = 0; i < 72_000; i++) assert.equal(check.check({ sensor: 'rpm', t: (t += PERIOD), values: [0] }), true);
  // A slow feed: the same voltage every 10 s, nine times (90 s > stuckMs 60 s, but fewer than STUCK_MIN_READINGS).
  for (let i = 0; i < STUCK_MIN_READINGS - 1; i++) assert.equal(check.check({ sensor: 'voltage', t: (t += 10_000), values: [230] }), true);
  assert.equal(check.check({ sensor: 'voltage', t: (t += 10_000), values: [230] }), false, 'the tenth equal reading makes it stuck');
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0]!.sensor, 'voltage');

  const never = new SensorCheck({
    sensors: { temperature: { channels: ['temperature'] } },
    limits: new Map([['temperature', { min: -40, max: 125, stuckMs: 0 }]]),
    clearMs: 0,
    onAlert: () => assert.fail('stuckMs 0 never judges a sensor stuck'),
    onWithheld: () => {},
  });
  for (let i = 0; i < 1000; i++) never.check({ sensor: 'temperature', t: T0 + i * 60_000, values: [21.5] });
});

test('sensor check: samples it cannot judge pass, for the ring to refuse and count', () => {
  const { check, alerts } = rig();
  assert.equal(check.check({ sensor: 'nope', t: T0, values: [1e9] }), true);
  assert.equal(check.check({ sensor: 'vibration', t: T0, values: [1e9] }), true, 'wrong number of values');
  assert.equal(alerts.length, 0);
});

test('channel limits: the configured range narrowed to what the part reads; a channel without an entry or without a common reading is named', () => {
  const hw = DEFAULTS.config.hardware;
  const limits = channelLimits(DEFAULT_SENSORS, DEFAULTS.config.sensorFaults.channels, partRanges(hw, DEFAULT_SENSORS));
  assert.deepEqual(limits.get('temperature'), { min: 5, max: 125, stuckMs: 3_600_000, part: 'the MCP9808 (−40..125 °C)' });
  assert.deepEqual(limits.get('rpm'), { min: 30, max: 3600, rest: 0, stuckMs: 60_000, part: 'the tach pickup (1 pulse/rev, 0 after 2000 ms, debounce 0.5 ms)' });
  assert.deepEqual(limits.get('voltage'), { min: 10, max: 300, rest: 0, stuckMs: 60_000 }, 'the ADS1115 × 100 reads ±409.6 V: nothing to narrow');
  assert.equal(limits.get('accel_x')!.part, undefined, '±150 m/s² is inside what the part reads at ±16 g');
  const narrow = channelLimits(DEFAULT_SENSORS, DEFAULTS.config.sensorFaults.channels, partRanges({ ...hw, adxl345: { ...hw.adxl345, rangeG: 2 } }, DEFAULT_SENSORS));
  assert.equal(narrow.get('accel_z')!.max, 0.98 * 2 * 9.80665, 'short of full scale, where a reading clips');
  assert.equal(narrow.get('accel_z')!.part, 'the ADXL345 at ±2 g');

  assert.throws(() => channelLimits({ supply: { channels: ['current'] } }, DEFAULTS.config.sensorFaults.channels), /^Error: channel 'current' of sensor 'supply' has no entry: add "current": \{"min": …, "max": …, "stuckMs": …\}$/);
  assert.throws(
    () => channelLimits(DEFAULT_SENSORS, DEFAULTS.config.sensorFaults.channels, partRanges({ ...hw, ads1115: { ...hw.ads1115, ratio: 1 } }, DEFAULT_SENSORS)),
    /channel 'voltage': 10\.\.300 has no reading in common with what the ADS1115 at ±4\.096 V × ratio 1 can read \(-4\.096\.\.4\.096\)/,
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '#agent/config/load.js';
import { systemClock } from '#agent/core/clock.js';
import { silentLogger } from '#agent/core/log.js';
import { DEFAULT_SENSORS, type Sample } from '#agent/core/sample.js';
import { assertValidSamples } from './contract.js';
import { createSource } from '#agent/sources/registry.js';
import { ThreadedSource } from '#agent/sources/sampler-thread.js';

const defaults = loadConfig({});

test('sampler thread: with threads the registry runs sim on its own thread; samples, health and commands cross over; stop ends the thread', { timeout: 30_000 }, async () => {
  const s = await createSource('sim', { sensors: DEFAULT_SENSORS, clock: systemClock, threads: true, log: silentLogger, profile: 'rpm_600', hardware: { ...defaults.hardware, staleMs: 200, errorMs: 600 }, sim: defaults.source.sim });
  assert.ok(s instanceof ThreadedSource);
  assert.equal(s.kind, 'sim');
  const got: Sample[] = [];
  s.onSample((x) => got.push(x));
  await s.start();
  await new Promise((r) => setTimeout(r, 1500));
  assertValidSamples(got, DEFAULT_SENSORS);
  assert.deepEqual(new Set(got.map((x) => x.sensor)), new Set(Object.keys(DEFAULT_SENSORS)));
  assert.ok(got.filter((x) => x.sensor === 'vibration').length >= 20, 'about 20 readings a second');
  assert.deepEqual(s.health(), { vibration: 'ok', voltage: 'ok', rpm: 'ok', temperature: 'ok' });

  assert.equal(await s.command({ action: 'unplug', part: 'mcp9808' }), 'mcp9808 unplugged');
  await new Promise((r) => setTimeout(r, 900));
  assert.equal(s.health().temperature, 'error');
  assert.equal(s.health().voltage, 'ok');
  await s.command({ action: 'replug', part: 'mcp9808' });
  await new Promise((r) => setTimeout(r, 600)); // one 250 ms conversion, then readings
  assert.equal(s.health().temperature, 'ok');
  assert.equal(await s.command({ action: 'on', fault: 'sag', intensity: 'moderate' }), 'fault on: sag/moderate');

  await s.stop();
  const n = got.length;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(got.length, n, 'nothing after stop');
  assert.deepEqual(s.health(), { vibration: 'stale', voltage: 'stale', rpm: 'stale', temperature: 'stale' });
  await assert.rejects(s.command({ action: 'off' }), /the sim source is not running/);
  await s.stop();
});

test('sampler thread: a configuration the worker refuses fails start() with its message', { timeout: 30_000 }, async () => {
  const s = new ThreadedSource({ kind: 'sim', sensors: { odd: { channels: ['torque'] } }, clock: systemClock, log: silentLogger, profile: 'rpm_600', settings: defaults.hardware, sim: defaults.source.sim });
  await assert.rejects(s.start(), /sensor 'odd': no driver gives channel 'torque'/);
  assert.deepEqual(s.health(), { odd: 'stale' });
});

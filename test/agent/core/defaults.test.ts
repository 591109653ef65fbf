/**
 * core/defaults.ts is the one place defaults are written: the schema, the components, the
 * workstation commands and the standalone broker (test/broker/defaults.test.ts) take theirs from it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS } from '#agent/core/defaults.js';
import { createLogger } from '#agent/core/log.js';
import { PROFILES } from '#agent/core/profiles.js';
import { KEYS } from '#agent/config/schema.js';
import { loadConfig } from '#agent/config/load.js';
import { dataCommand } from '#agent/cli/data.js';
import { modelsCommand } from '#agent/cli/models.js';
import { probeCommand } from '#agent/cli/probe.js';
import { trainCommand } from '#agent/cli/train.js';
import { backendFlag, engineFlag, trainerFlag } from '#agent/cli/options.js';
import { MotorSimulator } from '#agent/motor/simulator.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

test('DEFAULTS is frozen all the way down: a caller passes another value, it never edits these', () => {
  const unfrozen: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (!isObject(v)) return;
    if (!Object.isFrozen(v)) unfrozen.push(path);
    for (const [k, c] of Object.entries(v)) walk(c, `${path}.${k}`);
  };
  walk(DEFAULTS, 'DEFAULTS');
  assert.deepEqual(unfrozen, []);
});

test('the schema takes every default from DEFAULTS.config, which holds exactly the schema keys, in order', () => {
  const keyPaths = new Set(KEYS.map((k) => k.path));
  const leaves: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (keyPaths.has(path) || !isObject(v)) return void leaves.push(path);
    for (const [k, c] of Object.entries(v)) walk(c, path ? `${path}.${k}` : k);
  };
  walk(DEFAULTS.config, '');
  assert.deepEqual(leaves, KEYS.map((k) => k.path));
  for (const k of KEYS) {
    const value = k.path.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown>)[p], DEFAULTS.config);
    assert.equal(k.default, value, `${k.path}: the schema's default is DEFAULTS.config's (the same value)`);
  }
});

test('with no file, env or flag the effective configuration is DEFAULTS.config', () => {
  assert.deepEqual(loadConfig({}), DEFAULTS.config);
});

test('components and flag parsers fall back on the same values', () => {
  assert.equal(createLogger({ fd: 2 }).level, DEFAULTS.config.log.level);
  assert.equal(new MotorSimulator({ profile: PROFILES.rpm_600, seed: 1, startMs: 0 }).ambientC, DEFAULTS.config.source.sim.ambientC);
  assert.equal(engineFlag(undefined), DEFAULTS.config.scorer.engine);
  assert.equal(backendFlag(undefined), DEFAULTS.config.scorer.backend);
  assert.equal(trainerFlag(undefined), DEFAULTS.train.trainer);
});

test("the workstation commands' --help shows the defaults they use", () => {
  const t = DEFAULTS.train;
  for (const s of [`--epochs N       most epochs (default ${t.epochs})`, `(default ${t.patience})`, `(default ${t.batchSize})`, `(default ${t.seed})`, `(default ${DEFAULTS.cli.dirs.data})`]) {
    assert.ok(trainCommand.usage.includes(s), `train --help: ${s}`);
  }
  const d = DEFAULTS.dataset;
  for (const s of [`--seed N             integer seed (default ${d.seed})`, `(default ${d.trainFiles},`, `(default ${d.testFiles})`, `rpm_600 ${d.trainMinutes.rpm_600}`]) {
    assert.ok(dataCommand.usage.includes(s), `data --help: ${s}`);
  }
  const m = DEFAULTS.cli.models;
  for (const s of [`(default ${m.liveTimeoutS})`, `default ${m.chunkBytes})`, m.remoteConfig, m.reloadCommand]) assert.ok(modelsCommand.usage.includes(s), `models --help: ${s}`);
  assert.equal(m.liveTimeoutS * 1000, DEFAULTS.component.modelUpdate.liveTimeoutMs, 'models install waits as long as the daemon does for a bundle received over MQTT');
  assert.ok(probeCommand.usage.includes(`--bus N   I2C bus number (default ${DEFAULTS.config.hardware.i2cBus},`));
});

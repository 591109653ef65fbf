import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validationSpread } from '#agent/train/learn-job.js';

const baseline = (minutes: number) => ({ id: 'x', learnedAt: 0, device: 'd', t0: 0, t1: minutes * 60_000, rows: 0 });

test('a learn run validates in up to three blocks through its baseline, fewer when a block would hold under six windows', () => {
  // rpm_1200 windows are 5 s: 30 min → 180 s of validation, room for 6 blocks of six windows: three.
  assert.equal(validationSpread({ profile: 'rpm_1200', baseline: baseline(30) }), 3);
  assert.equal(validationSpread({ profile: 'rpm_1200', baseline: baseline(10) }), 2);
  // Two minutes: 12 s of validation, under six windows: the tail, as a workstation's training.
  assert.equal(validationSpread({ profile: 'rpm_600', baseline: baseline(2) }), 1);
});

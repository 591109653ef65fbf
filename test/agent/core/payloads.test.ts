import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toAlertPayload } from '#agent/core/alert.js';
import { isPayload, payloadProblem, payloadSchemas, shapeOf } from '#agent/core/payloads.js';
import { TOPICS } from '#agent/core/topics.js';

test('every topic has a payload schema, and every schema a topic', () => {
  assert.deepEqual(Object.keys(payloadSchemas()).sort(), Object.keys(TOPICS).sort());
});

test('what the agent sends passes its schema exactly; a key more or less does not', () => {
  const alert = toAlertPayload({ kind: 'machine', id: 'a1', model: 'vibration', state: 'raised', score: 3.2, threshold: 1.5, since: 1000, windowEnd: 1500, topFeatures: [{ feature: 'accel_x', error: 0.2, share: 0.7 }] }, 2000);
  assert.ok(isPayload('alerts', alert), payloadProblem('alerts', alert));
  assert.match(payloadProblem('alerts', { ...alert, extra: 1 })!, /has a key it may not have: extra/);
  const { since: _, ...noSince } = alert;
  assert.equal(payloadProblem('alerts', noSince), 'since must be a number, got nothing');
  assert.equal(payloadProblem('status', { v: 1, t: 1, state: 'online', version: '1', models: [], sensors: { rpm: 'gone' } }), 'sensors.rpm must be one of ok, stale, error, fault, got "gone"');
});

test('inbound payloads: the refusal names the key, the rule and what came', () => {
  assert.equal(payloadProblem('ingest', 4.2), undefined);
  assert.equal(payloadProblem('ingest', { t: 5, values: [1, 2] }), undefined);
  assert.equal(payloadProblem('ingest', { values: [1, 'x'] }), 'values[1] must be a number, got "x"');
  assert.equal(payloadProblem('ingest', { values: [Infinity] }), 'values[0] must be a number, got Infinity');
  assert.equal(payloadProblem('modelUpdate', { op: 'begin', id: 'a', files: [{ name: 'model.json', size: -1, sha256: 'f'.repeat(64) }] }), 'files[0].size must be an integer within 0..67108864, got -1');
  assert.equal(payloadProblem('modelUpdate', { op: 'begin', id: 'a', files: [] }), 'files must be a non-empty list of JSON objects, got []');
  assert.equal(payloadProblem('modelUpdate', { op: 'status', id: '../x' }), 'id must be 1–64 of [A-Za-z0-9_-], got "../x"');
  assert.equal(payloadProblem('fault', { action: 'on', fault: 'bearing', intensity: 'obvious', channels: ['torque'] }), 'channels[0] must be one of accel_x, accel_y, accel_z, voltage, rpm, temperature, got "torque"');
  assert.equal(payloadProblem('fault', { action: 'bus-errors', rate: 0.5, code: 'EPIPE' }), 'code must be one of EIO, ENXIO, EREMOTEIO, ETIMEDOUT, got "EPIPE"');
  assert.equal(payloadProblem('fault', 'on'), 'the payload must be a JSON object with an action');
});

test("a payload's shape for the README comes from its schema", () => {
  assert.equal(shapeOf(payloadSchemas().ingest), 'number · {t?, values: [number…]}');
  assert.equal(
    shapeOf(payloadSchemas().alerts),
    '{id, kind: machine or drift, model, state: raised or cleared, score, threshold, topFeatures: [{feature, error, share}…], since, ' +
      'reason?: back to normal or settled at a new level or back within limit, peak?: {score, threshold, topFeatures: [{feature, error, share}…]}} · ' +
      '{id, kind: sensor, sensor, state: raised or cleared, fault: out of range or stuck, detail, since, reason?: readings plausible again}',
  );
});

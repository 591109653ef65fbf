/**
 * The contract every SampleSource passes (CONVENTIONS.md, habit 4 — after MQTT.js
 * test/node/abstract_store). An implementation's test file calls
 *
 *     sourceContract('replay', async () => ({ source, sensors, produce, settle, close }));
 *
 * and gets a suite of node:test cases run against fresh harnesses. Test-only: no daemon code
 * imports this module (the file name keeps it out of `node --test` discovery on its own).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Sample, SensorSpec } from '#agent/core/sample.js';
import type { SampleSource } from '#agent/sources/source.js';

export interface ContractHarness {
  /** A constructed, not yet started source. */
  source: SampleSource;
  /** The sensors it was configured with. */
  sensors: SensorSpec;
  /**
   * Drive the source's input so a running source would emit a few samples for every sensor
   * (advance a ManualClock, publish messages …). Called several times per test; each call must
   * produce new, later readings.
   */
  produce(): Promise<void>;
  /** Resolves once everything produce() set in motion has reached the source. */
  settle(): Promise<void>;
  /** Releases the harness (the contract stops the source itself). */
  close(): Promise<void>;
}

const HEALTH = new Set(['ok', 'stale', 'error']);

/** Checks one batch of samples against the sensors: names, arity, finite values, t increasing per sensor. */
export function assertValidSamples(samples: readonly Sample[], sensors: SensorSpec, lastT = new Map<string, number>()): void {
  for (const s of samples) {
    const spec = Object.hasOwn(sensors, s.sensor) ? sensors[s.sensor] : undefined;
    assert.ok(spec, `sample for unconfigured sensor '${s.sensor}'`);
    assert.ok(Array.isArray(s.values), `${s.sensor}: values is not an array`);
    assert.equal(s.values.length, spec.channels.length, `${s.sensor}: ${s.values.length} values for ${spec.channels.length} channels`);
    for (const v of s.values) assert.ok(typeof v === 'number' && Number.isFinite(v), `${s.sensor}: value ${String(v)} is not a finite number`);
    assert.ok(typeof s.t === 'number' && Number.isFinite(s.t), `${s.sensor}: t ${String(s.t)} is not a finite number`);
    const prev = lastT.get(s.sensor);
    if (prev !== undefined) assert.ok(s.t > prev, `${s.sensor}: t ${s.t} does not increase (previous ${prev})`);
    lastT.set(s.sensor, s.t);
  }
}

function assertHealth(source: SampleSource, sensors: SensorSpec): void {
  const h = source.health();
  assert.deepEqual(Object.keys(h).sort(), Object.keys(sensors).sort(), 'health() lists exactly the configured sensors');
  for (const [name, v] of Object.entries(h)) assert.ok(HEALTH.has(v), `health of '${name}' is '${v}'`);
}

/** Registers the contract suite for one implementation. */
export function sourceContract(label: string, make: () => Promise<ContractHarness>): void {
  /** Runs `body` with a fresh harness, always stopping the source and closing the harness. */
  const withHarness = async (body: (h: ContractHarness, samples: Sample[]) => Promise<void>) => {
    const h = await make();
    const samples: Sample[] = [];
    h.source.onSample((s) => samples.push(s));
    try {
      await body(h, samples);
    } finally {
      await h.source.stop();
      await h.close();
    }
  };

  describe(`SampleSource contract: ${label}`, () => {
    test('has a kind and a name, and emits nothing before start', () =>
      withHarness(async (h, samples) => {
        assert.equal(typeof h.source.kind, 'string');
        assert.ok(h.source.kind.length > 0);
        assert.equal(typeof h.source.name, 'string');
        await h.produce();
        await h.settle();
        assert.equal(samples.length, 0, 'a source that was not started emitted samples');
        assertHealth(h.source, h.sensors);
      }));

    test('start emits samples for every sensor with valid names, arity and increasing t', () =>
      withHarness(async (h, samples) => {
        await h.source.start();
        const lastT = new Map<string, number>();
        for (let round = 0; round < 3; round++) {
          const before = samples.length;
          await h.produce();
          await h.settle();
          assert.ok(samples.length > before, `round ${round}: no samples after produce()`);
          assertValidSamples(samples.slice(before), h.sensors, lastT);
        }
        assert.deepEqual(new Set(samples.map((s) => s.sensor)), new Set(Object.keys(h.sensors)), 'every configured sensor emitted');
        assertHealth(h.source, h.sensors);
      }));

    test('stop stops emission, and stop is idempotent', () =>
      withHarness(async (h, samples) => {
        await h.source.start();
        await h.produce();
        await h.settle();
        assert.ok(samples.length > 0);
        await h.source.stop();
        const n = samples.length;
        await h.produce();
        await h.settle();
        assert.equal(samples.length, n, 'samples emitted after stop()');
        await h.source.stop();
        assertHealth(h.source, h.sensors);
      }));

    test('stop before start is harmless', () =>
      withHarness(async (h) => {
        await h.source.stop();
        await h.source.stop();
        assertHealth(h.source, h.sensors);
      }));

    test('a throwing handler does not stop the source or the other handlers', () =>
      withHarness(async (h, samples) => {
        let thrown = 0;
        h.source.onSample(() => {
          thrown++;
          throw new Error('consumer bug');
        });
        const after: Sample[] = [];
        h.source.onSample((s) => after.push(s));
        await h.source.start();
        await h.produce();
        await h.settle();
        await h.produce();
        await h.settle();
        assert.ok(thrown > 0);
        assert.equal(after.length, samples.length, 'handlers after the throwing one saw every sample');
        assert.equal(thrown, samples.length);
        assertValidSamples(samples, h.sensors);
      }));
  });
}

/**
 * The bundles committed under models/ are the product's shipped models: each must pass every load
 * check and reproduce the metrics recorded in its bundle.json on the committed test data, and the
 * multi-feature models must meet the product's bar on obvious faults: F1 ≥ 0.9 and precision ≥ 0.9.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { CHANNELS, MODEL_TYPES, PROFILE_NAMES } from '#agent/core/profiles.js';
import { loadBundle } from '#agent/model/bundle.js';
import { compareWithRecorded, evaluateBundle, type RecordedMetrics } from '#agent/evaluate/bundle-eval.js';

const MODELS = join(PACKAGE_ROOT, 'models');
const DATA = join(PACKAGE_ROOT, 'datas', 'raw');


for (const profile of PROFILE_NAMES) {
  for (const modelType of MODEL_TYPES) {
    test(`shipped bundle ${profile}/${modelType} loads and reproduces its recorded metrics`, async () => {
      const dir = join(MODELS, profile, modelType);
      assert.ok(existsSync(join(dir, 'bundle.json')), `${dir} is missing: run 'npm run models'`);
      assert.ok(existsSync(join(dir, 'report.md')), `${dir}/report.md is missing: run 'npm run models'`);
      const bundle = await loadBundle(dir, { knownFeatures: CHANNELS });
      const recorded = bundle.manifest.metrics as RecordedMetrics | undefined;
      assert.ok(recorded, 'bundle.json records no metrics');
      const ev = await evaluateBundle(bundle, join(DATA, profile, 'test'), DATA);
      assert.equal(ev.testData.sha256, recorded.testData.sha256, 'recorded metrics were measured on other test data');
      assert.deepEqual(compareWithRecorded(recorded, ev.metrics), []);
      if (modelType === 'multi-feature') {
        assert.ok(ev.metrics.focus.precision >= 0.9, `obvious-fault precision ${ev.metrics.focus.precision.toFixed(3)} < 0.9`);
        assert.ok(ev.metrics.focus.f1 >= 0.9, `obvious-fault F1 ${ev.metrics.focus.f1.toFixed(3)} < 0.9`);
      }
    });
  }
}

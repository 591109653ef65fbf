/**
 * TensorFlow.js is most of the daemon's memory and the fast engine does not need it: the compiled
 * daemon (`anomaly-agent run`, so every import from cli/main.ts counts) loads no @tensorflow/ module
 * while its bundles are scored with the fast engine, and loads it when a bundle is scored with tfjs.
 * A preload (tfjs-probe.ts) reports what the process loaded when it exits.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, freePort, killAll, MODELS_DIR, needBundles, scrape, series, serviceFlags, suiteTempDir, TFJS_PROBE_ENV, tensorflowModules, waitFor } from './daemon-fixture.js';

const MODELS = ['vibration', 'voltage', 'rpm', 'temperature', 'multi-feature'];

/** The daemon on its defaults (source sim, every rpm_600 bundle) with `flags`, until every enabled model has scored a window; then stopped. */
async function runUntilScored(name: string, dir: string, models: string[], flags: Record<string, string>): Promise<Daemon> {
  needBundles('rpm_600', models);
  const httpPort = await freePort();
  const d = new Daemon(name, { 'models-dir': MODELS_DIR, ...flags }, { base: serviceFlags(dir, httpPort), env: TFJS_PROBE_ENV });
  try {
    const started = await d.started(30_000);
    assert.equal(started.source, 'sim');
    assert.deepEqual(started.models, models);
    await waitFor(
      'a scored window from every model',
      async () => {
        const scored = series(await scrape(httpPort), 'anomaly_agent_windows_scored_total');
        return models.every((m) => (scored.get(`model="${m}"`) ?? 0) > 0);
      },
      60_000,
      200,
    );
  } finally {
    await d.stop();
  }
  assert.equal(d.exit?.code, 0, d.tail());
  return d;
}

describe('TensorFlow.js is loaded by the daemon only for a bundle scored with it', () => {
  const dir = suiteTempDir('anomaly-tfjs-loading-');
  after(killAll);

  test('on the fast engine the daemon scores every shipped bundle from the sim source without loading any @tensorflow/ module', { timeout: 120_000 }, async () => {
    const d = await runUntilScored('fast-daemon', dir(), MODELS, { 'scorer-engine': 'fast' });
    assert.ok(d.logs.filter((l) => l.msg === 'model loaded').every((l) => l.engine === 'fast'));
    assert.ok(d.logs.filter((l) => l.msg === 'model loaded').every((l) => l.kernel === 'wasm'), 'the WebAssembly kernel, built by npm run build');
    assert.deepEqual(tensorflowModules(d.stderrText()), []);
    assert.equal(d.find((l) => String(l.msg).startsWith('TensorFlow.js backend')), undefined);
  });

  test('with --scorer-engine tfjs it loads TensorFlow.js, says which backend, and scores with it', { timeout: 120_000 }, async () => {
    const d = await runUntilScored('tfjs-daemon', dir(), ['vibration'], { 'scorer-engine': 'tfjs', 'models-enabled': 'vibration' });
    assert.equal(d.find((l) => l.msg === 'model loaded')?.engine, 'tfjs');
    assert.equal(d.find((l) => l.msg === 'model loaded')?.kernel, undefined, 'tfjs has no kernel of ours');
    assert.ok(d.find((l) => String(l.msg).startsWith('TensorFlow.js backend: ')), 'the backend is logged');
    const loaded = tensorflowModules(d.stderrText());
    assert.ok(loaded.some((f) => f.includes('/@tensorflow/tfjs/')), `loaded: ${loaded.join(', ')}`);
  });
});

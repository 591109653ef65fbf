/**
 * `anomaly-agent record` (cli/record.ts): a source built as the daemon builds it — the sim, the mqtt
 * ingest — or a gateway's telemetry, recorded, and the recording trained on with `train --data`.
 * Real parts throughout: the sim source's drivers on the emulated rig, a real aedes broker, the
 * whole daemon publishing telemetry, the compiled CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRecording } from '#agent/cli/record.js';
import { loadConfig } from '#agent/config/load.js';
import { ManualClock } from '#agent/core/clock.js';
import { silentLogger } from '#agent/core/log.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { Controller } from '#agent/daemon/controller.js';
import type { BundleManifest } from '#agent/model/bundle.js';
import { readCsvDir } from '#agent/preprocess/csv.js';
import { readRecordingManifest } from '#agent/record/manifest.js';
import type { SimSource } from '#agent/sources/sim.js';
import type { TelemetrySource } from '#agent/sources/telemetry.js';
import { runClock } from '../hw/run-clock.js';
import { startBroker, waitFor } from '../sources/broker-fixture.js';

const CLI = fileURLToPath(new URL(import.meta.resolve('#agent/cli/main.js'), import.meta.url));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const T0 = Date.UTC(2024, 2, 4, 8);

test('record → train round trip: three simulated minutes of the sim source (a part unplugged on the way: a gap) train a bundle with train --data <dir> --epochs 1', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'record-'));
  try {
    const rec = join(dir, 'recording');
    const config = loadConfig({ argv: ['--models-profile', 'rpm_600', '--record-dir', rec, '--source-sim-seed', '7'] });
    const clock = new ManualClock(T0);
    const run = await startRecording({ config, clock, threads: false, log: silentLogger });
    const sim = run.source as SimSource;
    await runClock(clock, 90_000);
    sim.command({ action: 'unplug', part: 'mcp9808' });
    await runClock(clock, 3_000);
    sim.command({ action: 'replug', part: 'mcp9808' });
    await runClock(clock, 90_000);
    const stats = await run.stop();
    assert.equal(run.recording.failed, undefined);

    const m = (await readRecordingManifest(rec))!;
    assert.deepEqual([m.source.kind, m.profile, m.periodMs, m.device], ['sim', 'rpm_600', 50, 'motor-1']);
    assert.deepEqual(
      m.source.chips?.map((c) => `${c.part} ${c.at}`),
      ['ADXL345 i2c-1 0x53', 'ADS1115 i2c-1 0x48', 'tach GPIO17', 'MCP9808 i2c-1 0x18'],
    );
    assert.ok(m.source.chips!.every((c) => c.emulated === true));
    assert.equal(stats.gaps, 1, 'the unplugged temperature sensor is one gap');
    assert.equal(m.span!.gaps, 1);
    assert.ok(stats.rows > 3000, `${stats.rows} rows`);
    const [before, after] = m.files[0]!.gaps[0]!;
    assert.ok(after - before >= 3000, `a gap of ${after - before} ms for 3 s unplugged`);

    const models = join(dir, 'models');
    const trained = cli('train', '--data', rec, '--models', models, '--model', 'voltage,temperature', '--epochs', '1', '--log-level', 'silent');
    assert.equal(trained.code, 0, trained.err);
    assert.match(trained.out, /^rpm_600\/voltage: 1 epochs/m);
    for (const model of ['voltage', 'temperature']) {
      const b = JSON.parse(await readFile(join(models, 'rpm_600', model, 'bundle.json'), 'utf8')) as BundleManifest;
      assert.deepEqual(b.training.data.files, m.files.map((f) => f.name));
      assert.ok(b.training.trainWindows > 50 && b.training.valWindows > 10, `${model}: ${b.training.trainWindows} / ${b.training.valWindows} windows`);
    }
    const other = cli('train', '--data', rec, '--models', models, '--profile', 'rpm_1200', '--model', 'voltage', '--epochs', '1', '--log-level', 'silent');
    assert.equal(other.code, 1);
    assert.match(other.err, /is a recording of rpm_600 \(a row every 50 ms\): it trains rpm_600 models, not rpm_1200 ones/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('anomaly-agent record --duration: the sim on its sampler thread, in real time, to files and a manifest; bad flags and an unwritable directory are refused with the reason', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'record-'));
  try {
    const rec = join(dir, 'rec');
    const r = cli('record', '--duration', '2', '--record-dir', rec, '--models-profile', 'rpm_1200', '--log-level', 'warn');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^recorded (\d+) rows \(2\.\d s of sim, a row every 20 ms\), 0 gap\(s\), 1 file\(s\) → .*\/rec \(0\.\d\d MiB of 256 MiB; stopped by duration\)\ntrain on it: anomaly-agent train --data .*\/rec\n$/);
    const rows = Number(/^recorded (\d+)/.exec(r.out)![1]);
    assert.ok(rows > 50 && rows <= 100, `${rows} rows in 2 s at 20 ms`);
    const series = await readCsvDir(rec);
    assert.equal(series.reduce((s, x) => s + x.rows, 0), rows);
    assert.equal((await readRecordingManifest(rec))!.source.kind, 'sim');

    await writeFile(join(dir, 'a-file'), 'x');
    const bad = cli('record', '--duration', '1', '--record-dir', join(dir, 'a-file', 'rec'));
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^anomaly-agent record: record\.dir .*a-file\/rec: cannot record there: a part of the path is not a directory \(ENOTDIR\)\n$/);
    const help = cli('record', '--help');
    assert.equal(help.code, 0);
    assert.match(help.out, /^usage: anomaly-agent record \[--duration S\] \[--telemetry\]/);
    assert.match(cli('--help').out, /^  record +record what a source reads/m);
    const usage = cli('record', '--duration', 'soon');
    assert.equal(usage.code, 2);
    assert.match(usage.err, /--duration must be a number of seconds > 0, got 'soon'/);
    const noBroker = cli('record', '--telemetry', '--mqtt-url', 'mqtt://127.0.0.1:1', '--duration', '1', '--record-dir', join(dir, 'never'));
    assert.equal(noBroker.code, 1);
    assert.match(noBroker.err, /^anomaly-agent record: cannot connect to the broker at mqtt:\/\/127\.0\.0\.1:1 \(the gateway's telemetry\): connect ECONNREFUSED/);
    const unknown = cli('record', '--duration', '1', '--record-folder', dir);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /--record-folder: unknown flag/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("record --telemetry: a gateway's telemetry (the whole daemon replaying a seed recording, in process) recorded on a workstation is that recording, row for row", { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'record-'));
  const file = join(PACKAGE_ROOT, 'datas', 'raw', 'rpm_600', 'test', 'test_01.csv');
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  const t0 = Number(lines[1]!.split(',')[0]);
  const clock = new ManualClock(t0);
  // prettier-ignore
  const gateway = new Controller({ config: loadConfig({ argv: [
    '--device-id', 'press-3', '--broker-port', '0', '--broker-ws-port', '0', '--http-port', '0', '--outbox-dir', join(dir, 'outbox'), '--models-dir', join(dir, 'models'),
    '--models-profile', 'rpm_600', '--models-enabled', 'vibration', '--source-kind', 'replay', '--source-replay-file', file,
  ] }), log: silentLogger, version: 'test', clock, threads: false });
  try {
    await gateway.start();
    const rec = join(dir, 'rec');
    const workstation = loadConfig({ argv: ['--mqtt-url', `mqtt://127.0.0.1:${gateway.brokerAddress()!.port}`, '--device-id', 'press-3', '--models-profile', 'rpm_600', '--record-dir', rec] });
    const run = await startRecording({ config: workstation, telemetry: true, clock: new ManualClock(t0), log: silentLogger });
    const source = run.source as TelemetrySource;
    for (let s = 0; s < 30; s++) {
      clock.advance(1000);
      await new Promise((r) => setImmediate(r));
    }
    // 30 s of 4 sensors at 50 ms; the last second's batches are still in the publisher.
    await waitFor('29 s of telemetry', () => source.accepted >= 4 * 29 * 20);
    await run.stop();
    const m = (await readRecordingManifest(rec))!;
    assert.deepEqual([m.source.kind, m.device, m.source.detail?.topic], ['telemetry', 'press-3', 'anomaly/press-3/telemetry/+']);
    const names = (await readdir(rec)).filter((n) => n.endsWith('.csv'));
    const recorded = (await readFile(join(rec, names[0]!), 'utf8')).trimEnd().split('\n').slice(1);
    assert.ok(recorded.length >= 29 * 20 - 1, `${recorded.length} rows`);
    assert.deepEqual(recorded, lines.slice(1, 1 + recorded.length).map((l) => l.split(',').slice(0, 7).join(',')));
    assert.deepEqual(Object.values(source.drops), [0, 0, 0, 0, 0]);
  } finally {
    await gateway.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('record from the mqtt source: readings another system publishes on <prefix>/<dev>/ingest/<sensor>, aligned on the grid', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'record-'));
  const broker = await startBroker();
  try {
    const rec = join(dir, 'rec');
    const config = loadConfig({ argv: ['--source-kind', 'mqtt', '--mqtt-url', broker.url, '--device-id', 'pump-7', '--models-profile', 'rpm_1200', '--record-dir', rec] });
    const run = await startRecording({ config, clock: new ManualClock(T0), log: silentLogger });
    const pub = await broker.client();
    // Channels and where each starts: every reading within its plausible range (a sensor fault is not recorded).
    const sensors = { vibration: [3, 0], voltage: [1, 200], rpm: [1, 600], temperature: [1, 40] };
    for (let i = 0; i < 100; i++) {
      for (const [sensor, [n, base]] of Object.entries(sensors)) {
        const t = T0 + 20 * i + 5;
        pub.publish(`anomaly/pump-7/ingest/${sensor}`, JSON.stringify({ t, values: Array.from({ length: n! }, (_, c) => base! + i + c / 10) }));
      }
    }
    await waitFor('400 readings', () => (run.source as unknown as { accepted: number }).accepted === 400);
    const stats = await run.stop();
    // Row g holds the readings at g − 15: the first row is at T0 + 20, the last at T0 + 1980.
    assert.equal(stats.rows, 99);
    const [s] = await readCsvDir(rec);
    assert.deepEqual([s!.t[0]! - T0, s!.t[98]! - T0], [20, 1980]);
    assert.deepEqual([s!.columns.accel_x![0], s!.columns.accel_y![0], s!.columns.voltage![98]], [0, 0.1, 298]);
    assert.equal((await readRecordingManifest(rec))!.source.detail?.topic, 'anomaly/pump-7/ingest/+');
  } finally {
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  }
});

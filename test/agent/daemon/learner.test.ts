/**
 * Learning on the gateway (daemon/learner.ts) in the whole daemon, in process, on a ManualClock: the
 * sim source (the drivers on the emulated chips, the motor simulator behind them), the embedded
 * broker, real mqtt.js clients. A learn command on cmd/learn → a baseline recorded → checked →
 * trained in a child process → a signed bundle hot-swapped in, progress retained on the learn topic;
 * each reason a baseline is refused; a non-admin's command refused by the broker; rollback; a
 * restart in the middle. Short baselines and few epochs keep it quick.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { hashPassword, saveUsers } from '#broker/users.js';
import { loadConfig } from '#agent/config/load.js';
import { ManualClock } from '#agent/core/clock.js';
import { payloadProblem } from '#agent/core/payloads.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import type { LearnPayload, StatusPayload } from '#agent/core/topics.js';
import { Controller } from '#agent/daemon/controller.js';
import { rollbackBundle } from '#agent/flash/install.js';
import { updateManifest } from '#agent/model/bundle.js';
import { recordingFileName } from '#agent/record/manifest.js';
import { runClock } from '../hw/run-clock.js';
import { generateSigningKey, signBundle } from '#agent/model/signature.js';

const T0 = Date.UTC(2024, 5, 3, 8, 0, 0);
const DEV = 'press-3';
const SHIPPED = join(PACKAGE_ROOT, 'models', 'rpm_600');
const turn = () => new Promise<void>((r) => setImmediate(r));

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface Daemon {
  c: Controller;
  config: ReturnType<typeof loadConfig>;
  clock: ManualClock;
  lines: { level: number; msg: string; module?: string; reason?: string; startedFrom?: string }[];
  client: MqttClient;
  learn: LearnPayload[];
  statuses: StatusPayload[];
  /** Advances the clock a second at a time until `ok` (checked between seconds), at most `maxS` seconds. */
  runUntil(what: string, ok: () => boolean, maxS?: number): Promise<void>;
  close(): Promise<void>;
}

async function daemon(dir: string, flags: string[], o: { clock?: ManualClock; users?: string } = {}): Promise<Daemon> {
  const clock = o.clock ?? new ManualClock(T0);
  // prettier-ignore
  const config = loadConfig({ argv: [
    '--device-id', DEV, '--broker-port', '0', '--broker-ws-port', '0', '--http-port', '0', '--outbox-dir', join(dir, 'outbox'),
    '--models-dir', join(dir, 'models'), '--learn-dir', join(dir, 'learn'),
    '--models-profile', 'rpm_600', '--models-enabled', 'vibration,temperature',
    '--source-kind', 'sim', '--source-sim-seed', '7', '--source-sim-load', '0.6',
    '--learn-baseline-minutes', '2', '--learn-max-epochs', '2',
    ...(o.users ? ['--broker-users-file', o.users] : []),
    ...flags,
  ] });
  const lines: Daemon['lines'] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const c = new Controller({ config, log, version: 'test', clock, threads: false });
  await c.start();
  const port = c.brokerAddress()!.port;
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...(o.users ? { username: 'ops', password: 'ops-pw' } : {}) });
  const learn: LearnPayload[] = [];
  const statuses: StatusPayload[] = [];
  client.on('message', (t, p) => {
    if (t === `anomaly/${DEV}/learn`) learn.push(JSON.parse(p.toString()) as LearnPayload);
    if (t === `anomaly/${DEV}/status`) statuses.push(JSON.parse(p.toString()) as StatusPayload);
  });
  await client.subscribeAsync([`anomaly/${DEV}/learn`, `anomaly/${DEV}/status`], { qos: 1 });
  return {
    c,
    config,
    clock,
    lines,
    client,
    learn,
    statuses,
    async runUntil(what, ok, maxS = 1200) {
      for (let s = 0; !ok(); s++) {
        if (s >= maxS) throw new Error(`timed out after ${maxS} s of clock waiting for ${what}; learn: ${JSON.stringify(learn.at(-1))}`);
        await runClock(clock, 1000); // the drivers await between timers: each timer's reads settle before the next
        await turn();
        // Training and installing happen in real time (a child process, file renames): give them some.
        const phase = learn.at(-1)?.phase;
        if (phase === 'training' || phase === 'installing') await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await c.stop();
      await client.endAsync();
    },
  };
}

async function tempDir(name: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `learn-${name}-`));
  dirs.push(d);
  return d;
}

const ended = (d: Daemon) => () => ['done', 'refused', 'failed', 'cancelled'].includes(d.learn.at(-1)?.phase ?? '');
const command = (d: Daemon, body: object) => d.client.publishAsync(`anomaly/${DEV}/cmd/learn`, JSON.stringify(body), { qos: 1 });

test('cmd/learn end to end: baseline recorded, checked, trained at low priority, signed with the device key, hot-swapped with the previous kept; progress retained; rollback', { timeout: 180_000 }, async () => {
  const dir = await tempDir('e2e');
  // The device trusts its workstation's key and its own; the running bundles are the workstation's, signed.
  const workstation = generateSigningKey();
  const device = generateSigningKey();
  await writeFile(join(dir, 'ws.pub'), workstation.publicPem);
  await writeFile(join(dir, 'dev.pub'), device.publicPem);
  await writeFile(join(dir, 'dev.key'), device.privatePem, { mode: 0o600 });
  for (const m of ['vibration', 'temperature']) {
    await cp(join(SHIPPED, m), join(dir, 'models', 'rpm_600', m), { recursive: true });
    await signBundle(join(dir, 'models', 'rpm_600', m), workstation.privatePem);
  }
  const d = await daemon(dir, ['--models-require-signed', 'true', '--models-trusted-keys', `${join(dir, 'ws.pub')},${join(dir, 'dev.pub')}`, '--learn-signing-key', join(dir, 'dev.key')]);
  try {
    await d.runUntil('the online status', () => d.statuses.length > 0, 5);
    const before = d.statuses.at(-1)!.models;
    assert.deepEqual(before.map((m) => [m.model, m.learned]), [['vibration', undefined], ['temperature', undefined]]);

    await command(d, { action: 'start', reason: 'bearing replaced' });
    await d.runUntil('the run to end', ended(d));
    const last = d.learn.at(-1)!;
    assert.equal(last.phase, 'done', JSON.stringify(last));
    assert.deepEqual(last.models, ['vibration', 'temperature']);
    assert.equal(last.percent, 100);
    assert.equal(last.reason, 'bearing replaced');
    // Every phase in order, percent never going back, every payload exactly as declared.
    const phases = [...new Set(d.learn.map((p) => p.phase))];
    assert.deepEqual(phases, ['collecting', 'checking', 'training', 'installing', 'done']);
    for (let i = 1; i < d.learn.length; i++) assert.ok(d.learn[i]!.percent >= d.learn[i - 1]!.percent, `percent ${d.learn[i - 1]!.percent} → ${d.learn[i]!.percent}`);
    for (const p of d.learn) assert.equal(payloadProblem('learn', p), undefined, JSON.stringify(p));
    assert.ok(d.learn.some((p) => p.phase === 'collecting' && p.etaS !== undefined && p.etaS > 0));

    // The installed bundle: learned here, for this reason, signed by the device's key; the workstation's kept.
    const live = join(dir, 'models', 'rpm_600', 'vibration');
    const manifest = JSON.parse(await readFile(join(live, 'bundle.json'), 'utf8'));
    assert.equal(manifest.baseline.id, last.id);
    assert.equal(manifest.baseline.reason, 'bearing replaced');
    assert.ok(manifest.baseline.rows >= 2300, `${manifest.baseline.rows} rows`);
    assert.equal(JSON.parse(await readFile(join(live, 'signature.json'), 'utf8')).keyId, device.keyId);
    assert.equal(JSON.parse(await readFile(join(dir, 'models', 'rpm_600', '.previous-vibration', 'signature.json'), 'utf8')).keyId, workstation.keyId);
    // Fine-tuned from the bundle it replaced (learn.fromRunning), which the manifest and the log name.
    const previous = JSON.parse(await readFile(join(dir, 'models', 'rpm_600', '.previous-vibration', 'bundle.json'), 'utf8'));
    assert.deepEqual(manifest.training.startedFrom, { name: 'rpm_600/vibration', weightsSha256: previous.files['weights.bin'] });
    assert.notEqual(manifest.files['weights.bin'], previous.files['weights.bin']);
    assert.ok(d.lines.some((l) => l.module === 'learner' && l.msg === 'learned vibration' && l.startedFrom === `fine-tuned from rpm_600/vibration (weights ${previous.files['weights.bin'].slice(0, 12)})`));

    // Running now, and the status topic and /healthz say which baseline.
    await d.runUntil('a status naming the baseline', () => d.statuses.at(-1)!.models.every((m) => m.learned?.baseline === last.id), 10);
    assert.equal(d.statuses.at(-1)!.models[0]!.learned!.reason, 'bearing replaced');
    const health = d.c.health(); // what /healthz answers
    assert.ok(health.models!.every((m) => m.learned?.baseline === last.id && m.learned.at > T0), JSON.stringify(health.models));
    assert.ok(d.lines.some((l) => l.module === 'learner' && /^learned: vibration, temperature/.test(l.msg)));
    // Trained in a child process at the lowest CPU priority.
    assert.ok(d.lines.some((l) => l.module === 'learner' && /^training vibration, temperature in process \d+ at nice 19$/.test(l.msg)), 'the trainer ran at nice 19');

    // Rollback: the workstation's bundle runs again.
    await rollbackBundle(d.config, 'vibration');
    await d.c.reload();
    await d.runUntil('the status after the rollback', () => d.statuses.at(-1)!.models.find((m) => m.model === 'vibration')!.learned === undefined, 10);
    assert.equal(d.statuses.at(-1)!.models.find((m) => m.model === 'vibration')!.sha256, before.find((m) => m.model === 'vibration')!.sha256);
  } finally {
    await d.close();
  }
});

/** A daemon with the shipped bundles (or what `setup` puts in models.dir), told to learn; `during` runs once collecting has begun. Resolves with the run's last payload. */
async function refusedRun(name: string, flags: string[], start: object, during?: (d: Daemon) => Promise<void>, setup?: (dir: string) => Promise<void>) {
  const dir = await tempDir(name);
  await setup?.(dir);
  const d = await daemon(dir, flags);
  try {
    await d.runUntil('the online status', () => d.statuses.length > 0, 5);
    const sha = d.statuses.at(-1)!.models.map((m) => m.sha256);
    await command(d, start);
    // In real time, the clock standing: the command crosses the broker whatever the machine's load.
    await until('collecting', () => d.learn.some((p) => p.phase === 'collecting'), 10_000);
    await during?.(d);
    await d.runUntil('the run to end', ended(d));
    const last = d.learn.at(-1)!;
    // The models that ran keep running: the same bundles, still scoring.
    const scored = (await d.c.metrics.windowsScored.get()).values.reduce((s, v) => s + v.value, 0);
    await d.runUntil('more windows', () => false, 5).catch(() => undefined);
    const after = (await d.c.metrics.windowsScored.get()).values.reduce((s, v) => s + v.value, 0);
    assert.ok(after > scored, 'the models still score');
    assert.deepEqual(d.c.health().models!.map((m) => m.sha256), sha);
    const logged = d.lines.find((l) => l.module === 'learner' && l.level === 40 && /^learn (refused|failed)/.test(l.msg));
    return { last, logged, lines: d.lines };
  } finally {
    await d.close();
  }
}

const fault = (d: Daemon, body: object) => d.client.publishAsync(`anomaly/${DEV}/cmd/fault`, JSON.stringify(body), { qos: 1 });

test('refused: gaps (a part unplugged for a few seconds)', { timeout: 60_000 }, async () => {
  const { last, logged } = await refusedRun('gaps', [], { action: 'start' }, async (d) => {
    await d.runUntil('30 s', () => false, 30).catch(() => undefined);
    await fault(d, { action: 'unplug', part: 'adxl345' });
    await d.runUntil('3 s', () => false, 3).catch(() => undefined);
    await fault(d, { action: 'replug', part: 'adxl345' });
  });
  assert.equal(last.phase, 'refused');
  assert.match(last.refusal!, /gap/);
  assert.equal(logged?.reason, last.refusal);
});

test('refused: a stuck sensor', { timeout: 60_000 }, async () => {
  const { last } = await refusedRun('stuck', ['--source-sim-faults', 'stuck:obvious:voltage'], { action: 'start' });
  assert.equal(last.phase, 'refused');
  // The obvious stuck fault holds the converter at its rail (400 V): the daemon's sensor check calls that
  // out of range before the readings reach anyone, and the learner refuses on its sensor alert.
  assert.match(last.refusal!, /an alert was raised during the baseline: sensor voltage \(out of range\)/);
});

test('refused: an alert raised during the baseline by a model that learned this machine; a shipped model\'s alert is not held against it', { timeout: 60_000 }, async () => {
  // The temperature model runs a bundle learned on this device (the shipped one with a baseline in its
  // manifest); the vibration model runs the shipped bundle, which never saw this machine.
  const learnedHere = async (dir: string) => {
    const live = join(dir, 'models', 'rpm_600', 'temperature');
    await cp(join(SHIPPED, 'temperature'), live, { recursive: true });
    const m = JSON.parse(await readFile(join(live, 'bundle.json'), 'utf8'));
    await updateManifest(live, { ...m, baseline: { id: 'learn-earlier', learnedAt: T0 - 86_400_000, device: DEV, t0: T0 - 90_000_000, t1: T0 - 88_200_000, rows: 36_000 } });
  };
  const { last, lines } = await refusedRun('alert', [], { action: 'start' }, async (d) => {
    await d.runUntil('20 s', () => false, 20).catch(() => undefined);
    await fault(d, { action: 'on', fault: 'overheating', intensity: 'obvious' });
    await fault(d, { action: 'on', fault: 'imbalance', intensity: 'obvious' });
    await d.runUntil('30 s', () => false, 30).catch(() => undefined);
    await fault(d, { action: 'off' });
  }, learnedHere);
  assert.equal(last.phase, 'refused');
  assert.match(last.refusal!, /an alert was raised during the baseline: temperature \(machine, score/);
  assert.doesNotMatch(last.refusal!, /vibration \(/);
  assert.ok(lines.some((l) => l.module === 'learner' && /^alert of vibration .* not held against the baseline: vibration has not learned this machine$/.test(l.msg)), 'the shipped model\'s alert is logged as not counted');
});

test('refused: too little data', { timeout: 60_000 }, async () => {
  const { last } = await refusedRun('short', [], { action: 'start', minutes: 0.5 });
  assert.equal(last.phase, 'refused');
  assert.match(last.refusal!, /too little data: \d+ rows of 50 ms; at least \d+ rows/);
});

test('refused: vibration already in the damaged zone', { timeout: 60_000 }, async () => {
  const { last } = await refusedRun('damaged', ['--source-sim-faults', 'imbalance:obvious', '--models-enabled', 'temperature'], { action: 'start' });
  assert.equal(last.phase, 'refused');
  assert.match(last.refusal!, /vibration velocity \d+\.\d mm\/s RMS \(accel_\w\) is in the damaged zone \(≥ 7\.1 mm\/s/);
});

test('refused before collecting: models.requireSigned without a signing key', { timeout: 60_000 }, async () => {
  const dir = await tempDir('unsigned');
  await writeFile(join(dir, 'ws.pub'), generateSigningKey().publicPem);
  const d = await daemon(dir, ['--models-require-signed', 'true', '--models-trusted-keys', join(dir, 'ws.pub')]);
  try {
    await command(d, { action: 'start' });
    await d.runUntil('the run to end', ended(d), 10);
    assert.equal(d.learn.at(-1)!.phase, 'refused');
    assert.match(d.learn.at(-1)!.refusal!, /models\.requireSigned is on but learn\.signingKey is empty/);
  } finally {
    await d.close();
  }
});

test('a learn command from a non-admin is refused by the broker, with the reason in the log; no run starts', { timeout: 60_000 }, async () => {
  const dir = await tempDir('acl');
  const users = join(dir, 'users.json');
  await saveUsers(
    users,
    new Map([
      [DEV, { username: DEV, role: 'device' as const, device: DEV, password: await hashPassword('dev-pw') }],
      ['ops', { username: 'ops', role: 'admin' as const, password: await hashPassword('ops-pw') }],
    ]),
  );
  const d = await daemon(dir, [], { users });
  try {
    const gateway = await connectAsync(`mqtt://127.0.0.1:${d.c.brokerAddress()!.port}`, { username: DEV, password: 'dev-pw', reconnectPeriod: 0 });
    const closed = new Promise<void>((r) => gateway.once('close', () => r()));
    gateway.publish(`anomaly/${DEV}/cmd/learn`, JSON.stringify({ action: 'start' }), { qos: 1 });
    await closed; // MQTT 3.1.1 has no negative PUBACK: the broker disconnects the publisher
    await gateway.endAsync(true);
    const refused = d.lines.find((l) => l.msg === 'publish refused');
    assert.match(refused!.reason!, new RegExp(`device '${DEV}' may not publish to 'anomaly/${DEV}/cmd/learn': only an admin may publish cmd/learn`));
    await d.runUntil('a few seconds', () => false, 3).catch(() => undefined);
    assert.equal(d.c.learner()!.current, undefined);
    assert.equal(d.learn.length, 0);
    // The admin may.
    await command(d, { action: 'start', minutes: 0.5 });
    await d.runUntil('the run to end', ended(d), 60);
    assert.equal(d.learn.at(-1)!.phase, 'refused'); // too little data, but it ran
  } finally {
    await d.close();
  }
});

test('a restart while collecting records the baseline again; one while training trains it again; the run then completes', { timeout: 180_000 }, async () => {
  const dir = await tempDir('restart');
  let d = await daemon(dir, []);
  await command(d, { action: 'start', reason: 'restart test' });
  await d.runUntil('a minute of collecting', () => (d.learn.at(-1)?.percent ?? 0) >= 30, 200);
  const id = d.learn.at(-1)!.id;
  await d.close();

  const clock = new ManualClock(d.clock.now() + 60_000);
  d = await daemon(dir, [], { clock });
  try {
    assert.ok(d.lines.some((l) => l.module === 'learner' && /interrupted by a restart while collecting/.test(l.msg)));
    await d.runUntil('training', () => d.learn.at(-1)?.phase === 'training');
  } finally {
    await d.close();
  }

  // Restarted with learn.fromRunning off: the models learn from random weights, and say so.
  d = await daemon(dir, ['--learn-from-running', 'false'], { clock: new ManualClock(clock.now() + 10_000) });
  try {
    assert.ok(d.lines.some((l) => l.module === 'learner' && /interrupted by a restart while training/.test(l.msg)));
    await d.runUntil('the run to end', ended(d));
    const last = d.learn.at(-1)!;
    assert.equal(last.phase, 'done', JSON.stringify(last));
    assert.equal(last.id, id);
    assert.equal(last.reason, 'restart test');
    assert.ok(d.lines.some((l) => l.module === 'learner' && l.msg === 'learned temperature' && l.startedFrom === 'from random weights'));
    const manifest = JSON.parse(await readFile(join(dir, 'models', 'rpm_600', 'temperature', 'bundle.json'), 'utf8'));
    assert.equal(manifest.training.startedFrom, undefined);
  } finally {
    await d.close();
  }
});

const AGENT_MAIN = fileURLToPath(new URL(import.meta.resolve('#agent/cli/main.js'), import.meta.url));

/** The CLI as a user runs it; resolves with its exit code and output. */
function cli(args: string[]): { done: Promise<{ code: number | null; out: string; err: string }> } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANOMALY_')));
  const p = spawn(process.execPath, [AGENT_MAIN, ...args], { env });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  return { done: new Promise((r) => p.on('exit', (code) => r({ code, out, err }))) };
}

test('anomaly-agent learn follows the run to its end; models rollback puts the shipped bundles back, and again the learned ones', { timeout: 180_000 }, async () => {
  const dir = await tempDir('cli');
  const d = await daemon(dir, []);
  try {
    const port = String(d.c.brokerAddress()!.port);
    const learn = cli(['learn', '--reason', 'new coupling', '--minutes', '2', '--mqtt-url', `mqtt://127.0.0.1:${port}`, '--device-id', DEV]);
    await d.runUntil('the run to end', ended(d));
    const r = await learn.done;
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    assert.equal(lines[0], `anomaly/${DEV}/cmd/learn {"action":"start","reason":"new coupling","minutes":2}`);
    assert.match(lines.find((l) => l.startsWith('collecting'))!, /^collecting \d+ %, about \d+ s left$/);
    assert.equal(lines.at(-1), 'done 100 %: vibration, temperature learned');
    const learned = d.c.health().models!.map((m) => m.sha256);

    // On the device, with its configuration file: both models back to the shipped bundles.
    const configFile = join(dir, 'agent.json');
    await writeFile(configFile, JSON.stringify({ device: { id: DEV }, models: { dir: join(dir, 'models'), profile: 'rpm_600', enabled: ['vibration', 'temperature'] } }));
    const back = await cli(['models', 'rollback', '--config', configFile, '--reload-cmd', 'true']).done;
    assert.equal(back.code, 0, back.out + back.err);
    assert.match(back.out, /rolled back rpm_600\/vibration: .*models\/rpm_600\/vibration runs again; the replaced bundle is kept in .*\.previous-vibration/);
    await d.c.reload(); // what --reload-cmd does to a daemon under systemd
    assert.ok(d.c.health().models!.every((m) => m.learned === undefined));
    // A second rollback undoes the first.
    const again = await cli(['models', 'rollback', 'vibration', '--config', configFile, '--reload-cmd', 'true']).done;
    assert.equal(again.code, 0, again.out);
    await d.c.reload();
    assert.equal(d.c.health().models!.find((m) => m.model === 'vibration')!.sha256, learned[0]);
  } finally {
    await d.close();
  }
});

/** Waits in real time, the clock standing still, for `ok` (a message on the learn topic). */
async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 10))) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

test('a full disk while the baseline is recorded: the run fails saying so on the learn topic and in the log; the models keep running', { timeout: 60_000 }, async () => {
  const dir = await tempDir('full');
  const d = await daemon(dir, []);
  try {
    await d.runUntil('the online status', () => d.statuses.length > 0, 5);
    const sha = d.c.health().models!.map((m) => m.sha256);
    await command(d, { action: 'start' });
    // Collecting begins with the clock standing: no row is written yet. The first file of the
    // baseline is named after its first row, on the 50 ms grid within the next seconds: each of
    // those names is /dev/full, as in the recorder's own full-disk tests.
    await until('collecting', () => d.learn.some((p) => p.phase === 'collecting'));
    const baseline = join(d.config.learn.dir, 'baseline');
    for (let t = Math.ceil(d.clock.now() / 50) * 50; t < d.clock.now() + 5000; t += 50) await symlink('/dev/full', join(baseline, `${recordingFileName(t)}.part`));
    await d.runUntil('the run to end', ended(d), 30);
    const last = d.learn.at(-1)!;
    assert.equal(last.phase, 'failed');
    assert.match(last.refusal!, /^recording the baseline failed: recording stopped: .*learn\/baseline: no space left on device \(ENOSPC\)$/);
    const logged = d.lines.find((l) => l.module === 'learner' && l.level === 40 && /^learn failed/.test(l.msg));
    assert.equal(logged?.reason, last.refusal);
    assert.match(logged!.msg, /^learn failed: recording the baseline failed: .* \(ENOSPC\); the running models stay$/);
    // The models that ran keep running: the same bundles, still scoring.
    const scored = async () => (await d.c.metrics.windowsScored.get()).values.reduce((s, v) => s + v.value, 0);
    const before = await scored();
    await d.runUntil('more windows', () => false, 5).catch(() => undefined);
    assert.ok((await scored()) > before, 'the models still score');
    assert.deepEqual(d.c.health().models!.map((m) => m.sha256), sha);
  } finally {
    await d.close();
  }
});

test('learn cancel: while collecting, and while training (the trainer process is ended); a new run starts afterwards', { timeout: 120_000 }, async () => {
  const dir = await tempDir('cancel');
  const d = await daemon(dir, []);
  try {
    await d.runUntil('the online status', () => d.statuses.length > 0, 5);
    const sha = d.c.health().models!.map((m) => m.sha256);
    await command(d, { action: 'start' });
    await d.runUntil('collecting', () => (d.learn.at(-1)?.percent ?? 0) >= 10, 100);
    const first = d.learn.at(-1)!.id;
    await command(d, { action: 'cancel' });
    await d.runUntil('cancelled', ended(d), 5);
    assert.equal(d.learn.at(-1)!.phase, 'cancelled');
    assert.equal(d.learn.at(-1)!.id, first);
    assert.ok(d.lines.some((l) => l.module === 'learner' && l.msg === 'learn cancelled'));
    // Recording stopped: the baseline directory is not written to any more.
    await d.runUntil('a few seconds', () => false, 3).catch(() => undefined);
    assert.equal(d.c.learner()!.current!.phase, 'cancelled');

    await command(d, { action: 'start' });
    await d.runUntil('training', () => d.learn.at(-1)?.phase === 'training' && d.learn.at(-1)!.id !== first);
    await until('the trainer to start', () => d.lines.some((l) => /^training .* in process \d+ at nice/.test(l.msg)), 20_000);
    const pid = Number(/in process (\d+)/.exec(d.lines.find((l) => /^training .* in process \d+/.test(l.msg))!.msg)![1]);
    await command(d, { action: 'cancel' });
    await until('cancelled', () => d.learn.at(-1)?.phase === 'cancelled');
    await until('the trainer process to be gone', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(d.c.health().models!.map((m) => m.sha256), sha, 'the running bundles stay');

    // A third run starts normally.
    await command(d, { action: 'start', minutes: 0.5 });
    await d.runUntil('a new run', () => d.learn.at(-1)?.phase === 'collecting', 5);
  } finally {
    await d.close();
  }
});

test('a raw cmd/learn the learner does not carry out is answered on the retained learn topic (commandRefused); the run carries on', { timeout: 60_000 }, async () => {
  const dir = await tempDir('busy');
  const d = await daemon(dir, []);
  try {
    await command(d, { action: 'start', reason: 'first' });
    await d.runUntil('collecting', () => (d.learn.at(-1)?.percent ?? 0) >= 5, 100);
    const run = d.learn.at(-1)!;
    const answered = (re: RegExp) => () => d.learn.some((p) => p.commandRefused !== undefined && re.test(p.commandRefused));
    await command(d, { action: 'start', reason: 'second' });
    await until('the answer to a second start', answered(/is collecting; cancel it first$/));
    const a = d.learn.find((p) => p.commandRefused !== undefined)!;
    assert.equal(a.commandRefused, `run ${run.id} is collecting; cancel it first`);
    assert.equal(a.id, run.id);
    assert.equal(a.phase, 'collecting');
    assert.equal(a.reason, 'first');
    assert.equal(payloadProblem('learn', a), undefined);
    assert.ok(d.lines.some((l) => l.module === 'learner' && l.level === 40 && l.msg === `learn command refused: run ${run.id} is collecting; cancel it first`));
    // Retained: a client that subscribes now is told too.
    const late = await connectAsync(`mqtt://127.0.0.1:${d.c.brokerAddress()!.port}`, { reconnectPeriod: 0 });
    const retained = new Promise<LearnPayload>((r) => late.once('message', (_t, p) => r(JSON.parse(p.toString()))));
    await late.subscribeAsync(`anomaly/${DEV}/learn`, { qos: 1 });
    assert.match((await retained).commandRefused ?? '', /cancel it first$/);
    await late.endAsync();

    // A malformed command is answered the same way.
    await d.client.publishAsync(`anomaly/${DEV}/cmd/learn`, '{"action":"begin"}', { qos: 1 });
    await until('the answer to a malformed command', answered(/action/));
    await d.client.publishAsync(`anomaly/${DEV}/cmd/learn`, 'learn now', { qos: 1 });
    await until('the answer to a command that is not JSON', answered(/^not JSON$/));

    // The run carries on, and its next progress no longer carries the answer.
    await d.runUntil('more progress', () => d.learn.at(-1)!.commandRefused === undefined && d.learn.at(-1)!.percent > a.percent, 20);
    assert.equal(d.learn.at(-1)!.id, run.id);
  } finally {
    await d.close();
  }
});

/**
 * The daemon's embedded broker with a users file: the daemon still publishes (it has its own account),
 * a viewer reads with mosquitto_sub, an anonymous client is refused — and a configuration that would
 * open an anonymous broker to the network is refused before anything starts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { hashPassword, saveUsers } from '#broker/users.js';
import { Daemon, DEVICE, firstMessage, killAll, serviceFlags, suiteTempDir, freePort, parseStatus, MOSQUITTO_SUB, waitFor, copyBundles } from './daemon-fixture.js';

const run = promisify(execFile);
const dir = suiteTempDir('secure-broker-');
after(killAll);

describe('embedded broker with users', () => {
  test('the daemon publishes on its own account; a viewer reads its status; anonymous and device-as-viewer are refused', { timeout: 90_000 }, async () => {
    const users = join(dir(), 'users.json');
    await saveUsers(
      users,
      new Map([
        ['screen', { username: 'screen', role: 'viewer' as const, password: await hashPassword('wall') }],
        ['pump-3', { username: 'pump-3', role: 'device' as const, device: 'pump-3', password: await hashPassword('three') }],
      ]),
    );
    const http = await freePort();
    const d = new Daemon('daemon', { 'broker-users-file': users, 'broker-host': '0.0.0.0' }, { base: { ...serviceFlags(dir(), http), 'source-kind': 'replay', 'source-replay-loop': true } });
    await d.started(30_000);
    const port = await d.brokerPort();
    assert.equal(d.find((l) => l.msg === 'broker listening')?.authentication, 'users');

    const status = await firstMessage(port, `anomaly/${DEVICE}/status`, 10).catch((e: Error) => e);
    assert.ok(status instanceof Error, 'an anonymous mosquitto_sub gets nothing');

    const viewer = await run(MOSQUITTO_SUB, ['-h', '127.0.0.1', '-p', String(port), '-u', 'screen', '-P', 'wall', '-t', `anomaly/${DEVICE}/status`, '-C', '1', '-W', '10']);
    assert.equal(parseStatus(viewer.stdout.trim()).state, 'online');

    const device = await run(MOSQUITTO_SUB, ['-h', '127.0.0.1', '-p', String(port), '-u', 'pump-3', '-P', 'three', '-t', `anomaly/${DEVICE}/status`, '-C', '1', '-W', '3']).catch(
      (e: { stdout: string; stderr: string }) => e,
    );
    assert.match(`${device.stdout}${device.stderr}`, /All subscription requests were denied/);
    assert.equal(d.problems().filter((l) => l.module === 'mqtt').length, 0, 'the daemon itself connected without trouble');
    d.signal('SIGTERM');
    assert.equal((await d.exited).code, 0);
  });

  test("a device credential's publish to its own models/update is refused and never reaches the daemon; an admin's is answered", { timeout: 90_000 }, async () => {
    const users = join(dir(), 'users-update.json');
    await saveUsers(
      users,
      new Map([
        [DEVICE, { username: DEVICE, role: 'device' as const, device: DEVICE, password: await hashPassword('dev-pw') }],
        ['ops', { username: 'ops', role: 'admin' as const, password: await hashPassword('ops-pw') }],
      ]),
    );
    const http = await freePort();
    // Its own models dir: an update in progress is kept there, never in the checkout's models/.
    const models = await copyBundles(dir(), 'rpm_600', ['vibration']);
    const d = new Daemon(
      'daemon',
      { 'broker-users-file': users, 'models-dir': models, 'models-enabled': 'vibration' },
      { base: { ...serviceFlags(dir(), http), 'source-kind': 'replay', 'source-replay-loop': true } },
    );
    await d.started(30_000);
    const url = `mqtt://127.0.0.1:${await d.brokerPort()}`;
    const clients: MqttClient[] = [];
    const connect = async (username: string, password: string) => {
      const c = await mqtt.connectAsync(url, { username, password, reconnectPeriod: 0, connectTimeout: 5000 });
      clients.push(c);
      return c;
    };
    try {
      const ops = await connect('ops', 'ops-pw');
      await ops.subscribeAsync(`anomaly/${DEVICE}/models/#`, { qos: 1 });
      const seen: { topic: string; payload: string }[] = [];
      ops.on('message', (t, p) => seen.push({ topic: t, payload: p.toString() }));
      const begin = (id: string) => JSON.stringify({ op: 'begin', id, files: [{ name: 'bundle.json', size: 2, sha256: '0'.repeat(64) }] });

      // The operator's test from issue 17: the gateway's own credential announcing a bundle.
      const device = await connect(DEVICE, 'dev-pw');
      const cut = new Promise<'closed'>((resolve) => device.once('close', () => resolve('closed')));
      const outcome = await Promise.race([device.publishAsync(`anomaly/${DEVICE}/models/update`, begin('forged'), { qos: 1 }).then(() => 'acked' as const, () => 'closed' as const), cut]);
      assert.equal(outcome, 'closed', 'no PUBACK for a device on models/update');

      // An admin's begin is answered, so the daemon was listening all along; the forged one never was.
      await ops.publishAsync(`anomaly/${DEVICE}/models/update`, begin('real'), { qos: 1 });
      await waitFor('the answer to the admin', () => seen.find((m) => m.topic.endsWith('/models/result')), 10_000);
      assert.deepEqual(
        seen.map((m) => [m.topic.slice(`anomaly/${DEVICE}/`.length), (JSON.parse(m.payload) as { id: string }).id]),
        [['models/update', 'real'], ['models/result', 'real']],
      );
      assert.ok(d.find((l) => l.msg === 'publish refused' && l.topic === `anomaly/${DEVICE}/models/update`), 'the broker logs the refusal');
    } finally {
      for (const c of clients) await c.endAsync(true).catch(() => undefined);
    }
    d.signal('SIGTERM');
    assert.equal((await d.exited).code, 0);
  });

  test('an anonymous broker on 0.0.0.0 is refused at start, naming the key and what to do', { timeout: 60_000 }, async () => {
    const d = new Daemon('daemon', { 'broker-host': '0.0.0.0' }, { base: serviceFlags(dir(), 0) });
    const { code } = await d.exited;
    assert.equal(code, 1);
    assert.match(d.stderrText(), /broker\.host: 0\.0\.0\.0 is reachable from other machines, and without broker\.usersFile anyone there could publish alerts/);
  });

  test('a TLS port without certificate files is refused at start', { timeout: 60_000 }, async () => {
    const bad = new Daemon('daemon', { 'broker-tls-port': await freePort() }, { base: serviceFlags(dir(), 0) });
    assert.equal((await bad.exited).code, 1);
    assert.match(bad.stderrText(), /broker\.tlsCert: must name a PEM file when broker\.tlsPort is set/);
    assert.match(bad.stderrText(), /broker\.tlsKey: must name a PEM file when broker\.tlsPort is set/);
  });
});

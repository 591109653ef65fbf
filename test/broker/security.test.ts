/**
 * The broker as a plant network sees it: users with roles, the ACL, TLS, and clients that misbehave —
 * on real sockets, with real mqtt.js clients and mosquitto_pub / mosquitto_sub.
 */
import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { silentLogger } from '#agent/core/log.js';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { createBroker, type BrokerOptions, type EmbeddedBroker, type ListenOptions } from '#broker/broker.js';
import { hashPassword, type UserRecord } from '#broker/users.js';
import { grant, inbox, until } from './mqtt-clients.js';

const run = promisify(execFile);
const HOST = '127.0.0.1';
const BROKER_CLI = join(PACKAGE_ROOT, 'dist', 'broker', 'src', 'main.js');

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

let dir: string;
let users: Map<string, UserRecord>;
const PASSWORDS = { 'pump-7': 'pw-pump-7', 'pump-3': 'pw-pump-3', screen: 'pw-screen', ops: 'pw-ops' } as const;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'broker-security-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  users = new Map<string, UserRecord>([
    ['pump-7', { username: 'pump-7', role: 'device', device: 'pump-7', password: await hashPassword(PASSWORDS['pump-7']) }],
    ['pump-3', { username: 'pump-3', role: 'device', device: 'pump-3', password: await hashPassword(PASSWORDS['pump-3']) }],
    ['screen', { username: 'screen', role: 'viewer', password: await hashPassword(PASSWORDS.screen) }],
    ['ops', { username: 'ops', role: 'admin', password: await hashPassword(PASSWORDS.ops) }],
  ]);
});

async function startBroker(opts: Partial<BrokerOptions> = {}, listen: Partial<ListenOptions> = {}): Promise<{ broker: EmbeddedBroker; port: number; url: string }> {
  const broker = await createBroker({ log: silentLogger, drainTimeoutMs: 2000, users, ...opts });
  cleanups.push(() => broker.close());
  const addr = await broker.listen({ host: HOST, port: 0, ...listen });
  return { broker, port: addr.port, url: `mqtt://${HOST}:${addr.port}` };
}

async function connectAs(url: string, user: keyof typeof PASSWORDS, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, username: user, password: PASSWORDS[user], ...opts });
  cleanups.push(() => client.endAsync(true));
  return client;
}

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));
}

describe('ACL with mqtt.js clients', () => {
  test('a device publishes under its own id only; publishing as another device disconnects it and delivers nothing', async () => {
    const { url } = await startBroker();
    const ops = await connectAs(url, 'ops');
    await ops.subscribeAsync('anomaly/#', { qos: 1 });
    const got = inbox(ops);

    const pump7 = await connectAs(url, 'pump-7');
    await pump7.publishAsync('anomaly/pump-7/alerts', 'own', { qos: 1 });
    await until(() => got.length === 1, 2000, 'own-topic delivery');
    assert.deepEqual(got[0], { topic: 'anomaly/pump-7/alerts', payload: 'own' });

    const gone = closed(pump7);
    pump7.publish('anomaly/pump-3/alerts', 'forged', { qos: 0 });
    await gone;
    // pump-70 is not pump-7: a longer id with the same start is another device.
    const again = await connectAs(url, 'pump-7');
    const gone2 = closed(again);
    again.publish('anomaly/pump-70/alerts', 'forged too', { qos: 0 });
    await gone2;

    // A later legitimate message arrives; the forged ones never do.
    const pump3 = await connectAs(url, 'pump-3');
    await pump3.publishAsync('anomaly/pump-3/alerts', 'real', { qos: 1 });
    await until(() => got.length === 2, 2000, 'the next legitimate delivery');
    assert.deepEqual(got.map((m) => m.payload), ['own', 'real']);
  });

  test('a device cannot subscribe to # or to other devices; it can to the topics it takes in', async () => {
    const { url } = await startBroker();
    const pump7 = await connectAs(url, 'pump-7');
    const filters = ['#', 'anomaly/+/alerts', 'anomaly/pump-3/#', 'anomaly/pump-7/#', 'anomaly/pump-7/ingest/+', 'anomaly/pump-7/cmd/fault'];
    const granted: number[] = [];
    for (const f of filters) granted.push(await grant(pump7, f));
    assert.deepEqual(granted, [128, 128, 128, 128, 1, 1]);
    assert.equal(pump7.connected, true, 'a refused subscription leaves the connection up');
  });

  test('a viewer subscribes to every device and cannot publish', async () => {
    const { url } = await startBroker();
    const screen = await connectAs(url, 'screen');
    assert.deepEqual([await grant(screen, 'anomaly/#', 0), await grant(screen, '#', 0)], [0, 128]);
    const got = inbox(screen);
    const pump3 = await connectAs(url, 'pump-3');
    await pump3.publishAsync('anomaly/pump-3/status', 'online', { qos: 1 });
    await until(() => got.length === 1, 2000, 'viewer delivery');

    const ops = await connectAs(url, 'ops');
    await ops.subscribeAsync('anomaly/#');
    const opsGot = inbox(ops);
    const gone = closed(screen);
    screen.publish('anomaly/pump-3/alerts', 'from a screen');
    await gone;
    await pump3.publishAsync('anomaly/pump-3/status', 'still online', { qos: 1 });
    await until(() => opsGot.length === 1, 2000, 'next delivery');
    assert.deepEqual(opsGot.map((m) => m.payload), ['still online']);
  });

  test('an unknown user, a wrong password and no credentials are refused with CONNACK 4', async () => {
    const { url } = await startBroker();
    for (const creds of [{ username: 'nobody', password: 'x' }, { username: 'ops', password: 'pw-pump-7' }, {}]) {
      await assert.rejects(mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000, ...creds }), (err: Error & { code?: number }) => err.code === 4);
    }
  });
});

describe('ACL with mosquitto_pub and mosquitto_sub', () => {
  test('device subscribing to # is denied; viewer publishing is cut off; a wrong password is refused', async () => {
    const { port, url } = await startBroker();
    const sub = await run('mosquitto_sub', ['-h', HOST, '-p', String(port), '-u', 'pump-7', '-P', PASSWORDS['pump-7'], '-t', '#', '-C', '1', '-W', '3'], { timeout: 10_000 }).catch((e: { stdout: string; stderr: string }) => e);
    assert.match(`${sub.stdout}${sub.stderr}`, /All subscription requests were denied/);

    const ops = await connectAs(url, 'ops');
    await ops.subscribeAsync('anomaly/#', { qos: 1 });
    const got = inbox(ops);
    await assert.rejects(
      run('mosquitto_pub', ['-h', HOST, '-p', String(port), '-u', 'screen', '-P', PASSWORDS.screen, '-t', 'anomaly/pump-3/alerts', '-m', 'x', '-q', '1'], { timeout: 10_000 }),
      (e: { code?: number; stderr: string }) => e.code !== 0 && /connection was lost/i.test(e.stderr),
    );
    await assert.rejects(
      run('mosquitto_pub', ['-h', HOST, '-p', String(port), '-u', 'ops', '-P', 'wrong', '-t', 'anomaly/pump-3/alerts', '-m', 'x', '-q', '1'], { timeout: 10_000 }),
      (e: { stderr: string }) => /bad user name or password/i.test(e.stderr),
    );
    // The device may publish its own alerts with mosquitto_pub too.
    await run('mosquitto_pub', ['-h', HOST, '-p', String(port), '-u', 'pump-7', '-P', PASSWORDS['pump-7'], '-t', 'anomaly/pump-7/alerts', '-m', 'ok', '-q', '1'], { timeout: 10_000 });
    await until(() => got.length === 1, 2000, 'delivery');
    assert.deepEqual(got, [{ topic: 'anomaly/pump-7/alerts', payload: 'ok' }]);
  });
});

describe('TLS listener', () => {
  let ca: string;
  let cert: Buffer;
  let key: Buffer;
  before(async () => {
    // A CA and a server certificate for 127.0.0.1 / localhost, made here with openssl.
    ca = join(dir, 'ca.pem');
    const o = (args: string[]) => run('openssl', args, { cwd: dir });
    await o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=anomaly-agent test CA']);
    await o(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
    await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    await o(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext']);
    cert = await readFile(join(dir, 'server.pem'));
    key = await readFile(join(dir, 'server.key'));
  });

  test('mosquitto_sub --cafile receives over TLS what an mqtts:// client publishes; an untrusted client cannot connect', async () => {
    const { broker } = await startBroker({}, { tls: { port: 0, cert, key } });
    const tlsPort = broker.address().tlsPort!;
    assert.ok(tlsPort > 0);
    const sub = spawn('mosquitto_sub', ['-h', HOST, '-p', String(tlsPort), '--cafile', ca, '-u', 'screen', '-P', PASSWORDS.screen, '-t', 'anomaly/+/alerts', '-C', '1', '-W', '10', '-v']);
    cleanups.push(async () => sub.kill());
    let out = '';
    sub.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => sub.on('exit', resolve));

    const pub = await connectAs(`mqtts://${HOST}:${tlsPort}`, 'pump-7', { ca: await readFile(ca) });
    // mosquitto_sub's subscription is in place once a retained-less publish reaches it; repeat until it does.
    const timer = setInterval(() => pub.publish('anomaly/pump-7/alerts', '{"state":"raised"}'), 100);
    const code = await exited;
    clearInterval(timer);
    assert.equal(code, 0);
    assert.equal(out.trim(), 'anomaly/pump-7/alerts {"state":"raised"}');

    // Without our CA the certificate is not trusted.
    await assert.rejects(mqtt.connectAsync(`mqtts://${HOST}:${tlsPort}`, { reconnectPeriod: 0, connectTimeout: 3000, username: 'ops', password: PASSWORDS.ops }));
  });
});

describe('anonymous clients and listeners', () => {
  test('without users, a listener off loopback is refused with a message saying why', async () => {
    const broker = await createBroker({ log: silentLogger, drainTimeoutMs: 1000 });
    cleanups.push(() => broker.close());
    await assert.rejects(broker.listen({ host: '0.0.0.0', port: 0 }), /refusing to listen on 0\.0\.0\.0 without users: anonymous clients .* only when every listener is on loopback/);
    // Loopback is fine, and anonymous clients may do anything there.
    const { port } = await broker.listen({ host: HOST, port: 0 });
    const c = await mqtt.connectAsync(`mqtt://${HOST}:${port}`, { reconnectPeriod: 0 });
    cleanups.push(() => c.endAsync(true));
    assert.deepEqual((await c.subscribeAsync('#')).map((g) => g.qos), [0]);
  });

  test('with users, every interface is allowed', async () => {
    const { broker } = await startBroker({}, { host: '0.0.0.0' });
    assert.ok(broker.address().port > 0);
  });
});

describe('clients that misbehave', () => {
  test('garbage bytes and a packet announcing 200 MB drop only that client; the others keep receiving', async () => {
    const { port, url } = await startBroker({ maxPacketBytes: 64 * 1024 });
    const ops = await connectAs(url, 'ops');
    await ops.subscribeAsync('anomaly/#', { qos: 1 });
    const got = inbox(ops);
    const pump7 = await connectAs(url, 'pump-7');

    for (const bytes of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from([0x30, 0xff, 0xff, 0xff, 0x5f])]) {
      const raw = createConnection({ host: HOST, port });
      cleanups.push(async () => raw.destroy());
      await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
      const t0 = Date.now();
      const ended = new Promise<void>((resolve) => raw.once('close', () => resolve()));
      raw.write(bytes);
      await ended;
      assert.ok(Date.now() - t0 < 2000, 'dropped at once, not after a timeout');
    }
    await pump7.publishAsync('anomaly/pump-7/telemetry/vibration', 'after', { qos: 1 });
    await until(() => got.length === 1, 2000, 'delivery after the bad clients');
    assert.equal(got[0]!.payload, 'after');
  });

  test('an oversize publish disconnects its sender and is not delivered; a payload under the limit is', async () => {
    const { url } = await startBroker({ maxPacketBytes: 64 * 1024 });
    const ops = await connectAs(url, 'ops');
    await ops.subscribeAsync('anomaly/#', { qos: 1 });
    const got = inbox(ops);
    const pump7 = await connectAs(url, 'pump-7');
    await pump7.publishAsync('anomaly/pump-7/telemetry/vibration', Buffer.alloc(60 * 1024, 1), { qos: 1 });
    await until(() => got.length === 1, 2000, 'a 60 KiB message');
    const gone = closed(pump7);
    pump7.publish('anomaly/pump-7/telemetry/vibration', Buffer.alloc(2 * 1024 * 1024, 2), { qos: 0 });
    await gone;
    const pump3 = await connectAs(url, 'pump-3');
    await pump3.publishAsync('anomaly/pump-3/telemetry/vibration', 'small', { qos: 1 });
    await until(() => got.length === 2, 2000, 'the next delivery');
    assert.equal(got[1]!.payload, 'small');
  });
});

describe('anomaly-broker users …', () => {
  test('adds (password from stdin, file owner-only), lists and removes users; the broker then authenticates them', async () => {
    const file = join(dir, 'users.json');
    const cli = (args: string[], stdin = ''): Promise<{ code: number | null; out: string; err: string }> =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, [BROKER_CLI, ...args]);
        let out = '';
        let err = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.stderr.on('data', (d: Buffer) => (err += d.toString()));
        p.on('exit', (code) => resolve({ code, out, err }));
        p.stdin.end(stdin);
      });
    assert.equal((await cli(['users', 'add', 'pump-9', '--role', 'device', '--device', 'pump-9', '--file', file], 'nine\n')).code, 0);
    assert.equal((await cli(['users', 'add', 'wall', '--role', 'viewer', '--file', file], 'wall\n')).code, 0);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.doesNotMatch(await readFile(file, 'utf8'), /nine|"wall"\s*:\s*"wall"/, 'no plaintext password in the file');
    assert.equal((await cli(['users', 'list', '--file', file])).out, 'pump-9\tdevice\tpump-9\nwall\tviewer\n');
    const badRole = await cli(['users', 'add', 'x', '--role', 'root', '--file', file], 'p\n');
    assert.equal(badRole.code, 2);
    assert.match(badRole.err, /--role must be one of device, viewer, admin/);
    const noDevice = await cli(['users', 'add', 'x', '--role', 'device', '--file', file], 'p\n');
    assert.match(noDevice.err, /a device user needs 'device'/);
    assert.equal((await cli(['users', 'remove', 'wall', '--file', file])).code, 0);
    assert.equal((await cli(['users', 'list', '--file', file])).out, 'pump-9\tdevice\tpump-9\n');

    // The standalone broker refuses 0.0.0.0 without users, and serves the file's users with it.
    const anon = await cli(['--host', '0.0.0.0', '--port', '0']);
    assert.equal(anon.code, 1);
    assert.match(anon.out, /refusing to listen on 0\.0\.0\.0 without users/);
    const b = spawn(process.execPath, [BROKER_CLI, '--users', file, '--port', '0']);
    cleanups.push(async () => b.kill());
    const port = await new Promise<number>((resolve) => {
      let buf = '';
      b.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /"port":(\d+)/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
    });
    const c = await mqtt.connectAsync(`mqtt://${HOST}:${port}`, { reconnectPeriod: 0, username: 'pump-9', password: 'nine' });
    cleanups.push(() => c.endAsync(true));
    await c.publishAsync('anomaly/pump-9/status', 'online', { qos: 1 });
  });

  test('a users file that cannot be trusted stops the broker with a message naming the entry', async () => {
    const file = join(dir, 'bad-users.json');
    await writeFile(file, JSON.stringify({ users: [{ username: 'a', role: 'admin', password: 'plaintext' }] }));
    const r = await run(process.execPath, [BROKER_CLI, '--users', file, '--port', '0']).catch((e: { code: number; stdout: string }) => e);
    assert.equal((r as { code: number }).code, 1);
    assert.match((r as { stdout: string }).stdout, /users\[0\]: user 'a': password hash not 'scrypt\$N\$r\$p\$salt\$hash'/);
  });
});

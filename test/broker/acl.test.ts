/**
 * Each role against each topic, on a real broker with real mqtt.js clients: the table below is what
 * the README's ACL section promises, written out by hand (not derived from broker/src/acl.ts, so a
 * change there that the table does not share fails here). For every row and role: a subscription is
 * granted or gets SUBACK 0x80, and what an admin then publishes reaches exactly the granted ones; a
 * publish is acknowledged and delivered, or cuts the publisher off and is never delivered.
 */
import { strict as assert } from 'node:assert';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { silentLogger } from '#agent/core/log.js';
import { publishRefusal, subscribeRefusal } from '#broker/acl.js';
import { createBroker } from '#broker/broker.js';
import { hashPassword, type UserRecord } from '#broker/users.js';
import { grant, inbox, until } from './mqtt-clients.js';

const HOST = '127.0.0.1';
const PASSWORDS = { 'pump-7': 'pw-pump-7', screen: 'pw-screen', ops: 'pw-ops', spy: 'pw-spy' } as const;
type User = keyof typeof PASSWORDS;
/** The three roles under test: a device credential for pump-7, a viewer, an admin. */
const ROLES = ['pump-7', 'screen', 'ops'] as const satisfies readonly User[];

/** `p` publish allowed, `s` subscribe allowed, per role; `filter` when the subscription differs from the topic. */
interface Row {
  topic: string;
  filter?: string;
  'pump-7': '' | 'p' | 's' | 'ps';
  screen: '' | 's';
  ops: 'ps';
}
const TABLE: Row[] = [
  // pump-7's own topics: what a gateway sends, it publishes; what it takes in, it subscribes to.
  { topic: 'anomaly/pump-7/status', 'pump-7': 'p', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/telemetry/vibration', 'pump-7': 'p', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/score/vibration', 'pump-7': 'p', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/alerts', 'pump-7': 'p', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/ingest/voltage', 'pump-7': 'ps', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/ingest/rpm', filter: 'anomaly/pump-7/ingest/+', 'pump-7': 'ps', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/models/result', 'pump-7': 'p', screen: 's', ops: 'ps' },
  // An operator's acts: a device may receive them, never send them (issue 17, section 3).
  { topic: 'anomaly/pump-7/models/update', 'pump-7': 's', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/cmd/fault', 'pump-7': 's', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/cmd/learn', 'pump-7': 's', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/learn', 'pump-7': 'p', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/cmd/reboot', filter: 'anomaly/pump-7/cmd/#', 'pump-7': '', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-7/debug', filter: 'anomaly/pump-7/#', 'pump-7': '', screen: 's', ops: 'ps' },
  // Another device's topics, one whose id starts like pump-7's, and the world outside the prefix.
  { topic: 'anomaly/pump-3/alerts', 'pump-7': '', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-70/status', 'pump-7': '', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-3/models/update', 'pump-7': '', screen: 's', ops: 'ps' },
  { topic: 'anomaly/pump-3/ingest/rpm', filter: 'anomaly/+/ingest/rpm', 'pump-7': '', screen: 's', ops: 'ps' },
  { topic: 'homeassistant/binary_sensor/pump-7/config', 'pump-7': '', screen: '', ops: 'ps' },
  { topic: 'plant/line-2', filter: '#', 'pump-7': '', screen: '', ops: 'ps' },
];

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

let url: string;
before(async () => {
  const users = new Map<string, UserRecord>([
    ['pump-7', { username: 'pump-7', role: 'device', device: 'pump-7', password: await hashPassword(PASSWORDS['pump-7']) }],
    ['screen', { username: 'screen', role: 'viewer', password: await hashPassword(PASSWORDS.screen) }],
    ['ops', { username: 'ops', role: 'admin', password: await hashPassword(PASSWORDS.ops) }],
    ['spy', { username: 'spy', role: 'admin', password: await hashPassword(PASSWORDS.spy) }],
  ]);
  const broker = await createBroker({ log: silentLogger, drainTimeoutMs: 2000, users });
  cleanups.push(() => broker.close());
  const { port } = await broker.listen({ host: HOST, port: 0 });
  url = `mqtt://${HOST}:${port}`;
});

async function connectAs(user: User, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, username: user, password: PASSWORDS[user], ...opts });
  cleanups.push(() => client.endAsync(true));
  return client;
}

/** A spy (admin) on `#` and a way to know it has seen everything published before now. */
async function spy(): Promise<{ got: { topic: string; payload: string }[]; flush: () => Promise<void> }> {
  const client = await connectAs('spy');
  await client.subscribeAsync('#', { qos: 1 });
  const got = inbox(client);
  let n = 0;
  return {
    got,
    // Deliveries to one subscriber keep their order: once our own marker is back, all before it are in.
    async flush() {
      const marker = `flush-${++n}`;
      await client.publishAsync('spy/flush', marker, { qos: 1 });
      await until(() => got.some((m) => m.payload === marker), 3000, 'spy flush');
    },
  };
}

/** A QoS 1 publish ends in its PUBACK or in the broker closing the connection; neither within 3 s fails. */
async function publishOutcome(client: MqttClient, topic: string, payload: string): Promise<'acked' | 'closed'> {
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<'closed'>((resolve) => client.once('close', () => resolve('closed')));
  const acked = client.publishAsync(topic, payload, { qos: 1 }).then(
    () => 'acked' as const,
    () => 'closed' as const,
  );
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`publish to ${topic}: neither PUBACK nor close within 3 s`)), 3000)));
  try {
    return await Promise.race([acked, closed, late]);
  } finally {
    clearTimeout(timer);
  }
}

const may = (row: Row, user: (typeof ROLES)[number], what: 'p' | 's') => row[user].includes(what);

describe('ACL: each role against each topic', () => {
  test('the table is what acl.ts decides (publishRefusal / subscribeRefusal)', () => {
    const principals = {
      'pump-7': { username: 'pump-7', role: 'device' as const, device: 'pump-7' },
      screen: { username: 'screen', role: 'viewer' as const },
      ops: { username: 'ops', role: 'admin' as const },
    };
    for (const row of TABLE) {
      for (const user of ROLES) {
        assert.equal(publishRefusal(principals[user], row.topic, 'anomaly') === undefined, may(row, user, 'p'), `${user} publish ${row.topic}`);
        assert.equal(subscribeRefusal(principals[user], row.filter ?? row.topic, 'anomaly') === undefined, may(row, user, 's'), `${user} subscribe ${row.filter ?? row.topic}`);
      }
    }
    assert.match(publishRefusal(principals['pump-7'], 'anomaly/pump-7/models/update', 'anomaly') ?? '', /only an admin may publish models\/update/);
  });

  for (const user of ROLES) {
    test(`${user}: subscriptions granted or refused per the table; an admin's publish reaches exactly the granted ones`, async () => {
      const client = await connectAs(user);
      const got = inbox(client);
      for (const row of TABLE) {
        const filter = row.filter ?? row.topic;
        assert.equal(await grant(client, filter), may(row, user, 's') ? 1 : 128, `${user} subscribe '${filter}'`);
      }
      assert.equal(client.connected, true, 'a refused subscription leaves the connection up');
      const ops = await connectAs('ops');
      for (const row of TABLE) await ops.publishAsync(row.topic, `to ${user}: ${row.topic}`, { qos: 1 });
      // Every role may read ingest/voltage; deliveries from one publisher keep their order, so once
      // this marker is in, nothing published before it is still on its way.
      await ops.publishAsync('anomaly/pump-7/ingest/voltage', `end ${user}`, { qos: 1 });
      await until(() => got.some((m) => m.payload === `end ${user}`), 3000, `${user}: end marker`);
      const received = new Set(got.filter((m) => m.payload.startsWith(`to ${user}: `)).map((m) => m.topic));
      assert.deepEqual([...received].sort(), TABLE.filter((r) => may(r, user, 's')).map((r) => r.topic).sort(), `${user} received`);
    });

    test(`${user}: a publish is acknowledged and delivered, or cuts the publisher off and is never delivered`, async () => {
      const watch = await spy();
      let client = await connectAs(user);
      for (const row of TABLE) {
        if (!client.connected) client = await connectAs(user);
        const payload = `from ${user}: ${row.topic}`;
        const outcome = await publishOutcome(client, row.topic, payload);
        assert.equal(outcome, may(row, user, 'p') ? 'acked' : 'closed', `${user} publish '${row.topic}'`);
      }
      await watch.flush();
      const delivered = watch.got.filter((m) => m.payload.startsWith(`from ${user}: `)).map((m) => m.topic);
      assert.deepEqual(delivered.sort(), TABLE.filter((r) => may(r, user, 'p')).map((r) => r.topic).sort(), `${user} delivered`);
    });
  }

  test("a device's publish to its own models/update is refused and never delivered; nor is its last will there", async () => {
    const watch = await spy();
    const device = await connectAs('pump-7');
    const begin = JSON.stringify({ op: 'begin', id: 'forged', files: [{ name: 'bundle.json', size: 2, sha256: '0'.repeat(64) }] });
    assert.equal(await publishOutcome(device, 'anomaly/pump-7/models/update', begin), 'closed', 'no PUBACK: the device is cut off');

    // A will is a publish too: the one on models/update is dropped, the one on status goes out.
    const update = await connectAs('pump-7', { will: { topic: 'anomaly/pump-7/models/update', payload: Buffer.from('will-update'), qos: 1, retain: false } });
    const status = await connectAs('pump-7', { will: { topic: 'anomaly/pump-7/status', payload: Buffer.from('will-status'), qos: 1, retain: false } });
    (update.stream as Socket).destroy();
    (status.stream as Socket).destroy();
    await until(() => watch.got.some((m) => m.payload === 'will-status'), 3000, 'the status will');
    await watch.flush();
    assert.deepEqual(watch.got.filter((m) => m.topic.startsWith('anomaly/')).map((m) => m.payload), ['will-status']);
  });
});

/**
 * Test fixture (CONVENTIONS.md, habit 5): a real aedes broker on an ephemeral port and real
 * mqtt.js clients — no mocked client. Not a test file itself (see contract.ts on file names).
 */
import { createServer, type AddressInfo } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';

export interface TestBroker {
  broker: Aedes;
  url: string;
  /** Connects a client that close() ends. */
  client(opts?: IClientOptions): Promise<MqttClient>;
  close(): Promise<void>;
}

export async function startBroker(opts: AedesOptions = {}): Promise<TestBroker> {
  const broker = await Aedes.createBroker(opts);
  const server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: MqttClient[] = [];
  return {
    broker,
    url,
    async client(copts = {}) {
      const c = await connectAsync(url, { reconnectPeriod: 0, ...copts });
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true)));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Waits (real time) until `cond()` holds; fails with `what` after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A settle() for two clients of one broker: `pub`'s messages reach `sub` in the order sent, so once
 * a marker published after them has arrived, so have they. `name` keeps markers of several rigs apart.
 */
export async function settler(sub: MqttClient, pub: MqttClient, name: string): Promise<() => Promise<void>> {
  const syncTopic = `test/sync/${name}`;
  let marks = 0;
  sub.on('message', (t) => {
    if (t === syncTopic) marks++;
  });
  await sub.subscribeAsync(syncTopic);
  let sent = 0;
  return async () => {
    const want = ++sent;
    pub.publish(syncTopic, String(want));
    await waitFor('the sync marker', () => marks >= want);
  };
}

/**
 * Test fixture: small helpers for real mqtt.js clients against a real broker (test/broker/*.test.ts).
 * Not a test file; importing it has no side effect.
 */
import type { MqttClient } from 'mqtt';

/** Every message `client` receives, in order. */
export function inbox(client: MqttClient): { topic: string; payload: string }[] {
  const got: { topic: string; payload: string }[] = [];
  client.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }));
  return got;
}

/** Polls `cond` every 10 ms; fails naming `what` after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The QoS the broker granted for one filter, 128 when it refused it (mqtt.js rejects then). */
export async function grant(client: MqttClient, filter: string, qos: 0 | 1 = 1): Promise<number> {
  try {
    return (await client.subscribeAsync(filter, { qos }))[0]!.qos;
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw err;
    return granted[0]!;
  }
}

import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { MalformedLengthError, PacketGuard, PacketTooLargeError } from '#broker/packet-guard.js';

/** Feed chunks through a guard; resolves with what passed or the error. */
function feed(max: number, chunks: Buffer[]): Promise<{ out: Buffer; err?: Error }> {
  return new Promise((resolve) => {
    const g = new PacketGuard(max);
    const parts: Buffer[] = [];
    g.on('data', (d: Buffer) => parts.push(d));
    g.on('error', (err) => resolve({ out: Buffer.concat(parts), err }));
    g.on('end', () => resolve({ out: Buffer.concat(parts) }));
    for (const c of chunks) g.write(c);
    g.end();
  });
}

/** A PUBLISH-typed packet with `n` body bytes (remaining length encoded per MQTT §2.2.3). */
function packet(n: number): Buffer {
  const len: number[] = [];
  let x = n;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    len.push(b);
  } while (x > 0);
  return Buffer.concat([Buffer.from([0x30, ...len]), Buffer.alloc(n, 7)]);
}

test('packets pass through unchanged, whatever the chunking, up to and including the limit', async () => {
  const stream = Buffer.concat([packet(0), packet(5), packet(200), packet(16_384 - 4)]);
  for (const size of [1, 2, 3, 7, 64, stream.length]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
    const { out, err } = await feed(16_384, chunks);
    assert.equal(err, undefined, `chunk size ${size}`);
    assert.ok(out.equals(stream), `chunk size ${size}`);
  }
});

test('a packet over the limit is refused from its header, before its body arrives', async () => {
  const header = packet(20_000).subarray(0, 4); // type + 3 length bytes
  const { err } = await feed(16_384, [packet(10), header]);
  assert.ok(err instanceof PacketTooLargeError);
  assert.equal(err.size, 1 + 3 + 20_000);
  assert.match(err.message, /20004 bytes exceeds the limit of 16384/);
});

test('a remaining length of more than four bytes is malformed', async () => {
  const { err } = await feed(1 << 30, [Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])]);
  assert.ok(err instanceof MalformedLengthError);
});

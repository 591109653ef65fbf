/**
 * A byte-stream filter in front of aedes that refuses an MQTT packet larger than a limit as soon as
 * its fixed header announces the size — before the broker buffers it. aedes (via mqtt-packet) would
 * otherwise collect a packet of up to 256 MiB in memory, which one client could use to take a
 * gateway's broker down.
 *
 * MQTT 3.1.1 §2.2: every packet is one type byte, then the "remaining length" as 1–4 bytes of 7 bits
 * each (low bits first, 0x80 = more bytes follow), then that many bytes.
 */
import { Transform, type TransformCallback } from 'node:stream';

export class PacketTooLargeError extends Error {
  override readonly name = 'PacketTooLargeError';
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`MQTT packet of ${size} bytes exceeds the limit of ${limit}`);
  }
}

export class MalformedLengthError extends Error {
  override readonly name = 'MalformedLengthError';
  constructor() {
    super('MQTT remaining length longer than 4 bytes (malformed packet)');
  }
}

export class PacketGuard extends Transform {
  /** 0: expecting a type byte; 1: reading the remaining length; 2: skipping the body. */
  private state: 0 | 1 | 2 = 0;
  private length = 0;
  private lengthBytes = 0;
  private multiplier = 1;
  private left = 0;

  /** `maxPacketBytes` counts the whole packet: header and body. */
  constructor(private readonly maxPacketBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 2) {
        const n = Math.min(this.left, chunk.length - i);
        this.left -= n;
        i += n;
        if (this.left === 0) this.state = 0;
        continue;
      }
      const b = chunk[i++]!;
      if (this.state === 0) {
        this.state = 1;
        this.length = 0;
        this.lengthBytes = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if (++this.lengthBytes > 4) return done(new MalformedLengthError());
      if (b & 0x80) continue;
      const size = 1 + this.lengthBytes + this.length;
      if (size > this.maxPacketBytes) return done(new PacketTooLargeError(size, this.maxPacketBytes));
      this.left = this.length;
      this.state = this.left === 0 ? 0 : 2;
    }
    done(null, chunk);
  }
}

/**
 * An I2C bus with emulated chips on it: implements hw/i2c.ts's I2cBus at the level of I2C messages,
 * so each chip sees what a real one sees — a write of bytes (register pointer, then data) and reads
 * of n bytes that continue from the pointer the way that chip's datasheet says.
 *
 * SMBus/I2C operations are composed exactly as Linux i2c-dev composes them:
 *   readByte(cmd)          write [cmd], repeated start, read 1
 *   writeByte(cmd, b)      write [cmd, b]
 *   readI2cBlock(cmd, n)   write [cmd], repeated start, read n
 *   writeI2cBlock(cmd, n)  write [cmd, …n bytes]
 *   scan()                 every plugged address answers
 *
 * What goes wrong on a real bus can be made to go wrong here: a chip can be unplugged (every
 * transfer to it is NACKed: EREMOTEIO, as the Pi's i2c-bcm2835 reports it) and plugged back (it
 * comes back in its power-on state, as after a real power cycle), and a fraction of transfers can be
 * failed with a chosen error (EIO, ETIMEDOUT …) from a seeded stream, so tests are reproducible.
 */
import { Rng } from '../../core/rng.js';
import { checkAddress, CheckError, i2cError, I2C_ADDR_MAX, I2C_ADDR_MIN, I2C_BLOCK_MAX, type BytesRead, type BytesWritten, type I2cBus, type I2cErrorCode } from '../i2c.js';

/** A chip as the bus sees it: I2C messages in, bytes out. */
export interface EmulatedChip {
  /** Part name, e.g. 'ADXL345'. */
  readonly part: string;
  /** One write message (without the address byte): usually the register pointer, then data. */
  write(bytes: Uint8Array): void;
  /** One read message of `n` bytes, continuing from the chip's register pointer. */
  read(n: number): Uint8Array;
  /** Power-on reset: registers back to their datasheet defaults (what a replug does). */
  reset(): void;
  /** Powered off (unplugged) or on; a chip may stop its internal activity while off. */
  setPowered?(on: boolean): void;
}

export interface ErrorInjection {
  /** Probability that a transfer fails, 0..1. */
  rate: number;
  /** Error it fails with. Default EIO. */
  code?: I2cErrorCode;
  /** Only transfers to these addresses; default all. */
  addresses?: readonly number[];
}

export interface EmulatedBusOptions {
  /** Seed of the error-injection stream. Default 1. */
  seed?: number;
}

interface Slot {
  chip: EmulatedChip;
  plugged: boolean;
}

export class EmulatedI2cBus implements I2cBus {
  private readonly slots = new Map<number, Slot>();
  private readonly rng: Rng;
  private injection: ErrorInjection | undefined;
  private closed = false;
  /** Transfers attempted, and how many failed (NACK on an absent chip or injected). */
  readonly counters = { transfers: 0, nacks: 0, injected: 0 };

  constructor(o: EmulatedBusOptions = {}) {
    this.rng = new Rng(o.seed ?? 1);
  }

  /** Puts `chip` on the bus at `addr`, plugged in. */
  attach(addr: number, chip: EmulatedChip): this {
    checkAddress(addr);
    if (this.slots.has(addr)) throw new CheckError('i2c-address', `address ${addr} already has a ${this.slots.get(addr)!.chip.part}`);
    this.slots.set(addr, { chip, plugged: true });
    return this;
  }

  chipAt(addr: number): EmulatedChip | undefined {
    return this.slots.get(addr)?.chip;
  }

  /** The chip stops answering (wires pulled): every transfer to it is NACKed. */
  unplug(addr: number): void {
    const s = this.slot(addr);
    s.plugged = false;
    s.chip.setPowered?.(false);
  }

  /** The chip answers again, freshly powered: its registers are at their reset values. */
  replug(addr: number): void {
    const s = this.slot(addr);
    s.chip.reset();
    s.chip.setPowered?.(true);
    s.plugged = true;
  }

  isPlugged(addr: number): boolean {
    return this.slots.get(addr)?.plugged ?? false;
  }

  /** Fails a fraction of transfers from now on; `undefined` or rate 0 stops it. */
  injectErrors(e: ErrorInjection | undefined): void {
    if (e && !(e.rate >= 0 && e.rate <= 1)) throw new CheckError('error-rate', `error rate must be within 0..1, got ${e.rate}`);
    this.injection = e && e.rate > 0 ? e : undefined;
  }

  async readByte(addr: number, cmd: number): Promise<number> {
    const chip = await this.begin(addr, 'readByte');
    chip.write(Uint8Array.of(cmd & 0xff));
    return chip.read(1)[0]!;
  }

  async writeByte(addr: number, cmd: number, byte: number): Promise<void> {
    const chip = await this.begin(addr, 'writeByte');
    chip.write(Uint8Array.of(cmd & 0xff, byte & 0xff));
  }

  async readI2cBlock(addr: number, cmd: number, length: number, buffer: Buffer): Promise<BytesRead> {
    checkLength(length, buffer);
    const chip = await this.begin(addr, 'readI2cBlock');
    chip.write(Uint8Array.of(cmd & 0xff));
    const data = chip.read(length);
    buffer.set(data.subarray(0, length), 0);
    return { bytesRead: length, buffer };
  }

  async writeI2cBlock(addr: number, cmd: number, length: number, buffer: Buffer): Promise<BytesWritten> {
    checkLength(length, buffer);
    const chip = await this.begin(addr, 'writeI2cBlock');
    const msg = new Uint8Array(length + 1);
    msg[0] = cmd & 0xff;
    msg.set(buffer.subarray(0, length), 1);
    chip.write(msg);
    return { bytesWritten: length, buffer };
  }

  async scan(startAddr = I2C_ADDR_MIN, endAddr = I2C_ADDR_MAX): Promise<number[]> {
    if (this.closed) throw i2cError('EIO', 'scan');
    await Promise.resolve();
    return [...this.slots.entries()]
      .filter(([a, s]) => s.plugged && a >= startAddr && a <= endAddr)
      .map(([a]) => a)
      .sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /**
   * Address phase of a transfer: resolves asynchronously (a real transfer completes on another
   * thread), then fails the way the bus would — closed, NACK, injected error — or yields the chip.
   */
  private async begin(addr: number, syscall: string): Promise<EmulatedChip> {
    checkAddress(addr);
    await Promise.resolve();
    if (this.closed) throw i2cError('EIO', syscall);
    this.counters.transfers++;
    const s = this.slots.get(addr);
    if (!s || !s.plugged) {
      this.counters.nacks++;
      throw i2cError('EREMOTEIO', syscall);
    }
    const inj = this.injection;
    if (inj && (!inj.addresses || inj.addresses.includes(addr)) && this.rng.next() < inj.rate) {
      this.counters.injected++;
      throw i2cError(inj.code ?? 'EIO', syscall);
    }
    return s.chip;
  }

  private slot(addr: number): Slot {
    const s = this.slots.get(addr);
    if (!s) throw new CheckError('i2c-address', `no emulated chip at address ${addr}`);
    return s;
  }
}

function checkLength(length: number, buffer: Buffer): void {
  if (!Number.isInteger(length) || length < 1 || length > I2C_BLOCK_MAX) throw new CheckError('i2c-block-length', `block length must be 1..${I2C_BLOCK_MAX}, got ${length}`);
  if (buffer.length < length) throw new CheckError('i2c-block-length', `buffer of ${buffer.length} bytes is shorter than the ${length} bytes to transfer`);
}

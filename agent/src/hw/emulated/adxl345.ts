/**
 * Emulated ADXL345 3-axis accelerometer (Analog Devices ADXL345 data sheet, Rev. G), I2C side.
 * Register numbers and bits are written out here from the data sheet, not imported from the
 * driver, so a wrong constant on either side shows up as a failing test rather than agreeing with
 * itself.
 *
 * Implemented: DEVID; OFSX/Y/Z; BW_RATE (output data rate, LOW_POWER stored); POWER_CTL (Measure,
 * Sleep); INT_ENABLE / INT_MAP stored; INT_SOURCE (DATA_READY, Watermark, Overrun); DATA_FORMAT
 * (FULL_RES, Justify, Range; SELF_TEST/SPI/INT_INVERT stored); DATAX0..DATAZ1; FIFO_CTL (bypass,
 * FIFO, stream; trigger mode behaves as stream) and FIFO_STATUS. Multi-byte reads and writes
 * auto-increment the register address (data sheet, "Serial communications"). Tap/activity/free-fall
 * detection registers are stored but do nothing.
 *
 * Sampling: while measuring, the chip samples the motor's acceleration every 1/ODR on its own clock,
 * read or not; in FIFO modes the samples queue in a 32-level FIFO (stream mode drops the oldest when
 * full and flags Overrun). The part is a typical one: scale factor 3.9 mg/LSB in full resolution
 * (data sheet Table 1), no noise added beyond the simulator's own.
 */
import type { MotorReading } from '../../motor/simulator.js';
import type { EmulatedChip } from './bus.js';
import type { MotorFeed, PeriodicSampler } from './motor-feed.js';

// Register map (data sheet Table 19).
const R_DEVID = 0x00;
const R_OFSX = 0x1e;
const R_BW_RATE = 0x2c;
const R_POWER_CTL = 0x2d;
const R_INT_SOURCE = 0x30;
const R_DATA_FORMAT = 0x31;
const R_DATAX0 = 0x32;
const R_DATAZ1 = 0x37;
const R_FIFO_CTL = 0x38;
const R_FIFO_STATUS = 0x39;
const LAST_REGISTER = 0x39;
/** Writable registers (the rest are read-only or reserved: writes are ignored). */
const WRITABLE = new Set([0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2c, 0x2d, 0x2e, 0x2f, 0x31, 0x38]);
/** Reset values that are not 0 (Table 19): DEVID, BW_RATE 100 Hz, INT_SOURCE Watermark. */
const RESET: ReadonlyArray<[number, number]> = [
  [R_DEVID, 0xe5],
  [R_BW_RATE, 0x0a],
  [R_INT_SOURCE, 0x02],
];
const FIFO_DEPTH = 32;
const STANDARD_GRAVITY = 9.80665;
/** Full-resolution scale factor, g/LSB (Table 1: 3.9 mg/LSB typical). */
const FULL_RES_G_PER_LSB = 0.0039;
/** OFSx scale factor, g/LSB (Table 1: 15.6 mg/LSB). */
const OFFSET_G_PER_LSB = 0.0156;

export class EmulatedAdxl345 implements EmulatedChip, PeriodicSampler {
  readonly part = 'ADXL345';
  nextAt = Number.NaN;
  /** Samples dropped because the FIFO was full (stream) or stopped (FIFO mode), since construction. */
  lost = 0;
  /** Samples taken since construction. */
  sampled = 0;

  private readonly regs = new Uint8Array(LAST_REGISTER + 1);
  private pointer = 0;
  private powered = true;
  /** FIFO ring of raw (x, y, z) codes, already in register format (int16). */
  private readonly fifo = new Int16Array(FIFO_DEPTH * 3);
  private head = 0;
  private count = 0;
  /** Output data registers (bypass mode, or the FIFO's oldest entry). */
  private readonly out = new Int16Array(3);
  private overrun = false;
  private dataReady = false;

  constructor(private readonly feed: MotorFeed) {
    this.reset();
    feed.every(this);
  }

  reset(): void {
    this.regs.fill(0);
    for (const [r, v] of RESET) this.regs[r] = v;
    this.pointer = 0;
    this.head = 0;
    this.count = 0;
    this.out.fill(0);
    this.overrun = false;
    this.dataReady = false;
    this.schedule();
  }

  setPowered(on: boolean): void {
    this.powered = on;
    this.schedule();
  }

  /** Output data rate, Hz, from BW_RATE bits D3:D0 (Table 7: 0b1111 = 3200 Hz, halving per step down). */
  get odrHz(): number {
    return 3200 / 2 ** (15 - (this.regs[R_BW_RATE]! & 0x0f));
  }

  write(bytes: Uint8Array): void {
    this.feed.sync();
    if (bytes.length === 0) return;
    this.pointer = bytes[0]!;
    for (let i = 1; i < bytes.length; i++) this.writeRegister(this.pointer++, bytes[i]!);
  }

  read(n: number): Uint8Array {
    this.feed.sync();
    const outBytes = new Uint8Array(n);
    let touchedData = false;
    const dataSnapshot = this.dataBytes();
    for (let i = 0; i < n; i++) {
      const r = this.pointer++;
      if (r >= R_DATAX0 && r <= R_DATAZ1) {
        touchedData = true;
        outBytes[i] = dataSnapshot[r - R_DATAX0]!;
      } else outBytes[i] = this.readRegister(r);
    }
    // "Each FIFO level is cleared after any read (single- or multiple-byte) of FIFO" — at the end of
    // the transfer, so a 6-byte burst returns one consistent sample.
    if (touchedData) this.consumeData();
    return outBytes;
  }

  // --------------------------------------------------------------------- sampling (PeriodicSampler)

  take(t: number, r: MotorReading): void {
    this.nextAt = t + 1000 / this.odrHz;
    this.sampled++;
    const code = (v: number, axis: number) => this.toCode(v / STANDARD_GRAVITY + signed8(this.regs[R_OFSX + axis]!) * OFFSET_G_PER_LSB);
    const x = code(r.accel_x, 0);
    const y = code(r.accel_y, 1);
    const z = code(r.accel_z, 2);
    const mode = this.fifoMode;
    if (mode === 0) {
      // Bypass: the data registers take the sample; unread data being replaced is an overrun.
      if (this.dataReady) this.overrun = true;
      this.out[0] = x;
      this.out[1] = y;
      this.out[2] = z;
      this.dataReady = true;
      return;
    }
    if (this.count === FIFO_DEPTH) {
      this.overrun = true;
      this.lost++;
      if (mode === 1) return; // FIFO mode: collection stops when full
      this.head = (this.head + 1) % FIFO_DEPTH; // stream: the oldest goes
      this.count--;
    }
    const slot = ((this.head + this.count) % FIFO_DEPTH) * 3;
    this.fifo[slot] = x;
    this.fifo[slot + 1] = y;
    this.fifo[slot + 2] = z;
    this.count++;
    if (this.count === FIFO_DEPTH) this.overrun = true; // "set when FIFO is filled"
  }

  // --------------------------------------------------------------------------------- internals

  private get fifoMode(): number {
    return this.regs[R_FIFO_CTL]! >> 6;
  }

  private get measuring(): boolean {
    const p = this.regs[R_POWER_CTL]!;
    return this.powered && (p & 0x08) !== 0 && (p & 0x04) === 0;
  }

  private schedule(): void {
    if (!this.measuring) {
      this.nextAt = Number.NaN;
      return;
    }
    if (Number.isNaN(this.nextAt)) this.nextAt = this.feed.clock.now() + 1000 / this.odrHz;
  }

  /** Acceleration in g → register code per DATA_FORMAT (FULL_RES, Range, Justify). */
  private toCode(g: number): number {
    const f = this.regs[R_DATA_FORMAT]!;
    const range = f & 0x03;
    const fullRes = (f & 0x08) !== 0;
    // Full resolution: 3.9 mg/LSB at every range, 10 + range bits; 10-bit mode: 10 bits, LSB doubles per range step.
    const bits = fullRes ? 10 + range : 10;
    const lsb = fullRes ? FULL_RES_G_PER_LSB : FULL_RES_G_PER_LSB * 2 ** range;
    const max = 2 ** (bits - 1) - 1;
    let c = Math.round(g / lsb);
    if (c > max) c = max;
    if (c < -max - 1) c = -max - 1;
    if (f & 0x04) c = c * 2 ** (16 - bits); // left-justified: MSB at bit 15
    return c;
  }

  /** The six data bytes as the output registers hold them now (little-endian: DATAx0 is the low byte). */
  private dataBytes(): Uint8Array {
    const src = this.fifoMode === 0 || this.count === 0 ? this.out : this.fifo.subarray(this.head * 3, this.head * 3 + 3);
    const b = new Uint8Array(6);
    for (let a = 0; a < 3; a++) {
      const v = src[a]! & 0xffff;
      b[2 * a] = v & 0xff;
      b[2 * a + 1] = v >> 8;
    }
    return b;
  }

  private consumeData(): void {
    if (this.fifoMode === 0 || this.count === 0) {
      this.dataReady = false;
      return;
    }
    const i = this.head * 3;
    this.out.set(this.fifo.subarray(i, i + 3));
    this.head = (this.head + 1) % FIFO_DEPTH;
    this.count--;
    this.overrun = false; // "automatically cleared when the contents of FIFO are read"
  }

  private readRegister(r: number): number {
    if (r > LAST_REGISTER) return 0;
    if (r === R_INT_SOURCE) return this.intSource();
    if (r === R_FIFO_STATUS) return this.count & 0x3f; // FIFO_TRIG (D7) never set: no trigger mode events
    return this.regs[r]!;
  }

  private intSource(): number {
    const samples = this.regs[R_FIFO_CTL]! & 0x1f;
    const fifo = this.fifoMode !== 0;
    const ready = fifo ? this.count > 0 : this.dataReady;
    const watermark = fifo && this.count >= samples;
    return (ready ? 0x80 : 0) | (watermark ? 0x02 : 0) | (this.overrun ? 0x01 : 0);
  }

  private writeRegister(r: number, v: number): void {
    if (!WRITABLE.has(r)) return;
    const before = this.regs[r]!;
    this.regs[r] = v;
    if (r === R_FIFO_CTL && v >> 6 !== before >> 6) {
      // Changing mode (in particular to bypass) clears the FIFO.
      this.head = 0;
      this.count = 0;
      this.overrun = false;
    }
    if (r === R_BW_RATE && (v & 0x0f) !== (before & 0x0f)) this.nextAt = Number.NaN;
    if (r === R_POWER_CTL || r === R_BW_RATE) this.schedule();
  }
}

function signed8(v: number): number {
  return v & 0x80 ? v - 0x100 : v;
}

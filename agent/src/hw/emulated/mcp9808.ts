/**
 * Emulated MCP9808 digital temperature sensor (Microchip MCP9808 data sheet, DS20005095B), I2C side.
 * Register numbers and bit fields are written out from the data sheet (section 5.1), independently
 * of the driver.
 *
 * Implemented: register pointer (P[3:0]); CONFIG (SHDN stored and honoured: no conversions in
 * shutdown; the other bits stored); T_UPPER / T_LOWER / T_CRIT (stored, and compared with T_A for its
 * flag bits 15..13); T_A (read-only: flags, sign, 12 bits of 1/16 °C); Manufacturer ID 0x0054;
 * Device ID 0x04 / revision 0x00; Resolution (8-bit: 0.5, 0.25, 0.125, 0.0625 °C). 16-bit registers
 * are MSB first. The part converts continuously on its own clock, taking t_CONV per resolution
 * (data sheet Table 1-1: 30, 65, 130, 250 ms); T_A holds the last completed conversion, and its
 * power-on value 0x0000 until the first one ends.
 */
import type { MotorReading } from '../../motor/simulator.js';
import type { EmulatedChip } from './bus.js';
import type { MotorFeed, PeriodicSampler } from './motor-feed.js';

const P_CONFIG = 0x01;
const P_UPPER = 0x02;
const P_LOWER = 0x03;
const P_CRIT = 0x04;
const P_TA = 0x05;
const P_MANUFACTURER = 0x06;
const P_DEVICE = 0x07;
const P_RESOLUTION = 0x08;
const MANUFACTURER_ID = 0x0054;
const DEVICE_ID_REV = 0x0400;
/** Conversion time per resolution code 0..3, ms. */
const T_CONV_MS = [30, 65, 130, 250];

export class EmulatedMcp9808 implements EmulatedChip, PeriodicSampler {
  readonly part = 'MCP9808';
  nextAt = Number.NaN;
  conversions = 0;

  private pointer = 0;
  private config = 0;
  private upper = 0;
  private lower = 0;
  private crit = 0;
  private resolution = 0x03;
  /** Last converted temperature, °C (before the register's quantisation). */
  private tempC = 0;
  /** False from reset until the first conversion ends: T_A reads its power-on value 0x0000. */
  private converted = false;
  private powered = true;

  constructor(private readonly feed: MotorFeed) {
    feed.every(this);
    this.reset();
  }

  reset(): void {
    this.pointer = 0;
    this.config = 0;
    this.upper = 0;
    this.lower = 0;
    this.crit = 0;
    this.resolution = 0x03;
    this.tempC = 0;
    this.converted = false;
    this.nextAt = Number.NaN;
    this.schedule();
  }

  setPowered(on: boolean): void {
    this.powered = on;
    this.schedule();
  }

  take(t: number, r: MotorReading): void {
    this.tempC = r.temperature;
    this.converted = true;
    this.conversions++;
    this.nextAt = t + T_CONV_MS[this.resolution & 0x03]!;
  }

  write(bytes: Uint8Array): void {
    this.feed.sync();
    if (bytes.length === 0) return;
    this.pointer = bytes[0]! & 0x0f;
    if (this.pointer === P_RESOLUTION && bytes.length >= 2) {
      this.resolution = bytes[1]! & 0x03;
      return;
    }
    if (bytes.length < 3) return;
    const v = (bytes[1]! << 8) | bytes[2]!;
    if (this.pointer === P_CONFIG) {
      this.config = v & 0x07ff;
      this.schedule();
    } else if (this.pointer === P_UPPER) this.upper = v & 0x1ffc;
    else if (this.pointer === P_LOWER) this.lower = v & 0x1ffc;
    else if (this.pointer === P_CRIT) this.crit = v & 0x1ffc;
  }

  read(n: number): Uint8Array {
    this.feed.sync();
    const out = new Uint8Array(n);
    if (this.pointer === P_RESOLUTION) {
      out.fill(this.resolution);
      return out;
    }
    const v = this.register(this.pointer);
    for (let i = 0; i < n; i++) out[i] = i % 2 === 0 ? v >> 8 : v & 0xff;
    return out;
  }

  private schedule(): void {
    const on = this.powered && (this.config & 0x0100) === 0;
    if (!on) this.nextAt = Number.NaN;
    else if (Number.isNaN(this.nextAt)) this.nextAt = this.feed.clock.now() + T_CONV_MS[this.resolution & 0x03]!;
  }

  private register(p: number): number {
    switch (p) {
      case P_CONFIG:
        return this.config;
      case P_UPPER:
        return this.upper;
      case P_LOWER:
        return this.lower;
      case P_CRIT:
        return this.crit;
      case P_TA:
        return this.ta();
      case P_MANUFACTURER:
        return MANUFACTURER_ID;
      case P_DEVICE:
        return DEVICE_ID_REV;
      default:
        return 0;
    }
  }

  /** T_A: 13-bit two's complement in 1/16 °C; resolutions coarser than 0.0625 °C leave the low bits 0. */
  private ta(): number {
    if (!this.converted) return 0x0000;
    const dropBits = 3 - (this.resolution & 0x03);
    let code = Math.round(this.tempC * 16);
    code = Math.floor(code / 2 ** dropBits) * 2 ** dropBits;
    code = Math.max(-4096, Math.min(4095, code));
    const limit = (reg: number) => {
      const c = reg & 0x1ffc;
      return c & 0x1000 ? c - 0x2000 : c; // same format as T_A, 0.25 °C steps
    };
    let flags = 0;
    if (code >= limit(this.crit)) flags |= 0x8000;
    if (code > limit(this.upper)) flags |= 0x4000;
    if (code < limit(this.lower)) flags |= 0x2000;
    return flags | (code & 0x1fff);
  }
}

/**
 * MCP9808 digital temperature sensor on I2C (Microchip MCP9808 data sheet, DS20005095B; register map
 * in section 5.1, Table 5-1).
 *
 * Set-up (init): Manufacturer ID (0x06) must read 0x0054 and the Device ID byte (0x07, MSB) 0x04;
 * CONFIG = 0x0000 (continuous conversion, alert output off, hysteresis 0); T_CRIT = −40 °C so that
 * the T_A ≥ T_CRIT flag is set at every real temperature (the alert output is off, it drives
 * nothing); Resolution = the configured step; both read back.
 *
 * Reading: T_A (0x05), 13-bit two's complement in 1/16 °C below three flag bits. The part converts
 * on its own every t_CONV (30 … 250 ms by resolution, Table 1-1), so at periods shorter than that
 * the same value repeats — the temperature does not move on that scale. T_A reads 0x0000 only before
 * the first conversion after power-on (with T_CRIT at −40 °C a real 0 °C reads 0x8000): then the
 * read has nothing yet (null), rather than inventing 0 °C.
 */
import type { Clock } from '../../core/clock.js';
import { CheckError, checkAddress, hex, readWordBE, writeWordBE, type I2cBus } from '../i2c.js';
import { IdentityError, type Driver } from './driver.js';

/** Register pointers (Table 5-1). */
export const MCP9808_REG = { CONFIG: 0x01, T_UPPER: 0x02, T_LOWER: 0x03, T_CRIT: 0x04, T_A: 0x05, MANUFACTURER_ID: 0x06, DEVICE_ID: 0x07, RESOLUTION: 0x08 } as const;
export const MCP9808_MANUFACTURER_ID = 0x0054;
export const MCP9808_DEVICE_ID = 0x04;
/** A2 A1 A0 select 0x18 … 0x1F (Table 3-2 / section 3.5). */
export const MCP9808_ADDRESSES = [0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f] as const;
/** Resolution register codes (5.1.6) and conversion times t_CONV (Table 1-1), ms. */
export const MCP9808_RESOLUTIONS: ReadonlyMap<number, { code: number; tConvMs: number }> = new Map([
  [0.5, { code: 0x00, tConvMs: 30 }],
  [0.25, { code: 0x01, tConvMs: 65 }],
  [0.125, { code: 0x02, tConvMs: 130 }],
  [0.0625, { code: 0x03, tConvMs: 250 }],
]);
/** −40 °C in the limit-register format (bit 12 sign, 0.25 °C steps in bits 11..2). */
const T_CRIT_MINUS_40 = (-40 * 16) & 0x1ffc;

export interface Mcp9808Options {
  bus: I2cBus;
  clock: Clock;
  /** 0x18 … 0x1F. */
  address: number;
  /** °C per step: 0.5, 0.25, 0.125 or 0.0625. */
  resolutionC: number;
  /** Channel the reading goes to. Default 'temperature'. */
  channel?: string;
}

export class Mcp9808 implements Driver {
  readonly id: string;
  readonly channels: readonly string[];
  readonly counters = { notConverted: 0 };
  private readonly resolution: { code: number; tConvMs: number };
  private readonly buf = Buffer.alloc(2);

  constructor(private readonly o: Mcp9808Options) {
    checkAddress(o.address, MCP9808_ADDRESSES);
    const r = MCP9808_RESOLUTIONS.get(o.resolutionC);
    if (r === undefined) throw new CheckError('mcp9808-resolution', `resolution must be one of ${[...MCP9808_RESOLUTIONS.keys()].join(', ')} °C, got ${o.resolutionC}`);
    this.resolution = r;
    this.id = `MCP9808@${hex(o.address)}`;
    this.channels = [o.channel ?? 'temperature'];
  }

  /** Time between the part's conversions at this resolution, ms. */
  get conversionMs(): number {
    return this.resolution.tConvMs;
  }

  async init(): Promise<void> {
    const { bus, address: a } = this.o;
    const man = await readWordBE(bus, a, MCP9808_REG.MANUFACTURER_ID, this.buf);
    const dev = (await readWordBE(bus, a, MCP9808_REG.DEVICE_ID, this.buf)) >> 8;
    if (man !== MCP9808_MANUFACTURER_ID || dev !== MCP9808_DEVICE_ID) {
      throw new IdentityError('mcp9808-id', `manufacturer/device ID at ${hex(a)} read ${hex(man, 4)}/${hex(dev)}, an MCP9808 reads ${hex(MCP9808_MANUFACTURER_ID, 4)}/${hex(MCP9808_DEVICE_ID)}`);
    }
    await writeWordBE(bus, a, MCP9808_REG.CONFIG, 0x0000);
    await writeWordBE(bus, a, MCP9808_REG.T_CRIT, T_CRIT_MINUS_40);
    await bus.writeByte(a, MCP9808_REG.RESOLUTION, this.resolution.code);
    const res = (await bus.readByte(a, MCP9808_REG.RESOLUTION)) & 0x03;
    const crit = (await readWordBE(bus, a, MCP9808_REG.T_CRIT, this.buf)) & 0x1ffc;
    if (res !== this.resolution.code || crit !== T_CRIT_MINUS_40) {
      throw new IdentityError('mcp9808-readback', `Resolution/T_CRIT at ${hex(a)} read ${hex(res)}/${hex(crit, 4)} after writing ${hex(this.resolution.code)}/${hex(T_CRIT_MINUS_40, 4)}`);
    }
  }

  async read(): Promise<Float64Array | null> {
    const raw = await readWordBE(this.o.bus, this.o.address, MCP9808_REG.T_A, this.buf);
    if (raw === 0x0000) {
      this.counters.notConverted++;
      return null;
    }
    return Float64Array.of(mcp9808Celsius(raw));
  }

  async close(): Promise<void> {}
}

/**
 * T_A register → °C: bits 12..0 are a 13-bit two's complement count of 1/16 °C (5.1.3; the data
 * sheet's own C example computes the negative case as 256 − T, which has the wrong sign).
 */
export function mcp9808Celsius(raw: number): number {
  let code = raw & 0x1fff;
  if (code & 0x1000) code -= 0x2000;
  return code / 16;
}

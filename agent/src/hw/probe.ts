/**
 * `anomaly-agent probe`: which parts answer on an I2C bus, identified by their identity registers —
 * reads only (a register pointer is written before each read, as for any register read), nothing is
 * configured. Then a config snippet for what was found.
 *
 * Identification per address range, in this order:
 * - 0x53, 0x1D: ADXL345 if DEVID (0x00) reads 0xE5.
 * - 0x18..0x1F: MCP9808 if Manufacturer ID (0x06) reads 0x0054 and the Device ID byte (0x07) 0x04.
 * - 0x48..0x4B: TMP117 if its Device ID register (0x0F) reads 0x117 in bits 11..0 (TI TMP117 data
 *   sheet, 7.6.1.9; an ADS1115 decodes pointer 0x0F as Hi_thresh, 0x7FFF); else ADS1115 if Lo_thresh /
 *   Hi_thresh hold their reset values 0x8000 / 0x7FFF (the ADS111x family has no ID register, so an
 *   ADS1113/1114/1015 looks the same).
 */
import type { I2cBus } from './i2c.js';
import { errorText, hex, readWordBE } from './i2c.js';

export type KnownPart = 'ADXL345' | 'MCP9808' | 'ADS1115' | 'TMP117';

export interface Finding {
  address: number;
  /** Undefined: something answers, but not a part this agent knows. */
  part?: KnownPart;
  /** What the identity registers read (or why they could not be read). */
  detail: string;
  /** The agent has a driver for it. */
  supported: boolean;
}

async function tryRead<T>(f: () => Promise<T>): Promise<T | Error> {
  try {
    return await f();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

export async function identify(bus: I2cBus, addr: number): Promise<Finding> {
  const notes: string[] = [];
  if (addr === 0x53 || addr === 0x1d) {
    const id = await tryRead(() => bus.readByte(addr, 0x00));
    if (id === 0xe5) return { address: addr, part: 'ADXL345', detail: 'DEVID 0xE5', supported: true };
    notes.push(id instanceof Error ? `DEVID unreadable (${errorText(id)})` : `DEVID ${hex(id)}`);
  }
  if (addr >= 0x18 && addr <= 0x1f) {
    const man = await tryRead(() => readWordBE(bus, addr, 0x06));
    const dev = await tryRead(() => readWordBE(bus, addr, 0x07));
    if (man === 0x0054 && typeof dev === 'number' && dev >> 8 === 0x04) return { address: addr, part: 'MCP9808', detail: `manufacturer 0x0054, device 0x04 rev ${hex(dev & 0xff)}`, supported: true };
    notes.push(man instanceof Error ? `manufacturer ID unreadable (${errorText(man)})` : `manufacturer ID ${hex(man, 4)}`);
  }
  if (addr >= 0x48 && addr <= 0x4b) {
    const tmp = await tryRead(() => readWordBE(bus, addr, 0x0f));
    if (typeof tmp === 'number' && (tmp & 0x0fff) === 0x117) return { address: addr, part: 'TMP117', detail: `device ID ${hex(tmp, 4)}`, supported: false };
    const lo = await tryRead(() => readWordBE(bus, addr, 0x02));
    const hi = await tryRead(() => readWordBE(bus, addr, 0x03));
    if (lo === 0x8000 && hi === 0x7fff) return { address: addr, part: 'ADS1115', detail: 'Lo_thresh 0x8000, Hi_thresh 0x7FFF (reset values; no ID register)', supported: true };
    notes.push(lo instanceof Error ? `thresholds unreadable (${errorText(lo)})` : `Lo_thresh ${hex(lo, 4)}, Hi_thresh ${typeof hi === 'number' ? hex(hi, 4) : '?'}`);
  }
  return { address: addr, detail: notes.length ? `not identified: ${notes.join('; ')}` : 'no known part uses this address', supported: false };
}

export async function probeBus(bus: I2cBus): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const addr of await bus.scan()) out.push(await identify(bus, addr));
  return out;
}

/** The `hardware` settings for what was found (first of each part), as a config file fragment. */
export function configSnippet(findings: readonly Finding[], i2cBus: number): Record<string, unknown> {
  const first = (p: KnownPart) => findings.find((f) => f.part === p);
  const hardware: Record<string, unknown> = { i2cBus };
  const adxl = first('ADXL345');
  if (adxl) hardware.adxl345 = { address: hex(adxl.address) };
  const ads = first('ADS1115');
  if (ads) hardware.ads1115 = { address: hex(ads.address) };
  const mcp = first('MCP9808');
  if (mcp) hardware.mcp9808 = { address: hex(mcp.address) };
  return { source: { kind: 'hardware' }, hardware };
}

/**
 * The I2C bus as the drivers see it: the subset of i2c-bus's PromisifiedBus they use, with the same
 * method names, arguments and results, so the real bus is i2c-bus itself and an emulated bus
 * (hw/emulated/bus.ts) implements the same few methods with the chips' register maps behind them.
 *
 * `openI2cBus` imports i2c-bus lazily (CONVENTIONS.md, habit 4): nothing on a laptop or in CI loads
 * the native module unless a real bus is opened.
 */
import { access, constants } from 'node:fs/promises';
import type { BusErrorCode } from '../core/faults.js';

/** i2c-bus's `{bytesRead, buffer}` / `{bytesWritten, buffer}` results. */
export interface BytesRead {
  bytesRead: number;
  buffer: Buffer;
}
export interface BytesWritten {
  bytesWritten: number;
  buffer: Buffer;
}

export interface I2cBus {
  /** SMBus read byte: write `cmd`, read one byte (0..255). */
  readByte(addr: number, cmd: number): Promise<number>;
  /** SMBus write byte: write `cmd`, then `byte`. */
  writeByte(addr: number, cmd: number, byte: number): Promise<void>;
  /** I2C block read: write `cmd`, repeated start, read `length` (≤ 32) bytes into `buffer`. */
  readI2cBlock(addr: number, cmd: number, length: number, buffer: Buffer): Promise<BytesRead>;
  /** I2C block write: write `cmd`, then `length` (≤ 32) bytes of `buffer`, in one transaction. */
  writeI2cBlock(addr: number, cmd: number, length: number, buffer: Buffer): Promise<BytesWritten>;
  /** Addresses in [startAddr, endAddr] (default 0x03..0x77, as i2cdetect) that acknowledge. */
  scan(startAddr?: number, endAddr?: number): Promise<number[]>;
  close(): Promise<void>;
}

/** Lowest and highest 7-bit addresses a device may use (0x00–0x02 and 0x78–0x7F are reserved, I2C spec UM10204 §3.1.12). */
export const I2C_ADDR_MIN = 0x03;
export const I2C_ADDR_MAX = 0x77;
/** SMBus/i2c-dev limit of one block transfer (I2C_SMBUS_BLOCK_MAX). */
export const I2C_BLOCK_MAX = 32;

/** A boundary check failed: `check` names it, the message says what was given and what is allowed. */
export class CheckError extends RangeError {
  override readonly name = 'CheckError';
  constructor(
    readonly check: string,
    message: string,
  ) {
    super(`check '${check}' failed: ${message}`);
  }
}

/** Named check `i2c-address`: a 7-bit device address in 0x03..0x77 (i2c-bus checks the same in checkAddress). */
export function checkAddress(addr: number, allowed?: readonly number[]): number {
  if (!Number.isInteger(addr) || addr < I2C_ADDR_MIN || addr > I2C_ADDR_MAX) {
    throw new CheckError('i2c-address', `address ${String(addr)} is not a 7-bit device address (0x03..0x77)`);
  }
  if (allowed && !allowed.includes(addr)) {
    throw new CheckError('i2c-address', `address ${hex(addr)} is not one the chip answers on (${allowed.map((a) => hex(a)).join(', ')})`);
  }
  return addr;
}

/** `0x53` */
export function hex(n: number, digits = 2): string {
  return '0x' + n.toString(16).toUpperCase().padStart(digits, '0');
}

/** A Linux system error as node reports it (`err.code`, `err.errno`, `err.syscall`), which is what i2c-bus rejects with. */
export interface SystemError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
}

/**
 * The error codes a failing transfer produces on Linux i2c-dev: a NACK on the address or on data is
 * EREMOTEIO on the Raspberry Pi's i2c-bcm2835 (ENXIO on some other adapters), an adapter error EIO,
 * a held-down bus or a chip stretching the clock too long ETIMEDOUT.
 */
export const I2C_ERROR_CODES = {
  EIO: { errno: 5, text: 'Input/output error' },
  ENXIO: { errno: 6, text: 'No such device or address' },
  EREMOTEIO: { errno: 121, text: 'Remote I/O error' },
  ETIMEDOUT: { errno: 110, text: 'Connection timed out' },
} as const satisfies Record<BusErrorCode, { errno: number; text: string }>;
export type I2cErrorCode = keyof typeof I2C_ERROR_CODES;

/** Builds the error a real transfer would reject with (for the emulated bus and tests). */
export function i2cError(code: I2cErrorCode, syscall = 'ioctl'): SystemError {
  const e = I2C_ERROR_CODES[code];
  const err = new Error(`${code}, ${e.text}`) as SystemError;
  err.code = code;
  err.errno = -e.errno;
  err.syscall = syscall;
  return err;
}

/** True for a failed transfer (retry may help), false for a programming error. */
export function isTransferError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code in I2C_ERROR_CODES;
}

/** Short text for logs and status: the code if there is one, else the message. */
export function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.message === 'string' ? e.message : String(err);
}

/** Reads a big-endian 16-bit register (ADS1115, MCP9808 order: MSB first). */
export async function readWordBE(bus: I2cBus, addr: number, reg: number, buf = Buffer.alloc(2)): Promise<number> {
  const { bytesRead } = await bus.readI2cBlock(addr, reg, 2, buf);
  if (bytesRead !== 2) throw Object.assign(i2cError('EIO', 'read'), { message: `short read: ${bytesRead} of 2 bytes` });
  return buf.readUInt16BE(0);
}

/** Writes a big-endian 16-bit register. */
export async function writeWordBE(bus: I2cBus, addr: number, reg: number, value: number): Promise<void> {
  const buf = Buffer.alloc(2);
  buf.writeUInt16BE(value & 0xffff, 0);
  await bus.writeI2cBlock(addr, reg, 2, buf);
}

/**
 * Opens /dev/i2c-<busNumber> through i2c-bus, imported here and only here, on first use. On a machine
 * without the native module or the device file the error says which.
 */
export async function openI2cBus(busNumber: number): Promise<I2cBus> {
  if (!Number.isInteger(busNumber) || busNumber < 0) throw new CheckError('i2c-bus-number', `bus number must be an integer >= 0, got ${String(busNumber)}`);
  let mod: { openPromisified(n: number): Promise<I2cBus> };
  try {
    // i2c-bus is CommonJS; its functions arrive as the default export.
    const m = (await import('i2c-bus')) as unknown as { default?: typeof mod } & typeof mod;
    mod = m.default ?? m;
  } catch (err) {
    throw new Error(`cannot load i2c-bus (the native I2C module): ${(err as Error).message}`, { cause: err });
  }
  try {
    // i2c-bus opens the device file only at a part's first transfer; check it now, so a missing bus
    // or a permission problem is reported at start, by name.
    await access(`/dev/i2c-${busNumber}`, constants.R_OK | constants.W_OK);
    return await mod.openPromisified(busNumber);
  } catch (err) {
    throw new Error(`cannot open /dev/i2c-${busNumber}: ${errorText(err)} (is I2C enabled — raspi-config → Interface Options → I2C — and is the user in group i2c?)`, { cause: err });
  }
}

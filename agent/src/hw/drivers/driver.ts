/**
 * What every sensor driver offers the sampler (hw/sampler.ts): identity check and configuration in
 * `init()`, one reading per profile period in `read()`, in SI units, channel by channel.
 */
import type { Clock } from '../../core/clock.js';
import { CheckError } from '../i2c.js';

export interface Driver {
  /** Part and where it sits, e.g. 'ADXL345@0x53', 'rpm@GPIO17'. */
  readonly id: string;
  /** Channel names `read()` fills, in order (e.g. accel_x, accel_y, accel_z). */
  readonly channels: readonly string[];
  /**
   * Checks the part's identity and writes its configuration (again after a failure: a chip that was
   * unplugged comes back at its reset values). Rejects with IdentityError, CheckError or the bus error.
   */
  init(): Promise<void>;
  /**
   * The reading for this period, one value per channel, or null when the part has nothing new yet
   * (a conversion not finished since init). Rejects with the bus error, or ChipResetError when the
   * part shows it lost its configuration.
   */
  read(): Promise<Float64Array | null>;
  /** Releases what init() took (interrupt watchers); the bus belongs to the caller. */
  close(): Promise<void>;
  /** Events worth counting beyond failed reads, e.g. FIFO overflows. */
  readonly counters?: Readonly<Record<string, number>>;
}

/** The part at the address is not the one configured (wrong address, other chip, bad wiring). */
export class IdentityError extends Error {
  override readonly name = 'IdentityError';
  constructor(
    readonly check: string,
    message: string,
  ) {
    super(`check '${check}' failed: ${message}`);
  }
}

/** The part answers but has lost its configuration (power-cycled, replugged): init() again. */
export class ChipResetError extends Error {
  override readonly name = 'ChipResetError';
}

/** Waits `ms` on `clock` (a ManualClock makes it instant in tests). */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/** Named check: `value` is one of `allowed`. */
export function oneOf<T extends number | string>(check: string, what: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) throw new CheckError(check, `${what} must be one of ${allowed.join(', ')}, got ${String(value)}`);
  return value;
}

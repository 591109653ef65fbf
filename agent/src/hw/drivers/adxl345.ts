/**
 * ADXL345 3-axis accelerometer on I2C (Analog Devices ADXL345 data sheet, Rev. G; register map in
 * Table 19, register descriptions in "Register Definitions").
 *
 * Set-up (init): DEVID must read 0xE5; then, in standby (the data sheet asks for configuration in
 * standby), BW_RATE = the output data rate, DATA_FORMAT = FULL_RES | range (right-justified),
 * FIFO_CTL = stream mode, INT_ENABLE = 0, and finally POWER_CTL = Measure; each register is read back.
 *
 * Reading (once per profile period): FIFO_STATUS gives the entries waiting; each is popped by one
 * 6-byte burst from DATAX0 (the data sheet requires a multiple-byte read so the three axes belong to
 * one sample). Stream mode keeps the newest 32 samples, so samples at hundreds of Hz are not lost
 * between reads; a full FIFO means some were (counted as `fifoOverflows`). The period's value per
 * axis is the newest sample — one value per axis per period, as the seed format and the models
 * expect. With `stats`, the driver also gives per axis the burst's RMS and peak of the AC part
 * (the sample minus the burst mean: gravity and offsets removed), over every sample of the period.
 *
 * An empty FIFO is either a read that came early (no sample since the last one) or a part that was
 * power-cycled (it wakes in standby): POWER_CTL tells which; the latter is a ChipResetError.
 */
import { CheckError, checkAddress, hex, type I2cBus } from '../i2c.js';
import { ChipResetError, IdentityError, oneOf, type Driver } from './driver.js';

/** Register addresses (Table 19). */
export const ADXL345_REG = {
  DEVID: 0x00,
  BW_RATE: 0x2c,
  POWER_CTL: 0x2d,
  INT_ENABLE: 0x2e,
  INT_SOURCE: 0x30,
  DATA_FORMAT: 0x31,
  DATAX0: 0x32,
  FIFO_CTL: 0x38,
  FIFO_STATUS: 0x39,
} as const;
/** DEVID holds a fixed device ID code of 0xE5 (345 octal). */
export const ADXL345_DEVID = 0xe5;
/** ALT ADDRESS pin high: 0x1D; low: 0x53 (data sheet, "Serial communications", I2C). */
export const ADXL345_ADDRESSES = [0x53, 0x1d] as const;
/** POWER_CTL D3: Measure. */
const MEASURE = 0x08;
/** DATA_FORMAT D3: FULL_RES; D1:D0 range ±2/4/8/16 g = 0..3. */
const FULL_RES = 0x08;
/** FIFO_CTL D7:D6 = 10: stream mode. */
const FIFO_STREAM = 0x80;
/** FIFO_STATUS D5:D0: entries. */
const ENTRIES_MASK = 0x3f;
/** The FIFO holds 32 samples ("FIFO" section). */
export const ADXL345_FIFO_DEPTH = 32;
/** Scale factor at full resolution: 3.9 mg/LSB, every range (Table 1). In 10-bit mode it doubles per range step. */
export const ADXL345_G_PER_LSB = 0.0039;
export const STANDARD_GRAVITY = 9.80665;
/** Output data rates and their BW_RATE rate codes D3:D0 (Table 7), down to 12.5 Hz. */
export const ADXL345_ODR_CODES: ReadonlyMap<number, number> = new Map([
  [3200, 0x0f],
  [1600, 0x0e],
  [800, 0x0d],
  [400, 0x0c],
  [200, 0x0b],
  [100, 0x0a],
  [50, 0x09],
  [25, 0x08],
  [12.5, 0x07],
]);
export const ADXL345_RANGES_G = [2, 4, 8, 16] as const;
/**
 * Share of the FIFO one period may fill: the rest is room for a read that comes late (a busy event
 * loop) without losing samples.
 */
const FIFO_FILL_LIMIT = 0.75;

export interface Adxl345Options {
  bus: I2cBus;
  /** 0x53 (ALT ADDRESS low) or 0x1D. */
  address: number;
  /** Measurement range, ±g: 2, 4, 8 or 16. */
  rangeG: number;
  /** Output data rate, Hz (3200 … 12.5). */
  odrHz: number;
  /** Read period (the profile's), ms: the FIFO must neither run dry nor overflow at it. */
  periodMs: number;
  /** Full resolution (3.9 mg/LSB at every range); false: 10-bit. Default true. */
  fullResolution?: boolean;
  /** Also give accel_{x,y,z}_rms and accel_{x,y,z}_peak of each period's burst. Default false. */
  stats?: boolean;
}

export const ADXL345_CHANNELS = ['accel_x', 'accel_y', 'accel_z'] as const;
export const ADXL345_STAT_CHANNELS = ['accel_x_rms', 'accel_y_rms', 'accel_z_rms', 'accel_x_peak', 'accel_y_peak', 'accel_z_peak'] as const;

export class Adxl345 implements Driver {
  readonly id: string;
  readonly channels: readonly string[];
  readonly counters = { fifoOverflows: 0, samples: 0 };
  private readonly rangeCode: number;
  private readonly rateCode: number;
  private readonly dataFormat: number;
  /** m/s² per LSB. */
  private readonly scale: number;
  private readonly buf = Buffer.alloc(6);
  /** This period's burst, per axis (FIFO_STATUS entries is a 6-bit field: room for 63). */
  private readonly burst = [new Float64Array(64), new Float64Array(64), new Float64Array(64)];

  constructor(private readonly o: Adxl345Options) {
    checkAddress(o.address, ADXL345_ADDRESSES);
    const range = oneOf('adxl345-range', 'range (±g)', o.rangeG, ADXL345_RANGES_G);
    const rate = ADXL345_ODR_CODES.get(o.odrHz);
    if (rate === undefined) throw new CheckError('adxl345-odr', `output data rate must be one of ${[...ADXL345_ODR_CODES.keys()].join(', ')} Hz, got ${o.odrHz}`);
    const perPeriod = (o.odrHz * o.periodMs) / 1000;
    if (perPeriod < 1) throw new CheckError('adxl345-odr', `at ${o.odrHz} Hz a ${o.periodMs} ms period gets ${perPeriod.toFixed(2)} samples; the rate must give at least 1 per period (>= ${Math.ceil(1000 / o.periodMs)} Hz)`);
    if (perPeriod > FIFO_FILL_LIMIT * ADXL345_FIFO_DEPTH) {
      throw new CheckError(
        'adxl345-fifo-depth',
        `at ${o.odrHz} Hz a ${o.periodMs} ms period fills ${perPeriod} of the ${ADXL345_FIFO_DEPTH} FIFO entries; keep it <= ${FIFO_FILL_LIMIT * ADXL345_FIFO_DEPTH} so a late read loses nothing (a lower rate)`,
      );
    }
    this.rangeCode = ADXL345_RANGES_G.indexOf(range as (typeof ADXL345_RANGES_G)[number]);
    this.rateCode = rate;
    const full = o.fullResolution ?? true;
    this.dataFormat = (full ? FULL_RES : 0) | this.rangeCode;
    this.scale = ADXL345_G_PER_LSB * (full ? 1 : 2 ** this.rangeCode) * STANDARD_GRAVITY;
    this.id = `ADXL345@${hex(o.address)}`;
    this.channels = o.stats ? [...ADXL345_CHANNELS, ...ADXL345_STAT_CHANNELS] : [...ADXL345_CHANNELS];
  }

  /** m/s² per LSB at this configuration. */
  get lsb(): number {
    return this.scale;
  }

  async init(): Promise<void> {
    const { bus, address: a } = this.o;
    const id = await bus.readByte(a, ADXL345_REG.DEVID);
    if (id !== ADXL345_DEVID) throw new IdentityError('adxl345-devid', `DEVID at ${hex(a)} reads ${hex(id)}, an ADXL345 reads ${hex(ADXL345_DEVID)}`);
    await bus.writeByte(a, ADXL345_REG.POWER_CTL, 0); // standby while configuring
    await bus.writeByte(a, ADXL345_REG.BW_RATE, this.rateCode);
    await bus.writeByte(a, ADXL345_REG.DATA_FORMAT, this.dataFormat);
    await bus.writeByte(a, ADXL345_REG.INT_ENABLE, 0);
    await bus.writeByte(a, ADXL345_REG.FIFO_CTL, 0); // bypass first: clears the FIFO
    await bus.writeByte(a, ADXL345_REG.FIFO_CTL, FIFO_STREAM);
    await bus.writeByte(a, ADXL345_REG.POWER_CTL, MEASURE);
    const expect: Array<[string, number, number]> = [
      ['BW_RATE', ADXL345_REG.BW_RATE, this.rateCode],
      ['DATA_FORMAT', ADXL345_REG.DATA_FORMAT, this.dataFormat],
      ['FIFO_CTL', ADXL345_REG.FIFO_CTL, FIFO_STREAM],
      ['POWER_CTL', ADXL345_REG.POWER_CTL, MEASURE],
    ];
    for (const [name, reg, want] of expect) {
      const got = await bus.readByte(a, reg);
      if (got !== want) throw new IdentityError('adxl345-readback', `${name} at ${hex(a)} reads ${hex(got)} after writing ${hex(want)}`);
    }
  }

  async read(): Promise<Float64Array | null> {
    const { bus, address: a } = this.o;
    const entries = (await bus.readByte(a, ADXL345_REG.FIFO_STATUS)) & ENTRIES_MASK;
    if (entries === 0) {
      const power = await bus.readByte(a, ADXL345_REG.POWER_CTL);
      if ((power & MEASURE) === 0) throw new ChipResetError(`${this.id} is in standby (POWER_CTL ${hex(power)}): it was power-cycled`);
      return null; // read came before the next sample
    }
    if (entries >= ADXL345_FIFO_DEPTH) this.counters.fifoOverflows++;
    const [bx, by, bz] = this.burst as [Float64Array, Float64Array, Float64Array];
    for (let i = 0; i < entries; i++) {
      await bus.readI2cBlock(a, ADXL345_REG.DATAX0, 6, this.buf);
      // DATAx0 is the low byte; right-justified full-resolution data is sign-extended to 16 bits.
      bx[i] = this.buf.readInt16LE(0) * this.scale;
      by[i] = this.buf.readInt16LE(2) * this.scale;
      bz[i] = this.buf.readInt16LE(4) * this.scale;
    }
    this.counters.samples += entries;
    const out = new Float64Array(this.channels.length);
    out[0] = bx[entries - 1]!;
    out[1] = by[entries - 1]!;
    out[2] = bz[entries - 1]!;
    if (this.o.stats) {
      [bx, by, bz].forEach((b, axis) => {
        const { rms, peak } = acStats(b, entries);
        out[3 + axis] = rms;
        out[6 + axis] = peak;
      });
    }
    return out;
  }

  async close(): Promise<void> {}
}

/** RMS and peak of |x − mean| over the first n values. */
export function acStats(x: Float64Array, n: number): { rms: number; peak: number } {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i]!;
  mean /= n;
  let sq = 0;
  let peak = 0;
  for (let i = 0; i < n; i++) {
    const d = x[i]! - mean;
    sq += d * d;
    if (Math.abs(d) > peak) peak = Math.abs(d);
  }
  return { rms: Math.sqrt(sq / n), peak };
}

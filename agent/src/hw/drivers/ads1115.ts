/**
 * ADS1115 16-bit ADC on I2C (Texas Instruments ADS1115 data sheet, SBAS444D; registers in section
 * 9.6, Config register Table 8), measuring a supply voltage through a front end that turns it into a
 * small DC level: e.g. an isolated AC-voltage module with an RMS-to-DC converter, V_in = V_mains / ratio.
 * The reading is `code · FSR / 32768 · ratio` in the front end's units (V RMS for voltage; A for a
 * current-transformer channel with its burden and converter, ratio in A per V).
 *
 * The part has no ID register. Identity: Lo_thresh and Hi_thresh hold their reset values 0x8000 and
 * 0x7FFF (nothing here writes them; 9.6.4), and the Config value written reads back (OS aside).
 *
 * Modes:
 * - single-shot (default): each read writes Config with OS = 1 (start), waits one conversion time
 *   (1/DR, +10 % for the data rate tolerance in 7.5 Electrical Characteristics, + 0.1 ms), polls OS
 *   until it reads 1 (done), then reads Conversion. Every read rewrites the configuration, so a
 *   power-cycled part is configured again by the next read.
 * - continuous: Conversion always holds the latest result; each read also reads Config and compares
 *   it with what was written, so a power-cycled part (back in single-shot power-down) is noticed.
 */
import type { Clock } from '../../core/clock.js';
import { CheckError, checkAddress, hex, readWordBE, writeWordBE, type I2cBus } from '../i2c.js';
import { ChipResetError, IdentityError, oneOf, sleep, type Driver } from './driver.js';

/** Address pointer register values (9.6.1). */
export const ADS1115_REG = { CONVERSION: 0x00, CONFIG: 0x01, LO_THRESH: 0x02, HI_THRESH: 0x03 } as const;
/** ADDR pin to GND, VDD, SDA, SCL (Table 4). */
export const ADS1115_ADDRESSES = [0x48, 0x49, 0x4a, 0x4b] as const;
/** Lo_thresh / Hi_thresh reset values (9.6.4). */
export const ADS1115_LO_THRESH_RESET = 0x8000;
export const ADS1115_HI_THRESH_RESET = 0x7fff;
/** Config fields (Table 8). */
const OS = 0x8000;
const MODE_SINGLE = 0x0100;
const COMP_QUE_DISABLE = 0x0003;
/** PGA[11:9] full-scale ranges, V. */
export const ADS1115_FSR_CODES: ReadonlyMap<number, number> = new Map([
  [6.144, 0b000],
  [4.096, 0b001],
  [2.048, 0b010],
  [1.024, 0b011],
  [0.512, 0b100],
  [0.256, 0b101],
]);
/** DR[7:5] data rates, samples per second. */
export const ADS1115_DR_CODES: ReadonlyMap<number, number> = new Map([
  [8, 0b000],
  [16, 0b001],
  [32, 0b010],
  [64, 0b011],
  [128, 0b100],
  [250, 0b101],
  [475, 0b110],
  [860, 0b111],
]);
/** MUX[14:12] input selection. */
export const ADS1115_MUX_CODES: ReadonlyMap<string, number> = new Map([
  ['AIN0-AIN1', 0b000],
  ['AIN0-AIN3', 0b001],
  ['AIN1-AIN3', 0b010],
  ['AIN2-AIN3', 0b011],
  ['AIN0', 0b100],
  ['AIN1', 0b101],
  ['AIN2', 0b110],
  ['AIN3', 0b111],
]);
/** Data rate tolerance (7.5 Electrical Characteristics: −10 % … +10 %). */
const DR_TOLERANCE = 0.1;
const POLLS = 5;

export type Ads1115Mode = 'single' | 'continuous';

export interface Ads1115Options {
  bus: I2cBus;
  clock: Clock;
  /** 0x48..0x4B. */
  address: number;
  /** Full-scale range (PGA), V: 6.144, 4.096, 2.048, 1.024, 0.512, 0.256. */
  fsrV: number;
  /** Data rate, samples per second: 8 … 860. */
  dataRate: number;
  mode: Ads1115Mode;
  /** Input: 'AIN0' … 'AIN3' against GND, or a differential pair 'AIN0-AIN1', … */
  input: string;
  /** Front-end ratio: measured units per volt at the input (e.g. 100 V per V). */
  ratio: number;
  /** Channel name the reading goes to. Default 'voltage'. */
  channel?: string;
  /** Read period, ms: a single-shot conversion must fit in half of it. */
  periodMs: number;
}

export class Ads1115 implements Driver {
  readonly id: string;
  readonly channels: readonly string[];
  readonly counters = { conversions: 0, pollRetries: 0 };
  /** Config as written (OS clear). */
  readonly config: number;
  private readonly conversionMs: number;
  private readonly buf = Buffer.alloc(2);
  private readyAt = 0;

  constructor(private readonly o: Ads1115Options) {
    checkAddress(o.address, ADS1115_ADDRESSES);
    const pga = ADS1115_FSR_CODES.get(o.fsrV);
    if (pga === undefined) throw new CheckError('ads1115-pga', `full-scale range must be one of ${[...ADS1115_FSR_CODES.keys()].join(', ')} V, got ${o.fsrV}`);
    const dr = ADS1115_DR_CODES.get(o.dataRate);
    if (dr === undefined) throw new CheckError('ads1115-data-rate', `data rate must be one of ${[...ADS1115_DR_CODES.keys()].join(', ')} SPS, got ${o.dataRate}`);
    const mux = ADS1115_MUX_CODES.get(o.input);
    if (mux === undefined) throw new CheckError('ads1115-input', `input must be one of ${[...ADS1115_MUX_CODES.keys()].join(', ')}, got ${o.input}`);
    oneOf('ads1115-mode', 'mode', o.mode, ['single', 'continuous']);
    if (!(o.ratio > 0) || !Number.isFinite(o.ratio)) throw new CheckError('ads1115-ratio', `front-end ratio must be a finite number > 0, got ${o.ratio}`);
    this.conversionMs = (1000 / o.dataRate) * (1 + DR_TOLERANCE) + 0.1;
    if (o.mode === 'single' && this.conversionMs > o.periodMs / 2) {
      throw new CheckError('ads1115-conversion-time', `a conversion at ${o.dataRate} SPS takes up to ${this.conversionMs.toFixed(1)} ms, more than half the ${o.periodMs} ms period (a higher data rate)`);
    }
    if (o.mode === 'continuous' && 1000 / o.dataRate > o.periodMs) {
      throw new CheckError('ads1115-conversion-time', `at ${o.dataRate} SPS a conversion ends only every ${(1000 / o.dataRate).toFixed(1)} ms, slower than the ${o.periodMs} ms period`);
    }
    this.config = (mux << 12) | (pga << 9) | (o.mode === 'single' ? MODE_SINGLE : 0) | (dr << 5) | COMP_QUE_DISABLE;
    this.id = `ADS1115@${hex(o.address)}`;
    this.channels = [o.channel ?? 'voltage'];
  }

  /** Measured units per LSB (FSR/32768 · ratio). */
  get lsb(): number {
    return (this.o.fsrV / 32768) * this.o.ratio;
  }

  async init(): Promise<void> {
    const { bus, address: a } = this.o;
    const lo = await readWordBE(bus, a, ADS1115_REG.LO_THRESH, this.buf);
    const hi = await readWordBE(bus, a, ADS1115_REG.HI_THRESH, this.buf);
    if (lo !== ADS1115_LO_THRESH_RESET || hi !== ADS1115_HI_THRESH_RESET) {
      throw new IdentityError('ads1115-identity', `Lo_thresh/Hi_thresh at ${hex(a)} read ${hex(lo, 4)}/${hex(hi, 4)}, an ADS1115 holds ${hex(ADS1115_LO_THRESH_RESET, 4)}/${hex(ADS1115_HI_THRESH_RESET, 4)}`);
    }
    await writeWordBE(bus, a, ADS1115_REG.CONFIG, this.config);
    const back = (await readWordBE(bus, a, ADS1115_REG.CONFIG, this.buf)) & ~OS;
    if (back !== this.config) throw new IdentityError('ads1115-readback', `Config at ${hex(a)} reads ${hex(back, 4)} after writing ${hex(this.config, 4)}`);
    // Continuous: the first result is there one conversion after the write.
    this.readyAt = this.o.clock.now() + (this.o.mode === 'continuous' ? this.conversionMs : 0);
  }

  async read(): Promise<Float64Array | null> {
    const { bus, address: a, clock } = this.o;
    if (this.o.mode === 'continuous') {
      if (clock.now() < this.readyAt) return null;
      const cfg = (await readWordBE(bus, a, ADS1115_REG.CONFIG, this.buf)) & ~OS;
      if (cfg !== this.config) throw new ChipResetError(`${this.id} Config reads ${hex(cfg, 4)}, not the ${hex(this.config, 4)} written: it was power-cycled`);
    } else {
      await writeWordBE(bus, a, ADS1115_REG.CONFIG, this.config | OS);
      await sleep(clock, this.conversionMs);
      let done = false;
      for (let i = 0; i < POLLS && !done; i++) {
        if (i > 0) {
          this.counters.pollRetries++;
          await sleep(clock, this.conversionMs / 4);
        }
        done = ((await readWordBE(bus, a, ADS1115_REG.CONFIG, this.buf)) & OS) !== 0;
      }
      if (!done) throw Object.assign(new Error(`${this.id}: conversion not done after ${POLLS} polls`), { code: 'ETIMEDOUT' });
    }
    const code = (await readWordBE(bus, a, ADS1115_REG.CONVERSION, this.buf)) << 16 >> 16; // two's complement
    this.counters.conversions++;
    return Float64Array.of(code * this.lsb);
  }

  async close(): Promise<void> {}
}

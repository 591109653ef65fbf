/**
 * Emulated ADS1115 16-bit delta-sigma ADC (Texas Instruments ADS1115 data sheet, SBAS444D), I2C side.
 * Register numbers and fields written out from the data sheet (section 9.6), independently of the
 * driver.
 *
 * Implemented: the address pointer register (P[1:0]); Conversion (read-only); Config with OS (start a
 * single-shot conversion / conversion in progress), MUX (all eight input pairs), PGA (full-scale range),
 * MODE (continuous / single-shot power-down), DR (8..860 SPS) and the comparator fields stored;
 * Lo_thresh / Hi_thresh stored with their reset values 0x8000 / 0x7FFF. Registers are 16-bit, MSB
 * first. A conversion takes 1/DR (a typical part: the data sheet allows ±10 %). Being delta-sigma, the
 * part averages its input over the conversion (the digital filter of 9.3.6 settles within one
 * conversion); the emulation averages SUBSAMPLES readings spread over it — so ripple faster than
 * the data rate is filtered as on the real part, and a slow data rate is a low-pass filter. Inputs
 * are clamped to the supply rails (GND − 0.3 V, VDD + 0.3 V: the ESD diodes) and codes saturate at
 * 0x7FFF / 0x8000. No noise is added: at these settings it is a few LSB, far below the simulator's.
 */
import type { MotorReading } from '../../motor/simulator.js';
import type { EmulatedChip } from './bus.js';
import type { MotorFeed, PeriodicSampler } from './motor-feed.js';

const P_CONVERSION = 0;
const P_CONFIG = 1;
const P_LO_THRESH = 2;
const P_HI_THRESH = 3;
/** Config reset value (data sheet Table 8): OS=1, MUX=000, PGA=010 (±2.048 V), MODE=1, DR=100 (128 SPS), COMP_QUE=11. */
const CONFIG_RESET = 0x8583;
/** Full-scale range per PGA[11:9] (Table 8 / 9.3.3), V. */
const FSR = [6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256];
/** Data rate per DR[7:5], samples per second. */
const DATA_RATE = [8, 16, 32, 64, 128, 250, 475, 860];

/** Readings averaged per conversion. */
const SUBSAMPLES = 4;

/** An analog input: volts, from the motor's reading at instant t (ms epoch). */
export type AnalogInput = (r: MotorReading, t: number) => number;

export interface EmulatedAds1115Options {
  feed: MotorFeed;
  /** AIN0..AIN3; a missing input reads 0 V (tied to GND). */
  inputs: Partial<Record<0 | 1 | 2 | 3, AnalogInput>>;
  /** Supply voltage, V. Default 3.3 (the Raspberry Pi's 3V3 rail). */
  vdd?: number;
}

export class EmulatedAds1115 implements EmulatedChip, PeriodicSampler {
  readonly part = 'ADS1115';
  /** Conversions completed since construction. */
  conversions = 0;
  /** Next sub-sample of the conversion in progress (NaN: none). */
  nextAt = Number.NaN;
  private sum = 0;
  private taken = 0;
  /** Start of the conversion being averaged. */
  private convStart = Number.NaN;
  private powered = true;

  private pointer = 0;
  private config = CONFIG_RESET;
  private lo = 0x8000;
  private hi = 0x7fff;
  private conversion = 0;
  /** Single-shot: end of the conversion in progress (NaN: none). */
  private busyUntil = Number.NaN;
  /** Continuous: start of the conversion in progress (NaN: not converting continuously). */
  private continuousFrom = Number.NaN;

  constructor(private readonly o: EmulatedAds1115Options) {
    o.feed.every(this);
  }

  setPowered(on: boolean): void {
    this.powered = on;
    if (!on) this.abort();
  }

  reset(): void {
    this.abort();
    this.pointer = 0;
    this.config = CONFIG_RESET;
    this.lo = 0x8000;
    this.hi = 0x7fff;
    this.conversion = 0;
    this.busyUntil = Number.NaN;
    this.continuousFrom = Number.NaN;
  }

  write(bytes: Uint8Array): void {
    this.o.feed.sync();
    this.update();
    if (bytes.length === 0) return;
    this.pointer = bytes[0]! & 0x03; // P[7:2] must be 0; the part only decodes P[1:0]
    if (bytes.length < 3) return; // a pointer write (a data write needs both bytes)
    const v = (bytes[1]! << 8) | bytes[2]!;
    if (this.pointer === P_CONFIG) this.writeConfig(v);
    else if (this.pointer === P_LO_THRESH) this.lo = v;
    else if (this.pointer === P_HI_THRESH) this.hi = v;
    // the conversion register is read-only
  }

  read(n: number): Uint8Array {
    this.o.feed.sync();
    this.update();
    const v = this.register(this.pointer);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = i % 2 === 0 ? v >> 8 : v & 0xff;
    return out;
  }

  private register(p: number): number {
    if (p === P_CONVERSION) return this.conversion & 0xffff;
    if (p === P_CONFIG) {
      // OS reads 0 while a conversion is in progress (single-shot) and in continuous mode, 1 when idle.
      const busy = !Number.isNaN(this.busyUntil) || this.continuous;
      return (this.config & 0x7fff) | (busy ? 0 : 0x8000);
    }
    return p === P_LO_THRESH ? this.lo : this.hi;
  }

  private get continuous(): boolean {
    return (this.config & 0x0100) === 0;
  }

  private get periodMs(): number {
    return 1000 / DATA_RATE[(this.config >> 5) & 0x07]!;
  }

  private writeConfig(v: number): void {
    this.config = v & 0x7fff; // OS is a command bit, not stored
    const now = this.o.feed.clock.now();
    if (this.continuous) {
      // Any config write restarts the conversion cycle with the new settings.
      this.busyUntil = Number.NaN;
      this.begin(now);
      return;
    }
    if (!Number.isNaN(this.continuousFrom)) this.abort(); // continuous → power-down
    // Single-shot: writing OS = 1 in power-down starts one conversion; ignored while one is running.
    if (v & 0x8000 && Number.isNaN(this.busyUntil)) {
      this.busyUntil = now + this.periodMs;
      this.begin(now);
    }
  }

  /** A conversion starts at t: its sub-samples are taken by the feed at their instants. */
  private begin(t: number): void {
    if (this.continuous) this.continuousFrom = t;
    this.convStart = t;
    this.sum = 0;
    this.taken = 0;
    this.nextAt = t + (0.5 * this.periodMs) / SUBSAMPLES;
  }

  private abort(): void {
    this.pendingEnd = Number.NaN;
    this.nextAt = Number.NaN;
    this.convStart = Number.NaN;
    this.continuousFrom = Number.NaN;
    this.busyUntil = Number.NaN;
  }

  /** PeriodicSampler: one sub-sample of the conversion in progress. */
  take(t: number, r: MotorReading): void {
    if (!this.powered) {
      this.nextAt = Number.NaN;
      return;
    }
    this.sum += this.differential(r, t);
    this.taken++;
    const period = this.periodMs;
    if (this.taken < SUBSAMPLES) {
      this.nextAt = this.convStart + ((this.taken + 0.5) * period) / SUBSAMPLES;
      return;
    }
    const code = this.toCode(this.sum / this.taken);
    const end = this.convStart + period;
    if (!Number.isNaN(this.pendingEnd)) {
      // The previous result was not read yet; its conversion has ended (this one began then).
      this.conversion = this.pendingCode;
      this.conversions++;
    }
    this.pendingCode = code;
    this.pendingEnd = end;
    if (this.continuous) this.begin(end); // the next conversion follows at once
    else this.nextAt = Number.NaN;
  }

  /** Result of the last averaged conversion, and when it ends (it shows in Conversion from then). */
  private pendingCode = 0;
  private pendingEnd = Number.NaN;

  /** Completes the conversions that have ended by now. */
  private update(): void {
    const now = this.o.feed.clock.now();
    if (!Number.isNaN(this.pendingEnd) && now >= this.pendingEnd) {
      this.conversion = this.pendingCode;
      this.conversions++;
      this.pendingEnd = Number.NaN;
      if (!Number.isNaN(this.busyUntil) && now >= this.busyUntil) this.busyUntil = Number.NaN;
    }
  }

  private differential(r: MotorReading, t: number): number {
    const vdd = this.o.vdd ?? 3.3;
    const ain = (i: 0 | 1 | 2 | 3) => Math.min(vdd + 0.3, Math.max(-0.3, this.o.inputs[i]?.(r, t) ?? 0));
    const [p, n] = MUX_PAIRS[(this.config >> 12) & 0x07]!;
    return ain(p) - (n === null ? 0 : ain(n));
  }

  private toCode(v: number): number {
    const fsr = FSR[(this.config >> 9) & 0x07]!;
    const code = Math.round((v / fsr) * 32768);
    return Math.max(-32768, Math.min(32767, code)) & 0xffff;
  }
}

/** MUX[14:12] (Table 8): 000 AIN0−AIN1, 001 AIN0−AIN3, 010 AIN1−AIN3, 011 AIN2−AIN3, 1xx AINx−GND. */
const MUX_PAIRS: ReadonlyArray<[0 | 1 | 2 | 3, 0 | 1 | 2 | 3 | null]> = [
  [0, 1],
  [0, 3],
  [1, 3],
  [2, 3],
  [0, null],
  [1, null],
  [2, null],
  [3, null],
];

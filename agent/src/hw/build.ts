/**
 * From configuration to drivers: which parts the configured sensors need (a channel names its part:
 * accel_* the ADXL345, voltage the ADS1115, temperature the MCP9808, rpm the pulse pickup) and the
 * drivers for them on a given bus and GPIO input — real ones, or the emulated rig's.
 */
import type { Clock } from '../core/clock.js';
import type { SensorSpec } from '../core/sample.js';
import { Ads1115, type Ads1115Mode } from './drivers/ads1115.js';
import { Adxl345, ADXL345_CHANNELS, ADXL345_STAT_CHANNELS, STANDARD_GRAVITY } from './drivers/adxl345.js';
import type { Driver } from './drivers/driver.js';
import { Mcp9808 } from './drivers/mcp9808.js';
import { RpmPulse } from './drivers/rpm-pulse.js';
import type { GpioInput } from './gpio.js';
import type { I2cBus } from './i2c.js';

/** Settings of the parts and the sampler (config: `hardware.*`; defaults in core/defaults.ts). */
export interface HardwareSettings {
  i2cBus: number;
  adxl345: { address: number; rangeG: number; odrHz: number };
  ads1115: { address: number; fsrV: number; dataRate: number; mode: Ads1115Mode; input: string; ratio: number };
  mcp9808: { address: number; resolutionC: number };
  rpm: { gpio: number; gpioBase: number; pulsesPerRev: number; edge: 'falling' | 'rising'; debounceMs: number; timeoutMs: number };
  retries: number;
  staleMs: number;
  errorMs: number;
}

export const PARTS = ['adxl345', 'ads1115', 'mcp9808', 'rpm'] as const;
export type Part = (typeof PARTS)[number];

/** Channels each part can give. */
export const PART_CHANNELS: Record<Part, readonly string[]> = {
  adxl345: [...ADXL345_CHANNELS, ...ADXL345_STAT_CHANNELS],
  ads1115: ['voltage'],
  mcp9808: ['temperature'],
  rpm: ['rpm'],
};

/** Part → the configured sensors it serves. A sensor is served by one part; a channel no part gives is refused. */
export function planParts(sensors: SensorSpec): Map<Part, string[]> {
  const partOf = new Map<string, Part>();
  for (const p of PARTS) for (const ch of PART_CHANNELS[p]) partOf.set(ch, p);
  const plan = new Map<Part, string[]>();
  for (const [sensor, { channels }] of Object.entries(sensors)) {
    const parts = new Set<Part>();
    for (const ch of channels) {
      const p = partOf.get(ch);
      if (p === undefined) throw new Error(`sensor '${sensor}': no driver gives channel '${ch}' (known channels: ${[...partOf.keys()].join(', ')})`);
      parts.add(p);
    }
    if (parts.size > 1) throw new Error(`sensor '${sensor}' mixes channels of ${[...parts].join(' and ')}: a sensor is read from one part`);
    const p = [...parts][0]!;
    plan.set(p, [...(plan.get(p) ?? []), sensor]);
  }
  return plan;
}

/**
 * What each channel's part can read at all, from its settings: a plausible reading is never outside
 * it (buffer/sensor-check.ts narrows the configured range to it).
 * - ADXL345: short of ±range g — its codes end there, and a reading in the top 2 % of full scale is
 *   clipped (a stuck data register at the rail reads so too), not a measurement; the burst's RMS of
 *   the AC part within 0..range, its peak within 0..2 × range.
 * - ADS1115: ± full scale × the front end's ratio (a single-ended input reads small negative codes
 *   from offset, hence the symmetric range).
 * - MCP9808: its specified operating range, −40..+125 °C (the register could show up to +255.9375).
 * - the tach pickup: one pulse period in timeoutMs is its slowest non-zero reading, one pulse per
 *   debounceMs its fastest (the driver ignores closer edges); 0 is the standing shaft, a rest value.
 */
export function partRanges(settings: HardwareSettings, sensors: SensorSpec): Record<string, { min: number; max: number; part: string }> {
  const out: Record<string, { min: number; max: number; part: string }> = {};
  for (const p of planParts(sensors).keys()) {
    if (p === 'adxl345') {
      const g = settings.adxl345.rangeG * STANDARD_GRAVITY;
      const part = `the ADXL345 at ±${settings.adxl345.rangeG} g`;
      for (const axis of ['x', 'y', 'z']) {
        out[`accel_${axis}`] = { min: -0.98 * g, max: 0.98 * g, part };
        out[`accel_${axis}_rms`] = { min: 0, max: g, part };
        out[`accel_${axis}_peak`] = { min: 0, max: 2 * g, part };
      }
    } else if (p === 'ads1115') {
      const a = settings.ads1115;
      out.voltage = { min: -a.fsrV * a.ratio, max: a.fsrV * a.ratio, part: `the ADS1115 at ±${a.fsrV} V × ratio ${a.ratio}` };
    } else if (p === 'mcp9808') {
      out.temperature = { min: -40, max: 125, part: 'the MCP9808 (−40..125 °C)' };
    } else {
      const r = settings.rpm;
      out.rpm = { min: 60_000 / (r.pulsesPerRev * r.timeoutMs), max: 60_000 / (r.pulsesPerRev * r.debounceMs), part: `the tach pickup (${r.pulsesPerRev} pulse/rev, 0 after ${r.timeoutMs} ms, debounce ${r.debounceMs} ms)` };
    }
  }
  return out;
}

/** A part as a recording's manifest names it: which chip, where, for which sensors, set up how. */
export interface PartDescription {
  part: 'ADXL345' | 'ADS1115' | 'MCP9808' | 'tach';
  /** `i2c-<bus> 0x53`, or `GPIO17` for the speed pickup. */
  at: string;
  sensors: string[];
  settings: Record<string, number | string>;
}

const hexAddress = (a: number) => `0x${a.toString(16).toUpperCase().padStart(2, '0')}`;

/** The parts the configured sensors are read from (planParts), described from the settings. */
export function describeParts(settings: HardwareSettings, sensors: SensorSpec): PartDescription[] {
  const out: PartDescription[] = [];
  for (const [p, served] of planParts(sensors)) {
    const i2c = (address: number) => `i2c-${settings.i2cBus} ${hexAddress(address)}`;
    if (p === 'adxl345') {
      const a = settings.adxl345;
      out.push({ part: 'ADXL345', at: i2c(a.address), sensors: served, settings: { rangeG: a.rangeG, odrHz: a.odrHz } });
    } else if (p === 'ads1115') {
      const a = settings.ads1115;
      out.push({ part: 'ADS1115', at: i2c(a.address), sensors: served, settings: { fsrV: a.fsrV, dataRate: a.dataRate, mode: a.mode, input: a.input, ratio: a.ratio } });
    } else if (p === 'mcp9808') {
      const m = settings.mcp9808;
      out.push({ part: 'MCP9808', at: i2c(m.address), sensors: served, settings: { resolutionC: m.resolutionC } });
    } else {
      const r = settings.rpm;
      out.push({ part: 'tach', at: `GPIO${r.gpio}`, sensors: served, settings: { pulsesPerRev: r.pulsesPerRev, edge: r.edge, debounceMs: r.debounceMs } });
    }
  }
  return out;
}

export interface DriverDeps {
  bus: I2cBus;
  /** Opens the tach input (only called when a sensor needs rpm). */
  openPin: () => Promise<GpioInput>;
  clock: Clock;
  periodMs: number;
}

/** The drivers the sensors need, keyed by part. Constructor checks (named) throw here, before any I/O. */
export async function buildDrivers(settings: HardwareSettings, sensors: SensorSpec, d: DriverDeps): Promise<Map<Part, Driver>> {
  const plan = planParts(sensors);
  const wanted = (p: Part) => plan.get(p)?.flatMap((s) => sensors[s]!.channels) ?? [];
  const out = new Map<Part, Driver>();
  if (plan.has('adxl345')) {
    const a = settings.adxl345;
    const stats = wanted('adxl345').some((ch) => (ADXL345_STAT_CHANNELS as readonly string[]).includes(ch));
    out.set('adxl345', new Adxl345({ bus: d.bus, address: a.address, rangeG: a.rangeG, odrHz: a.odrHz, periodMs: d.periodMs, stats }));
  }
  if (plan.has('ads1115')) {
    const a = settings.ads1115;
    out.set('ads1115', new Ads1115({ bus: d.bus, clock: d.clock, address: a.address, fsrV: a.fsrV, dataRate: a.dataRate, mode: a.mode, input: a.input, ratio: a.ratio, periodMs: d.periodMs }));
  }
  if (plan.has('mcp9808')) {
    const m = settings.mcp9808;
    out.set('mcp9808', new Mcp9808({ bus: d.bus, clock: d.clock, address: m.address, resolutionC: m.resolutionC }));
  }
  if (plan.has('rpm')) {
    const r = settings.rpm;
    // Checked before the pin is opened, so a bad setting fails without touching /sys/class/gpio.
    const opts = { clock: d.clock, pulsesPerRev: r.pulsesPerRev, debounceMs: r.debounceMs, timeoutMs: r.timeoutMs, label: `GPIO${r.gpio}` };
    new RpmPulse({ ...opts, input: NO_PIN });
    out.set('rpm', new RpmPulse({ ...opts, input: await d.openPin() }));
  }
  return out;
}

const NO_PIN: GpioInput = { watch() {}, unwatchAll() {}, read: async () => 1, unexport() {} };

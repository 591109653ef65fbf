/**
 * The emulated test rig: one simulated motor (motor/simulator.ts) with the gateway's sensors on it, as the
 * README's wiring table connects them on a Raspberry Pi — an ADXL345 on the motor frame, an ADS1115
 * behind the supply-voltage front end, an MCP9808 on the frame, a tach pickup on a GPIO input.
 * The drivers talk to `bus` and `tach` exactly as they would to /dev/i2c-1 and a GPIO pin.
 */
import type { Clock } from '../../core/clock.js';
import { DEFAULTS } from '../../core/defaults.js';
import type { MotorReading, MotorSimulator } from '../../motor/simulator.js';
import type { Edge } from '../gpio.js';
import { EmulatedAds1115 } from './ads1115.js';
import { EmulatedAdxl345 } from './adxl345.js';
import { EmulatedI2cBus } from './bus.js';
import { EmulatedMcp9808 } from './mcp9808.js';
import { MotorFeed } from './motor-feed.js';
import { EmulatedTach } from './tach.js';

export interface RigOptions {
  motor: MotorSimulator;
  clock: Clock;
  /** Where the chips answer (their address pins). Defaults: hardware.*.address's. */
  addresses?: { adxl345?: number; ads1115?: number; mcp9808?: number };
  /** The voltage front end: supply volts per volt at the ADC input. Default: hardware.ads1115.ratio's. */
  voltageRatio?: number;
  /** ADS1115 input the front end is wired to, 0..3. Default 0 (AIN0). */
  voltageInput?: 0 | 1 | 2 | 3;
  /** The tach pickup; defaults: hardware.rpm.*'s. */
  pulsesPerRev?: number;
  edge?: Edge;
  /** Seed of the bus's error injection and the tach's dropout draws. Default 1. */
  seed?: number;
}

export interface Rig {
  bus: EmulatedI2cBus;
  feed: MotorFeed;
  accel: EmulatedAdxl345;
  adc: EmulatedAds1115;
  temp: EmulatedMcp9808;
  tach: EmulatedTach;
  addresses: { adxl345: number; ads1115: number; mcp9808: number };
}

export const RIG_CHIPS = ['adxl345', 'ads1115', 'mcp9808'] as const;
export type RigChip = (typeof RIG_CHIPS)[number];

export function buildRig(o: RigOptions): Rig {
  const feed = new MotorFeed(o.motor, o.clock);
  const hw = DEFAULTS.config.hardware;
  const addresses = { adxl345: o.addresses?.adxl345 ?? hw.adxl345.address, ads1115: o.addresses?.ads1115 ?? hw.ads1115.address, mcp9808: o.addresses?.mcp9808 ?? hw.mcp9808.address };
  const ratio = o.voltageRatio ?? hw.ads1115.ratio;
  const accel = new EmulatedAdxl345(feed);
  const adc = new EmulatedAds1115({ feed, inputs: { [o.voltageInput ?? 0]: (r: MotorReading) => r.voltage / ratio } });
  const temp = new EmulatedMcp9808(feed);
  const tach = new EmulatedTach({ feed, pulsesPerRev: o.pulsesPerRev ?? hw.rpm.pulsesPerRev, edge: o.edge ?? hw.rpm.edge, seed: o.seed });
  const bus = new EmulatedI2cBus({ seed: o.seed });
  bus.attach(addresses.adxl345, accel).attach(addresses.ads1115, adc).attach(addresses.mcp9808, temp);
  return { bus, feed, accel, adc, temp, tach, addresses };
}

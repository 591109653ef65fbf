/**
 * Sensors read by the drivers (hw/drivers) through the sampler (hw/sampler.ts): the `hardware`
 * source on a real I2C bus and GPIO pin, and — through the same class, with the emulated rig in
 * place of the bus and pin — the `sim` source (sources/sim.ts). One sample per sensor per profile
 * period, stamped when it was read; a period whose read failed has no sample (the windower sees the
 * gap, never an invented value).
 *
 * Health per sensor is its part's: `ok`, `stale` (no reading for hardware.staleMs), `error` (for
 * hardware.errorMs, or the part failed its identity check). Once a minute the sampling statistics
 * are logged: readings, failed periods, jitter (offset of each reading from its grid instant).
 */
import type { Logger } from 'pino';
import type { Clock, Timer } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';
import type { Sample, SensorHealth, SensorSpec } from '../core/sample.js';
import { buildDrivers, type HardwareSettings, type Part } from '../hw/build.js';
import type { Driver } from '../hw/drivers/driver.js';
import type { GpioInput } from '../hw/gpio.js';
import { openGpioInput } from '../hw/gpio.js';
import { openI2cBus, type I2cBus } from '../hw/i2c.js';
import { Sampler, type DeviceStats } from '../hw/sampler.js';
import { allSensors, SampleHandlers, type SampleSource } from './source.js';

/** A bus and a pin to put the drivers on, and how to let them go. */
export interface Wiring {
  bus: I2cBus;
  openPin(): Promise<GpioInput>;
  close(): Promise<void>;
}

export interface HardwareSourceOptions {
  sensors: SensorSpec;
  clock: Clock;
  log?: Logger;
  periodMs: number;
  settings: HardwareSettings;
  /** Registry key to report: 'hardware' or 'sim'. Default 'hardware'. */
  kind?: string;
  /** The bus and pin. Default: /dev/i2c-<settings.i2cBus> and the rpm GPIO, through i2c-bus and onoff. */
  wire?: () => Promise<Wiring>;
  /** How often the sampling statistics are logged, ms (0 = never). Default `DEFAULTS.component.hardwareSource`. */
  statsIntervalMs?: number;
}

interface Route {
  sensor: string;
  /** Index of each of the sensor's channels in the driver's reading. */
  index: number[];
}

/** The real bus and pin (lazily imported modules; see hw/i2c.ts and hw/gpio.ts). */
export async function realWiring(s: HardwareSettings): Promise<Wiring> {
  const bus = await openI2cBus(s.i2cBus);
  let pin: GpioInput | undefined;
  return {
    bus,
    openPin: async () => (pin = await openGpioInput(s.rpm.gpio, s.rpm.edge, s.rpm.gpioBase)),
    close: async () => {
      pin?.unexport();
      await bus.close();
    },
  };
}

export class HardwareSource implements SampleSource {
  readonly kind: string;
  readonly name: string;
  private readonly handlers = new SampleHandlers(() => this.log, () => this.o.clock.now());
  private log: Logger = silentLogger;
  private sampler: Sampler | undefined;
  private wiring: Wiring | undefined;
  private drivers = new Map<Part, Driver>();
  private readonly routes = new Map<Driver, Route[]>();
  private readonly lastT = new Map<string, number>();
  private statsTimer: Timer | undefined;
  private running = false;

  constructor(private readonly o: HardwareSourceOptions) {
    this.kind = o.kind ?? 'hardware';
    this.name = `source:${this.kind}`;
  }

  onSample(handler: (s: Sample) => void): void {
    this.handlers.add(handler);
  }

  async start(): Promise<void> {
    if (this.running) return;
    const o = this.o;
    this.log = (o.log ?? silentLogger).child({ module: this.kind });
    const wiring = await (o.wire ?? (() => realWiring(o.settings)))();
    try {
      this.drivers = await buildDrivers(o.settings, o.sensors, { bus: wiring.bus, openPin: () => wiring.openPin(), clock: o.clock, periodMs: o.periodMs });
    } catch (err) {
      await wiring.close().catch(() => {});
      throw err;
    }
    this.wiring = wiring;
    this.routes.clear();
    for (const driver of this.drivers.values()) {
      const routes: Route[] = [];
      for (const [sensor, { channels }] of Object.entries(o.sensors)) {
        if (!channels.every((ch) => driver.channels.includes(ch))) continue;
        routes.push({ sensor, index: channels.map((ch) => driver.channels.indexOf(ch)) });
      }
      this.routes.set(driver, routes);
    }
    this.sampler = new Sampler({
      devices: [...this.drivers.values()],
      clock: o.clock,
      log: this.log,
      periodMs: o.periodMs,
      retries: o.settings.retries,
      staleMs: o.settings.staleMs,
      errorMs: o.settings.errorMs,
      onReading: (d, t, v) => this.emit(d, t, v),
    });
    this.running = true;
    await this.sampler.start();
    const every = o.statsIntervalMs ?? DEFAULTS.component.hardwareSource.statsIntervalMs;
    if (every > 0) this.statsTimer = o.clock.setInterval(() => this.logStats(), every);
    this.log.info({ periodMs: o.periodMs, devices: [...this.drivers.values()].map((d) => d.id) }, `sampling ${this.drivers.size} part(s) every ${o.periodMs} ms`);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.statsTimer?.cancel();
    this.statsTimer = undefined;
    await this.sampler?.stop();
    await this.wiring?.close();
    this.wiring = undefined;
  }

  health(): Record<string, SensorHealth> {
    const out = allSensors(this.o.sensors, 'stale');
    if (!this.sampler || !this.running) return out;
    for (const [driver, h] of this.sampler.health()) for (const r of this.routes.get(driver) ?? []) out[r.sensor] = h;
    return out;
  }

  /** Per part: its driver id, sampling statistics and driver counters (FIFO overflows …). */
  stats(): { part: Part; id: string; stats: DeviceStats; counters: Readonly<Record<string, number>> }[] {
    const all = this.sampler?.stats();
    return [...this.drivers].map(([part, d]) => ({ part, id: d.id, stats: all!.get(d)!, counters: d.counters ?? {} }));
  }

  get overruns(): number {
    return this.sampler?.overruns ?? 0;
  }

  private emit(driver: Driver, t: number, values: Float64Array): void {
    if (!this.running) return;
    for (const r of this.routes.get(driver) ?? []) {
      if (!(t > (this.lastT.get(r.sensor) ?? -Infinity))) continue; // two reads in one clock instant: keep the first
      this.lastT.set(r.sensor, t);
      this.handlers.emit({ sensor: r.sensor, t, values: r.index.map((i) => values[i]!) });
    }
  }

  private logStats(): void {
    for (const s of this.stats()) {
      const j = s.stats.jitter.summary();
      this.log.info(
        { device: s.id, readings: j.n, failedPeriods: s.stats.failedPeriods, failedAttempts: s.stats.failedAttempts, inits: s.stats.inits, jitterMs: j, overruns: this.overruns, ...s.counters },
        `${s.id}: ${j.n} readings, jitter p50 ${j.p50Ms} ms p99 ${j.p99Ms} ms max ${j.maxMs} ms, ${s.stats.failedPeriods} periods lost`,
      );
    }
  }
}

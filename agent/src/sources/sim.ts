/**
 * The `sim` source: the real drivers and sampler (sources/hardware.ts) on the emulated rig
 * (hw/emulated/rig.ts) — an emulated I2C bus with an ADXL345, an ADS1115 and an MCP9808, and a tach
 * pickup on an emulated GPIO input — all driven by one MotorSimulator (motor/simulator.ts), the same
 * physics the training data came from. No hardware, same code path as on the gateway.
 *
 * Faults are switched at run time with a FaultCommandPayload (core/topics.ts), published on
 * `<prefix>/<dev>/cmd/fault` (`anomaly-agent fault …` does it) or passed to `command()`; the
 * configured `source.sim.faults` are switched on at start. Besides the motor's faults, a command can
 * unplug and replug an emulated part or make the bus fail a fraction of its transfers — what the
 * sampler's retries and the health states are for.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { DEFAULTS } from '../core/defaults.js';
import { silentLogger } from '../core/log.js';
import { PROFILES, type ProfileName } from '../core/profiles.js';
import type { Sample, SensorHealth, SensorSpec } from '../core/sample.js';
import type { HardwareSettings } from '../hw/build.js';
import { buildRig, type Rig } from '../hw/emulated/rig.js';
import { parseMachine, type MachineVariant } from '../motor/machine.js';
import { MotorSimulator } from '../motor/simulator.js';
import { checkLevel, topic, TOPICS, type FaultCommandPayload } from '../core/topics.js';
import { BurstLog } from './burst-log.js';
import { HardwareSource } from './hardware.js';
import { parseFaultCommand, parseFaultList, type FaultCommand } from './sim-command.js';
import type { SampleSource } from './source.js';

/** Settings of the simulated motor (config: `source.sim.*`). */
export interface SimSettings {
  /** Seed of the motor: its noise, load schedule and machine constants. */
  seed: number;
  /** Load, fraction of rated torque, or 'auto' for the simulator's seeded schedule of load changes. */
  load: number | 'auto';
  /** Ambient temperature, °C. */
  ambientC: number;
  /** Faults on at start: 'kind:intensity[:channel+channel]' joined by commas; '' none. */
  faults: string;
  /** Another motor than the project's (motor/machine.ts parseMachine); '' none. */
  machine: string;
  /** Fraction of emulated bus transfers that fail with EIO, 0..1. */
  i2cErrorRate: number;
}

export interface SimSourceOptions {
  sensors: SensorSpec;
  clock: Clock;
  log?: Logger;
  profile: ProfileName;
  settings: HardwareSettings;
  sim: SimSettings;
  /** The daemon's client: commands are taken from `<prefix>/<dev>/cmd/fault` when given. */
  client?: MqttClient;
  device?: string;
  prefix?: string;
  statsIntervalMs?: number;
}

export class SimSource implements SampleSource {
  readonly kind = 'sim';
  readonly name = 'source:sim';
  private readonly inner: HardwareSource;
  private log: Logger = silentLogger;
  private rig: Rig | undefined;
  private motor: MotorSimulator | undefined;
  private listener: CommandListener | undefined;
  private running = false;
  private machine: MachineVariant = {};

  constructor(private readonly o: SimSourceOptions) {
    this.inner = new HardwareSource({
      sensors: o.sensors,
      clock: o.clock,
      log: o.log,
      periodMs: PROFILES[o.profile].periodMs,
      settings: o.settings,
      kind: 'sim',
      statsIntervalMs: o.statsIntervalMs,
      wire: async () => this.wire(),
    });
  }

  onSample(handler: (s: Sample) => void): void {
    this.inner.onSample(handler);
  }

  health(): Record<string, SensorHealth> {
    return this.inner.health();
  }

  stats() {
    return this.inner.stats();
  }

  get overruns(): number {
    return this.inner.overruns;
  }

  /** The emulated rig (after start): tests reach the chips and the bus through it. */
  get emulated(): Rig | undefined {
    return this.rig;
  }

  get simulator(): MotorSimulator | undefined {
    return this.motor;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.log = (this.o.log ?? silentLogger).child({ module: 'sim' });
    const initial = parseFaultList(this.o.sim.faults);
    if (typeof initial === 'string') throw new Error(`source.sim.faults: ${initial}`);
    const machine = parseMachine(this.o.sim.machine);
    if (typeof machine === 'string') throw new Error(`source.sim.machine: ${machine}`);
    this.machine = machine;
    await this.inner.start();
    this.running = true;
    for (const c of initial) this.command(c);
    if (this.o.client) {
      this.listener = new CommandListener({ client: this.o.client, prefix: this.o.prefix, device: this.o.device, clock: this.o.clock, log: this.log, apply: (c) => this.command(c) });
      await this.listener.start();
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.listener?.stop();
    await this.inner.stop();
  }

  /** Applies a command now; returns what it did, in words. Throws when the source is not running. */
  command(c: FaultCommand): string {
    const rig = this.rig;
    const motor = this.motor;
    if (!this.running || !rig || !motor) throw new Error('the sim source is not running');
    rig.feed.stateAt(this.o.clock.now()); // the motor's time is now: a fault starts here, not in the past
    let what: string;
    switch (c.action) {
      case 'on':
        motor.setFault(c.fault, c.intensity, c.channels ? { channels: c.channels } : {});
        what = `fault on: ${c.fault}/${c.intensity}${c.channels ? ` on ${c.channels.join(', ')}` : ''}`;
        break;
      case 'off':
        if (c.fault) motor.clearFault(c.fault);
        else motor.clearAllFaults();
        what = `fault off: ${c.fault ?? 'all'}`;
        break;
      case 'unplug':
      case 'replug': {
        if (c.part === 'tach') rig.tach.connected = c.action === 'replug';
        else if (c.action === 'unplug') rig.bus.unplug(rig.addresses[c.part]);
        else rig.bus.replug(rig.addresses[c.part]);
        what = `${c.part} ${c.action}ged`;
        break;
      }
      case 'bus-errors':
        rig.bus.injectErrors({ rate: c.rate, code: c.code });
        what = c.rate > 0 ? `bus errors: ${(c.rate * 100).toFixed(1)} % of transfers fail with ${c.code}` : 'bus errors: off';
        break;
    }
    this.log.info({ command: c, active: motor.activeFaults().map((f) => `${f.kind}/${f.intensity}`) }, what);
    return what;
  }

  private async wire() {
    const o = this.o;
    const s = o.settings;
    const motor = new MotorSimulator({
      profile: PROFILES[o.profile],
      seed: o.sim.seed,
      startMs: o.clock.now(),
      ambientC: o.sim.ambientC,
      ...(o.sim.load === 'auto' ? {} : { load: o.sim.load }),
      // The emulated MCP9808 quantises, as the real part does; the simulator must not do it twice.
      quantizeTemperature: false,
      machine: this.machine,
    });
    const input = Number(/^AIN(\d)/.exec(s.ads1115.input)?.[1] ?? 0) as 0 | 1 | 2 | 3;
    const rig = buildRig({
      motor,
      clock: o.clock,
      addresses: { adxl345: s.adxl345.address, ads1115: s.ads1115.address, mcp9808: s.mcp9808.address },
      voltageRatio: s.ads1115.ratio,
      voltageInput: input,
      pulsesPerRev: s.rpm.pulsesPerRev,
      edge: s.rpm.edge,
      seed: o.sim.seed,
    });
    if (o.sim.i2cErrorRate > 0) rig.bus.injectErrors({ rate: o.sim.i2cErrorRate, code: 'EIO' });
    this.motor = motor;
    this.rig = rig;
    return {
      bus: rig.bus,
      openPin: async () => rig.tach,
      close: async () => rig.tach.unwatchAll(),
    };
  }

}

export interface CommandListenerOptions {
  client: MqttClient;
  prefix?: string;
  device?: string;
  clock: Clock;
  log: Logger;
  /** Applies a checked command; may throw (logged). */
  apply: (c: FaultCommand) => unknown;
}

/**
 * Takes fault commands from `<prefix>/<dev>/cmd/fault` on the daemon's client: parsed and checked
 * (parseFaultCommand), refused ones logged once per burst, never thrown into mqtt.js.
 */
export class CommandListener {
  readonly topic: string;
  private readonly burst: BurstLog;
  private readonly onMessage = (t: string, payload: Buffer) => this.message(t, payload);
  private listening = false;

  constructor(private readonly o: CommandListenerOptions) {
    this.topic = topic(o.prefix ?? DEFAULTS.config.mqtt.prefix, checkLevel('device id', o.device ?? ''), 'fault');
    this.burst = new BurstLog(o.clock, o.log, 'fault command refused');
  }

  async start(): Promise<void> {
    const { client, log } = this.o;
    this.listening = true;
    client.on('message', this.onMessage);
    const sub = client.subscribeAsync(this.topic, { qos: TOPICS.fault.qos }).then(
      () => log.info({ topic: this.topic }, 'listening for fault commands'),
      (err: unknown) => log.error({ topic: this.topic }, `cannot subscribe to fault commands: ${(err as Error).message}`),
    );
    if (client.connected) await sub;
  }

  async stop(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const c = this.o.client;
    c.removeListener('message', this.onMessage);
    this.burst.flush();
    // Not awaited: a broker that hung would never answer. The connection's stop() gives the UNSUBACK a bounded wait.
    if (c.connected && !c.disconnecting) c.unsubscribe(this.topic, () => {});
  }

  private message(t: string, payload: Buffer): void {
    try {
      if (t !== this.topic || !this.listening) return;
      let body: unknown;
      try {
        body = JSON.parse(payload.toString('utf8'));
      } catch {
        this.burst.note('bad_json', { topic: t, bytes: payload.length });
        return;
      }
      const c = parseFaultCommand(body);
      if (typeof c === 'string') {
        this.burst.note('invalid', { topic: t, why: c });
        return;
      }
      void Promise.resolve()
        .then(() => this.o.apply(c))
        .catch((err: unknown) => this.o.log.error({ topic: t }, `fault command failed: ${(err as Error).message}`));
    } catch (err) {
      this.o.log.error({ topic: t }, `fault command failed: ${(err as Error).message}`);
    }
  }
}

export { parseFaultCommand, parseFaultList, type FaultCommand, type FaultCommandPayload };

/**
 * Physics of one induction motor and its sensors, as a library: the dataset generator writes
 * CSVs from it, and the emulated I2C chips (accelerometer, ADC, temperature sensor) ask it for the
 * physical quantity at the instant the driver reads a register. Nothing here does I/O.
 *
 * Time model. The caller asks `sampleAt(t)` with non-decreasing t (ms epoch). Internally the
 * slow states (slip, shaft phase, supply phase, temperature, bearing/knock event times) are
 * integrated on sub-steps of at most MAX_STEP_MS, so the vibration is a continuous-time signal
 * evaluated at t — an ADXL345 emulator reading at 3200 Hz and the CSV writer at 20 Hz see the same
 * waveform, only sampled differently (the CSV deliberately aliases it, as a slow point sampler
 * without an anti-alias filter would). Slow random wander comes from `SmoothNoise`, a function of
 * time; white sensor noise is drawn per read.
 */
import { DEFAULTS } from '../core/defaults.js';
import type { Channel, Profile } from '../core/profiles.js';
import type { FaultKind, Intensity } from '../core/faults.js';
import { Rng, SmoothNoise, deriveSeed } from '../core/rng.js';
import { LoadSchedule, segmentValue, type LoadScheduleOptions, type LoadSegment } from './load.js';
import {
  bearingWearImpact,
  checkBearingWear,
  FAULT_CHANNELS,
  FAULT_MAGNITUDES,
  OVERHEAT_RECOVER_TAU_S,
  OVERHEAT_TAU_S,
  SENSOR_FAULT_DEFAULT_CHANNELS,
  SENSOR_RAILS,
  type BearingWear,
  type FaultMagnitude,
} from './fault-magnitudes.js';
import { machineProblem, OFFSET_CHANNELS, type MachineVariant, type OffsetChannel } from './machine.js';

/** One reading of every channel, in the seed's units. */
export interface MotorReading {
  /**
   * m/s². x, y radial (y vertical, towards the feet), z axial. The seed's data carries gravity
   * on z (+9.81), so the sensor is mounted with z vertical; we keep that convention.
   */
  accel_x: number;
  accel_y: number;
  accel_z: number;
  /** Supply voltage, V RMS. */
  voltage: number;
  /** Shaft speed, rev/min. */
  rpm: number;
  /** Motor frame temperature, °C (MCP9808-style 0.0625 °C steps unless quantisation is off). */
  temperature: number;
}

/** True (noise-free) physical state, for emulators that need more than a reading (e.g. a tach pulse). */
export interface MotorState {
  tMs: number;
  /** Load, fraction of rated torque. */
  load: number;
  slip: number;
  rpm: number;
  shaftHz: number;
  /** Shaft angle, rad in [0, 2π). A once-per-rev tach pulse fires when it wraps. */
  shaftPhaseRad: number;
  /** Shaft angle turned since the simulation began (not wrapped), rad: edges of a pulse pickup fall at its multiples of 2π/pulses. */
  shaftAngleRad: number;
  /** Supply RMS voltage without ripple or sensor noise. */
  supplyV: number;
  /** Frame temperature without sensor noise or quantisation, °C. */
  frameC: number;
  ambientC: number;
  /** Switched on (false inside a stop, while it coasts down and cools). */
  on: boolean;
}

export interface MotorOptions {
  profile: Profile;
  seed: number;
  /** Simulation start, ms epoch. The first sampleAt must be ≥ this. */
  startMs: number;
  /** Ambient air temperature, °C. Default: source.sim.ambientC's. */
  ambientC?: number;
  /** Fixed load fraction. Omit to run the seeded automatic schedule (steps/ramps every few minutes). */
  load?: number;
  /** Options for the automatic load schedule. */
  loadSchedule?: LoadScheduleOptions;
  /** Start thermally settled for the initial load (default) or cold at ambient. */
  settled?: boolean;
  /** Nominal supply, V RMS. Default 230. */
  nominalVoltage?: number;
  /** Supply frequency, Hz. Default 50. */
  supplyHz?: number;
  /** Thermal time constant of the frame, minutes. Default 12 (a few-kW TEFC motor: 10–30 min). */
  thermalTauMin?: number;
  /** Round temperature to the sensor's 0.0625 °C step. Default true. */
  quantizeTemperature?: boolean;

  /** Another motor than the project's (machine.ts): rated speed, residual unbalance, temperature rise, sensor offsets. */
  machine?: MachineVariant;

  // What a plant's day has besides the load schedule. Each is off unless given, so the dataset
  // generator, the sim source and everything trained on them see the motor they always saw.
  /** A day/night swing of the ambient air; the frame follows it through the thermal model. */
  ambientCycle?: AmbientCycle;
  /** Spans the motor is switched off: it coasts down and cools; at the end it starts with the frame as cool as it got. */
  stops?: readonly RunStop[];
  /** Sensors ageing from startMs on. */
  ageing?: SensorAgeing;
  /** A bearing defect that grows by itself from its onset (fault-magnitudes.ts). */
  bearingWear?: BearingWear;
}

export interface AmbientCycle {
  /** Half the swing from the coldest to the warmest moment, K. */
  amplitudeK: number;
  /** Hour of the UTC day of the warmest moment. Default 15 (the afternoon). */
  warmestHour?: number;
  /** Length of one cycle, ms. Default a day. */
  periodMs?: number;
}

/** The motor switched off over [fromMs, toMs). */
export interface RunStop {
  fromMs: number;
  toMs: number;
}

export interface SensorAgeing {
  /** The temperature sensor's offset creeping, K per day (a thermistor or its bond ageing). */
  temperatureOffsetKPerDay?: number;
  /** The accelerometer's noise floor rising, fraction of its initial level per day. */
  accelNoisePerDay?: number;
}

export interface FaultOptions {
  /** Sensor faults (stuck, dropout): channels affected. Defaults depend on the intensity. */
  channels?: readonly Channel[];
  /** Hunting: oscillation frequency, Hz. Default: drawn from 0.5–2 Hz. */
  freqHz?: number;
}

export interface ActiveFault {
  kind: FaultKind;
  intensity: Intensity;
  /** Simulation time the fault was switched on, ms epoch. */
  sinceMs: number;
  channels: Channel[];
  /** Hunting frequency, Hz (hunting only). */
  freqHz?: number;
}

interface FaultState extends ActiveFault {
  mag: FaultMagnitude;
  /** Values a stuck channel reports; filled from the last reading (or the rail) at onset. */
  stuck?: Partial<Record<Channel, number>>;
}

// ---------------------------------------------------------------------------------------------
// Constants, with the reasoning behind each.

/** Largest integration step, ms. ≤ 5 ms keeps the trapezoid phase error negligible for ≤ 2 Hz speed changes. */
const MAX_STEP_MS = 5;
/** Gravity as the seed's data carries it on z. */
const GRAVITY = 9.81;

/**
 * Slip of an induction motor: ≈ 0.6 % at no load rising to ≈ 4 % at rated torque (typical of
 * small 4–10 pole motors). Torque ∝ V²·slip near the operating point, so at constant load the slip
 * scales with (Vn/V)²: a sag slows the motor, a swell speeds it up.
 */
const SLIP_NO_LOAD = 0.006;
const SLIP_PER_LOAD = 0.034;
/** Mechanical time constant of slip following a load step (rotor + driven inertia), s. */
const TAU_MECH_S = 0.4;
/** Process torque jitter (belt, fluid), fraction of load, and its correlation time. */
const LOAD_JITTER = 0.02;
/** Speed fluctuation from torque ripple of the driven machine: ~0.3 % of speed, ~0.4 s correlation. */
const SPEED_WANDER = 0.0035;

/**
 * Vibration amplitudes at 600 rpm, half load (m/s² peak). Residual unbalance gives the 1x line;
 * 2x and 3x come from the coupling and manufacturing tolerances. Amplitudes grow with speed
 * (force ∝ ω², but a stiff foot-mounted frame responds below its first mode) — we use √(rpm/600)
 * so both profiles stay on comparable scales — and mildly with load (torque-dependent coupling
 * forces): factor 0.8 + 0.4·load.
 */
const A1X = 0.3;
const A2X = 0.1;
const A3X = 0.04;
/** Axial components are small on a healthy, aligned machine. */
const A1X_AXIAL = 0.05;
const A2X_AXIAL = 0.03;
/** The vertical (y) direction of a foot-mounted motor is stiffer: less response than x. */
const Y_STIFFNESS = 0.8;
/** Broadband noise per read (ADXL345-class: ≈ 1 LSB at full resolution, 0.04 m/s²) + flow/bearing hiss. */
const ACCEL_NOISE = 0.045;

/** Outer-race defect frequency over shaft frequency for a typical 6205-class deep-groove bearing. */
const BPFO_RATIO = 3.05;
/** Rolling elements slip, so impacts jitter by ~1.5 % of the interval rather than being exact. */
const BPFO_JITTER = 0.015;
/** Structural resonances excited by impacts (x, y, z), Hz, and their ring-down time constant, ms. */
const RESONANCE_HZ = [430, 510, 370] as const;
const RING_TAU_MS = 5; // 5 ms → down to 5 % after 15 ms, gone after ~25 ms
const RING_KEEP_MS = 8 * RING_TAU_MS;
const IMPACT_SLOTS = 64;

/** Supply: slow drift (two time scales), dip across the source impedance at full load, ripple, noise. */
const DRIFT_FAST = 0.006; // ±~1.4 V over ~minutes
const DRIFT_SLOW = 0.008; // ±~1.8 V over ~tens of minutes
const LOAD_DIP = 0.012; // 1.2 % at rated current through the feeder impedance
/** Residual 2×f ripple of the RMS/rectified-average front end, V peak. Aliased by slow sampling. */
const RIPPLE_V = 0.3;
const VOLT_NOISE = 0.05;
/** Grid frequency wander: ±0.03 Hz — enough to make the aliased ripple a slow, drifting beat. */
const GRID_WANDER = 0.0006;
/** Sag/swell onset: an RMS meter averages over ~2 cycles, so the step takes ~40 ms. */
const SUPPLY_EDGE_MS = 40;

/** Tachometer measurement noise, fraction of nominal speed. */
const RPM_NOISE = 0.0005;

/**
 * Frame temperature rise over ambient at steady state: constant losses (iron, friction, fan)
 * give ~8 K, copper losses ∝ I² ∝ (load·Vn/V)² give up to ~37 K more at rated load — a frame at
 * ~45 K over ambient, consistent with a winding at the ~80 K a class-B motor is allowed (the
 * frame runs cooler than the winding). That sum is R_th·P_loss(load).
 */
const RISE_CONST_K = 8;
const RISE_LOAD_K = 37;
const TEMP_NOISE = 0.015;
const TEMP_STEP = 0.0625;
/** Ambient drifts a little over tens of minutes (HVAC, sun): ±0.3 °C. */
const AMBIENT_WANDER = 0.3;
const DAY_MS = 86_400_000;

/**
 * Start and stop. Switched on direct on line, a small motor reaches its running speed in well under
 * a second (time constant 0.3 s); switched off it coasts down on its own and the load's friction
 * (3 s). Standing still, a fan-cooled (TEFC) frame loses its airflow and cools 2–4 times slower than
 * it heats up running: 3×.
 */
const START_TAU_S = 0.3;
const COAST_TAU_S = 3;
const STANDSTILL_COOLING = 3;

/** Onset ramps so switched-on faults do not make unphysical zero-time steps, ms. */
const ONSET_MS: Record<FaultKind, number> = {
  imbalance: 500,
  misalignment: 500,
  bearing: 0, // impacts are themselves the onset
  looseness: 500,
  sag: SUPPLY_EDGE_MS,
  swell: SUPPLY_EDGE_MS,
  overheating: 0, // thermal dynamics provide the ramp
  hunting: 1000,
  stuck: 0,
  dropout: 0,
};

const TWO_PI = 2 * Math.PI;

export class MotorSimulator {
  /** The profile's sampling; its nominalRpm is the machine's rated speed (MotorOptions.machine). */
  readonly profile: Profile;
  readonly seed: number;
  readonly startMs: number;
  readonly ambientC: number;
  readonly nominalVoltage: number;
  readonly supplyHz: number;

  private readonly speedScale: number;
  private readonly tauThermalMs: number;
  private readonly quantizeTemperature: boolean;
  private readonly ambientCycle: Required<AmbientCycle> | undefined;
  private readonly stops: readonly RunStop[];
  private readonly ageing: Required<SensorAgeing> | undefined;
  private readonly wear: BearingWear | undefined;
  /** machine.ts: 1, 1 and none for the project's motor (×1 and no offset leave every reading bit-identical). */
  private readonly imbalance: number;
  private readonly rise: number;
  private readonly offsets: [OffsetChannel, number][];

  // Randomness, one stream per purpose.
  private readonly noiseRng: Rng;
  private readonly faultRng: Rng;
  private readonly speedWander: SmoothNoise;
  private readonly loadJitter: SmoothNoise;
  private readonly driftFast: SmoothNoise;
  private readonly driftSlow: SmoothNoise;
  private readonly gridWander: SmoothNoise;
  private readonly ambientWander: SmoothNoise;

  // Per-motor constants: the residual-unbalance angle etc. differ between machines.
  private readonly ph: Float64Array; // phases of harmonics per axis
  private readonly loosePh: Float64Array; // phases of the looseness (half-)harmonic series
  private readonly resonance: [number, number, number];

  // Load control.
  private schedule: LoadSchedule | null;
  private manualLoad: LoadSegment;

  // Integrated state.
  private t: number;
  private slip: number;
  private shaftHz: number;
  private theta = 0; // unwrapped shaft angle, rad
  private gridPhase = 0; // rad of the supply fundamental
  private frameC: number;
  private overheatK = 0; // extra rise from cooling loss, K
  /** Speed over running speed: 1 running, towards 0 while switched off (only stops move it). */
  private speedFrac = 1;
  /** Bearing wear impacts have begun (their timing stream is set up at the onset). */
  private wearStarted = false;

  // Impact events (bearing defect, looseness knocks) ringing the structure.
  private readonly impT = new Float64Array(IMPACT_SLOTS).fill(Number.NEGATIVE_INFINITY);
  private readonly impA = new Float64Array(IMPACT_SLOTS * 3);
  private impNext = 0;
  private bearingNextPsi = Number.NaN; // BPFO phase (rad, BPFO_RATIO·theta) of the next impact
  private knockNextTheta = Number.NaN;

  private readonly faults = new Map<FaultKind, FaultState>();
  private last: MotorReading | null = null;

  constructor(options: MotorOptions) {
    const machine = options.machine ?? {};
    const problem = machineProblem(machine);
    if (problem !== undefined) throw new RangeError(`machine: ${problem}`);
    // A motor of another rated speed runs at the profile's sampling period, with its own speed.
    this.profile = machine.ratedRpm === undefined ? options.profile : { ...options.profile, nominalRpm: machine.ratedRpm };
    this.imbalance = machine.imbalance ?? 1;
    this.rise = machine.rise ?? 1;
    this.offsets = OFFSET_CHANNELS.flatMap((c): [OffsetChannel, number][] => (machine.offsets?.[c] ? [[c, machine.offsets[c]]] : []));
    this.seed = options.seed >>> 0;
    this.startMs = options.startMs;
    this.ambientC = options.ambientC ?? DEFAULTS.config.source.sim.ambientC;
    this.nominalVoltage = options.nominalVoltage ?? 230;
    this.supplyHz = options.supplyHz ?? 50;
    this.tauThermalMs = (options.thermalTauMin ?? 12) * 60_000;
    this.quantizeTemperature = options.quantizeTemperature ?? true;
    this.speedScale = Math.sqrt(this.profile.nominalRpm / 600);
    if (options.ambientCycle) {
      const c = options.ambientCycle;
      this.ambientCycle = { amplitudeK: c.amplitudeK, warmestHour: c.warmestHour ?? 15, periodMs: c.periodMs ?? DAY_MS };
      if (!(Number.isFinite(c.amplitudeK) && this.ambientCycle.periodMs > 0)) throw new RangeError('ambientCycle: amplitudeK must be finite and periodMs > 0');
    }
    this.stops = [...(options.stops ?? [])].sort((a, b) => a.fromMs - b.fromMs);
    for (const st of this.stops) {
      if (!(st.toMs > st.fromMs)) throw new RangeError(`stop ${st.fromMs}..${st.toMs}: toMs must be after fromMs`);
    }
    if (options.ageing) {
      this.ageing = { temperatureOffsetKPerDay: options.ageing.temperatureOffsetKPerDay ?? 0, accelNoisePerDay: options.ageing.accelNoisePerDay ?? 0 };
    }
    if (options.bearingWear) checkBearingWear(options.bearingWear);
    this.wear = options.bearingWear;

    const s = this.seed;
    this.noiseRng = new Rng(deriveSeed(s, 'noise'));
    this.faultRng = new Rng(deriveSeed(s, 'faults'));
    this.speedWander = new SmoothNoise(deriveSeed(s, 'speed'), 'speed', 400);
    this.loadJitter = new SmoothNoise(deriveSeed(s, 'load-jitter'), 'load', 2_000);
    this.driftFast = new SmoothNoise(deriveSeed(s, 'drift-fast'), 'drift', 60_000);
    this.driftSlow = new SmoothNoise(deriveSeed(s, 'drift-slow'), 'drift', 600_000);
    this.gridWander = new SmoothNoise(deriveSeed(s, 'grid'), 'grid', 20_000);
    this.ambientWander = new SmoothNoise(deriveSeed(s, 'ambient'), 'ambient', 900_000);

    const setup = new Rng(deriveSeed(s, 'machine'));
    this.ph = new Float64Array(9);
    for (let i = 0; i < this.ph.length; i++) this.ph[i] = setup.range(0, TWO_PI);
    this.loosePh = new Float64Array(12);
    for (let i = 0; i < this.loosePh.length; i++) this.loosePh[i] = setup.range(0, TWO_PI);
    const k = setup.range(0.95, 1.05); // mounting differs machine to machine
    this.resonance = [RESONANCE_HZ[0] * k, RESONANCE_HZ[1] * k, RESONANCE_HZ[2] * k];
    this.theta = setup.range(0, TWO_PI);
    this.gridPhase = setup.range(0, TWO_PI);

    if (options.load !== undefined) {
      this.schedule = null;
      this.manualLoad = { t0: this.startMs, t1: this.startMs, from: options.load, to: options.load };
    } else {
      this.schedule = new LoadSchedule(deriveSeed(s, 'load'), this.startMs, options.loadSchedule);
      this.manualLoad = { t0: this.startMs, t1: this.startMs, from: this.schedule.initial, to: this.schedule.initial };
    }

    this.t = this.startMs;
    if (!this.isOn(this.startMs)) this.speedFrac = 0;
    const load0 = this.loadAt(this.startMs);
    const v0 = this.supplyRel(this.startMs, load0);
    this.slip = this.slipTarget(load0, v0);
    this.shaftHz = this.shaftHzAt(this.startMs);
    // A motor that has been running at this load for a while sits at its thermal equilibrium.
    this.frameC = options.settled === false ? this.ambientAt(this.startMs) : this.equilibriumC(this.startMs, load0, v0);
  }

  /** Is the motor switched on at tMs (not inside one of its stops)? */
  isOn(tMs: number): boolean {
    for (const st of this.stops) {
      if (st.fromMs > tMs) break;
      if (tMs < st.toMs) return false;
    }
    return true;
  }

  // ----------------------------------------------------------------------------- public API

  /** Current simulation time (ms epoch): the last time the state was advanced to. */
  get nowMs(): number {
    return this.t;
  }

  /**
   * Read every channel at tMs (non-decreasing across calls; equal times are allowed and return a
   * fresh read of the same instant with new sensor noise).
   */
  sampleAt(tMs: number): MotorReading {
    this.advanceTo(tMs);
    const r = this.read();
    this.last = r;
    return { ...r };
  }

  /** Move the physical state to tMs without reading the sensors (e.g. to place a fault onset exactly). */
  advanceTo(tMs: number): void {
    if (!(tMs >= this.t)) {
      throw new RangeError(`MotorSimulator: time went backwards (${tMs} < ${this.t})`);
    }
    this.integrate(tMs);
  }

  /**
   * Set the load (fraction of rated torque; clamped to 0..1.2) from now on, reached linearly over
   * rampMs. Switches the automatic schedule off; `setAutoLoad()` switches it back on.
   */
  setLoad(fraction: number, rampMs = 0): void {
    if (!Number.isFinite(fraction)) throw new RangeError('load must be a finite number');
    const to = Math.min(1.2, Math.max(0, fraction));
    const from = this.loadAt(this.t);
    this.schedule = null;
    this.manualLoad = { t0: this.t, t1: this.t + Math.max(0, rampMs), from, to };
  }

  /** Go back to the seeded automatic load schedule (it continues from the current time). */
  setAutoLoad(options?: LoadScheduleOptions): void {
    this.schedule = new LoadSchedule(deriveSeed(this.seed, 'load', this.t), this.t, options);
  }

  /** Load fraction at the current time. */
  get load(): number {
    return this.loadAt(this.t);
  }

  /**
   * Switch a fault on from the current simulation time (replacing one of the same kind).
   * Magnitudes come from FAULT_MAGNITUDES[intensity].
   */
  setFault(kind: FaultKind, intensity: Intensity, opts: FaultOptions = {}): void {
    const mag = FAULT_MAGNITUDES[intensity];
    if (!mag) throw new RangeError(`unknown intensity ${String(intensity)}`);
    let channels: Channel[];
    if (kind === 'stuck' || kind === 'dropout') {
      channels = [...(opts.channels ?? SENSOR_FAULT_DEFAULT_CHANNELS[kind][intensity])];
      if (channels.length === 0) throw new RangeError(`${kind} needs at least one channel`);
      for (const c of channels) {
        if (!(c in SENSOR_RAILS)) throw new RangeError(`unknown channel ${c}`);
      }
    } else if (kind in FAULT_CHANNELS) {
      channels = [...FAULT_CHANNELS[kind]];
    } else {
      throw new RangeError(`unknown fault kind ${String(kind)}`);
    }
    const f: FaultState = { kind, intensity, sinceMs: this.t, channels, mag };
    if (kind === 'hunting') {
      // Hunting of an induction motor on a weak supply or with a pulsating load sits at ~0.5–2 Hz.
      f.freqHz = opts.freqHz ?? this.faultRng.range(0.5, 2);
    }
    if (kind === 'bearing') {
      const psi = BPFO_RATIO * this.theta;
      this.bearingNextPsi = psi + TWO_PI * this.faultRng.next();
    }
    if (kind === 'looseness') {
      this.knockNextTheta = this.theta + TWO_PI * this.faultRng.next();
    }
    if (kind === 'stuck') {
      f.stuck = {};
      if (this.last) this.captureStuck(f, this.last);
    }
    this.faults.set(kind, f);
  }

  /** Switch a fault off now. Thermal after-effects (overheating) relax with their own dynamics. */
  clearFault(kind: FaultKind): void {
    this.faults.delete(kind);
  }

  clearAllFaults(): void {
    this.faults.clear();
  }

  activeFaults(): ActiveFault[] {
    return [...this.faults.values()].map((f) => {
      const a: ActiveFault = { kind: f.kind, intensity: f.intensity, sinceMs: f.sinceMs, channels: [...f.channels] };
      if (f.freqHz !== undefined) a.freqHz = f.freqHz;
      return a;
    });
  }

  /** True state at the current time (no sensor noise, no sensor faults). */
  state(): MotorState {
    const load = this.loadAt(this.t);
    return {
      tMs: this.t,
      load,
      slip: this.slip,
      rpm: this.shaftHz * 60,
      shaftHz: this.shaftHz,
      shaftPhaseRad: ((this.theta % TWO_PI) + TWO_PI) % TWO_PI,
      shaftAngleRad: this.theta,
      supplyV: this.nominalVoltage * this.supplyRel(this.t, load),
      frameC: this.frameC + this.overheatK,
      ambientC: this.ambientAt(this.t),
      on: this.isOn(this.t),
    };
  }

  // ----------------------------------------------------------------------------- internals

  private loadAt(tMs: number): number {
    // Switched off, the motor carries no torque and draws no current.
    if (this.stops.length > 0 && !this.isOn(tMs)) return 0;
    const base = this.schedule ? this.schedule.at(tMs) : segmentValue(this.manualLoad, tMs);
    return Math.max(0, base * (1 + LOAD_JITTER * this.loadJitter.at(tMs)));
  }

  private envelope(f: FaultState, tMs: number): number {
    const ramp = ONSET_MS[f.kind];
    if (ramp <= 0) return 1;
    return Math.min(1, Math.max(0, (tMs - f.sinceMs) / ramp));
  }

  /** Supply RMS over nominal, without ripple/noise: drift, load dip, sag/swell. */
  private supplyRel(tMs: number, load: number): number {
    let v = 1 + DRIFT_FAST * this.driftFast.at(tMs) + DRIFT_SLOW * this.driftSlow.at(tMs) - LOAD_DIP * load;
    const sag = this.faults.get('sag');
    if (sag) v *= 1 - sag.mag.sagDepth * this.envelope(sag, tMs);
    const swell = this.faults.get('swell');
    if (swell) v *= 1 + swell.mag.swellRise * this.envelope(swell, tMs);
    return v;
  }

  private slipTarget(load: number, vRel: number): number {
    return (SLIP_NO_LOAD + SLIP_PER_LOAD * load) / (vRel * vRel);
  }

  /** Shaft frequency from the current slip state, speed wander and hunting. */
  private shaftHzAt(tMs: number): number {
    let rel = (1 - this.slip) * (1 + SPEED_WANDER * this.speedWander.at(tMs));
    const h = this.faults.get('hunting');
    if (h) {
      const w = TWO_PI * (h.freqHz ?? 1);
      rel *= 1 + h.mag.huntingAmp * this.envelope(h, tMs) * Math.sin((w * (tMs - h.sinceMs)) / 1000);
    }
    return (this.profile.nominalRpm / 60) * rel * this.speedFrac;
  }

  private ambientAt(tMs: number): number {
    const a = this.ambientC + AMBIENT_WANDER * this.ambientWander.at(tMs);
    const c = this.ambientCycle;
    if (!c) return a;
    const warmest = c.warmestHour * 3_600_000;
    return a + c.amplitudeK * Math.cos((2 * Math.PI * (tMs - warmest)) / c.periodMs);
  }

  /** Steady-state frame temperature for this load and supply: T_amb + R_th·P_loss. */
  private riseK(load: number, vRel: number): number {
    const current = load / vRel; // same torque at lower voltage draws more current
    return this.rise * (RISE_CONST_K + RISE_LOAD_K * current * current);
  }

  private equilibriumC(tMs: number, load: number, vRel: number): number {
    // Switched off there are no losses at all, not even the constant ones: the frame heads for ambient.
    if (this.stops.length > 0 && !this.isOn(tMs)) return this.ambientAt(tMs);
    return this.ambientAt(tMs) + this.riseK(load, vRel);
  }

  private integrate(tEnd: number): void {
    while (this.t < tEnd) {
      const h = Math.min(MAX_STEP_MS, tEnd - this.t);
      const tn = this.t + h;
      const load = this.loadAt(tn);
      const vRel = this.supplyRel(tn, load);

      // Slip follows its torque-balance target with the mechanical time constant (exact for a
      // constant target over the step).
      this.slip += (this.slipTarget(load, vRel) - this.slip) * (1 - Math.exp(-h / (TAU_MECH_S * 1000)));
      const on = this.stops.length === 0 || this.isOn(tn);
      if (this.stops.length > 0) {
        // Run-up when switched on, coast-down when off (exact for a constant target over the step).
        const tau = (on ? START_TAU_S : COAST_TAU_S) * 1000;
        this.speedFrac += ((on ? 1 : 0) - this.speedFrac) * (1 - Math.exp(-h / tau));
      }

      // Shaft angle: trapezoid of the speed, so hunting and load steps carry into the vibration phase.
      const f0 = this.shaftHz;
      const f1 = this.shaftHzAt(tn);
      const th0 = this.theta;
      this.theta += Math.PI * (f0 + f1) * (h / 1000);
      this.shaftHz = f1;

      // Supply phase at the (wandering) grid frequency; only its ripple at 2f is used.
      this.gridPhase += TWO_PI * this.supplyHz * (1 + GRID_WANDER * this.gridWander.at(tn)) * (h / 1000);
      if (this.gridPhase > 1e6) this.gridPhase %= TWO_PI;

      // Frame temperature: first-order lag towards T_amb + R_th·P_loss (exact exponential step).
      const eq = this.equilibriumC(tn, load, vRel);
      const tauThermal = on ? this.tauThermalMs : this.tauThermalMs * STANDSTILL_COOLING;
      this.frameC += (eq - this.frameC) * (1 - Math.exp(-h / tauThermal));
      const oh = this.faults.get('overheating');
      if (oh) {
        // Cooling loss: R_th grows by overheatRth, so the extra rise heads for (m−1)·R_th·P_loss,
        // fast, because the sensor sits in the (lost) airflow.
        const target = (oh.mag.overheatRth - 1) * this.riseK(load, vRel);
        this.overheatK += (target - this.overheatK) * (1 - Math.exp(-h / (OVERHEAT_TAU_S * 1000)));
      } else if (this.overheatK !== 0) {
        this.overheatK *= Math.exp(-h / (OVERHEAT_RECOVER_TAU_S * 1000));
        if (Math.abs(this.overheatK) < 1e-6) this.overheatK = 0;
      }

      if (this.wear && !this.wearStarted && tn > this.wear.onsetMs) {
        this.wearStarted = true;
        this.bearingNextPsi = BPFO_RATIO * th0 + TWO_PI * this.faultRng.next();
      }
      this.events(th0, this.theta, this.t, h);
      this.t = tn;
    }
  }

  /** Impacts that happened while the shaft turned from th0 to th1 (during [t0, t0+h]). */
  private events(th0: number, th1: number, t0: number, h: number): void {
    const bearing = this.faults.get('bearing');
    if (bearing || this.wearStarted) {
      const p0 = BPFO_RATIO * th0;
      const p1 = BPFO_RATIO * th1;
      while (this.bearingNextPsi <= p1) {
        const frac = p1 > p0 ? Math.max(0, (this.bearingNextPsi - p0) / (p1 - p0)) : 1;
        // A switched fault and the grown wear are one defect: their impacts add.
        let impact = bearing ? bearing.mag.bearingImpact : 0;
        if (this.wear) impact += bearingWearImpact(this.wear, t0 + frac * h);
        // Outer-race defect sits in the load zone: roughly constant impact strength, ±25 % scatter;
        // harder impacts at higher speed (and none worth the name while the shaft stands still).
        const a = impact * this.speedScale * this.speedFrac * Math.max(0.3, 1 + 0.25 * this.faultRng.gauss());
        this.addImpact(t0 + frac * h, a, 0.7 * a, 0.35 * a);
        this.bearingNextPsi += TWO_PI * (1 + BPFO_JITTER * this.faultRng.gauss());
      }
    }
    const loose = this.faults.get('looseness');
    if (loose) {
      while (this.knockNextTheta <= th1) {
        const frac = th1 > th0 ? Math.max(0, (this.knockNextTheta - th0) / (th1 - th0)) : 1;
        if (this.faultRng.next() < loose.mag.looseKnockProb) {
          // A loose foot/bolt knocks mostly vertically (y), with random strength and direction.
          const a = loose.mag.looseKnock * this.speedScale * this.faultRng.range(0.4, 1.2);
          const sign = this.faultRng.next() < 0.5 ? -1 : 1;
          this.addImpact(t0 + frac * h, 0.5 * a * sign, a, 0.25 * a * sign);
        }
        this.knockNextTheta += TWO_PI;
      }
    }
  }

  private addImpact(t: number, ax: number, ay: number, az: number): void {
    const i = this.impNext;
    this.impT[i] = t;
    this.impA[3 * i] = ax;
    this.impA[3 * i + 1] = ay;
    this.impA[3 * i + 2] = az;
    this.impNext = (i + 1) % IMPACT_SLOTS;
  }

  /** Sum of the ringing of recent impacts on one axis at time t. */
  private ringing(t: number, axis: 0 | 1 | 2): number {
    const w = (TWO_PI * this.resonance[axis]) / 1000;
    let sum = 0;
    for (let i = 0; i < IMPACT_SLOTS; i++) {
      const dt = t - (this.impT[i] as number);
      if (dt < 0 || dt > RING_KEEP_MS) continue;
      sum += (this.impA[3 * i + axis] as number) * Math.exp(-dt / RING_TAU_MS) * Math.sin(w * dt);
    }
    return sum;
  }

  /** Sensor readings at the current time (this.t), before storing them as `last`. */
  private read(): MotorReading {
    const t = this.t;
    const rng = this.noiseRng;
    const load = this.loadAt(t);
    const th = this.theta;
    const ph = this.ph;
    // Forces ∝ ω²: a motor running down loses its vibration with the square of its speed.
    const sc = this.speedScale * (0.8 + 0.4 * load) * this.speedFrac * this.speedFrac;

    // --- vibration: healthy machine
    let a1 = A1X * sc * this.imbalance;
    let a2 = A2X * sc;
    let a3 = A3X * sc;
    let a1z = A1X_AXIAL * sc;
    let a2z = A2X_AXIAL * sc;

    const imb = this.faults.get('imbalance');
    if (imb) a1 *= 1 + (imb.mag.imbalance1x - 1) * this.envelope(imb, t);

    let x = a1 * Math.cos(th + ph[0]!) + a2 * Math.cos(2 * th + ph[1]!) + a3 * Math.cos(3 * th + ph[2]!);
    // y lags x by ~90° at 1x: a rotating unbalance force drives an elliptical orbit.
    let y =
      Y_STIFFNESS *
      (a1 * Math.sin(th + ph[0]!) + a2 * Math.cos(2 * th + ph[3]!) + a3 * Math.cos(3 * th + ph[4]!));
    let z = a1z * Math.cos(th + ph[5]!) + a2z * Math.cos(2 * th + ph[6]!);

    const mis = this.faults.get('misalignment');
    if (mis) {
      // Angular/parallel misalignment: strong 2x radial, high axial 1x/2x, some 3x.
      const e = this.envelope(mis, t) * this.speedScale;
      x += e * (mis.mag.misalign2xRadial * Math.cos(2 * th + ph[7]!) + mis.mag.misalign3x * Math.cos(3 * th + ph[8]!));
      y += e * Y_STIFFNESS * (mis.mag.misalign2xRadial * Math.sin(2 * th + ph[7]!) + mis.mag.misalign3x * Math.sin(3 * th + ph[8]!));
      z += e * mis.mag.misalignAxial * (Math.cos(th + ph[5]!) + Math.cos(2 * th + ph[6]!));
    }

    const loose = this.faults.get('looseness');
    if (loose) {
      // Mechanical looseness: a non-linear, truncated response → a comb of harmonics and
      // half-harmonics (0.5x, 1x, 1.5x, … 6x) and a flattened peak where the foot lifts and lands.
      const e = this.envelope(loose, t);
      let comb = 0;
      for (let k = 1; k <= 12; k++) {
        const order = k / 2;
        const amp = (k % 2 === 1 ? 0.7 : 1) / (1 + 0.25 * k);
        comb += amp * Math.cos(order * th + this.loosePh[k - 1]!);
      }
      comb *= loose.mag.looseHarmonics * this.speedScale * e;
      x += 0.6 * comb;
      y += comb;
      z += 0.2 * comb;
      const peak = Y_STIFFNESS * (a1 + a2 + a3);
      const cut = peak * (1 - loose.mag.looseClip * e);
      if (y > cut) y = cut + 0.15 * (y - cut);
    }

    x += this.ringing(t, 0);
    y += this.ringing(t, 1);
    z += this.ringing(t, 2);

    const days = (t - this.startMs) / DAY_MS;
    const noise = this.ageing ? ACCEL_NOISE * (1 + this.ageing.accelNoisePerDay * days) : ACCEL_NOISE;
    x += noise * rng.gauss();
    y += noise * rng.gauss();
    z += GRAVITY + noise * rng.gauss();

    // --- supply voltage
    const vRel = this.supplyRel(t, load);
    const voltage =
      this.nominalVoltage * vRel + RIPPLE_V * Math.sin(2 * this.gridPhase) + VOLT_NOISE * rng.gauss();

    // --- speed (tachometer)
    const rpm = this.shaftHz * 60 + RPM_NOISE * this.profile.nominalRpm * rng.gauss();

    // --- temperature (frame sensor)
    let temperature = this.frameC + this.overheatK + TEMP_NOISE * rng.gauss();
    if (this.ageing) temperature += this.ageing.temperatureOffsetKPerDay * days;
    if (this.quantizeTemperature) temperature = Math.round(temperature / TEMP_STEP) * TEMP_STEP;

    const r: MotorReading = { accel_x: x, accel_y: y, accel_z: z, voltage, rpm, temperature };
    for (const [c, v] of this.offsets) r[c] += v;
    this.applySensorFaults(r);
    return r;
  }

  private captureStuck(f: FaultState, from: MotorReading): void {
    const stuck = (f.stuck ??= {});
    for (const c of f.channels) {
      if (f.intensity === 'obvious') {
        // A saturated converter / a register reading 0x7FFF or 0x8000: the rail on the side of
        // the last value (accel z with gravity → +full scale).
        const rail = SENSOR_RAILS[c];
        stuck[c] = from[c] >= 0 || rail.lo >= 0 ? rail.hi : rail.lo;
      } else {
        // The data register stopped updating: the last conversion is repeated forever.
        stuck[c] = from[c];
      }
    }
  }

  private applySensorFaults(r: MotorReading): void {
    const stuck = this.faults.get('stuck');
    if (stuck) {
      if (stuck.stuck && Object.keys(stuck.stuck).length === 0) this.captureStuck(stuck, r);
      for (const c of stuck.channels) {
        const v = stuck.stuck?.[c];
        if (v !== undefined) r[c] = v;
      }
    }
    const drop = this.faults.get('dropout');
    if (drop) {
      // A flaky connection NACKs some reads; the driver reports 0 for them. Draw from the fault
      // stream so the healthy channels' noise is unchanged.
      for (const c of drop.channels) {
        if (drop.mag.dropoutFraction >= 1 || this.faultRng.next() < drop.mag.dropoutFraction) r[c] = 0;
      }
    }
  }
}

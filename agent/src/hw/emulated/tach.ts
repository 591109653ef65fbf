/**
 * Emulated tachometer pickup on a GPIO input: a hall-effect (or slotted optical) sensor with an
 * open-collector output and a pull-up, so the line idles high and is pulled low while a magnet
 * (a slot) passes — `pulsesPerRev` pulses per shaft revolution, each `duty` of the pulse spacing
 * long. Edges come from the motor simulator's shaft angle, not from its rpm reading: the pickup
 * sees the shaft turn.
 *
 * The line is checked at least four times per revolution on the clock (and just after each edge the
 * current speed predicts); an edge between two checks is placed by interpolating the shaft angle,
 * and the watch callback gets that instant as its third argument (hw/gpio.ts explains why).
 *
 * Sensor faults of the simulator that name the `rpm` channel act on the pulses: `dropout` swallows
 * that fraction of pulses, `stuck` freezes the line (no edges at all).
 */
import type { Timer } from '../../core/clock.js';
import { Rng } from '../../core/rng.js';
import { FAULT_MAGNITUDES } from '../../sim/faults.js';
import type { BinaryValue, Edge, EdgeCallback, GpioInput } from '../gpio.js';
import type { MotorFeed } from './motor-feed.js';

const TWO_PI = 2 * Math.PI;

export interface EmulatedTachOptions {
  feed: MotorFeed;
  pulsesPerRev: number;
  /** Edges reported to watchers (as onoff's `edge` argument). Default 'falling'. */
  edge?: Edge;
  /** Pulse length as a fraction of the pulse spacing. Default 0.25. */
  duty?: number;
  /** Seed of the dropout draws. Default 1. */
  seed?: number;
}

export class EmulatedTach implements GpioInput {
  /** Edges emitted to watchers since construction. */
  edges = 0;
  /** False: the sensor is unplugged (the pull-up holds the line high, no edges). */
  connected = true;

  private readonly callbacks: EdgeCallback[] = [];
  private readonly rng: Rng;
  private timer: Timer | undefined;
  private level: BinaryValue = 1;
  private lastT = 0;
  /** Unwrapped shaft angle at lastT, rad. */
  private lastPhase = 0;
  /** Index of the next line event: even = falling edge (pulse starts), odd = rising (pulse ends). */
  private nextEvent = 0;
  private swallowing = false;

  constructor(private readonly o: EmulatedTachOptions) {
    if (!Number.isInteger(o.pulsesPerRev) || o.pulsesPerRev < 1) throw new RangeError(`pulsesPerRev must be an integer >= 1, got ${o.pulsesPerRev}`);
    this.rng = new Rng(o.seed ?? 1);
  }

  watch(callback: EdgeCallback): void {
    this.callbacks.push(callback);
    if (this.timer === undefined) this.begin();
  }

  unwatchAll(): void {
    this.callbacks.length = 0;
    this.timer?.cancel();
    this.timer = undefined;
  }

  async read(): Promise<BinaryValue> {
    if (this.timer === undefined) this.begin();
    this.check();
    return this.connected ? this.level : 1;
  }

  unexport(): void {
    this.unwatchAll();
  }

  private get spacing(): number {
    return TWO_PI / this.o.pulsesPerRev;
  }

  private eventPhase(m: number): number {
    return Math.floor(m / 2) * this.spacing + (m % 2 === 1 ? (this.o.duty ?? 0.25) * this.spacing : 0);
  }

  private begin(): void {
    const now = this.o.feed.clock.now();
    const st = this.o.feed.stateAt(now);
    this.lastT = now;
    this.lastPhase = st.shaftPhaseRad;
    const k = Math.floor(this.lastPhase / this.spacing);
    const within = this.lastPhase - k * this.spacing;
    const inPulse = within < (this.o.duty ?? 0.25) * this.spacing;
    this.level = inPulse ? 0 : 1;
    this.nextEvent = inPulse ? 2 * k + 1 : 2 * (k + 1);
    this.arm(st.shaftHz);
  }

  private arm(shaftHz: number): void {
    this.timer?.cancel();
    if (this.callbacks.length === 0) {
      this.timer = undefined;
      return;
    }
    const hz = Math.max(shaftHz, 0.5); // a stopped shaft is still looked at twice a second
    const toNext = ((this.eventPhase(this.nextEvent) - this.lastPhase) / (TWO_PI * hz)) * 1000;
    const quarterRev = 250 / hz;
    const wait = Math.max(0.05, Math.min(toNext + 0.01, quarterRev));
    this.timer = this.o.feed.clock.setTimeout(() => {
      this.timer = undefined;
      this.check();
    }, wait);
  }

  /** Moves the line to now, emitting the edges passed since the last check. */
  private check(): void {
    const now = this.o.feed.clock.now();
    if (now > this.lastT) {
      const st = this.o.feed.stateAt(now);
      const wrappedLast = this.lastPhase % TWO_PI;
      let d = st.shaftPhaseRad - wrappedLast;
      if (d < 0) d += TWO_PI; // the shaft only turns forward; checks are < 1/2 rev apart
      const newPhase = this.lastPhase + d;
      const frozen = this.rpmFault();
      while (this.eventPhase(this.nextEvent) <= newPhase) {
        const m = this.nextEvent++;
        const phi = this.eventPhase(m);
        const at = d > 0 ? this.lastT + ((phi - this.lastPhase) / d) * (now - this.lastT) : now;
        this.edge(m % 2 === 1 ? 1 : 0, at, frozen);
      }
      this.lastT = now;
      this.lastPhase = newPhase;
      // Keep the unwrapped angle small enough for exact arithmetic: shift both by whole revolutions.
      if (this.lastPhase > 1e6) {
        const revs = Math.floor(this.lastPhase / TWO_PI);
        const pulses = revs * this.o.pulsesPerRev;
        this.lastPhase -= revs * TWO_PI;
        this.nextEvent -= 2 * pulses;
      }
      this.arm(st.shaftHz);
    } else if (this.timer === undefined) this.arm(this.o.feed.stateAt(now).shaftHz);
  }

  /** 'stuck' on rpm freezes the line; 'dropout' on rpm swallows that fraction of pulses. */
  private rpmFault(): { stuck: boolean; dropout: number } {
    let stuck = false;
    let dropout = 0;
    for (const f of this.o.feed.motor.activeFaults()) {
      if (!f.channels.includes('rpm')) continue;
      if (f.kind === 'stuck') stuck = true;
      if (f.kind === 'dropout') dropout = FAULT_MAGNITUDES[f.intensity].dropoutFraction;
    }
    return { stuck, dropout };
  }

  private edge(value: BinaryValue, at: number, fault: { stuck: boolean; dropout: number }): void {
    if (value === 0) this.swallowing = !this.connected || fault.stuck || (fault.dropout > 0 && (fault.dropout >= 1 || this.rng.next() < fault.dropout));
    if (this.swallowing) return;
    this.level = value;
    const edge = this.o.edge ?? 'falling';
    if (edge !== 'both' && (edge === 'falling') !== (value === 0)) return;
    this.edges++;
    for (const cb of [...this.callbacks]) cb(null, value, at);
  }
}

/**
 * Emulated tachometer pickup on a GPIO input: a hall-effect (or slotted optical) sensor with an
 * open-collector output and a pull-up, so the line idles high and is pulled low while a magnet
 * (a slot) passes — `pulsesPerRev` pulses per shaft revolution, each `duty` of the pulse spacing
 * long. Edges come from the motor simulator's shaft angle, not from its rpm reading: the pickup
 * sees the shaft turn.
 *
 * The next edge is predicted from the current shaft speed and the line is looked at then (at least
 * twice a second for a shaft standing still); an edge passed since the last look is placed by
 * interpolating the shaft angle, and the watch callback gets that instant as its third argument
 * (hw/gpio.ts explains why). A look that came early (the shaft slowed) simply waits again.
 *
 * Sensor faults of the simulator that name the `rpm` channel act on the pulses: `dropout` swallows
 * that fraction of pulses, `stuck` freezes the line (no edges at all).
 */
import type { Timer } from '../../core/clock.js';
import { Rng } from '../../core/rng.js';
import { FAULT_MAGNITUDES } from '../../motor/fault-magnitudes.js';
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
  private lastT = 0;
  /** Shaft angle at lastT (the simulator's, not wrapped), rad. */
  private lastAngle = 0;
  /** Index of the next line event: even = falling edge (pulse starts), odd = rising (pulse ends). */
  private nextEvent = 0;
  /** The pulse in progress was swallowed (a dropout): its rising edge is too. */
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

  /** The line now: low inside a (not swallowed) pulse, high otherwise or when unplugged. */
  async read(): Promise<BinaryValue> {
    if (!this.connected) return 1;
    const angle = this.o.feed.stateAt(this.o.feed.clock.now()).shaftAngleRad;
    const within = angle - Math.floor(angle / this.spacing) * this.spacing;
    return within < this.duty * this.spacing && !this.swallowing ? 0 : 1;
  }

  unexport(): void {
    this.unwatchAll();
  }

  private get spacing(): number {
    return TWO_PI / this.o.pulsesPerRev;
  }

  private get duty(): number {
    return this.o.duty ?? 0.25;
  }

  private eventAngle(m: number): number {
    return Math.floor(m / 2) * this.spacing + (m % 2 === 1 ? this.duty * this.spacing : 0);
  }

  /** Events the watchers hear: falling (even), rising (odd) or both. */
  private watched(m: number): boolean {
    const e = this.o.edge ?? 'falling';
    return e === 'both' || (e === 'falling') === (m % 2 === 0);
  }

  private begin(): void {
    const now = this.o.feed.clock.now();
    const st = this.o.feed.stateAt(now);
    this.lastT = now;
    this.lastAngle = st.shaftAngleRad;
    const k = Math.floor(this.lastAngle / this.spacing);
    const inPulse = this.lastAngle - k * this.spacing < this.duty * this.spacing;
    this.nextEvent = inPulse ? 2 * k + 1 : 2 * (k + 1);
    this.arm(st.shaftHz);
  }

  private arm(shaftHz: number): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.callbacks.length === 0) return;
    let m = this.nextEvent;
    while (!this.watched(m)) m++;
    const radPerMs = (TWO_PI * Math.max(shaftHz, 0)) / 1000;
    const toEdge = radPerMs > 0 ? (this.eventAngle(m) - this.lastAngle) / radPerMs : Infinity;
    // Just past the predicted instant (so the edge has happened), and at least twice a second.
    const wait = Math.max(0.01, Math.min(toEdge + 0.005, 500));
    this.timer = this.o.feed.clock.setTimeout(() => {
      this.timer = undefined;
      this.check();
    }, wait);
  }

  /** Moves the line to now, emitting the edges passed since the last look, and waits for the next. */
  private check(): void {
    const now = this.o.feed.clock.now();
    const st = this.o.feed.stateAt(now);
    const angle = st.shaftAngleRad;
    if (now > this.lastT && angle > this.lastAngle) {
      const fault = this.rpmFault();
      const d = angle - this.lastAngle;
      while (this.eventAngle(this.nextEvent) <= angle) {
        const m = this.nextEvent++;
        const at = this.lastT + ((this.eventAngle(m) - this.lastAngle) / d) * (now - this.lastT);
        this.edge(m, at, fault);
      }
    }
    this.lastT = now;
    this.lastAngle = angle;
    this.arm(st.shaftHz);
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

  private edge(m: number, at: number, fault: { stuck: boolean; dropout: number }): void {
    if (m % 2 === 0) this.swallowing = !this.connected || fault.stuck || (fault.dropout > 0 && (fault.dropout >= 1 || this.rng.next() < fault.dropout));
    if (this.swallowing || !this.watched(m)) return;
    this.edges++;
    const value: BinaryValue = m % 2 === 0 ? 0 : 1;
    for (const cb of [...this.callbacks]) cb(null, value, at);
  }
}

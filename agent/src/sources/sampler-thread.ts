/**
 * The driver-backed sources (`sim`, `hardware`) on their own thread, as the daemon runs them.
 *
 * Scoring a batch of windows holds the main thread for tens to hundreds of milliseconds (tfjs), and a
 * sampler waiting behind it would read late: readings stamped late, periods missed, and gaps longer
 * than a bundle's maxGapMs that break every model's windows. So the sampler, the drivers and (for
 * `sim`) the emulated rig and motor run in a worker thread (sources/sampler-worker.ts) on the system
 * clock, with its own event loop; readings cross to the main thread as they are taken, stamped where
 * they were read, and the main thread handles them when it can — late but with their true times, as a
 * replay's rows are.
 *
 * Tests that inject a ManualClock use SimSource / HardwareSource directly (a clock cannot cross
 * threads); the registry picks this class for the system clock.
 */
import { Worker } from 'node:worker_threads';
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { silentLogger } from '../core/log.js';
import type { ProfileName } from '../core/profiles.js';
import type { Sample, SensorHealth, SensorSpec } from '../core/sample.js';
import type { HardwareSettings } from '../hw/build.js';
import type { FaultCommand } from './sim-command.js';
import { CommandListener, type SimSettings } from './sim.js';
import { allSensors, SampleHandlers, type SampleSource } from './source.js';

/** What the worker is built from: plain data only. */
export interface WorkerConfig {
  kind: 'sim' | 'hardware';
  sensors: SensorSpec;
  profile: ProfileName;
  settings: HardwareSettings;
  sim?: SimSettings;
  logLevel: string;
  statsIntervalMs?: number;
}

/** Messages from the worker. */
export type FromWorker =
  | { type: 'started' }
  | { type: 'failed'; message: string }
  | { type: 'samples'; samples: Sample[] }
  | { type: 'health'; health: Record<string, SensorHealth> }
  | { type: 'done'; id: number; result?: string; error?: string }
  | { type: 'stopped' };

/** Messages to the worker. */
export type ToWorker = { type: 'command'; id: number; command: FaultCommand } | { type: 'stop'; keepThread: boolean };

export interface ThreadedSourceOptions extends Omit<WorkerConfig, 'logLevel'> {
  clock: Clock;
  log?: Logger;
  /** sim: fault commands are taken from `<prefix>/<dev>/cmd/fault` on this client and passed to the worker. */
  client?: MqttClient;
  device?: string;
  prefix?: string;
}

export class ThreadedSource implements SampleSource {
  readonly kind: string;
  readonly name: string;
  private readonly handlers = new SampleHandlers(() => this.log, () => this.o.clock.now());
  private log: Logger = silentLogger;
  private worker: Worker | undefined;
  private listener: CommandListener | undefined;
  private running = false;
  private crashed = false;
  private latest: Record<string, SensorHealth>;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: string) => void; reject: (e: Error) => void }>();
  private stopped: (() => void) | undefined;

  constructor(private readonly o: ThreadedSourceOptions) {
    this.kind = o.kind;
    this.name = `source:${o.kind}`;
    this.latest = allSensors(o.sensors, 'stale');
  }

  onSample(handler: (s: Sample) => void): void {
    this.handlers.add(handler);
  }

  health(): Record<string, SensorHealth> {
    if (this.crashed) return allSensors(this.o.sensors, 'error');
    if (!this.running) return allSensors(this.o.sensors, 'stale');
    return { ...this.latest };
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.log = (this.o.log ?? silentLogger).child({ module: this.kind });
    const { clock: _c, log, client: _cl, device: _d, prefix: _p, ...rest } = this.o;
    const config: WorkerConfig = { ...rest, logLevel: log?.level ?? 'silent' };
    const worker = new Worker(new URL('./sampler-worker.js', import.meta.url), { workerData: config });
    this.worker = worker;
    this.crashed = false;
    await new Promise<void>((resolve, reject) => {
      const early = (err: Error) => reject(err);
      worker.once('error', early);
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'started') {
          worker.off('error', early);
          resolve();
        } else if (m.type === 'failed') reject(new Error(m.message));
        else this.message(m);
      });
      worker.once('exit', (code) => {
        reject(new Error(`the sampler thread exited (code ${code}) before it started`));
        this.exited(code);
      });
    }).catch(async (err: Error) => {
      if (this.o.kind === 'hardware') worker.unref(); // must not end: see stop()
      else await worker.terminate();
      this.worker = undefined;
      throw err;
    });
    worker.on('error', (err) => {
      this.crashed = true;
      this.log.error({ err: err.message }, 'the sampler thread failed; sensors are in error');
      this.log.debug({ stack: err.stack }, 'sampler thread failure');
    });
    this.running = true;
    if (this.o.kind === 'sim' && this.o.client) {
      this.listener = new CommandListener({ client: this.o.client, prefix: this.o.prefix, device: this.o.device, clock: this.o.clock, log: this.log, apply: (c) => this.command(c) });
      await this.listener.start();
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.listener?.stop();
    const w = this.worker;
    if (!w) return;
    const gone = new Promise<void>((resolve) => (this.stopped = resolve));
    // i2c-bus and epoll (under onoff) are native addons that are not context-aware: a thread that
    // loaded them takes the process down when it ends (Node 20: SIGSEGV at the thread's teardown).
    // So the hardware thread stops sampling, closes the bus and pins, and stays — idle, not holding
    // the process — until the process exits. The sim thread loads neither, and ends.
    const keepThread = this.o.kind === 'hardware';
    w.postMessage({ type: 'stop', keepThread } satisfies ToWorker);
    const timer = keepThread ? undefined : setTimeout(() => void w.terminate(), 2000);
    await gone;
    clearTimeout(timer);
    if (keepThread) w.unref();
    this.worker = undefined;
  }

  /** sim: applies a fault command in the worker; resolves with what it did. */
  command(command: FaultCommand): Promise<string> {
    const w = this.worker;
    if (!w || !this.running) return Promise.reject(new Error(`the ${this.kind} source is not running`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ type: 'command', id, command } satisfies ToWorker);
    });
  }

  private message(m: FromWorker): void {
    switch (m.type) {
      case 'samples':
        if (this.running) for (const s of m.samples) this.handlers.emit(s);
        break;
      case 'health':
        this.latest = m.health;
        break;
      case 'done': {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error !== undefined) p?.reject(new Error(m.error));
        else p?.resolve(m.result ?? '');
        break;
      }
      case 'stopped':
        this.stopped?.();
        break;
      default:
        break;
    }
  }

  private exited(code: number): void {
    for (const p of this.pending.values()) p.reject(new Error('the sampler thread exited'));
    this.pending.clear();
    if (this.running) {
      this.crashed = true;
      this.log.error({ code }, 'the sampler thread exited; sensors are in error');
    }
    this.stopped?.();
  }
}

/**
 * Worker-thread entry of ThreadedSource (sources/sampler-thread.ts): builds the sim or hardware
 * source on the system clock and its own logger (pino to stdout, like the main thread's), forwards
 * readings as they are taken and sensor health when it changes, and applies the commands it is sent.
 * Loaded only through `new Worker(...)`; importing it elsewhere does nothing.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { systemClock } from '../core/clock.js';
import { createLogger } from '../core/log.js';
import { PROFILES } from '../core/profiles.js';
import type { Sample } from '../core/sample.js';
import { HardwareSource } from './hardware.js';
import type { FromWorker, ToWorker, WorkerConfig } from './sampler-thread.js';
import { SimSource } from './sim.js';

/** How often health is looked at for changes, ms. */
const HEALTH_POLL_MS = 100;

async function main(): Promise<void> {
  const port = parentPort!;
  const cfg = workerData as WorkerConfig;
  const send = (m: FromWorker) => port.postMessage(m);
  const log = createLogger({ level: cfg.logLevel, fd: 1 });
  const source =
    cfg.kind === 'sim'
      ? new SimSource({ sensors: cfg.sensors, clock: systemClock, log, profile: cfg.profile, settings: cfg.settings, sim: cfg.sim!, statsIntervalMs: cfg.statsIntervalMs })
      : new HardwareSource({ sensors: cfg.sensors, clock: systemClock, log, periodMs: PROFILES[cfg.profile].periodMs, settings: cfg.settings, statsIntervalMs: cfg.statsIntervalMs });

  let batch: Sample[] = [];
  source.onSample((s) => {
    if (batch.length === 0) setImmediate(() => {
      send({ type: 'samples', samples: batch });
      batch = [];
    });
    batch.push(s);
  });

  try {
    await source.start();
  } catch (err) {
    send({ type: 'failed', message: (err as Error).message });
    // A hardware thread may have loaded i2c-bus or epoll by now; it must not end (see
    // ThreadedSource.stop), so it keeps listening — and the main thread unrefs it.
    if (cfg.kind === 'hardware') port.on('message', () => {});
    else port.close();
    return;
  }
  let last = '';
  const poll = setInterval(() => {
    const health = source.health();
    const text = JSON.stringify(health);
    if (text !== last) send({ type: 'health', health });
    last = text;
  }, HEALTH_POLL_MS);
  send({ type: 'health', health: source.health() });
  send({ type: 'started' });

  port.on('message', (m: ToWorker) => {
    if (m.type === 'stop') {
      clearInterval(poll);
      void source
        .stop()
        .catch((err: unknown) => log.error({ err: (err as Error).message }, 'source did not stop cleanly'))
        .finally(() => {
          send({ type: 'stopped' });
          if (!m.keepThread) port.close(); // see ThreadedSource.stop for why the hardware thread stays
        });
      return;
    }
    if (m.type === 'command') {
      try {
        if (!(source instanceof SimSource)) throw new Error('fault commands are for the sim source');
        send({ type: 'done', id: m.id, result: source.command(m.command) });
      } catch (err) {
        send({ type: 'done', id: m.id, error: (err as Error).message });
      }
    }
  });
}

if (!isMainThread && parentPort) await main();

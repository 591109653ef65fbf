/**
 * Worker-thread entry of bench:learn's jitter probe: the sim source (the drivers, the sampler, the
 * emulated rig and motor) on the system clock in a thread of its own, as the daemon runs its sampler
 * (sources/sampler-thread.ts). Started with the daemon's configuration as workerData; on 'stop' it
 * answers with every part's jitter (hw/sampler.ts JitterStats: a reading's offset from its grid
 * instant) over the time it sampled, and ends.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { AgentConfig } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import { silentLogger } from '../core/log.js';
import { SimSource } from '../sources/sim.js';

export interface JitterReport {
  part: string;
  n: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

async function main(): Promise<void> {
  const port = parentPort!;
  const c = workerData as AgentConfig;
  const source = new SimSource({ sensors: c.sensors, clock: systemClock, log: silentLogger, profile: c.models.profile, settings: c.hardware, sim: c.source.sim, statsIntervalMs: 0 });
  await source.start();
  port.postMessage({ type: 'started' });
  port.once('message', () => {
    const report: JitterReport[] = source.stats().map((s) => ({ part: s.part, ...s.stats.jitter.summary() }));
    void source.stop().then(() => {
      port.postMessage({ type: 'report', report });
      port.close();
    });
  });
}

if (!isMainThread && parentPort) await main();

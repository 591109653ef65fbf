import type { Logger } from 'pino';
import type { AgentConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Metrics } from '../http/metrics.js';
import type { DaemonEvents } from './events.js';

/** What every component of the daemon is given: configuration, time, logging, metrics, the event bus. */
export interface DaemonContext {
  readonly config: AgentConfig;
  readonly version: string;
  /** Every timer and timestamp of the daemon comes from here (tests drive a ManualClock). */
  readonly clock: Clock;
  /** Samplers on a thread of their own (the daemon), or in this one (in-process tests on a ManualClock). */
  readonly threads: boolean;
  readonly metrics: Metrics;
  readonly events: DaemonEvents;
  /** The daemon's logger, for parts that name their own module (sources, the outbox). */
  readonly logger: Logger;
  /** A logger naming the module it logs for. */
  log(module: string): Logger;
}

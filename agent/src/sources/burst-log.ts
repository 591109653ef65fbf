/**
 * "Logged once per burst" (DESIGN.md, MQTT topics): the first event of a burst is logged at warn
 * with its details; further events within `windowMs` are only counted; when the window closes,
 * one summary line gives the counts per reason. A flood of bad input therefore costs two log lines
 * per window, not one per message. Time comes from the injected clock.
 */
import type { Logger } from 'pino';
import type { Clock, Timer } from '../core/clock.js';

export class BurstLog {
  private timer: Timer | undefined;
  private counts = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly clock: Clock,
    private readonly log: Pick<Logger, 'warn'>,
    /** Words for the log lines, e.g. 'ingest payload dropped'. */
    private readonly what: string,
    private readonly windowMs = 10_000,
  ) {}

  /** Records one event; logs it only when it opens a burst. */
  note(reason: string, fields: Record<string, unknown>): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.total++;
    if (this.timer !== undefined) return;
    this.log.warn({ ...fields, reason }, `${this.what}: ${reason} (further ones in the next ${this.windowMs / 1000} s are counted, then summarised)`);
    this.timer = this.clock.setTimeout(() => this.flush(), this.windowMs);
  }

  /** Closes the current burst: one summary line if anything beyond its first event happened. */
  flush(): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.total > 1) {
      const reasons = Object.fromEntries(this.counts);
      this.log.warn({ total: this.total, reasons }, `${this.what}: ${this.total} in the last burst (${[...this.counts].map(([r, n]) => `${r} ${n}`).join(', ')})`);
    }
    this.counts = new Map();
    this.total = 0;
  }
}

import type { Logger } from 'pino';
import type { Alert } from '../core/alert.js';
import type { Sample } from '../core/sample.js';
import type { ScorePayload } from '../core/topics.js';

/** What the daemon's components tell each other (DESIGN.md, data flow). */
export interface DaemonEventMap {
  /** A reading the rings accepted (a rejected one is counted and goes no further). */
  sample: Sample;
  /** A scored window of `model`. */
  score: { model: string; payload: Omit<ScorePayload, 'v' | 't'> };
  /** An episode raised or cleared. */
  alert: Alert;
  /** Something the status topic shows changed: the models running, a sensor's health. */
  status: undefined;
}

type Handler<K extends keyof DaemonEventMap> = (e: DaemonEventMap[K]) => void;

/**
 * The daemon's event bus: a component announces, any other listens, none knows who. A feature is one
 * more listener, not an edit to the one that announces. Handlers run synchronously in the order they
 * were added (samples are the hot path: no allocation per emit); a handler that throws is logged and
 * the others still run.
 */
export class DaemonEvents {
  private readonly handlers: { [K in keyof DaemonEventMap]: Handler<K>[] } = { sample: [], score: [], alert: [], status: [] };

  constructor(private readonly log: Logger) {}

  /** Adds a handler; the function returned removes it again (a component calls it in stop()). */
  on<K extends keyof DaemonEventMap>(kind: K, fn: Handler<K>): () => void {
    const list = this.handlers[kind];
    list.push(fn);
    return () => {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof DaemonEventMap>(kind: K, e: DaemonEventMap[K]): void {
    const list = this.handlers[kind];
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!(e);
      } catch (err) {
        this.log.error({ event: kind, err: (err as Error).message }, `a ${kind} handler threw`);
      }
    }
  }
}

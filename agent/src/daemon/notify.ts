/**
 * sd_notify(3) for `Type=notify` units: READY=1 once the daemon is really up, STOPPING=1 when it
 * begins to stop, RELOADING=1 / READY=1 around a SIGHUP reload, and WATCHDOG=1 — but only while
 * sampling and scoring are progressing, never on a bare timer: a daemon whose event loop is alive but
 * whose pipeline has stalled must look dead to systemd, which then restarts it (WatchdogSec=).
 *
 * Without NOTIFY_SOCKET (not under systemd, or a unit that is not Type=notify) every call does
 * nothing. The datagram socket comes from the optional native package `unix-dgram` (Node has no
 * unix datagram sockets); where it is missing the notifier says so once and does nothing.
 */
import { createRequire } from 'node:module';
import type { Logger } from 'pino';

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  close(): void;
}
interface UnixDgram {
  createSocket(type: 'unix_dgram', onMessage?: (msg: Buffer) => void): DgramSocket;
}

/** `unix-dgram`, or undefined when it is not installed (an optional dependency). */
export function loadUnixDgram(): UnixDgram | undefined {
  try {
    return createRequire(import.meta.url)('unix-dgram') as UnixDgram;
  } catch {
    return undefined;
  }
}

export interface NotifierOptions {
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  /** This process's pid, to honour WATCHDOG_PID. */
  pid: number;
}

export class SystemdNotifier {
  private readonly socketPath: string | undefined;
  private socket: DgramSocket | undefined;
  /** Half of WatchdogSec (sd_watchdog_enabled's advice), or 0 when the unit has no watchdog. */
  readonly watchdogIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private starving = false;

  constructor(private readonly o: NotifierOptions) {
    const path = o.env.NOTIFY_SOCKET;
    // An abstract socket ('@name') cannot be reached through unix-dgram's path API.
    if (path && path.startsWith('@')) o.log.warn({ socket: path }, 'NOTIFY_SOCKET is an abstract socket; systemd notifications are off');
    else this.socketPath = path || undefined;
    if (this.socketPath) {
      const dgram = loadUnixDgram();
      if (!dgram) o.log.warn("NOTIFY_SOCKET is set but the optional package 'unix-dgram' is not installed; systemd notifications are off");
      else {
        this.socket = dgram.createSocket('unix_dgram');
        this.socket.on('error', (err) => o.log.warn({ err: err.message }, 'systemd notification failed'));
      }
    }
    const usec = Number(o.env.WATCHDOG_USEC);
    const forUs = o.env.WATCHDOG_PID === undefined || Number(o.env.WATCHDOG_PID) === o.pid;
    this.watchdogIntervalMs = this.socket && forUs && usec > 0 ? Math.max(1, Math.floor(usec / 2000)) : 0;
  }

  get enabled(): boolean {
    return this.socket !== undefined;
  }

  send(state: string): void {
    if (!this.socket || !this.socketPath) return;
    const buf = Buffer.from(state);
    this.socket.send(buf, 0, buf.length, this.socketPath, (err) => {
      if (err) this.o.log.warn({ err: err.message, state }, 'systemd notification failed');
    });
  }

  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${status}`);
  }

  /** Before a reload; ready() again after it. MONOTONIC_USEC is CLOCK_MONOTONIC, which hrtime reads on Linux. */
  reloading(): void {
    this.send(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  }

  stopping(): void {
    this.stopWatchdog();
    this.send('STOPPING=1');
  }

  /**
   * Feeds the watchdog every interval while `progressing()` says the pipeline moves; otherwise
   * withholds it (and says why, once per stall) so systemd restarts the service.
   */
  startWatchdog(progressing: () => { ok: boolean; why?: string }): void {
    if (this.watchdogIntervalMs === 0 || this.timer) return;
    this.timer = setInterval(() => {
      const p = progressing();
      if (p.ok) {
        if (this.starving) this.o.log.info('pipeline progressing again; watchdog fed');
        this.starving = false;
        this.send('WATCHDOG=1');
      } else if (!this.starving) {
        this.starving = true;
        this.o.log.error({ reason: p.why }, 'pipeline stalled; watchdog not fed (systemd will restart the service)');
      }
    }, this.watchdogIntervalMs);
    this.timer.unref();
  }

  stopWatchdog(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  close(): void {
    this.stopWatchdog();
    this.socket?.close();
    this.socket = undefined;
  }
}

/**
 * How the daemon's Node.js process is started, wherever it is started from: the systemd unit
 * (systemd/anomaly-agent.service), `npm start`, and bench:agent's measuring children. deploy's test
 * checks that the unit and `npm start` carry exactly these.
 *
 * Why: a gateway has little memory, and a daemon that scores one window at a time allocates little
 * but steadily. With Node's defaults the young generation grows to 16 MB semi-spaces and each of
 * V8's background threads keeps a malloc arena of its own, so the process settles ~25 MB above what
 * it uses. Measured with bench:agent (five rpm_1200 bundles): 103 MB with defaults, 76–77 MB with
 * these, at the same CPU per window.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = [
  // Young generation of 2×1 MB: scavenges more often, each one shorter; the daemon's garbage is short-lived.
  '--max-semi-space-size=1',
  // One V8 background thread (concurrent GC and compilation): the daemon is one event loop on a small board.
  '--v8-pool-size=1',
];

/** Environment for the daemon's process: glibc keeps at most two malloc arenas instead of 8 per core. */
export const DAEMON_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

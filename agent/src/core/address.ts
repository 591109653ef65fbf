/**
 * Listener addresses as configuration gives them (`http.host`, `broker.host`), turned into where a
 * client on the same machine connects: the daemon to its embedded broker, `models install` to the
 * daemon's /healthz.
 */
/** Where a local client reaches a listener on `host` (a wildcard address is not a destination), URL-ready. */
export function loopbackOf(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

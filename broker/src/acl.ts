/**
 * Who may publish and subscribe where. A plant network has many gateways and a few screens: a
 * gateway's credential must not be able to speak for another machine (a false alert on pump 3 sent
 * with pump 7's password) nor read the whole plant, and a screen on the wall must not be able to
 * publish at all.
 *
 * - `device` (with its device id D): publish to topics under `<prefix>/D/`; subscribe to filters
 *   under `<prefix>/D/` (its ingest and command topics). Nothing else — not `#`, not `<prefix>/+/…`.
 * - `viewer`: subscribe to filters under `<prefix>/` (e.g. `anomaly/+/status`, `anomaly/#`); no publish.
 * - `admin`: anything.
 *
 * Anonymous clients exist only on a broker without users, which may listen on loopback only
 * (broker.ts): they are the local daemon and local tools, and may do anything.
 */
import { isIP } from 'node:net';
import type { UserRecord } from './users.js';

/** 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** The identity a connected client carries: a user from the users file, or anonymous. */
export type Principal = Pick<UserRecord, 'username' | 'role' | 'device'> | 'anonymous';

function under(topicOrFilter: string, base: string): boolean {
  // `base` ends with '/', so `anomaly/pump-7/…` never matches a `anomaly/pump-70/` base.
  return topicOrFilter.startsWith(base) && topicOrFilter.length > base.length;
}

/** Why the publish is refused, or undefined when it is allowed. */
export function publishRefusal(who: Principal, topic: string, prefix: string): string | undefined {
  if (who === 'anonymous' || who.role === 'admin') return undefined;
  if (who.role === 'viewer') return `viewer '${who.username}' may not publish`;
  const base = `${prefix}/${who.device}/`;
  return under(topic, base) ? undefined : `device '${who.username}' may publish only under ${base}, not to '${topic}'`;
}

/** Why the subscription is refused, or undefined when it is allowed. */
export function subscribeRefusal(who: Principal, filter: string, prefix: string): string | undefined {
  if (who === 'anonymous' || who.role === 'admin') return undefined;
  // A wildcard in the base levels would reach past it (`anomaly/+/…` is every device's).
  const base = who.role === 'viewer' ? `${prefix}/` : `${prefix}/${who.device}/`;
  return under(filter, base) ? undefined : `${who.role} '${who.username}' may subscribe only under ${base}, not to '${filter}'`;
}

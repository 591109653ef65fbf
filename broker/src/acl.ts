/**
 * Who may publish and subscribe where. A plant network has many gateways and a few screens: a
 * gateway's credential must not be able to speak for another machine (a false alert on pump 3 sent
 * with pump 7's password), nor read the whole plant, nor change what its own gateway runs (a model
 * update or a command is an operator's act, not the gateway's); and a screen on the wall must not be
 * able to publish at all.
 *
 * - `device` (with its device id D): publish the topics a gateway sends for D — those of
 *   core/topics.ts whose `publisher` is `device` (status, telemetry, score, alerts, models/result, and
 *   ingest for a local bridge); subscribe to the topics the gateway takes in for D — those whose
 *   `direction` is `in` (ingest, models/update, cmd/fault, cmd/learn), one filter per topic (`+` for a sensor or
 *   model level, never `#`). Nothing else: not another device's topics, not `#`, not a topic that is
 *   not in core/topics.ts (a command that is not declared there, say `cmd/reboot`).
 * - `viewer`: subscribe to filters under `<prefix>/` (e.g. `anomaly/+/status`, `anomaly/#`); no publish.
 * - `admin`: anything — the only role that publishes `models/update` and `cmd/…`.
 *
 * Anonymous clients exist only on a broker without users, which may listen on loopback only
 * (broker.ts): they are the local daemon and local tools, and may do anything.
 */
import { isIP } from 'node:net';
import { parseTopic, topic as topicOf, TOPICS, type TopicName, type TopicSpec } from '../../agent/src/core/topics.js';
import type { UserRecord } from './users.js';

/** 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** The identity a connected client carries: a user from the users file, or anonymous. */
export type Principal = Pick<UserRecord, 'username' | 'role' | 'device'> | 'anonymous';

type Device = Pick<UserRecord, 'username' | 'device'>;

const NAMES = Object.keys(TOPICS) as TopicName[];
const suffixOf = (name: TopicName): string => TOPICS[name].suffix.replace(/\{(\w+)\}/, '<$1>');
/** The topics a device publishes, and those it may subscribe to. */
const DEVICE_PUBLISHES = NAMES.filter((n) => TOPICS[n].publisher === 'device');
const DEVICE_SUBSCRIBES = NAMES.filter((n) => TOPICS[n].direction === 'in');

function under(topicOrFilter: string, base: string): boolean {
  // `base` ends with '/', so `anomaly/pump-7/…` never matches a `anomaly/pump-70/` base.
  return topicOrFilter.startsWith(base) && topicOrFilter.length > base.length;
}

function devicePublishRefusal(who: Device, topic: string, prefix: string): string | undefined {
  const base = `${prefix}/${who.device}/`;
  if (!under(topic, base)) return `device '${who.username}' may publish only under ${base}, not to '${topic}'`;
  const parsed = parseTopic(prefix, topic);
  if (!parsed) return `device '${who.username}' may not publish to '${topic}': a device publishes only ${DEVICE_PUBLISHES.map(suffixOf).join(', ')}`;
  const spec: TopicSpec = TOPICS[parsed.name];
  if (spec.publisher !== 'device') return `device '${who.username}' may not publish to '${topic}': only an admin may publish ${spec.suffix}`;
  return undefined;
}

/** A device's filter: one of its `in` topics, with `+` or a name at a sensor/model level. */
function deviceSubscribeRefusal(who: Device, filter: string, prefix: string): string | undefined {
  const base = `${prefix}/${who.device}/`;
  if (!under(filter, base)) return `device '${who.username}' may subscribe only under ${base}, not to '${filter}'`;
  const levels = filter.slice(base.length).split('/');
  const fits = (name: TopicName): boolean => {
    const want = TOPICS[name].suffix.split('/');
    return want.length === levels.length && want.every((w, i) => (w.startsWith('{') ? levels[i] !== '' && levels[i] !== '#' : w === levels[i]));
  };
  if (DEVICE_SUBSCRIBES.some(fits)) return undefined;
  return `device '${who.username}' may not subscribe to '${filter}': a device subscribes only to ${DEVICE_SUBSCRIBES.map((n) => `${base}${suffixOf(n)}`).join(', ')}`;
}

/** Why the publish is refused, or undefined when it is allowed. */
export function publishRefusal(who: Principal, topic: string, prefix: string): string | undefined {
  if (who === 'anonymous' || who.role === 'admin') return undefined;
  if (who.role === 'viewer') return `viewer '${who.username}' may not publish`;
  return devicePublishRefusal(who, topic, prefix);
}

/** Why the subscription is refused, or undefined when it is allowed. */
export function subscribeRefusal(who: Principal, filter: string, prefix: string): string | undefined {
  if (who === 'anonymous' || who.role === 'admin') return undefined;
  if (who.role === 'device') return deviceSubscribeRefusal(who, filter, prefix);
  // A wildcard in the base levels would reach past it (`+/…` is every prefix's).
  const base = `${prefix}/`;
  return under(filter, base) ? undefined : `viewer '${who.username}' may subscribe only under ${base}, not to '${filter}'`;
}

/**
 * The README's ACL table: each role against each topic, made by asking publishRefusal and
 * subscribeRefusal about a sample topic of every row (a test keeps the README in step).
 */
export function aclMarkdown(prefix: string): string {
  const dev = 'pump-7';
  const roles: [string, Principal][] = [
    ['device (its own `<dev>`)', { username: dev, role: 'device', device: dev }],
    ['viewer', { username: 'wall', role: 'viewer' }],
    ['admin', { username: 'ops', role: 'admin' }],
  ];
  const rows: [string, string][] = NAMES.map((n) => [`\`${prefix}/<dev>/${suffixOf(n)}\``, topicOf(prefix, dev, n, TOPICS[n].suffix.includes('{') ? 'x' : undefined)]);
  rows.push(
    ['any other topic under `<dev>` (e.g. `cmd/reboot`)', `${prefix}/${dev}/cmd/reboot`],
    [`another device's topics, \`${prefix}/<other>/…\``, `${prefix}/pump-3/alerts`],
    [`outside \`${prefix}/\` (\`$SYS/…\`, \`homeassistant/…\`)`, `homeassistant/binary_sensor/${dev}/config`],
  );
  const cell = (who: Principal, t: string): string => {
    const may = [publishRefusal(who, t, prefix) === undefined ? 'publish' : '', subscribeRefusal(who, t, prefix) === undefined ? 'subscribe' : ''].filter(Boolean);
    return may.length ? may.join(', ') : '—';
  };
  return [
    `| topic | ${roles.map(([r]) => r).join(' | ')} |`,
    `|---|${roles.map(() => '---|').join('')}`,
    ...rows.map(([label, t]) => `| ${label} | ${roles.map(([, who]) => cell(who, t)).join(' | ')} |`),
  ].join('\n');
}

/**
 * The broker's users file: who may connect, with which role, passwords stored as scrypt hashes.
 *
 *   {"users": [{"username": "pump-7", "role": "device", "device": "pump-7", "password": "scrypt$16384$8$1$<salt>$<hash>"}]}
 *
 * Roles (broker/src/acl.ts): `device` publishes what a gateway sends and subscribes to what it takes
 * in, under `<prefix>/<its device>/` only; `viewer` subscribes under `<prefix>/` and never publishes;
 * `admin` may do anything (a workstation sending commands or models). The file is written by `anomaly-broker users add|remove` and read at
 * start; a file that cannot be trusted (bad JSON, an unknown role, a hash in another format) stops
 * the broker with a message naming the entry, rather than letting anyone in or locking everyone out.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';

export const ROLES = ['device', 'viewer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface UserRecord {
  username: string;
  role: Role;
  /** The device id a `device` user speaks for. */
  device?: string;
  /** `scrypt$N$r$p$<salt base64>$<hash base64>`. */
  password: string;
}

/** Username → record. */
export type UserTable = ReadonlyMap<string, UserRecord>;

/**
 * scrypt cost: N = 2^14, r = 8 (16 MiB, the parameters RFC 7914 and OWASP list as a floor), about
 * 50 ms per check on a Raspberry Pi 4 core — paid once per CONNECT, off the event loop.
 */
const SCRYPT = { N: 16384, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  if (password.length === 0) throw new Error('the password is empty');
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, KEY_BYTES, { ...SCRYPT, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

function parseHash(s: string): ParsedHash | string {
  const parts = s.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return "not 'scrypt$N$r$p$salt$hash'";
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (!(Number.isInteger(N) && N > 1 && (N & (N - 1)) === 0)) return `N must be a power of two, got ${parts[1]}`;
  if (!(Number.isInteger(r) && r > 0 && Number.isInteger(p) && p > 0)) return 'r and p must be positive integers';
  const salt = Buffer.from(parts[4]!, 'base64');
  const key = Buffer.from(parts[5]!, 'base64');
  if (salt.length < 8 || key.length < 16) return 'salt or hash too short';
  return { N, r, p, salt, key };
}

/** Constant-time check of a password against a stored hash; false for a malformed hash. */
export async function verifyPassword(stored: string, password: Buffer | string | undefined): Promise<boolean> {
  const h = parseHash(stored);
  if (typeof h === 'string') return false;
  const pw = password === undefined ? '' : password.toString();
  const key = await scrypt(pw, h.salt, h.key.length, { N: h.N, r: h.r, p: h.p, maxmem: 256 * h.N * h.r + 1024 * 1024 });
  return timingSafeEqual(key, h.key) && password !== undefined;
}

/** A device id or username usable as one MQTT topic level (no wildcards, no separators). */
function topicLevelProblem(s: string): string | undefined {
  if (s.length === 0) return 'is empty';
  if (/[/+#\u0000]/.test(s)) return "must not contain '/', '+', '#' or NUL";
  return undefined;
}

/** Validate one entry; the message names the entry and what is wrong with it. */
export function checkUser(obj: unknown, where: string): UserRecord {
  const bad = (why: string): never => {
    throw new Error(`${where}: ${why}`);
  };
  const o = obj as Partial<UserRecord> | null;
  if (o === null || typeof o !== 'object') return bad('not an object');
  if (typeof o.username !== 'string' || o.username.length === 0) return bad('username must be a non-empty string');
  if (o.username.startsWith('$')) bad(`username '${o.username}' must not start with '$' (reserved)`);
  if (!(ROLES as readonly string[]).includes(o.role as string)) bad(`user '${o.username}': role must be one of ${ROLES.join(', ')}, got '${String(o.role)}'`);
  if (o.role === 'device') {
    if (typeof o.device !== 'string') bad(`user '${o.username}': a device user needs 'device' (the device id it publishes as)`);
    const why = topicLevelProblem(o.device!);
    if (why) bad(`user '${o.username}': device '${o.device}' ${why}`);
  } else if (o.device !== undefined) {
    bad(`user '${o.username}': only a device user has a 'device'`);
  }
  if (typeof o.password !== 'string') return bad(`user '${o.username}': password must be a scrypt hash string`);
  const h = parseHash(o.password);
  if (typeof h === 'string') bad(`user '${o.username}': password hash ${h}`);
  return { username: o.username, role: o.role!, ...(o.role === 'device' ? { device: o.device! } : {}), password: o.password };
}

export function parseUsers(text: string, file: string): Map<string, UserRecord> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const list = (doc as { users?: unknown } | null)?.users;
  if (!Array.isArray(list)) throw new Error(`${file}: expected {"users": [ … ]}`);
  const table = new Map<string, UserRecord>();
  list.forEach((entry, i) => {
    const u = checkUser(entry, `${file}: users[${i}]`);
    if (table.has(u.username)) throw new Error(`${file}: users[${i}]: username '${u.username}' appears twice`);
    table.set(u.username, u);
  });
  return table;
}

export async function loadUsers(file: string): Promise<Map<string, UserRecord>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`users file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  return parseUsers(text, file);
}

/** Write atomically (a reader never sees half a file), owner-only: it holds password hashes. */
export async function saveUsers(file: string, table: UserTable): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const users = [...table.values()].sort((a, b) => a.username.localeCompare(b.username));
  await writeFile(tmp, JSON.stringify({ users }, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/** Add or replace a user (a new password, a new role) and save. Creates the file if missing. */
export async function upsertUser(file: string, user: { username: string; role: Role; device?: string; password: string }): Promise<'added' | 'updated'> {
  let table: Map<string, UserRecord>;
  try {
    table = await loadUsers(file);
  } catch (err) {
    if (!/ENOENT/.test((err as Error).message)) throw err;
    table = new Map();
  }
  const record = checkUser({ ...user, password: await hashPassword(user.password) }, `user '${user.username}'`);
  const existed = table.has(record.username);
  table.set(record.username, record);
  await saveUsers(file, table);
  return existed ? 'updated' : 'added';
}

export async function removeUser(file: string, username: string): Promise<boolean> {
  const table = await loadUsers(file);
  const existed = table.delete(username);
  if (existed) await saveUsers(file, table);
  return existed;
}

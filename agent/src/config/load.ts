/**
 * Builds the effective configuration: schema defaults < JSON file < ANOMALY_* env < flags, then
 * validates it strictly and reports every problem at once, each naming the key path and where the
 * bad value came from. Pure with respect to the process: the caller passes argv and env.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import convict from 'convict';
import { isLoopback } from '../../../broker/src/acl.js';
import { MODEL_FEATURES } from '../core/profiles.js';
import { channelIndex } from '../core/sample.js';
import { channelLimits } from '../buffer/sensor-check.js';
import { DEFAULTS } from '../core/defaults.js';
import { partRanges, planParts } from '../hw/build.js';
import { KEYS, SCHEMA, isPlainObject, registerFormats, type AgentConfig, type KeySpec } from './schema.js';

export type { AgentConfig } from './schema.js';

export interface LoadOptions {
  /** `--<flag> VALUE` / `--<flag>=VALUE` for any key (see `anomaly-agent config --schema`), and `--config FILE`. */
  argv?: readonly string[];
  /** The environment; only the ANOMALY_* variables of the schema are read. */
  env?: Record<string, string | undefined>;
  /** JSON config file; a `--config` in argv wins over it. */
  file?: string;
}

/** Everything wrong with the configuration, one problem per line, each starting with the key path (or flag, or file). */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    const n = problems.length;
    super(`invalid configuration (${n} problem${n === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

const BY_ARG = new Map(KEYS.map((k) => [k.arg, k]));
const BY_PATH = new Map(KEYS.map((k) => [k.path, k]));

export function loadConfig(opts: LoadOptions = {}): AgentConfig {
  const env = opts.env ?? {};
  const flags = readFlags(opts.argv ?? []);
  const problems = [...flags.problems];

  const file = flags.config ?? opts.file;
  let fileData: Record<string, unknown> | undefined;
  let fileParts: FileParts = { load: {}, replace: [], problems: [] };
  if (file !== undefined) {
    const read = readConfigFile(file);
    if (read.problem) problems.push(read.problem);
    fileData = read.data;
    if (fileData) fileParts = splitFile(fileData, file);
    problems.push(...fileParts.problems);
  }

  const origin = (path: string): string => {
    const key = BY_PATH.get(path);
    if (key && flags.values.has(path)) return ` (from --${key.arg})`;
    if (key && env[key.env] !== undefined) return ` (from ${key.env})`;
    if (file !== undefined && fileData && hasPath(fileData, path)) return ` (from ${file})`;
    return '';
  };

  registerFormats();
  let config: convict.Config<AgentConfig>;
  try {
    // convict reads env in its constructor and again at the end of load(), so the order is
    // defaults < file < env; flags are set last. `args: []` keeps convict off process.argv.
    config = convict(SCHEMA, { env: env as NodeJS.ProcessEnv, args: [] });
    // Map-valued keys (sensors, replay columns) are replaced by the file, not merged into the
    // defaults: convict's load() would merge, and a file's `sensors` would inherit default ones.
    for (const [path, value] of fileParts.replace) config.set(path, value);
    config.load(fileParts.load);
    for (const [path, raw] of flags.values) config.set(path, raw);
  } catch (err) {
    // Our formats never throw while coercing; this is a safety net so a surprise still names itself.
    throw new ConfigError([...problems, `the configuration could not be assembled: ${(err as Error).message}`].map(scrubUrls));
  }

  const bad = new Set<string>(); // keys that failed their format: cross-checks skip them
  try {
    config.validate({ allowed: 'strict' });
  } catch (err) {
    for (const line of (err as Error).message.split('\n').filter(Boolean)) {
      const path = /^([\w.]+): /.exec(line)?.[1];
      if (path && BY_PATH.has(path)) bad.add(path);
      problems.push(explain(line, origin, file));
    }
  }
  const result = config.getProperties();
  // A file, env or flag that names some channels leaves the others at their default entry: changing
  // the voltage range must not take the accelerometer's away.
  if (!bad.has('sensorFaults.channels')) result.sensorFaults.channels = { ...DEFAULTS.config.sensorFaults.channels, ...result.sensorFaults.channels };
  for (const [path, why] of crossChecks(result, bad, (path) => origin(path) !== '')) problems.push(`${path}: ${why}${origin(path)}`);

  if (problems.length) throw new ConfigError(problems.map(scrubUrls));
  return result;
}

// ---------------------------------------------------------------------------------------------
// Flags. Parsed with node:util parseArgs rather than convict's `args` option: convict hands argv to
// yargs-parser, which turns number-looking strings into numbers (`--device-id 1e3` becomes '1000',
// a 20-digit serial loses its last digits) and silently ignores unknown flags.

interface Flags {
  config?: string;
  /** key path → raw value, in argv order (a repeated flag: the last wins). */
  values: Map<string, string>;
  problems: string[];
}

function readFlags(argv: readonly string[]): Flags {
  const options = Object.fromEntries([...KEYS.map((k) => k.arg), 'config'].map((name) => [name, { type: 'string' as const }]));
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const out: Flags = { values: new Map(), problems: [] };
  let afterUnknown = false;
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      // `--typo value`: the value was meant for the unknown flag, already reported.
      if (!afterUnknown) out.problems.push(`unexpected argument '${t.value}'`);
      afterUnknown = false;
      continue;
    }
    afterUnknown = false;
    const key = BY_ARG.get(t.name);
    if (!key && t.name !== 'config') {
      out.problems.push(`${t.rawName}: unknown flag ('anomaly-agent config --schema' lists them all)`);
      afterUnknown = t.value === undefined;
    } else if (t.value === undefined) {
      out.problems.push(`${t.rawName}: needs a value`);
    } else if (!t.inlineValue && t.value.startsWith('--')) {
      out.problems.push(`${t.rawName}: needs a value, got the flag '${t.value}' (write ${t.rawName}=VALUE for a value starting with '--')`);
    } else if (key) {
      out.values.delete(key.path); // keep argv order for the last occurrence
      out.values.set(key.path, t.value);
    } else {
      out.config = t.value;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The file. Read and parsed here (not with convict's loadFile) so that an unreadable file, bad
// JSON and a top level that is not an object each get a message naming the file, and so the parsed
// object can say which bad value came from the file.

function fsReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory, not a file';
    default:
      return e.message;
  }
}

/** V8's JSON message without the excerpt of the file it quotes (which may hold a password), with line:column. */
function jsonReason(err: unknown, text: string): string {
  let msg = (err as Error).message.replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, '');
  const at = / in JSON at position (\d+)/.exec(msg);
  if (at) {
    const before = text.slice(0, Number(at[1])).split('\n');
    msg = msg.replace(at[0], ` at line ${before.length}, column ${before[before.length - 1]!.length + 1}`);
  }
  return msg;
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

function readConfigFile(file: string): { data?: Record<string, unknown>; problem?: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { problem: `config file ${file}: ${fsReason(err)}` };
  }
  if (text.trim() === '') return { data: {} }; // as convict does: an empty file sets nothing
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { problem: `config file ${file}: not valid JSON: ${jsonReason(err, text)}` };
  }
  if (!isPlainObject(data)) return { problem: `config file ${file}: must hold a JSON object of settings, not ${describe(data)}` };
  return { data };
}

interface FileParts {
  /** What convict's load() overlays. */
  load: Record<string, unknown>;
  /** Map-valued keys to set whole. */
  replace: [string, unknown][];
  problems: string[];
}

/**
 * Splits the file along the schema, catching what convict would mishandle: a section given as a
 * non-object (convict then throws from set() or reports each child as "missing"), dotted keys
 * (which convict's flattening confuses with nested ones) and `__proto__`.
 */
function splitFile(data: Record<string, unknown>, file: string): FileParts {
  const parts: FileParts = { load: {}, replace: [], problems: [] };
  const walk = (obj: Record<string, unknown>, schema: Record<string, unknown> | undefined, prefix: string, into: Record<string, unknown>) => {
    for (const [name, value] of Object.entries(obj)) {
      const path = prefix ? `${prefix}.${name}` : name;
      if (name === '__proto__' || name.includes('.')) {
        parts.problems.push(`${JSON.stringify(path)}: not a key of the schema; nest keys as objects, e.g. {"mqtt": {"url": …}} (from ${file})`);
        continue;
      }
      const node = schema && Object.hasOwn(schema, name) ? schema[name] : undefined;
      if (!isPlainObject(node)) {
        into[name] = value; // unknown: convict's strict validation reports it with its path
      } else if (!('default' in node)) {
        if (!isPlainObject(value)) {
          parts.problems.push(`${path}: must be an object with the keys ${Object.keys(node).join(', ')}, not ${describe(value)} (from ${file})`);
          continue;
        }
        const sub: Record<string, unknown> = {};
        into[name] = sub;
        walk(value, node, path, sub);
      } else if (isPlainObject(node.default)) {
        parts.replace.push([path, value]);
      } else {
        into[name] = value;
      }
    }
  };
  walk(data, SCHEMA as Record<string, unknown>, '', parts.load);
  return parts;
}

function hasPath(obj: Record<string, unknown>, path: string): boolean {
  let node: unknown = obj;
  for (const part of path.split('.')) {
    if (!isPlainObject(node) || !Object.hasOwn(node, part)) return false;
    node = node[part];
  }
  return true;
}

/** A line of convict's validation message, reworded where needed and told where the value came from. */
function explain(line: string, origin: (path: string) => string, file: string | undefined): string {
  const undeclared = /^configuration param '(.+)' not declared in the schema$/.exec(line);
  // Only a file can bring keys the schema does not declare (env and flags map to keys).
  if (undeclared) return `${undeclared[1]}: not a key of the schema${file ? ` (from ${file})` : ''}`;
  const path = /^([\w.]+): /.exec(line)?.[1];
  return path && BY_PATH.has(path) ? line + origin(path) : line;
}

// ---------------------------------------------------------------------------------------------
// Checks across keys or against the filesystem, which convict's per-key formats cannot express.
// Each runs only when the keys it reads passed their own format, so one mistake is reported once.

function crossChecks(c: AgentConfig, bad: ReadonlySet<string>, explicit: (path: string) => boolean): [string, string][] {
  const out: [string, string][] = [];
  const valid = (...paths: string[]) => paths.every((p) => !bad.has(p));

  const { raiseK, raiseN } = c.detector;
  if (valid('detector.raiseK', 'detector.raiseN') && raiseK > raiseN) {
    out.push(['detector.raiseK', `${raiseK} is more than detector.raiseN (${raiseN}): k of the last n windows could never be over the threshold`]);
  }

  if (valid('hardware.staleMs', 'hardware.errorMs') && c.hardware.errorMs <= c.hardware.staleMs) {
    out.push(['hardware.errorMs', `${c.hardware.errorMs} is not longer than hardware.staleMs (${c.hardware.staleMs}): a sensor goes stale before it is in error`]);
  }
  let partsKnown = valid('sensors');
  if ((c.source.kind === 'sim' || c.source.kind === 'hardware') && valid('sensors')) {
    try {
      planParts(c.sensors);
    } catch (err) {
      partsKnown = false;
      out.push(['sensors', `source ${c.source.kind}: ${(err as Error).message}`]);
    }
  }
  // Every channel needs plausible limits, and they must overlap what its part can read.
  if (partsKnown && valid('sensorFaults.channels') && ![...bad].some((p) => p.startsWith('hardware.'))) {
    try {
      channelLimits(c.sensors, c.sensorFaults.channels, sourceParts(c));
    } catch (err) {
      out.push(['sensorFaults.channels', (err as Error).message]);
    }
  }

  if (valid('models.dir')) {
    // Created at start when missing (a fresh clone has no state/ yet): what exists of it must be a directory.
    let existing = resolve(c.models.dir);
    while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
    const p = pathProblem(existing === resolve(c.models.dir) ? c.models.dir : existing, 'directory');
    if (p) out.push(['models.dir', p]);
  }
  if (valid('models.shippedDir') && c.models.shippedDir) {
    const p = pathProblem(c.models.shippedDir, 'directory');
    if (p) out.push(['models.shippedDir', p]);
  }
  if (valid('models.trustedKeys')) {
    for (const f of c.models.trustedKeys) {
      const p = pathProblem(f, 'file');
      if (p) out.push(['models.trustedKeys', p]);
    }
    if (valid('models.requireSigned') && c.models.requireSigned && c.models.trustedKeys.length === 0) {
      out.push(['models.requireSigned', 'is on but models.trustedKeys is empty: every bundle would be refused']);
    }
  }
  if (c.source.kind === 'replay' && valid('source.replay.file')) {
    const p = pathProblem(c.source.replay.file, 'file');
    if (p) out.push(['source.replay.file', p]);
  }

  if (valid('sensors')) {
    const channels = channelIndex(c.sensors);
    if (valid('models.enabled')) {
      for (const model of c.models.enabled) {
        const missing = MODEL_FEATURES[model].filter((ch) => !channels.has(ch));
        if (missing.length) out.push(['models.enabled', `model '${model}' reads ${missing.join(', ')}, which no sensor in sensors declares`]);
      }
    }
    if (valid('source.replay.columns')) {
      for (const [column, channel] of Object.entries(c.source.replay.columns)) {
        if (!channels.has(channel)) out.push(['source.replay.columns', `maps column '${column}' to '${channel}', which no sensor in sensors declares`]);
      }
    }
  }

  if (c.mqtt.url === '') {
    const b = c.broker;
    if (valid('broker.host', 'broker.usersFile') && b.usersFile === '' && !isLoopback(b.host)) {
      out.push(['broker.host', `${b.host} is reachable from other machines, and without broker.usersFile anyone there could publish alerts or read the plant: give the broker a users file (anomaly-broker users add …) or listen on 127.0.0.1`]);
    }
    if (b.usersFile !== '' && valid('broker.usersFile')) {
      const p = pathProblem(b.usersFile, 'file');
      if (p) out.push(['broker.usersFile', p]);
    }
    if (valid('broker.tlsPort') && b.tlsPort > 0) {
      for (const key of ['tlsCert', 'tlsKey'] as const) {
        const p = b[key] === '' ? 'must name a PEM file when broker.tlsPort is set' : pathProblem(b[key], 'file');
        if (p) out.push([`broker.${key}`, p]);
      }
    }
  }

  // Our own listeners must not collide (the broker's only exist when it is embedded).
  const listeners: [string, number][] = [['http.port', c.http.port]];
  if (c.mqtt.url === '') listeners.push(['broker.port', c.broker.port], ['broker.wsPort', c.broker.wsPort], ['broker.tlsPort', c.broker.tlsPort]);
  listeners.forEach(([path, port], i) => {
    const twin = listeners.slice(0, i).find(([p2, p]) => p === port && valid(p2));
    if (!twin || !valid(path) || port === 0) return;
    // Blame the key that was set rather than the one left at its default.
    const [blamed, other] = explicit(path) || !explicit(twin[0]) ? [path, twin[0]] : [twin[0], path];
    out.push([blamed, `${port} is also ${other}; two listeners cannot share a port`]);
  });
  return out;
}

/** What the configured source's parts can read, per channel: known for the sim and hardware sources, which read the parts themselves. */
export function sourceParts(c: AgentConfig): ReturnType<typeof partRanges> {
  return c.source.kind === 'sim' || c.source.kind === 'hardware' ? partRanges(c.hardware, c.sensors) : {};
}

/** Why `p` is not an existing directory / readable file, or undefined. Relative paths are shown resolved. */
function pathProblem(p: string, want: 'directory' | 'file'): string | undefined {
  const shown = isAbsolute(p) ? p : `${p} (${resolve(p)})`;
  try {
    const st = statSync(p);
    if (want === 'directory' && !st.isDirectory()) return `${shown} is not a directory`;
    if (want === 'file' && !st.isFile()) return `${shown} is not a file`;
    if (want === 'file') accessSync(p, constants.R_OK);
    return undefined;
  } catch (err) {
    return `${shown}: ${fsReason(err)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Redaction.

const REDACTED = '[redacted]';

/** `mqtt://user:secret@host` → `mqtt://user:[redacted]@host`; other strings unchanged. */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) return url;
  const authority = m[2]!;
  const at = authority.lastIndexOf('@'); // the WHATWG parser also splits user info at the last '@'
  const colon = authority.slice(0, Math.max(at, 0)).indexOf(':');
  if (at < 0 || colon < 0) return url;
  return `${m[1]}${authority.slice(0, colon)}:${REDACTED}${authority.slice(at)}${m[3]}`;
}

/** Passwords inside any URL in a message (a bad mqtt.url is quoted by convict). */
function scrubUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:@/"]*):[^\s/"?#]*@/gi, `$1:${REDACTED}@`);
}

/**
 * A copy safe to print: every `sensitive` key and the password inside mqtt.url replaced by
 * '[redacted]'. An empty secret stays '' — "no password configured" is what one needs to see when
 * a connection is refused, and it reveals nothing.
 */
export function redacted(config: AgentConfig): AgentConfig {
  const copy = structuredClone(config);
  for (const key of KEYS.filter((k: KeySpec) => k.sensitive)) {
    const parts = key.path.split('.');
    const last = parts.pop()!;
    let parent: Record<string, unknown> = copy as unknown as Record<string, unknown>;
    for (const part of parts) parent = parent[part] as Record<string, unknown>;
    if (parent[last] !== '') parent[last] = REDACTED;
  }
  copy.mqtt.url = redactUrl(copy.mqtt.url);
  return copy;
}

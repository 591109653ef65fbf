import { UsageError, type CommandIO } from './command.js';
import { ConfigError, loadConfig, type AgentConfig } from '../config/load.js';
import { KEYS, shownDefault } from '../config/schema.js';
import { unknownAnomalyEnv, type UnknownEnv } from '../config/unknown-env.js';
import { DEFAULTS } from '../core/defaults.js';
import { isModelType, isProfileName, MODEL_TYPES, PROFILE_NAMES, type ModelType, type ProfileName } from '../core/profiles.js';
import { BACKENDS, SCORER_ENGINES, type BackendPreference, type ScorerEngine } from '../model/engines.js';
import { TRAINERS, type TrainerChoice, type TrainerName } from '../train/trainer.js';

/** Flag parsers shared by the workstation commands, each naming the flag it rejects. */

/** Takes `--name value` out of `args` and returns the value (undefined when absent); a flag without a value is a usage error. */
export function takeFlag(args: string[], name: string): string | undefined {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return undefined;
  const v = args[at + 1];
  if (v === undefined || v.startsWith('--')) throw new UsageError(`--${name} needs a value`);
  args.splice(at, 2);
  return v;
}

export function intFlag(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}

export function profilesFlag(value: string | undefined): ProfileName[] {
  if (value === undefined || value === 'all') return [...PROFILE_NAMES];
  const names = value.split(',');
  for (const n of names) if (!isProfileName(n)) throw new UsageError(`--profile must be one of ${PROFILE_NAMES.join(', ')} or all, got '${n}'`);
  return names as ProfileName[];
}

export function modelsFlag(value: string | undefined): ModelType[] {
  if (value === undefined || value === 'all') return [...MODEL_TYPES];
  const names = value.split(',');
  for (const n of names) if (!isModelType(n)) throw new UsageError(`--model must be one of ${MODEL_TYPES.join(', ')} or all, got '${n}'`);
  return names as ModelType[];
}

export function backendFlag(value: string | undefined): BackendPreference {
  if (value === undefined) return DEFAULTS.config.scorer.backend;
  if (!(BACKENDS as readonly string[]).includes(value)) throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}, got '${value}'`);
  return value as BackendPreference;
}

export function engineFlag(value: string | undefined): ScorerEngine {
  if (value === undefined) return DEFAULTS.config.scorer.engine;
  if (!(SCORER_ENGINES as readonly string[]).includes(value)) throw new UsageError(`--engine must be one of ${SCORER_ENGINES.join(', ')}, got '${value}'`);
  return value as ScorerEngine;
}

export function trainerFlag(value: string | undefined): TrainerName {
  if (value === undefined) return DEFAULTS.train.trainer;
  if (!(TRAINERS as readonly string[]).includes(value)) throw new UsageError(`--trainer must be one of ${TRAINERS.join(', ')}, got '${value}'`);
  return value as TrainerName;
}

/** --trainer and --threads together: the trainer choice of train/trainer.ts. */
export function trainerChoice(trainer: string | undefined, threads: string | undefined): TrainerChoice {
  return { trainer: trainerFlag(trainer), threads: threads === undefined ? undefined : intFlag('threads', threads, 1) };
}

export const TRAINER_USAGE = `  --trainer T      fast (default: typed arrays on every core) or tfjs (TensorFlow.js on --backend,
                   the reference)
  --threads N      worker threads of the fast trainer (default: every core)`;

export function unitsFlag(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const units = value.split(',').map(Number);
  if (units.length === 0 || units.some((u) => !Number.isInteger(u) || u < 1)) throw new UsageError(`--units must be positive integers separated by commas (e.g. 64,32), got '${value}'`);
  return units;
}

const DIRS = DEFAULTS.cli.dirs;

/** The flags every workstation command takes: which bundles, where, on which backend. */
export function selectionOptions(logLevel: string) {
  return {
    profile: { type: 'string' },
    model: { type: 'string' },
    data: { type: 'string', default: DIRS.data },
    models: { type: 'string', default: DIRS.models },
    backend: { type: 'string' },
    'log-level': { type: 'string', default: logLevel },
  } as const;
}

export function selectionUsage(dataWhat: string, logLevel: string): string {
  return `  --profile P      rpm_600, rpm_1200, a comma list, or all (default all)
  --model M        vibration, voltage, rpm, temperature, multi-feature, a comma list, or all (default all)
  --data DIR       ${dataWhat} (default ${DIRS.data})
  --models DIR     bundle root (default ${DIRS.models})
  --backend B      auto, tensorflow, wasm or cpu (default auto: tensorflow, else wasm, else cpu)
  --log-level L    pino level for the log on stderr (default ${logLevel})`;
}

/** `text` broken into lines of at most `width` characters (a longer word stands alone), each indented by `indent`. */
function wrap(text: string, indent: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines;
}

/**
 * Every configuration key's flag, grouped by section, with its default and doc — for the --help of
 * the commands that read the daemon's configuration (run, config). From the schema, so a new key is
 * listed without anyone writing it here.
 */
export function configFlagsHelp(width = 100): string {
  const out: string[] = [];
  let section = '';
  for (const k of KEYS) {
    const top = k.path.split('.')[0]!;
    if (top !== section) {
      out.push('', `${top}:`);
      section = top;
    }
    out.push(`  --${k.arg}   ${k.path}, default ${shownDefault(k)}, env ${k.env}`);
    out.push(...wrap(k.doc, '      ', width));
  }
  return out.join('\n').trimStart();
}

/**
 * The daemon's configuration for a command (run, config, fault): flags over ANOMALY_* env over the
 * file. An invalid one is printed, every problem, and gives undefined (exit 1). Unknown ANOMALY_*
 * variables are warned about on stderr, or handed to `onUnknownEnv` once the configuration is good
 * (the daemon logs them).
 */
export function loadCommandConfig(argv: readonly string[], io: CommandIO, onUnknownEnv?: (unknown: UnknownEnv[]) => void): AgentConfig | undefined {
  const env = io.env ?? {};
  const unknown = unknownAnomalyEnv(env);
  const toStderr = () => {
    for (const u of unknown) io.err.write(`warning: ${u.message}\n`);
  };
  let config: AgentConfig;
  try {
    config = loadConfig({ argv, env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    toStderr();
    io.err.write(`${err.message}\n`);
    return undefined;
  }
  if (onUnknownEnv) onUnknownEnv(unknown);
  else toStderr();
  return config;
}

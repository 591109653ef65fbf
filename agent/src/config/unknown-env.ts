/**
 * ANOMALY_* environment variables that name nothing: a typo (`ANOMALY_BROKER_PROT=5`) would otherwise
 * be ignored without a word, and the daemon would run on the default the operator meant to change.
 * Each is reported with the known variable closest to it; the commands that read the configuration
 * print these as warnings (the daemon as a `warn` log line) and carry on.
 */
import { KEYS } from './schema.js';

/** ANOMALY_* variables that are not configuration keys but are read elsewhere. */
export const OTHER_ANOMALY_ENV: readonly string[] = [
  'ANOMALY_DEBUG', // cli/main.ts: print the stack of a failed command
];

export interface UnknownEnv {
  variable: string;
  /** The known variable nearest to it (edit distance). */
  closest: string;
  message: string;
}

/** Levenshtein distance: insertions, deletions and substitutions, each 1. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** Every ANOMALY_* variable of `env` that is neither a configuration key's nor in OTHER_ANOMALY_ENV, in name order. */
export function unknownAnomalyEnv(env: Record<string, string | undefined>): UnknownEnv[] {
  const known = [...KEYS.map((k) => k.env), ...OTHER_ANOMALY_ENV];
  const names = new Set(known);
  return Object.keys(env)
    .filter((v) => v.startsWith('ANOMALY_') && env[v] !== undefined && !names.has(v))
    .sort()
    .map((variable) => {
      let closest = known[0]!;
      for (const k of known) if (distance(variable, k) < distance(variable, closest)) closest = k;
      return { variable, closest, message: `unknown environment variable ${variable} is ignored; did you mean ${closest}? ('anomaly-agent run --help' lists every variable)` };
    });
}

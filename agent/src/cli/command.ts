/**
 * A CLI subcommand. `run` returns the process exit code; only cli/main.ts touches `process`.
 * Each command parses its own argv with node:util parseArgs and answers `--help` with `usage`.
 */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[], io: CommandIO): Promise<number>;
}

export interface CommandIO {
  /** Human-facing output (tables, results). */
  out: (line: string) => void;
  /** Diagnostics and progress; kept off stdout so results stay pipeable. */
  err: NodeJS.WritableStream;
  /** The process environment (ANOMALY_* configuration variables); main.ts passes process.env. */
  env?: Record<string, string | undefined>;
  /** Subscribes to the signals a daemon answers; main.ts wires them to the process. */
  onSignal?: (handler: (signal: DaemonSignal) => void) => void;
  /** This process's id (systemd's WATCHDOG_PID names the process the watchdog is for). */
  pid?: number;
}

export type DaemonSignal = 'SIGTERM' | 'SIGINT' | 'SIGHUP';

/** A user error (bad flag, missing file): printed as one line without a stack, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

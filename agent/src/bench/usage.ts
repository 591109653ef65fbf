import { UsageError } from '../cli/command.js';

/** Runs a benchmark's main: a bad flag is one line naming what is wrong (exit 2), not a stack trace. */
export async function runBench(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!(err instanceof UsageError) && !code.startsWith('ERR_PARSE_ARGS')) throw err;
    console.error(`${name}: ${(err as Error).message}`);
    process.exitCode = 2;
  }
}

import { UsageError } from '../cli/command.js';

/**
 * Runs a benchmark's main: whatever stops it is one line naming what is wrong, not a stack trace —
 * a bad flag exits 2, any other failure (missing data, a bad file) 1. ANOMALY_DEBUG=1 adds the stack.
 */
export async function runBench(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const usage = err instanceof UsageError || code.startsWith('ERR_PARSE_ARGS');
    console.error(`${name}: ${((err as Error).message ?? String(err)).replace(/\s*\n\s*/g, ' ')}`);
    if (process.env.ANOMALY_DEBUG) console.error((err as Error).stack);
    process.exitCode = usage ? 2 : 1;
  }
}

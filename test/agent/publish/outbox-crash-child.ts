/**
 * Helper for outbox.test.ts's crash test, run as a child process and killed with SIGKILL.
 *
 *   node outbox-crash-child.js <dir> <mode>
 *
 * mode `seq`:   appends alerts one after another, awaiting each.
 * mode `mixed`: keeps several appends in flight (alerts and telemetry, so group commit and eviction run),
 *               acks older alerts, with a tiny compaction threshold so compactions happen under the kill.
 *
 * stdout, one line per event, written only after the event happened:
 *   `A <seq> <n>`  the append of alert number n resolved with seq
 *   `K <seq>`      ack(seq) was called (its persistence is not awaited: a lost ack only means a resend)
 * Not a daemon: it may write to stdout directly.
 */
import { Outbox } from '#agent/publish/outbox.js';

const [dir, mode = 'seq'] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: outbox-crash-child <dir> [seq|mixed]\n');
  process.exitCode = 2;
} else {
  await main(dir, mode);
}

function alertPayload(n: number): string {
  return JSON.stringify({ v: 1, t: Date.now(), id: `incident-${n}`, model: 'vibration', state: 'raised', n, pad: 'x'.repeat(n % 300) });
}

async function main(dir: string, mode: string): Promise<void> {
  const outbox = new Outbox({ dir, maxBytes: mode === 'mixed' ? 64 * 1024 : 64 * 1024 * 1024, compactMinBytes: mode === 'mixed' ? 8 * 1024 : undefined, telemetrySyncMs: 50 });
  await outbox.open();
  const out = (line: string): void => {
    process.stdout.write(line + '\n');
  };
  let n = 0;
  if (mode === 'seq') {
    for (;;) {
      const i = n++;
      const seq = await outbox.append({ kind: 'alert', topic: 'anomaly/dev/alerts', payload: alertPayload(i), qos: 1 });
      out(`A ${seq} ${i}`);
    }
  }
  const resolved: number[] = [];
  const one = async (): Promise<void> => {
    for (;;) {
      if (n % 3 === 0) {
        const i = n++;
        const seq = await outbox.append({ kind: 'alert', topic: 'anomaly/dev/alerts', payload: alertPayload(i), qos: 1 });
        out(`A ${seq} ${i}`);
        resolved.push(seq);
        // Ack all but the newest few, as a broker's PUBACKs would.
        while (resolved.length > 5) {
          const s = resolved.shift()!;
          if (outbox.ack(s)) out(`K ${s}`);
        }
      } else {
        n++;
        await outbox.append({ kind: 'telemetry', topic: 'anomaly/dev/telemetry/vibration', payload: Buffer.alloc(700, n & 0xff), qos: 0 });
      }
    }
  };
  await Promise.all([one(), one(), one(), one()]);
}

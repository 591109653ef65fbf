/**
 * A newcomer's first start (issue 17, section 5): a port already taken stops the daemon with a
 * message naming the flag and key to change (and, for the broker, that an existing broker can be
 * used); a typo'd ANOMALY_* variable is warned about, naming the variable meant.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, describe, test } from 'node:test';
import { Daemon, killAll } from './daemon-fixture.js';

after(killAll);

/** A plain TCP listener on a free loopback port: "something else" holding the port. */
async function occupy(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

async function failedStart(flags: Record<string, string | number>, env: Record<string, string> = {}): Promise<Daemon> {
  const d = new Daemon('daemon', flags, { env });
  const { code } = await d.exited;
  assert.equal(code, 1, `exit code\n${d.tail()}`);
  return d;
}

describe('start-up problems a first run meets', () => {
  test('the embedded broker port in use: names --broker-port and --mqtt-url; a typo in ANOMALY_* is warned about by name', { timeout: 60_000 }, async () => {
    const { port, server } = await occupy();
    try {
      const d = await failedStart({ 'broker-port': port }, { ANOMALY_BROKER_PROT: '5' });
      const failed = d.find((l) => l.msg === 'agent could not start');
      assert.ok(failed, d.tail());
      assert.equal(
        failed.err,
        `broker.port: port ${port} on 127.0.0.1 is already in use (another anomaly-agent still running?): stop what listens there, change it with --broker-port (broker.port, ANOMALY_BROKER_PORT) (0 = any free port), ` +
          `or use the broker already running instead of the embedded one: --mqtt-url mqtt://127.0.0.1:${port} (mqtt.url)`,
      );
      const typo = d.find((l) => l.level === 40 && l.module === 'config');
      assert.ok(typo, `a warning about ANOMALY_BROKER_PROT\n${d.tail()}`);
      assert.equal(typo.variable, 'ANOMALY_BROKER_PROT');
      assert.equal(typo.closest, 'ANOMALY_BROKER_PORT');
      assert.match(typo.msg, /^unknown environment variable ANOMALY_BROKER_PROT is ignored; did you mean ANOMALY_BROKER_PORT\?/);
    } finally {
      server.close();
    }
  });

  test('the HTTP port and the WebSocket port in use: each names its own flag', { timeout: 60_000 }, async () => {
    const { port, server } = await occupy();
    try {
      const http = await failedStart({ 'http-port': port });
      assert.match(String(http.find((l) => l.msg === 'agent could not start')?.err), new RegExp(`^http\\.port: port ${port} on 127\\.0\\.0\\.1 is already in use .* change it with --http-port \\(http\\.port, ANOMALY_HTTP_PORT\\) \\(0 = no HTTP server\\)$`));
      const ws = await failedStart({ 'broker-ws-port': port });
      assert.match(String(ws.find((l) => l.msg === 'agent could not start')?.err), new RegExp(`^broker\\.wsPort: port ${port} .* --broker-ws-port \\(broker\\.wsPort, ANOMALY_BROKER_WS_PORT\\) \\(0 = no WebSocket listener\\), or use the broker already running .* --mqtt-url`));
      assert.equal(ws.problems().filter((l) => l.msg === 'websocket listener error').length, 0, 'the failed listen is reported once');
    } finally {
      server.close();
    }
  });
});

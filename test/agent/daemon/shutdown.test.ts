/**
 * SIGTERM during a broker outage (issue 17, 5.10), with a real Mosquitto and the compiled daemon.
 * Closing while offline is a normal case: the daemon must stop promptly — not sit out
 * shutdown.timeoutMs and log `shutdown timed out` at error level, as it did when mqtt.js's end()
 * waited for acknowledgements from a broker that was gone — with every component stopped in order
 * ('agent stopped': the outbox closed, its pending records written and fdatasync'ed) and every alert
 * the broker never acknowledged in the outbox on disk, to be sent on the next start.
 *
 * Two outages: a broker that hung (SIGSTOP) with alerts in flight and then died (SIGKILL) before the
 * SIGTERM; and one still hung at the SIGTERM, which the daemon gives a bounded wait
 * (DEFAULTS.component.mqtt.closeTimeoutMs) before it drops the connection.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DEFAULTS } from '#agent/core/defaults.js';
import { silentLogger } from '#agent/core/log.js';
import { Outbox } from '#agent/publish/outbox.js';
import { Daemon, freePort, killAll, Mosquitto, TEST_DATA, type LogLine } from './daemon-fixture.js';

after(killAll);

const DEV = 'shutdown-1';

/** `<id>/<state>` of the alerts in the outbox `dir`, oldest first, read as the next start would. */
async function outboxAlertIds(dir: string): Promise<string[]> {
  const o = new Outbox({ dir, maxBytes: DEFAULTS.config.outbox.maxBytes, log: silentLogger });
  await o.open();
  try {
    return [...o.entries()]
      .filter((e) => e.kind === 'alert')
      .map((e) => {
        const a = JSON.parse(String(e.payload)) as { id: string; state: string };
        return `${a.id}/${a.state}`;
      });
  } finally {
    await o.close();
  }
}

async function outage(kind: 'died' | 'hung'): Promise<{ d: Daemon; ms: number; code: number | null; outbox: string }> {
  const dir = await mkdtemp(join(tmpdir(), `anomaly-shutdown-${kind}-`));
  after(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  await mkdir(join(dir, 'mosquitto'));
  const mosquitto = await new Mosquitto({ port, dir: join(dir, 'mosquitto') }).start();
  const outbox = join(dir, 'outbox');
  // test_01 at ×20: an obvious bearing episode raises about 5.5 s after start.
  const d = new Daemon(`daemon (${kind})`, {
    'device-id': DEV,
    'mqtt-url': `mqtt://127.0.0.1:${port}`,
    'mqtt-reconnect-ms': 500,
    'outbox-dir': outbox,
    'source-replay-file': join(TEST_DATA, 'test_01.csv'),
    'source-replay-speed': 20,
    'shutdown-timeout-ms': 5000,
  });
  await d.waitForLog('connected to Mosquitto', (l) => l.module === 'mqtt' && l.msg === 'connected', 30_000);
  // The broker hangs: the connection stays up, nothing is acknowledged; alerts go out and stay in flight.
  mosquitto.proc!.signal('SIGSTOP');
  await d.waitForLog('an alert raised while the broker hangs', (l) => l.msg === 'alert raised', 30_000);
  if (kind === 'died') {
    await mosquitto.proc!.kill();
    await d.waitForLog('the daemon seeing the broker gone', (l) => l.module === 'mqtt' && l.msg === 'broker unreachable; alerts go to the outbox', 10_000);
  }
  const { ms, code } = await d.stop('SIGTERM', 10_000);
  if (kind === 'hung') {
    mosquitto.proc!.signal('SIGCONT');
    await mosquitto.proc!.kill();
  }
  return { d, ms, code, outbox };
}

function assertCleanStop(d: Daemon, ms: number, code: number | null, withinMs: number): void {
  assert.equal(code, 0, d.tail());
  assert.ok(ms < withinMs, `stopped ${ms} ms after SIGTERM, expected under ${withinMs} ms (shutdown.timeoutMs is 5000)\n${d.tail()}`);
  assert.equal(d.find((l) => l.msg === 'shutdown timed out'), undefined, 'no shutdown timeout');
  assert.deepEqual(d.logs.filter((l: LogLine) => l.level >= 50), [], 'nothing at error level');
  assert.ok(d.find((l) => l.module === 'controller' && l.msg === 'agent stopped'), "every component stopped, the outbox last but the broker's");
}

/** Every alert the daemon logged is in its outbox on disk: the broker acknowledged none of them. */
async function assertAlertsKept(d: Daemon, outbox: string): Promise<void> {
  const logged = d.alerts().map((a) => `${a.id}/${a.state}`);
  assert.ok(logged.length >= 1);
  assert.deepEqual(await outboxAlertIds(outbox), logged);
}

describe('SIGTERM during a broker outage', () => {
  test('the broker hung with alerts in flight, then died: the daemon stops at once, the alerts stay in the outbox', { timeout: 90_000 }, async () => {
    const { d, ms, code, outbox } = await outage('died');
    assertCleanStop(d, ms, code, 1500);
    await assertAlertsKept(d, outbox);
  });

  test('the broker still hung at SIGTERM: the daemon waits closeTimeoutMs for acknowledgements, says so at warn, and stops', { timeout: 90_000 }, async () => {
    const { d, ms, code, outbox } = await outage('hung');
    const wait = DEFAULTS.component.mqtt.closeTimeoutMs;
    assertCleanStop(d, ms, code, wait + 1500);
    const warned = d.find((l) => l.module === 'mqtt' && l.msg.startsWith('the broker did not acknowledge in time'));
    assert.ok(warned, d.tail());
    assert.equal(warned.level, 40);
    assert.equal(warned.timeoutMs, wait);
    await assertAlertsKept(d, outbox);
  });
});

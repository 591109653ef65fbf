import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import type { ModelAlert } from '#agent/core/alert.js';
import type { Series } from '#agent/preprocess/csv.js';
import { fitMinMax } from '#agent/preprocess/scaler.js';
import { addConfusion, binaryMetrics, changepointsOf, confusion, nabCounts } from '#agent/evaluate/skab-metrics.js';
import {
  deviceWindows,
  findSkabFiles,
  predictionsCsv,
  readSkabLabels,
  rowsInEpisodes,
  runSkabFile,
  scoreRun,
  SKAB_SENSORS,
  SKAB_SETTINGS,
  SKAB_TRAIN_ROWS,
  totals,
  type FileRun,
} from '#agent/evaluate/skab.js';

// SKAB (GPL-3.0) is not part of this repository: the subset test reads two valve1 files under SKAB_DIR
// (default ../shared/skab from the package root) and is skipped when they are not there.
const SKAB_DIR = process.env.SKAB_DIR ?? join(PACKAGE_ROOT, '..', 'shared', 'skab');
const SUBSET = ['valve1/1.csv', 'valve1/13.csv'];
const HAVE_SKAB = SUBSET.every((f) => existsSync(join(SKAB_DIR, f)));

const alert = (state: 'raised' | 'cleared', windowEnd: number, since = windowEnd): ModelAlert => ({ kind: 'machine', id: 'x', model: 'm', state, score: 2, threshold: 1, topFeatures: [], since, windowEnd });

test("rows in episodes: from the raised alert's since up to (not including) the window end that cleared; an open episode runs to the end", () => {
  const t = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  assert.deepEqual([...rowsInEpisodes(t, [])], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...rowsInEpisodes(t, [alert('raised', 3, 2), alert('cleared', 4, 2), alert('raised', 8, 7)])], [0, 0, 1, 1, 0, 0, 0, 1, 1, 1]);
  // Window ends between rows (a 2 s step on the 1 s grid) still bound the episode by time.
  assert.deepEqual([...rowsInEpisodes([0, 2, 4, 6], [alert('raised', 1), alert('cleared', 5)])], [0, 1, 1, 0]);
});

test('SKAB layout: <group>/*.csv and data/<group>/*.csv, groups by name, files in numeric order, paths relative to the given dir', async () => {
  const root = await mkdtemp(join(tmpdir(), 'skab-layout-'));
  try {
    for (const [dir, names] of [
      ['flat/valve1', ['10.csv', '2.csv', '1.csv', 'notes.txt']],
      ['flat/anomaly-free', ['anomaly-free.csv']],
      ['repo/data/other', ['3.csv']],
    ] as const) {
      await mkdir(join(root, dir), { recursive: true });
      for (const n of names) await writeFile(join(root, dir, n), 'datetime\n');
    }
    const flat = await findSkabFiles(join(root, 'flat'));
    assert.deepEqual(
      flat.map((f) => [f.group, f.rel]),
      [
        ['anomaly-free', 'anomaly-free/anomaly-free.csv'],
        ['valve1', 'valve1/1.csv'],
        ['valve1', 'valve1/2.csv'],
        ['valve1', 'valve1/10.csv'],
      ],
    );
    assert.deepEqual((await findSkabFiles(join(root, 'repo'))).map((f) => f.rel), ['data/other/3.csv']);
    await assert.rejects(findSkabFiles(join(root, 'nowhere')), /does not exist/);
    await mkdir(join(root, 'empty'));
    await assert.rejects(findSkabFiles(join(root, 'empty')), /no SKAB files/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('training windows are the device windower\'s: rows on the 1 s grid, a 2 s step holds the earlier row', () => {
  // Rows at 0, 1, 3, 4 s (one 2 s step); flow = row number, other channels constant.
  const times = [0, 1000, 3000, 4000];
  const columns: Record<string, Float64Array> = {};
  for (const ch of Object.values(SKAB_SENSORS).flatMap((s) => s.channels)) columns[ch] = new Float64Array(4).fill(1);
  columns.flow = Float64Array.from([0, 1, 2, 3]);
  const s: Series = { file: 'x', name: 'x', rows: 4, t: Float64Array.from(times), columns };
  const features = ['flow'];
  const w = deviceWindows(s, { sensors: SKAB_SENSORS, features, scaler: fitMinMax([s], features), periodMs: 1000, seqLen: 3, hop: 1, maxGapMs: 5000 });
  // Grid rows 0..4 s: flow 0, 1, 1 (held), 2, 3 → scaled /3; windows end at 2, 3, 4 s.
  assert.equal(w.n, 3);
  assert.deepEqual(w.endT, [2000, 3000, 4000]);
  assert.deepEqual([...w.x].map((v) => Math.round(v * 3)), [0, 1, 1, 1, 1, 2, 1, 2, 3]);
});

test('predictions file: header file,row,anomaly, one line per test row, rows counted from 0 in the file', () => {
  const run = { file: { group: 'valve1', rel: 'data/valve1/7.csv', path: '/x' }, rows: SKAB_TRAIN_ROWS + 3, pred: Uint8Array.from([0, 1, 1]) } as unknown as FileRun;
  assert.equal(predictionsCsv([run]), `file,row,anomaly\ndata/valve1/7.csv,400,0\ndata/valve1/7.csv,401,1\ndata/valve1/7.csv,402,1\n`);
});

/** A SKAB file as the harness must see it: sensor columns only, the label columns dropped. */
function withoutLabels(text: string): string {
  const lines = text.trimEnd().split('\n');
  const header = lines[0]!.split(';');
  const keep = header.map((h, i) => (h.trim() === 'anomaly' || h.trim() === 'changepoint' ? -1 : i)).filter((i) => i >= 0);
  return lines.map((l) => keep.map((i) => l.split(';')[i]).join(';')).join('\n') + '\n';
}

test(
  'two SKAB files through the daemon path: trained on 400 rows, labels unseen, test rows marked, metrics consistent, an anomaly segment flagged',
  { skip: !HAVE_SKAB && `no ${SUBSET.join(', ')} under ${SKAB_DIR}`, timeout: 240_000 },
  async () => {
    const root = await mkdtemp(join(tmpdir(), 'skab-subset-'));
    try {
      // The repository layout (data/<group>/), and files without their label columns: whatever the
      // harness marks, it cannot have read the labels.
      await mkdir(join(root, 'data', 'valve1'), { recursive: true });
      for (const f of SUBSET) await writeFile(join(root, 'data', f), withoutLabels(readFileSync(join(SKAB_DIR, f), 'utf8')));
      const files = await findSkabFiles(root);
      assert.deepEqual(files.map((f) => f.rel), SUBSET.map((f) => `data/${f}`));
      assert.equal(await readSkabLabels(files[0]!.path), undefined);

      // The published settings, with fewer epochs so the test stays short.
      const settings = { ...SKAB_SETTINGS, maxEpochs: Math.min(SKAB_SETTINGS.maxEpochs, 8) };
      const runs: FileRun[] = [];
      for (const f of files) runs.push(await runSkabFile(f, settings));

      const scores = [];
      for (const [i, run] of runs.entries()) {
        const text = readFileSync(join(SKAB_DIR, SUBSET[i]!), 'utf8').trimEnd().split('\n');
        const fileT = text.slice(1).map((l) => Date.parse(l.split(';')[0]!.replace(' ', 'T') + 'Z'));
        assert.equal(run.rows, fileT.length);
        assert.equal(run.pred.length, fileT.length - SKAB_TRAIN_ROWS);
        // Every row went through the replay source with the file's own spacing.
        run.t.forEach((t, r) => assert.equal(t - run.t[0]!, fileT[r]! - fileT[0]!, `row ${r}`));
        assert.ok(run.models.every((m) => m.windows.length > 0 && m.threshold > 0));

        const labels = (await readSkabLabels(join(SKAB_DIR, SUBSET[i]!)))!;
        const s = await scoreRun(run, labels);
        scores.push(s);
        // The metrics agree with a count made here from the labels and the marks.
        const truth = labels.anomaly.subarray(SKAB_TRAIN_ROWS);
        let tp = 0;
        let fp = 0;
        truth.forEach((y, r) => {
          if (run.pred[r] === 1 && y === 1) tp++;
          if (run.pred[r] === 1 && y === 0) fp++;
        });
        assert.deepEqual(s.confusion, confusion(truth, run.pred));
        assert.equal(s.confusion.tp, tp);
        assert.equal(s.confusion.fp, fp);
        assert.equal(s.confusion.tp + s.confusion.fp + s.confusion.tn + s.confusion.fn, run.pred.length);
        assert.deepEqual(s.nab, nabCounts(run.t.subarray(SKAB_TRAIN_ROWS), labels.changepoint.subarray(SKAB_TRAIN_ROWS), changepointsOf(run.pred)));
      }

      // Pooled before the ratios.
      const all = totals(scores);
      assert.equal(all.files, 2);
      assert.deepEqual(all.confusion, addConfusion(scores[0]!.confusion, scores[1]!.confusion));
      const m = binaryMetrics(all.confusion);
      const c = all.confusion;
      assert.equal(m.f1, c.tp / (c.tp + (c.fp + c.fn) / 2));

      // The detector finds the valve closing in at least one file: most of its anomalous rows are
      // marked, at a higher rate than its normal test rows.
      const found = scores.filter((s) => {
        const x = s.confusion;
        const recall = x.tp / (x.tp + x.fn);
        return recall >= 0.5 && recall > x.fp / (x.fp + x.tn);
      });
      assert.ok(found.length >= 1, scores.map((s) => `${s.run.file.rel}: ${JSON.stringify(s.confusion)}`).join('; '));

      // The predictions file holds every test row of both files, in order, and matches the marks.
      const lines = predictionsCsv(runs).trimEnd().split('\n');
      assert.equal(lines[0], 'file,row,anomaly');
      assert.equal(lines.length - 1, runs.reduce((n, r) => n + r.pred.length, 0));
      let k = 1;
      for (const r of runs) {
        for (let i = 0; i < r.pred.length; i++, k++) assert.equal(lines[k], `${r.file.rel},${SKAB_TRAIN_ROWS + i},${r.pred[i]}`);
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
);

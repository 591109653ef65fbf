/**
 * `npm run bench:skab -- --data <dir> [--out predictions.csv]`: detection quality on SKAB (Skoltech
 * Anomaly Benchmark) through the daemon's own streaming path (evaluate/skab.ts: per file, train on the
 * first 400 rows, replay the file through rings → windower → scorer → detector, mark the test rows).
 * Prints the leaderboard's pointwise F1 / FAR / MAR and the NAB scores over every file except the
 * anomaly-free group (the leaderboard's convention), the false alarms on anomaly-free separately, and
 * the published leaderboard beside them.
 *
 * --data      SKAB-layout directory: <group>/*.csv or data/<group>/*.csv
 *             (default: $SKAB_DIR, else ../shared/skab next to the package)
 * --out       write the predictions there: file,row,anomaly (file relative to --data, row 0-based)
 * --only      comma-separated groups or files (relative to --data) to run, e.g. valve1/3.csv
 * --scores    write every judged window there: file,model,window_end,score,threshold and the error per
 *             input (window_end = the row of the window's last sample, 0-based; for plotting)
 * --settings  JSON merged over the default settings, for experiments (the published figures use none)
 * --seeds     comma-separated training seeds (default: the settings' one); with more than one, every
 *             file is run once per seed and the protocol's parts (tune, confirm, anomaly-free) are
 *             reported per seed, then as mean and spread (max − min)
 * --trainer   fast (default) or tfjs; --threads N: the fast trainer's worker threads (default every core)
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { PACKAGE_ROOT } from '../core/paths.js';
import { UsageError } from '../cli/command.js';
import { trainerChoice } from '../cli/options.js';
import { runBench } from './usage.js';
import { NAB_PROFILES, binaryMetrics, nabScore } from '../evaluate/skab-metrics.js';
import {
  ANOMALY_FREE_GROUP,
  EPISODE_ROWS_RULE,
  SKAB_GET,
  SKAB_PARTS,
  findSkabFiles,
  predictionsCsv,
  runSkabFile,
  scoreRun,
  SKAB_SETTINGS,
  SKAB_TRAIN_ROWS,
  totals,
  type FileScore,
  type SkabSettings,
  windowScoresCsv,
} from '../evaluate/skab.js';

/** SKAB's published outlier-detection leaderboard (F1, FAR %, MAR %) and best NAB (standard), all 34 files with anomalies. */
export const LEADERBOARD = [
  { name: 'Conv-AE', f1: 0.78, far: 13.55, mar: 28.02 },
  { name: 'MSET', f1: 0.78, far: 39.73, mar: 14.13 },
  { name: 'LSTM-AE', f1: 0.74, far: 29.96, mar: 25.92 },
] as const;
export const LEADERBOARD_BEST_NAB = { name: 'MSCRED', standard: 32.42 } as const;

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(2) : '—');
const num = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '—');

function line(label: string, s: ReturnType<typeof totals>): string {
  const m = binaryMetrics(s.confusion);
  const nab = NAB_PROFILES.map((p) => num(nabScore(s.nab, p)).padStart(8)).join(' ');
  return `${label.padEnd(34)} ${num(m.f1).padStart(5)} ${pct(m.far).padStart(7)} ${pct(m.mar).padStart(7)} ${nab}`;
}

/** --settings: a JSON object merged over SKAB_SETTINGS. */
function settingsFlag(text: string): Partial<SkabSettings> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--settings must be a JSON object, got '${text}' (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`--settings must be a JSON object, got '${text}'`);
  return v as Partial<SkabSettings>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      only: { type: 'string' },
      scores: { type: 'string' },
      settings: { type: 'string' },
      seeds: { type: 'string' },
      trainer: { type: 'string' },
      threads: { type: 'string' },
    },
    strict: true,
  });
  const dataDir = values.data ?? process.env.SKAB_DIR ?? join(PACKAGE_ROOT, '..', 'shared', 'skab');
  if (!existsSync(dataDir)) {
    const from = values.data !== undefined ? '--data' : process.env.SKAB_DIR !== undefined ? '$SKAB_DIR' : 'no --data or $SKAB_DIR, so the default ../shared/skab';
    throw new UsageError(`no SKAB data at ${dataDir} (${from}). SKAB is not part of this repository: ${SKAB_GET} (docs/skab.md)`);
  }
  const settings: SkabSettings = values.settings ? { ...SKAB_SETTINGS, ...settingsFlag(values.settings) } : SKAB_SETTINGS;
  const seeds = values.seeds === undefined ? [settings.seed] : values.seeds.split(',').map((s) => Number(s.trim()));
  if (seeds.length === 0 || !seeds.every((s) => Number.isInteger(s))) throw new UsageError(`--seeds must be comma-separated integers, got '${values.seeds}'`);
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  let files = await findSkabFiles(dataDir);
  if (only) files = files.filter((f) => only.some((o) => f.rel === o || f.group === o || f.rel.endsWith(`/${o}`)));
  if (files.length === 0) throw new UsageError(`no file under ${dataDir} matches --only ${values.only}`);

  const trainer = trainerChoice(values.trainer, values.threads);
  if (trainer.trainer === 'tfjs') await (await import('../model/backend.js')).selectBackend();
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  console.log(`bench:skab — ${cpu}, ${cpus().length} cores, node ${process.version}, trainer ${trainer.trainer}; ${files.length} files from ${relative(process.cwd(), dataDir) || '.'}`);
  console.log(
    `settings: models ${settings.models.map((m) => `${m.name} [${m.features.join(' ')}]`).join(', ')}; period ${settings.periodMs} ms, seqLen ${settings.seqLen}, hop ${settings.hop}, LSTM ${settings.units.join('/')}, ` +
      `≤${settings.maxEpochs} epochs (patience ${settings.patience}), score = ${settings.aggregate} of channel errors, threshold q${settings.thresholdRule.quantile}×${settings.thresholdRule.margin}, ` +
      `detector ${settings.detector.raiseK}-of-${settings.detector.raiseN}, clear ${settings.detector.clearM} under ${settings.detector.clearRatio}×threshold, ` +
      (settings.baseline
        ? `baseline follows ≤${settings.baseline.followPerHour} ranges/h beyond ${settings.baseline.deadBand} of its reference, settles after ${settings.baseline.settleMs / 1000} s under ${settings.baseline.settleFraction}×peak, drift ≤ ${settings.baseline.maxDrift}`
        : 'baseline as trained') +
      (values.settings ? ` (overridden: ${values.settings})` : ''),
  );
  console.log(`train on rows 0–${SKAB_TRAIN_ROWS - 1} of each file, test rows after. ${EPISODE_ROWS_RULE}`);
  console.log('');
  console.log('file                 test rows  alerts   TP   FP   FN   TN    F1   FAR%   MAR%  train s  stream s');

  const started = performance.now();
  /** Every seed's scores; the per-file lines, predictions and summary are the first seed's. */
  const bySeed: FileScore[][] = [];
  for (const seed of seeds) {
    const seeded = { ...settings, seed };
    const scoresOfSeed: FileScore[] = [];
    bySeed.push(scoresOfSeed);
    if (bySeed.length === 2) console.log(`
the other seeds (${seeds.slice(1).join(', ')}): the same files, reported below by part`);
    for (const f of files) {
      const run = await runSkabFile(f, seeded, { trainer });
      const s = await scoreRun(run);
      scoresOfSeed.push(s);
      if (bySeed.length > 1) continue;
      const c = s.confusion;
      const m = binaryMetrics(c);
      console.log(
        `${f.rel.padEnd(20)} ${String(run.pred.length).padStart(9)}  ${String(run.models.reduce((n, m) => n + m.alerts.length, 0)).padStart(6)} ` +
          `${[c.tp, c.fp, c.fn, c.tn].map((v) => String(v).padStart(4)).join(' ')}  ${num(m.f1).padStart(4)} ${pct(m.far).padStart(6)} ${pct(m.mar).padStart(6)}  ${run.trainSeconds.toFixed(1).padStart(7)}  ${run.streamSeconds.toFixed(1).padStart(8)}`,
      );
    }
  }
  const scores = bySeed[0]!;
  const seconds = (performance.now() - started) / 1000;

  if (values.out) {
    await writeFile(values.out, predictionsCsv(scores.map((s) => s.run)));
    console.log(`\npredictions written to ${values.out}`);
  }

  if (values.scores) {
    await writeFile(values.scores, windowScoresCsv(scores.map((s) => s.run)));
    console.log(`window scores written to ${values.scores}`);
  }

  console.log('');
  console.log(`${'pointwise over test rows'.padEnd(34)} ${'F1'.padStart(5)} ${'FAR %'.padStart(7)} ${'MAR %'.padStart(7)} ${NAB_PROFILES.map((p) => `NAB ${p.name}`.padStart(8)).join(' ')}`);
  const scored = totals(scores);
  if (scored.files > 0) console.log(line(`this run (${scored.files} files, no anomaly-free)`, scored));
  for (const r of LEADERBOARD) console.log(`${`leaderboard ${r.name} (34 files)`.padEnd(34)} ${num(r.f1).padStart(5)} ${r.far.toFixed(2).padStart(7)} ${r.mar.toFixed(2).padStart(7)}`);
  console.log(`${`leaderboard best NAB: ${LEADERBOARD_BEST_NAB.name}`.padEnd(34)} ${''.padStart(21)} ${LEADERBOARD_BEST_NAB.standard.toFixed(2).padStart(8)}`);
  const free = totals(scores, (s) => s.run.file.group === ANOMALY_FREE_GROUP);
  if (free.files > 0) {
    const c = free.confusion;
    const alerts = scores.filter((s) => s.run.file.group === ANOMALY_FREE_GROUP).reduce((n, s) => n + s.run.models.reduce((k, m) => k + m.alerts.filter((a) => a.state === 'raised').length, 0), 0);
    console.log(`anomaly-free (not in the score): ${c.fp} of ${c.fp + c.tn} test rows flagged (FAR ${pct(binaryMetrics(c).far)} %), ${alerts} alerts raised`);
  }
  if (seeds.length > 1) protocolTable(seeds, bySeed);
  const all = bySeed.flat();
  console.log(
    `\n${files.length} files × ${seeds.length} seed${seeds.length > 1 ? 's' : ''} in ${seconds.toFixed(0)} s (training ${all.reduce((a, s) => a + s.run.trainSeconds, 0).toFixed(0)} s, streaming ${all.reduce((a, s) => a + s.run.streamSeconds, 0).toFixed(0)} s)`,
  );
}

/** Each part of the protocol per seed, then its mean and spread (max − min) over the seeds. */
function protocolTable(seeds: readonly number[], bySeed: readonly FileScore[][]): void {
  console.log('');
  console.log(`${'protocol (docs/skab.md)'.padEnd(34)} ${'seed'.padStart(5)} ${'F1'.padStart(5)} ${'FAR %'.padStart(7)} ${'MAR %'.padStart(7)}`);
  const parts = [
    ...SKAB_PARTS.map((p) => ({ name: p.name, include: (s: FileScore) => p.include(s.run.file) })),
    { name: 'anomaly-free (rows flagged)', include: (s: FileScore) => s.run.file.group === ANOMALY_FREE_GROUP },
  ];
  for (const part of parts) {
    // A part without anomalous rows (anomaly-free) has no F1: only its false alarms mean something.
    const rows = bySeed.map((scores) => totals(scores, part.include)).map((t) => ({ files: t.files, ...binaryMetrics(t.confusion), ...(t.confusion.tp + t.confusion.fn === 0 ? { f1: NaN } : {}) }));
    if (rows[0]!.files === 0) continue;
    rows.forEach((m, i) => console.log(`${part.name.padEnd(34)} ${String(seeds[i]).padStart(5)} ${num(m.f1).padStart(5)} ${pct(m.far).padStart(7)} ${pct(m.mar).padStart(7)}`));
    const stat = (k: 'f1' | 'far' | 'mar', scale: number, d: number) => {
      const v = rows.map((r) => r[k] * scale).filter(Number.isFinite);
      if (v.length === 0) return '—';
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return `${mean.toFixed(d)}±${(Math.max(...v) - Math.min(...v)).toFixed(d)}`;
    };
    console.log(`${`${part.name}, mean±spread`.padEnd(34)} ${''.padStart(5)} ${stat('f1', 1, 2)} ${stat('far', 100, 1)} ${stat('mar', 100, 1)}`);
  }
}

await runBench('bench:skab', main);

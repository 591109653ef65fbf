/**
 * `anomaly-agent data generate`: write seed-format CSVs from the motor simulator.
 * The committed set in datas/raw is exactly what the default invocation writes; larger sets go to
 * datas/generated (git-ignored) on demand.
 */
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../core/defaults.js';
import { PROFILE_NAMES, isProfileName, type ProfileName } from '../core/profiles.js';
import { type Command, UsageError } from './command.js';
import { generateDataset, type GeneratedFile } from '../motor/generate.js';

const D = DEFAULTS.dataset;
const RAW = DEFAULTS.cli.dirs.data;

const USAGE = `usage: anomaly-agent data generate [options]

Simulate induction motors (normal running + labelled faults) and write the seed's CSV format:
  <out>/<profile>/train/train_NN.csv, <out>/<profile>/test/test_NN.csv, <out>/<profile>/test/faults.json
Same seed → byte-identical files.

options:
  --out DIR            output directory (default ${RAW}; ${D.largeOut} when --hours or
                       --train-minutes is given)
  --seed N             integer seed (default ${D.seed})
  --profile P          ${PROFILE_NAMES.join(' | ')} | all (default all)
  --train-minutes N    minutes of normal data per profile (default ${Object.entries(D.trainMinutes)
    .map(([p, m]) => `${p} ${m}`)
    .join(', ')})
  --hours N            hours of normal data per profile (same as --train-minutes 60·N)
  --train-files N      train files per profile (default ${D.trainFiles}, or one per hour for large sets)
  --test-files N       test files per profile (default ${D.testFiles}); every fault kind × intensity
                       appears once per profile whatever N is
  -h, --help           this text

examples:
  anomaly-agent data generate                       # the committed set in ${RAW}
  anomaly-agent data generate --hours 4             # 4 h of normal data per profile → ${D.largeOut}
`;

function positiveNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got '${v}'`);
  return n;
}

function positiveInt(flag: string, v: string | undefined): number | undefined {
  const n = positiveNumber(flag, v);
  if (n !== undefined && !Number.isInteger(n)) throw new UsageError(`${flag} must be an integer, got '${v}'`);
  return n;
}

function kb(bytes: number): string {
  return bytes >= 1_048_576 ? `${(bytes / 1_048_576).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

export const dataCommand: Command = {
  name: 'data',
  summary: 'generate seed-format motor datasets from the simulator',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        out: { type: 'string' },
        seed: { type: 'string' },
        profile: { type: 'string' },
        'train-minutes': { type: 'string' },
        hours: { type: 'string' },
        'train-files': { type: 'string' },
        'test-files': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out(USAGE.trimEnd());
      return 0;
    }
    const [sub, ...extra] = positionals;
    if (sub !== 'generate') {
      throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand (generate)');
    }
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);

    const seedText = values.seed ?? String(D.seed);
    const seed = Number(seedText);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new UsageError(`--seed must be an integer 0..4294967295, got '${seedText}'`);
    }

    const profileArg = values.profile ?? 'all';
    let profiles: ProfileName[];
    if (profileArg === 'all') profiles = [...PROFILE_NAMES];
    else if (isProfileName(profileArg)) profiles = [profileArg];
    else throw new UsageError(`--profile must be one of ${PROFILE_NAMES.join(', ')}, all; got '${profileArg}'`);

    const hours = positiveNumber('--hours', values.hours);
    const minutesFlag = positiveNumber('--train-minutes', values['train-minutes']);
    if (hours !== undefined && minutesFlag !== undefined) {
      throw new UsageError('give --hours or --train-minutes, not both');
    }
    const trainMinutes = hours !== undefined ? hours * 60 : minutesFlag;
    const large = trainMinutes !== undefined;
    const out = values.out ?? (large ? D.largeOut : RAW);
    const trainFiles =
      positiveInt('--train-files', values['train-files']) ??
      (large ? Math.max(D.trainFiles, Math.ceil((trainMinutes ?? 0) / 60)) : D.trainFiles);
    const testFiles = positiveInt('--test-files', values['test-files']) ?? D.testFiles;

    // Before minutes of simulation, not after: the place the files go must be writable.
    try {
      await mkdir(out, { recursive: true });
      await access(out, constants.W_OK);
    } catch (err) {
      throw new UsageError(`--out ${out}: cannot write there (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    io.err.write(`data generate: seed ${seed}, profiles ${profiles.join(', ')} → ${out}\n`);
    const started = Date.now();
    const result = await generateDataset({
      outDir: out,
      seed,
      profiles,
      trainMinutes,
      trainFiles,
      testFiles,
      onFile: (f: GeneratedFile) => {
        const eps = f.split === 'test' ? `  ${f.episodes.length} fault episodes` : '';
        io.out(`${f.path}  ${f.rows} rows  ${kb(f.bytes)}  ambient ${f.ambientC} °C${eps}`);
      },
    });
    const rows = result.files.reduce((s, f) => s + f.rows, 0);
    const bytes = result.files.reduce((s, f) => s + f.bytes, 0);
    io.out(
      `wrote ${result.files.length} CSV files (${rows} rows, ${kb(bytes)}) and ${profiles.length} faults.json in ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return 0;
  },
};

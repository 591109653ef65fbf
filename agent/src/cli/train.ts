import { parseArgs } from 'node:util';
import { UsageError, type Command } from './command.js';
import { backendFlag, intFlag, modelsFlag, profilesFlag, selectionOptions, selectionUsage, TRAINER_USAGE, trainerChoice, unitsFlag } from './options.js';
import { DEFAULTS } from '../core/defaults.js';
import { createLogger } from '../core/log.js';
import { CHANNELS, PROFILES, PROFILE_NAMES } from '../core/profiles.js';
import { join } from 'node:path';
import { SCORE_AGGREGATES, type ScoreAggregate } from '../model/error-scale.js';
import { readRecordingManifest } from '../record/manifest.js';
import { calibrateBundle, trainBundle } from '../train/pipeline.js';
import { formatSeconds } from '../train/progress.js';

const TRAIN_DEFAULTS = DEFAULTS.train;
const LOG_LEVEL = DEFAULTS.cli.logLevel.train;

function aggregateFlag(v: string | undefined): ScoreAggregate | undefined {
  if (v === undefined) return undefined;
  if (!(SCORE_AGGREGATES as readonly string[]).includes(v)) throw new UsageError(`--aggregate must be one of ${SCORE_AGGREGATES.join(', ')}, got '${v}'`);
  return v as ScoreAggregate;
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train LSTM autoencoders on seed-format CSVs and write model bundles',
  usage: `usage: anomaly-agent train [options]

Trains one LSTM autoencoder per profile and model type on <data>/<profile>/train/*.csv and writes
the bundle to <models>/<profile>/<model>/ (model.json, weights.bin, bundle.json). <data> may instead
be a recording ('anomaly-agent record'): its CSVs train the recording's profile (the default
--profile then), every model whose channels it recorded.

options:
${selectionUsage('seed-format data root with <profile>/train/*.csv, or a recording directory', LOG_LEVEL)}
  --epochs N       most epochs (default ${TRAIN_DEFAULTS.epochs}); early stopping usually ends sooner
  --patience N     epochs without validation improvement before stopping (default ${TRAIN_DEFAULTS.patience})
  --batch-size N   windows per batch (default ${TRAIN_DEFAULTS.batchSize})
  --units A,B      encoder LSTM sizes (default: the profile's, ${PROFILE_NAMES.map((p) => `${p} ${PROFILES[p].units.join(',')}`).join('; ')})
  --train-hop N    samples between training windows (default: the profile's, ${PROFILE_NAMES.map((p) => `${p} ${PROFILES[p].trainHop}`).join('; ')})
  --seed N         seed for initial weights and batch order (default ${TRAIN_DEFAULTS.seed})
  --aggregate A    how the features' errors make a window's score: mean (default) or max (the worst
                   feature, each against its own quantile of normal error: one channel off is enough)
${TRAINER_USAGE}
  --calibrate-only keep the trained models; re-derive each bundle's error scale and threshold from
                   the training data (after new normal data or a new threshold rule)
`,
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...selectionOptions(LOG_LEVEL),
        epochs: { type: 'string' },
        patience: { type: 'string' },
        'batch-size': { type: 'string' },
        units: { type: 'string' },
        'train-hop': { type: 'string' },
        seed: { type: 'string' },
        aggregate: { type: 'string' },
        trainer: { type: 'string' },
        threads: { type: 'string' },
        'calibrate-only': { type: 'boolean', default: false },
      },
      strict: true,
    });
    // A recording trains its own profile unless told otherwise (trainingData refuses another one).
    const recording = await readRecordingManifest(values.data);
    const profiles = values.profile === undefined && recording ? [recording.profile] : profilesFlag(values.profile);
    const models = modelsFlag(values.model);
    const common = {
      dataDir: values.data,
      modelsDir: values.models,
      maxEpochs: intFlag('epochs', values.epochs, TRAIN_DEFAULTS.epochs),
      patience: intFlag('patience', values.patience, TRAIN_DEFAULTS.patience),
      batchSize: intFlag('batch-size', values['batch-size'], TRAIN_DEFAULTS.batchSize),
      seed: intFlag('seed', values.seed, TRAIN_DEFAULTS.seed, 0),
      units: unitsFlag(values.units),
      trainHop: values['train-hop'] === undefined ? undefined : intFlag('train-hop', values['train-hop'], 1),
      aggregate: aggregateFlag(values.aggregate),
      trainer: trainerChoice(values.trainer, values.threads),
    };
    const log = createLogger({ level: values['log-level'], fd: 2 });
    if (common.trainer.trainer === 'tfjs') {
      // Imported only for the tfjs trainer: the fast one never loads TensorFlow.js.
      const { selectBackend } = await import('../model/backend.js');
      const choice = await selectBackend(backendFlag(values.backend));
      log.info({ backend: choice.backend, skipped: choice.skipped }, `TensorFlow.js backend: ${choice.backend}`);
    }

    if (values['calibrate-only']) {
      for (const profile of profiles) {
        for (const modelType of models) {
          const m = await calibrateBundle(join(common.modelsDir, profile, modelType), common.dataDir, CHANNELS);
          io.out(`${m.name}: error scale [${m.errorScale.map((v) => v.toExponential(2)).join(', ')}], threshold ${m.threshold.toFixed(3)} (${m.thresholdRule.description})`);
        }
      }
      return 0;
    }

    const started = Date.now();
    const total = profiles.length * models.length;
    let done = 0;
    let engine = '';
    for (const profile of profiles) {
      for (const modelType of models) {
        const label = `[${++done}/${total}] ${profile}/${modelType}`;
        const r = await trainBundle({ ...common, profile, modelType, label, progressOut: io.err, log: log.child({ module: 'train' }) });
        engine = r.manifest.training.backend;
        io.out(
          `${r.manifest.name}: ${r.fit.epochs} epochs (best ${r.fit.bestEpoch}), val loss ${r.fit.valLoss.toExponential(3)}, threshold ${r.manifest.threshold.toFixed(3)}, ${formatSeconds(r.fit.seconds)} → ${r.dir}`,
        );
      }
    }
    io.out(`trained ${total} bundle(s) in ${formatSeconds((Date.now() - started) / 1000)}, trainer ${engine}`);
    return 0;
  },
};

import { parseArgs } from 'node:util';
import type { Command } from './command.js';
import { backendFlag, intFlag, modelsFlag, profilesFlag, unitsFlag } from './options.js';
import { createLogger } from '../core/log.js';
import { selectBackend } from '../model/backend.js';
import { trainBundle } from '../train/pipeline.js';
import { formatSeconds } from '../train/progress.js';

export const TRAIN_DEFAULTS = { data: 'datas/raw', models: 'models', epochs: 15, patience: 3, batchSize: 64, seed: 42 };

export const trainCommand: Command = {
  name: 'train',
  summary: 'train LSTM autoencoders on seed-format CSVs and write model bundles',
  usage: `usage: anomaly-agent train [options]

Trains one LSTM autoencoder per profile and model type on <data>/<profile>/train/*.csv and writes
the bundle to <models>/<profile>/<model>/ (model.json, weights.bin, bundle.json).

options:
  --profile P      rpm_600, rpm_1200, a comma list, or all (default all)
  --model M        vibration, voltage, rpm, temperature, multi-feature, a comma list, or all (default all)
  --data DIR       seed-format data root (default ${TRAIN_DEFAULTS.data})
  --models DIR     where bundles are written (default ${TRAIN_DEFAULTS.models})
  --epochs N       most epochs (default ${TRAIN_DEFAULTS.epochs}); early stopping usually ends sooner
  --patience N     epochs without validation improvement before stopping (default ${TRAIN_DEFAULTS.patience})
  --batch-size N   windows per batch (default ${TRAIN_DEFAULTS.batchSize})
  --units A,B      encoder LSTM sizes (default: the profile's, rpm_600 64,32; rpm_1200 32,16)
  --train-hop N    samples between training windows (default: the profile's)
  --seed N         seed for initial weights and batch order (default ${TRAIN_DEFAULTS.seed})
  --backend B      auto, tensorflow, wasm or cpu (default auto: tensorflow, else wasm, else cpu)
  --log-level L    pino level for the log on stderr (default info)
`,
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        profile: { type: 'string' },
        model: { type: 'string' },
        data: { type: 'string', default: TRAIN_DEFAULTS.data },
        models: { type: 'string', default: TRAIN_DEFAULTS.models },
        epochs: { type: 'string' },
        patience: { type: 'string' },
        'batch-size': { type: 'string' },
        units: { type: 'string' },
        'train-hop': { type: 'string' },
        seed: { type: 'string' },
        backend: { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
      },
      strict: true,
    });
    const profiles = profilesFlag(values.profile);
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
    };
    const log = createLogger({ level: values['log-level'], fd: 2 });
    const choice = await selectBackend(backendFlag(values.backend));
    log.info({ backend: choice.backend, skipped: choice.skipped }, `TensorFlow.js backend: ${choice.backend}`);

    const started = Date.now();
    for (const profile of profiles) {
      for (const modelType of models) {
        const r = await trainBundle({ ...common, profile, modelType, progressOut: io.err, log: log.child({ module: 'train' }) });
        io.out(
          `${r.manifest.name}: ${r.fit.epochs} epochs (best ${r.fit.bestEpoch}), val loss ${r.fit.valLoss.toExponential(3)}, threshold ${r.manifest.threshold.toExponential(3)}, ${formatSeconds(r.fit.seconds)} → ${r.dir}`,
        );
      }
    }
    io.out(`trained ${profiles.length * models.length} bundle(s) in ${formatSeconds((Date.now() - started) / 1000)} on the ${choice.backend} backend`);
    return 0;
  },
};

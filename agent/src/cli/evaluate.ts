import { parseArgs } from 'node:util';
import { join } from 'node:path';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { backendFlag, engineFlag, modelsFlag, profilesFlag, selectionOptions, selectionUsage } from './options.js';
import { TaskProgress } from '../train/progress.js';
import { CHANNELS } from '../core/profiles.js';
import { DEFAULTS } from '../core/defaults.js';
import { createLogger } from '../core/log.js';
import { loadBundle, updateManifest } from '../model/bundle.js';
import { compareWithRecorded, evaluateBundle, writeReport, type RecordedMetrics } from '../evaluate/bundle-eval.js';
import { formatMetricsTable } from '../evaluate/report.js';
import type { EvaluationMetrics } from '../evaluate/metrics.js';

const LOG_LEVEL = DEFAULTS.cli.logLevel.evaluate;

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'score model bundles on labelled test CSVs: precision, recall, F1 per model and per fault',
  usage: `usage: anomaly-agent evaluate [options]

Loads each bundle <models>/<profile>/<model>/ (verifying every check), scores the windows of
<data>/<profile>/test/*.csv and prints precision, recall and F1 per model and per fault kind.

options:
${selectionUsage('seed-format data root with <profile>/test/*.csv and faults.json', LOG_LEVEL)}
  --write          record the metrics in bundle.json and write report.md + report/*.svg beside it
  --check          fail (exit 1) unless the metrics reproduce those recorded in bundle.json
  --engine E       auto (default: the fast engine, tfjs for a bundle it cannot run), fast or tfjs
`,
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...selectionOptions(LOG_LEVEL),
        write: { type: 'boolean', default: false },
        check: { type: 'boolean', default: false },
        engine: { type: 'string' },
      },
      strict: true,
    });
    if (values.write && values.check) throw new UsageError('--write and --check exclude each other: --check compares with what --write recorded');
    const log = createLogger({ level: values['log-level'], fd: 2 });
    const engine = engineFlag(values.engine);
    if (engine === 'tfjs') {
      // Imported only for the tfjs engine: the fast one never loads TensorFlow.js.
      const { selectBackend } = await import('../model/backend.js');
      const { backend } = await selectBackend(backendFlag(values.backend));
      log.info({ backend }, `TensorFlow.js backend: ${backend}`);
    }

    let failed = false;
    for (const profile of profilesFlag(values.profile)) {
      const rows: { model: string; metrics: EvaluationMetrics }[] = [];
      for (const modelType of modelsFlag(values.model)) {
        const bundle = await loadBundle(join(values.models, profile, modelType), { knownFeatures: CHANNELS });
        const progress = new TaskProgress(io.err, `${profile}/${modelType} windows scored`);
        const ev = await evaluateBundle(bundle, join(values.data, profile, 'test'), values.data, { engine, onProgress: (d, t) => progress.update(d, t) });
        progress.done(`${ev.files.reduce((n, f) => n + f.windows.length, 0)} windows on the ${ev.engine} engine`);
        rows.push({ model: modelType, metrics: ev.metrics });
        if (values.write) {
          bundle.manifest.metrics = { ...ev.metrics, testData: ev.testData, backend: ev.engine } satisfies RecordedMetrics;
          await updateManifest(bundle.dir, bundle.manifest);
          io.out(`${bundle.manifest.name}: report → ${await writeReport(bundle, ev)}`);
        }
        if (values.check) {
          const recorded = bundle.manifest.metrics as RecordedMetrics | undefined;
          if (!recorded) {
            io.out(`${bundle.manifest.name}: no recorded metrics to check against (run evaluate --write)`);
            failed = true;
          } else if (recorded.testData?.sha256 !== ev.testData.sha256) {
            io.out(`${bundle.manifest.name}: recorded metrics were measured on other test data (digest ${recorded.testData?.sha256?.slice(0, 12)} ≠ ${ev.testData.sha256.slice(0, 12)})`);
            failed = true;
          } else {
            const drifts = compareWithRecorded(recorded, ev.metrics);
            for (const d of drifts) io.out(`${bundle.manifest.name}: ${d.what} recorded ${d.recorded.toFixed(3)}, now ${d.now.toFixed(3)}`);
            io.out(`${bundle.manifest.name}: ${drifts.length ? 'does NOT reproduce' : 'reproduces'} its recorded metrics`);
            failed ||= drifts.length > 0;
          }
        }
      }
      io.out(`\n${profile} (test data ${join(values.data, profile, 'test')})`);
      io.out(formatMetricsTable(rows));
    }
    return failed ? 1 : 0;
  },
};

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
import { falseAlertLine, formatAlertTable, formatMetricsTable } from '../evaluate/report.js';
import { describeDetection, daemonDetection, evaluateAlerts } from '../evaluate/alert-eval.js';
import type { AlertMetrics } from '../evaluate/alert-metrics.js';
import type { EvaluationMetrics } from '../evaluate/metrics.js';

const LOG_LEVEL = DEFAULTS.cli.logLevel.evaluate;

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'score model bundles on labelled test CSVs: precision, recall, F1 per model and per fault; the alerts the daemon would raise',
  usage: `usage: anomaly-agent evaluate [options]

Loads each bundle <models>/<profile>/<model>/ (verifying every check), scores the windows of
<data>/<profile>/test/*.csv and prints precision, recall and F1 per model and per fault kind. Then
replays each file through the daemon's path (detector and baseline at the daemon's defaults) and
prints the alerts it raised: false alerts per hour of normal running, episodes alerted, alert-level F1.

options:
${selectionUsage('seed-format data root with <profile>/test/*.csv and faults.json', LOG_LEVEL)}
  --write          record the metrics in bundle.json and write report.md + report/*.svg beside it
  --check          fail (exit 1) unless the metrics reproduce those recorded in bundle.json
  --engine E       auto (default: the fast engine, tfjs for a bundle it cannot run), fast or tfjs
  --baseline B     on or off: the daemon's baseline (config baseline.enabled) for the alerts; default ${DEFAULTS.config.baseline.enabled ? 'on' : 'off'}
`,
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...selectionOptions(LOG_LEVEL),
        write: { type: 'boolean', default: false },
        check: { type: 'boolean', default: false },
        engine: { type: 'string' },
        baseline: { type: 'string', default: DEFAULTS.config.baseline.enabled ? 'on' : 'off' },
      },
      strict: true,
    });
    if (values.write && values.check) throw new UsageError('--write and --check exclude each other: --check compares with what --write recorded');
    const log = createLogger({ level: values['log-level'], fd: 2 });
    const engine = engineFlag(values.engine);
    if (values.baseline !== 'on' && values.baseline !== 'off') throw new UsageError(`--baseline must be on or off, got '${values.baseline}'`);
    const baseline = values.baseline === 'on';
    if (engine === 'tfjs') {
      // Imported only for the tfjs engine: the fast one never loads TensorFlow.js.
      const { selectBackend } = await import('../model/backend.js');
      const { backend } = await selectBackend(backendFlag(values.backend));
      log.info({ backend }, `TensorFlow.js backend: ${backend}`);
    }

    let failed = false;
    for (const profile of profilesFlag(values.profile)) {
      const rows: { model: string; metrics: EvaluationMetrics }[] = [];
      const alertRows: { model: string; alerts: AlertMetrics; window: EvaluationMetrics }[] = [];
      for (const modelType of modelsFlag(values.model)) {
        const bundle = await loadBundle(join(values.models, profile, modelType), { knownFeatures: CHANNELS });
        const progress = new TaskProgress(io.err, `${profile}/${modelType} windows scored`);
        const ev = await evaluateBundle(bundle, join(values.data, profile, 'test'), values.data, { engine, onProgress: (d, t) => progress.update(d, t) });
        progress.done(`${ev.files.reduce((n, f) => n + f.windows.length, 0)} windows on the ${ev.engine} engine`);
        rows.push({ model: modelType, metrics: ev.metrics });
        const streamed = new TaskProgress(io.err, `${profile}/${modelType} files through the daemon's path`);
        const al = await evaluateAlerts(bundle, join(values.data, profile, 'test'), { baseline, engine, onProgress: (d, t) => streamed.update(d, t) });
        streamed.done(`${al.metrics.alerts} alert(s)`);
        alertRows.push({ model: modelType, alerts: al.metrics, window: ev.metrics });
        if (values.write) {
          // The alert-level figures go into the report only: bundle.json records what --check reproduces.
          bundle.manifest.metrics = { ...ev.metrics, testData: ev.testData, backend: ev.engine } satisfies RecordedMetrics;
          await updateManifest(bundle.dir, bundle.manifest);
          const alerts = { metrics: al.metrics, files: al.alertFiles, detection: describeDetection(al.detection) };
          io.out(`${bundle.manifest.name}: report → ${await writeReport(bundle, ev, alerts)}`);
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
      io.out(`\nalerts through the daemon's path: ${describeDetection(daemonDetection(baseline))}`);
      io.out(formatAlertTable(alertRows));
      for (const r of alertRows) io.out(falseAlertLine(profile, r.model, r.alerts, r.window));
    }
    return failed ? 1 : 0;
  },
};

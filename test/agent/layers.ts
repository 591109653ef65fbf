/**
 * What may import what: the one rank table of the source folders, and the check that holds the code
 * to it (CONVENTIONS.md, habit 12). test/agent/layers.test.ts runs the check over agent/src and
 * broker/src, and keeps the README's Layout table (layersMarkdown()) in step with this one.
 *
 * Rule: a file may import a file of its own folder, or of a folder of lower or equal rank; equal rank
 * only while no folder-level cycle results. No file-level import cycle anywhere. broker/src is its own
 * package: of agent/src it may import BROKER_MAY_IMPORT only. Every import counts: static
 * `import … from`, `export … from`, side-effect `import '…'`, `import type`, dynamic `import('…')`,
 * and a worker's entry `new URL('./x.js', import.meta.url)` — the last for the ranks only: a worker
 * runs in its own module graph, so the entry importing its spawner's message types is no cycle.
 */
import { posix } from 'node:path';
import ts from 'typescript';

export interface Folder {
  /** A folder under agent/src (`core`), or `broker/src`. */
  folder: string;
  rank: number;
  what: string;
}

/** Lowest rank first. */
export const FOLDERS: readonly Folder[] = [
  { folder: 'core', rank: 0, what: 'the words every layer shares: Sample and SensorHealth, Score, Alert and its payload mapping, the MQTT topic contract, profiles, the fault vocabulary; clock, PRNG, logger, paths, listener addresses' },
  { folder: 'preprocess', rank: 1, what: 'CSV reading and checks, the MinMax scaler, windows and shape inputs, the time-ordered split' },
  { folder: 'hw', rank: 1, what: 'I2C bus and GPIO interfaces, the drivers, the sampler, probe; `emulated/`: the chips at register level, for the sim source' },
  { folder: 'motor', rank: 1, what: "the simulated motor's physics and fault magnitudes; the seed-format dataset generator" },
  { folder: 'buffer', rank: 2, what: 'per-sensor ring buffers, the windower, and the sensor fault check in front of the rings' },
  { folder: 'model', rank: 2, what: 'bundles (write, load, verify, sign), the scoring engines (fast, tfjs), the matrix kernels, the tfjs backend choice' },
  { folder: 'record', rank: 2, what: "recordings: samples aligned on the profile's grid as seed-format CSV files that rotate under a disk budget, and their manifest" },
  { folder: 'detect', rank: 2, what: 'the episode detector: window scores in, one raised and one cleared alert per episode' },
  { folder: 'pipeline', rank: 3, what: 'the streaming pipeline rings → windower → scorer → detector, run by the daemon and by the evaluator' },
  { folder: 'train', rank: 3, what: 'the trainers (fast: typed arrays over worker threads; tfjs), epoch loop, progress, threshold rule' },
  { folder: 'sources', rank: 4, what: 'where samples come from: sim (the emulated rig), hardware, replay, mqtt' },
  { folder: 'publish', rank: 4, what: 'the disk outbox and the MQTT publisher' },
  { folder: 'http', rank: 4, what: 'the HTTP server (/healthz, /metrics, the web page) and its metrics' },
  { folder: 'web', rank: 4, what: 'the web visualizer: `page/` runs in the browser; `site.ts` is what the HTTP server serves' },
  { folder: 'config', rank: 4, what: 'the configuration schema, its loading and checks' },
  { folder: 'broker/src', rank: 4, what: 'the MQTT broker (aedes), standalone (anomaly-broker) and embedded in the daemon' },
  { folder: 'evaluate', rank: 5, what: 'metrics, SVG plots, markdown reports, the SKAB benchmark' },
  { folder: 'flash', rank: 5, what: 'a bundle onto a device: installed with rollback, over ssh or in chunks over MQTT' },
  { folder: 'daemon', rank: 6, what: 'the controller and its components' },
  { folder: 'cli', rank: 7, what: '`anomaly-agent <command>`; the only code that touches `process`' },
  { folder: 'bench', rank: 7, what: 'benchmark scripts (`npm run bench:…`)' },
];

/** The folders of agent/src that broker/src may import. */
export const BROKER_MAY_IMPORT: readonly string[] = ['core'];

const BROKER = 'broker/src';

/** The README's Layout table. */
export function layersMarkdown(): string {
  const rows = FOLDERS.map((f) => {
    const only = f.folder === BROKER ? `; of agent/src it imports ${BROKER_MAY_IMPORT.map((b) => `\`${b}/\``).join(', ')} only` : '';
    return `| ${f.rank} | \`${f.folder}/\` | ${f.what}${only} |`;
  });
  return ['| rank | folder | what it is |', '|---|---|---|', ...rows].join('\n');
}

/** One import: in `file` (repo-relative), at `line`, the specifier as written and the file it names. */
export interface Import {
  file: string;
  line: number;
  spec: string;
  target: string;
  /** A worker's entry (`new Worker(new URL(…))`), not an ES import. */
  worker?: true;
}

const WORKER_URL = /new\s+URL\(\s*(['"])(\.{1,2}\/[^'"]+\.js)\1\s*,\s*import\.meta\.url\s*\)/g;

/** Every relative import of a TypeScript file (`file` repo-relative, posix), targets as .ts paths. */
export function importsOf(file: string, text: string): Import[] {
  const lineOf = (pos: number) => text.slice(0, pos).split('\n').length;
  const found: { spec: string; pos: number; worker?: true }[] = ts.preProcessFile(text, true, true).importedFiles.map((f) => ({ spec: f.fileName, pos: f.pos }));
  for (const m of text.matchAll(WORKER_URL)) found.push({ spec: m[2]!, pos: m.index!, worker: true });
  return found
    .filter((f) => f.spec.startsWith('./') || f.spec.startsWith('../'))
    .map((f) => ({
      file,
      line: lineOf(f.pos),
      spec: f.spec,
      target: posix.normalize(posix.join(posix.dirname(file), f.spec)).replace(/\.js$/, '.ts'),
      ...(f.worker ? { worker: true as const } : {}),
    }));
}

/** The folder of a repo-relative path: `core` for agent/src/core/…, `broker/src` for broker/src/…; undefined elsewhere. */
export function folderOf(path: string): string | undefined {
  if (path.startsWith(`${BROKER}/`)) return BROKER;
  const m = /^agent\/src\/([^/]+)\/./.exec(path);
  return m ? m[1] : undefined;
}

const where = (i: Import) => `${i.file}:${i.line} imports '${i.spec}'`;

/**
 * What breaks the rules in `files` (repo-relative path → source text), one message per problem, each
 * naming the file, the line and the import: (a) an import of a folder of higher rank (or, from
 * broker/src, of an agent folder it may not use; or of a file outside the layer folders), (b) a
 * folder-level cycle, (c) a file-level cycle (of ES imports).
 */
export function layerProblems(files: ReadonlyMap<string, string>, folders: readonly Folder[] = FOLDERS): string[] {
  const rank = new Map(folders.map((f) => [f.folder, f.rank]));
  const problems: string[] = [];
  const imports: Import[] = [];
  for (const [file, text] of files) {
    const from = folderOf(file);
    if (from === undefined || !rank.has(from)) {
      problems.push(`${file}: not in a folder of the rank table (test/agent/layers.ts FOLDERS)`);
      continue;
    }
    imports.push(...importsOf(file, text));
  }

  // (a) upward imports
  const crossing: Import[] = [];
  for (const i of imports) {
    const from = folderOf(i.file)!;
    const to = folderOf(i.target);
    if (to === undefined || !rank.has(to)) {
      problems.push(`${where(i)}: ${i.target} is in no folder of the rank table`);
      continue;
    }
    if (to === from) continue;
    crossing.push(i);
    if (from === BROKER && !BROKER_MAY_IMPORT.includes(to)) {
      problems.push(`${where(i)}: broker/src may import only ${BROKER_MAY_IMPORT.map((b) => `${b}/`).join(', ')} of agent/src, not ${to}/`);
    } else if (rank.get(to)! > rank.get(from)!) {
      problems.push(`${where(i)}: ${from}/ (rank ${rank.get(from)}) may not import ${to}/ (rank ${rank.get(to)}), a higher layer`);
    }
  }

  // (b) folder-level cycles; each edge remembers one import that makes it
  const folderEdge = new Map<string, Import>();
  for (const i of crossing) {
    const key = `${folderOf(i.file)}\n${folderOf(i.target)}`;
    if (!folderEdge.has(key)) folderEdge.set(key, i);
  }
  const folderGraph = graphOf([...folderEdge.keys()].map((k) => k.split('\n') as [string, string]));
  for (const cycle of cycles(folderGraph)) {
    const steps = cycle.map((f, k) => folderEdge.get(`${f}\n${cycle[(k + 1) % cycle.length]}`)!);
    problems.push(`folder cycle ${[...cycle, cycle[0]].map((f) => `${f}/`).join(' → ')}: ${steps.map(where).join('; ')}`);
  }

  // (c) file-level cycles
  const fileEdge = new Map<string, Import>();
  for (const i of imports) if (!i.worker && files.has(i.target) && !fileEdge.has(`${i.file}\n${i.target}`)) fileEdge.set(`${i.file}\n${i.target}`, i);
  const fileGraph = graphOf([...fileEdge.keys()].map((k) => k.split('\n') as [string, string]));
  for (const cycle of cycles(fileGraph)) {
    const steps = cycle.map((f, k) => fileEdge.get(`${f}\n${cycle[(k + 1) % cycle.length]}`)!);
    problems.push(`file cycle: ${steps.map(where).join(' → ')} → back to ${cycle[0]}`);
  }
  return problems;
}

function graphOf(edges: [string, string][]): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const [a, b] of edges) {
    if (!g.has(a)) g.set(a, []);
    if (!g.has(b)) g.set(b, []);
    g.get(a)!.push(b);
  }
  for (const out of g.values()) out.sort();
  return g;
}

/** One cycle per strongly connected component with more than one node (Tarjan), as the nodes in order. */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc = new Set<string>();
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.add(w);
    } while (w !== v);
    if (scc.size > 1) out.push(cycleThrough(v, scc, g));
  };
  for (const v of [...g.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/** A shortest cycle from `start` back to it inside `scc` (breadth first). */
function cycleThrough(start: string, scc: Set<string>, g: Map<string, string[]>): string[] {
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of g.get(v)!) {
      if (!scc.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(prev.get(path[0]!)!);
        return path;
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

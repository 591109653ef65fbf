/** Imports point down (CONVENTIONS.md, habit 12): the rank table of test/agent/layers.ts, held against the code and the README. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { FOLDERS, importsOf, layerProblems, layersMarkdown } from './layers.js';

/** repo-relative posix path → text, for every .ts file under agent/src and broker/src. */
function sources(): Map<string, string> {
  const files = new Map<string, string>();
  for (const root of ['agent/src', 'broker/src']) {
    for (const rel of readdirSync(join(PACKAGE_ROOT, root), { recursive: true, encoding: 'utf8' }).sort()) {
      if (!rel.endsWith('.ts')) continue;
      const path = `${root}/${rel.split('\\').join('/')}`;
      files.set(path, readFileSync(join(PACKAGE_ROOT, path), 'utf8'));
    }
  }
  return files;
}

test('every folder of agent/src is in the rank table, and every folder in the table exists', () => {
  const dirs = readdirSync(join(PACKAGE_ROOT, 'agent/src')).filter((d) => statSync(join(PACKAGE_ROOT, 'agent/src', d)).isDirectory());
  const table = FOLDERS.map((f) => f.folder).filter((f) => f !== 'broker/src');
  assert.deepEqual(dirs.filter((d) => !table.includes(d)), [], 'folders missing from test/agent/layers.ts FOLDERS (give each a rank and a line)');
  assert.deepEqual(table.filter((f) => !dirs.includes(f)), [], 'folders in test/agent/layers.ts FOLDERS that do not exist');
});

test('agent/src and broker/src: no import of a higher layer, no folder cycle, no file cycle', () => {
  const files = sources();
  assert.ok(files.size > 100, `only ${files.size} source files found under ${PACKAGE_ROOT}`);
  const problems = layerProblems(files);
  assert.deepEqual(problems, [], `\n${problems.join('\n')}\n`);
});

test('the check finds every kind of import and every kind of break', () => {
  const found = importsOf(
    'agent/src/model/x.ts',
    [
      "/** import { no } from './comment.js' */",
      "import a from './a.js';",
      "import type { B } from '../core/b.js';",
      "export { c } from './c.js';",
      "export * from './d.js';",
      "import './e.js';",
      "const f = await import('../buffer/f.js');",
      "let g: typeof import('./g.js');",
      "new Worker(new URL('./h.js', import.meta.url));",
      "import mqtt from 'mqtt';",
    ].join('\n'),
  );
  assert.deepEqual(
    found.map((i) => `${i.line} ${i.target}`),
    ['2 agent/src/model/a.ts', '3 agent/src/core/b.ts', '4 agent/src/model/c.ts', '5 agent/src/model/d.ts', '6 agent/src/model/e.ts', '7 agent/src/buffer/f.ts', '8 agent/src/model/g.ts', '9 agent/src/model/h.ts'],
  );

  const bad = new Map([
    // (a) a lower layer imports a higher one, also by a dynamic import
    ['agent/src/core/low.ts', "import { Controller } from '../daemon/up.js';"],
    ['agent/src/daemon/up.ts', "export const Controller = 1;\nconst m = await import('../cli/top.js');"],
    ['agent/src/cli/top.ts', ''],
    // (b) two folders of equal rank importing each other
    ['agent/src/sources/s.ts', "import type { P } from '../publish/p.js';"],
    ['agent/src/publish/p.ts', "export { S } from '../sources/s.js';"],
    // (c) a file cycle inside one folder
    ['agent/src/model/a.ts', "import { b } from './b.js';"],
    ['agent/src/model/b.ts', "import type { A } from './a.js';"],
    // a worker's entry importing its spawner's message types is no cycle
    ['agent/src/train/spawner.ts', "new Worker(new URL('./entry.js', import.meta.url));"],
    ['agent/src/train/entry.ts', "import type { Msg } from './spawner.js';"],
    // the broker reaching past core
    ['broker/src/x.ts', "import { m } from '../../agent/src/model/a.js';"],
    // a folder with no rank
    ['agent/src/nowhere/n.ts', ''],
  ]);
  assert.deepEqual(layerProblems(bad), [
    'agent/src/nowhere/n.ts: not in a folder of the rank table (test/agent/layers.ts FOLDERS)',
    "agent/src/core/low.ts:1 imports '../daemon/up.js': core/ (rank 0) may not import daemon/ (rank 6), a higher layer",
    "agent/src/daemon/up.ts:2 imports '../cli/top.js': daemon/ (rank 6) may not import cli/ (rank 7), a higher layer",
    "broker/src/x.ts:1 imports '../../agent/src/model/a.js': broker/src may import only core/ of agent/src, not model/",
    "folder cycle publish/ → sources/ → publish/: agent/src/publish/p.ts:1 imports '../sources/s.js'; agent/src/sources/s.ts:1 imports '../publish/p.js'",
    "file cycle: agent/src/model/a.ts:1 imports './b.js' → agent/src/model/b.ts:1 imports './a.js' → back to agent/src/model/a.ts",
    "file cycle: agent/src/publish/p.ts:1 imports '../sources/s.js' → agent/src/sources/s.ts:1 imports '../publish/p.js' → back to agent/src/publish/p.ts",
  ]);
});

test("the README's Layout table is the rank table (test/agent/layers.ts layersMarkdown())", () => {
  const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
  const layout = readme.slice(readme.indexOf('\n## Layout'));
  assert.ok(layout.includes(layersMarkdown()), "README.md: paste the output of layersMarkdown() (test/agent/layers.ts) into the Layout section");
});

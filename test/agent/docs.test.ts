/** The reference tables in the docs are generated from the code; these tests keep them in step. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { topicsMarkdown } from '#agent/publish/topics.js';
import { schemaMarkdown } from '#agent/config/schema.js';

test('the README topic table is the one generated from publish/topics.ts', async () => {
  const readme = await readFile(join(PACKAGE_ROOT, 'README.md'), 'utf8');
  assert.ok(readme.includes(topicsMarkdown()), 'README.md: paste the output of topicsMarkdown() into the MQTT topics section');
});

test('docs/configuration.md is the one generated from the config schema', async () => {
  const doc = await readFile(join(PACKAGE_ROOT, 'docs', 'configuration.md'), 'utf8');
  assert.ok(doc.includes(schemaMarkdown()), "docs/configuration.md: regenerate with 'anomaly-agent config --schema'");
});

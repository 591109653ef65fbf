/** The reference tables in the docs are generated from the code; these tests keep them in step. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '#agent/core/paths.js';
import { DEFAULTS } from '#agent/core/defaults.js';
import { topicsMarkdown } from '#agent/core/topic-table.js';
import { aclMarkdown } from '#broker/acl.js';
import { CONFIGURATION_DOC_COMMAND, configurationMarkdown } from '#agent/config/schema.js';

test('the README topic table is the one generated from core/topics.ts', async () => {
  const readme = await readFile(join(PACKAGE_ROOT, 'README.md'), 'utf8');
  assert.ok(readme.includes(topicsMarkdown(DEFAULTS.config.mqtt.prefix, DEFAULTS.config.homeassistant.prefix)), 'README.md: paste the output of topicsMarkdown() (core/topic-table.ts) into the MQTT topics section');
});

test('the README ACL table is the one generated from broker/src/acl.ts', async () => {
  const readme = await readFile(join(PACKAGE_ROOT, 'README.md'), 'utf8');
  assert.ok(readme.includes(aclMarkdown(DEFAULTS.config.mqtt.prefix)), 'README.md: paste the output of aclMarkdown() (broker/src/acl.ts) into "The broker on a plant network"');
});

test('docs/configuration.md is exactly the one generated from the config schema and core/defaults.ts', async () => {
  const doc = await readFile(join(PACKAGE_ROOT, 'docs', 'configuration.md'), 'utf8');
  assert.equal(doc, configurationMarkdown(), `docs/configuration.md is stale: regenerate with 'npm run docs:config' (${CONFIGURATION_DOC_COMMAND})`);
  assert.ok(doc.includes('npm run docs:config'), 'the header names the command that regenerates it');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KEYS, schemaMarkdown } from '#agent/config/schema.js';

// The naming rule is what lets an operator guess a variable from a key; a test keeps every key on it.
const snake = (path: string) => path.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/\./g, '_').toUpperCase();
const kebab = (path: string) => path.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/\./g, '-').toLowerCase();

test('every key has doc, format, default, env ANOMALY_<PATH> and flag --<path>, none shared', () => {
  assert.ok(KEYS.length >= 40, `${KEYS.length} keys`);
  for (const k of KEYS) {
    assert.ok(k.doc.length > 10, `${k.path}: doc`);
    assert.ok(k.format !== undefined, `${k.path}: format`);
    assert.notEqual(k.default, undefined, `${k.path}: default`);
    assert.equal(k.env, `ANOMALY_${snake(k.path)}`, `${k.path}: env`);
    assert.equal(k.arg, kebab(k.path), `${k.path}: flag`);
  }
  assert.equal(new Set(KEYS.map((k) => k.env)).size, KEYS.length);
  assert.equal(new Set(KEYS.map((k) => k.arg)).size, KEYS.length);
  assert.deepEqual(KEYS.filter((k) => k.sensitive).map((k) => k.path), ['mqtt.password', 'web.password']);
});

test('the markdown reference has one row per key and portable defaults', () => {
  const md = schemaMarkdown().split('\n');
  assert.equal(md[0], '| key | default | env | flag | description |');
  assert.equal(md.length, KEYS.length + 2);
  assert.ok(md.some((l) => l.startsWith('| `mqtt.url` | `""` | `ANOMALY_MQTT_URL` | `--mqtt-url` |')));
  const shippedDir = md.find((l) => l.startsWith('| `models.shippedDir` '))!;
  assert.match(shippedDir, /`<package>\/models`/);
  assert.ok(md.some((l) => l.startsWith('| `source.replay.file` | `<package>/datas/raw/rpm_600/test/test_01.csv` |')));
  assert.ok(md.some((l) => l.startsWith('| `hardware.adxl345.address` | `0x53` |')), 'I2C addresses in hex');
  for (const row of md.slice(2)) {
    assert.equal(row.split(/(?<!\\)\|/).length, 7, row); // no unescaped '|' in a cell
    assert.doesNotMatch(row.split('|').at(-2)!, /(?<!\\)</, row); // '<dev>' would render as an HTML tag
  }
});

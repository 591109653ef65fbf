import { discoveryTopicRow } from './homeassistant.js';
import { payloadSchemas, shapeOf } from './payloads.js';
import { TOPICS, type TopicName } from './topics.js';

/**
 * The README's topic table, generated from TOPICS and their payload schemas, and the Home Assistant
 * discovery configs under `haPrefix` (core/homeassistant.ts); a test keeps the README in step.
 */
export function topicsMarkdown(prefix: string, haPrefix: string): string {
  const rows = (Object.keys(TOPICS) as TopicName[]).map((name) => {
    const s = TOPICS[name];
    const t = `${prefix}/<dev>/${s.suffix.replace(/\{(\w+)\}/, '<$1>')}`;
    return `| \`${t}\` | ${s.direction} | ${s.qos}${s.retain ? ', retained' : ''} | ${s.doc} | \`${shapeOf(payloadSchemas()[name])}\` |`;
  });
  const ha = discoveryTopicRow(haPrefix);
  rows.push(`| \`${ha.topic}\` | out | 1, retained | ${ha.doc} | \`${ha.shape}\` |`);
  return ['| topic | dir | QoS | what | payload (JSON; `v` schema version and `t` ms epoch in every outgoing one) |', '|---|---|---|---|---|', ...rows].join('\n');
}

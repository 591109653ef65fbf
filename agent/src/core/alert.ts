/**
 * An alert: what the detector (detect/detector.ts) says when a model's episode is raised or cleared —
 * one of each per episode — with the features that contributed most, and the MQTT alert payload
 * (core/topics.ts AlertPayload) it becomes. The daemon publishes alerts, the evaluator scores them.
 */
import type { Score } from './score.js';
import { SCHEMA_VERSION, type AlertPayload, type TopFeature } from './topics.js';

/** How many features an alert names. */
export const TOP_FEATURES = 3;

/** An alert: the alert payload without its envelope, plus windowEnd. */
export interface Alert extends Omit<AlertPayload, 'v' | 't'> {
  /** windowEnd of the window that raised or cleared (not part of the MQTT payload). */
  windowEnd: number;
}

/**
 * The `TOP_FEATURES` largest per-feature errors, descending (ties by feature name), each with its
 * share of the window's total error. Shares are in [0, 1] and their sum (added in order) is ≤ 1;
 * a window whose total error is 0 gives shares of 0.
 */
export function topFeatures(perFeature: Score['perFeature'], n = TOP_FEATURES): TopFeature[] {
  const entries = Object.entries(perFeature);
  let total = 0;
  for (const [, e] of entries) total += e;
  entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const top = entries.slice(0, n).map(([feature, error]) => ({ feature, error, share: total > 0 ? Math.min(1, error / total) : 0 }));
  // e/total rounds, so shares covering every feature can add up to 1 + a few ulps: take the excess
  // off the smallest shares until the sum a consumer computes is ≤ 1.
  const sum = () => top.reduce((s, f) => s + f.share, 0);
  for (let i = top.length - 1, s = sum(), guard = 0; s > 1 && i >= 0 && guard < 64; guard++) {
    const f = top[i]!;
    f.share = Math.max(0, f.share - (s - 1));
    if (f.share === 0) i--;
    s = sum();
  }
  return top;
}

/** The MQTT alert payload for an alert made at `t`: exactly AlertPayload's fields, nothing else. */
export function toAlertPayload(e: Alert, t: number): AlertPayload {
  return {
    v: SCHEMA_VERSION,
    t,
    id: e.id,
    model: e.model,
    state: e.state,
    score: e.score,
    threshold: e.threshold,
    topFeatures: e.topFeatures.map((f) => ({ feature: f.feature, error: f.error, share: f.share })),
    since: e.since,
  };
}

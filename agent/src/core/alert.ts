/**
 * An alert: what the detector (detect/detector.ts) says when a model's episode is raised or cleared —
 * one of each per episode — with the features that contributed most, and the MQTT alert payload
 * (core/topics.ts AlertPayload) it becomes. The daemon publishes alerts, the evaluator scores them.
 */
import type { Score } from './score.js';
import { SCHEMA_VERSION, type AlertPayload, type ModelAlertPayload, type SensorAlertPayload, type TopFeature } from './topics.js';

/** How many features an alert names. */
export const TOP_FEATURES = 3;

/** An alert of a model (kinds machine and drift): its payload without the envelope, plus windowEnd. */
export interface ModelAlert extends Omit<ModelAlertPayload, 'v' | 't'> {
  /** windowEnd of the window that raised or cleared (not part of the MQTT payload). */
  windowEnd: number;
}

/** An alert of a sensor (kind sensor): its payload without the envelope. */
export type SensorAlert = Omit<SensorAlertPayload, 'v' | 't'>;

/** Any alert: what goes out on the alerts topic, without its envelope. */
export type Alert = ModelAlert | SensorAlert;

/** What an alert is about, for logs and labels: the model, or `sensor <name>`. */
export const alertSubject = (e: Alert | AlertPayload): string => (e.kind === 'sensor' ? `sensor ${e.sensor}` : e.model);

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

/** A copy of top features with exactly their three fields. */
export const copyTop = (t: readonly TopFeature[]): TopFeature[] => t.map((f) => ({ feature: f.feature, error: f.error, share: f.share }));

/** The MQTT alert payload for an alert made at `t`: exactly AlertPayload's fields, nothing else. */
export function toAlertPayload(e: Alert, t: number): AlertPayload {
  const cleared = e.state === 'cleared' && e.reason !== undefined ? { reason: e.reason } : {};
  if (e.kind === 'sensor') {
    return { v: SCHEMA_VERSION, t, id: e.id, kind: e.kind, sensor: e.sensor, state: e.state, fault: e.fault, detail: e.detail, since: e.since, ...(cleared as { reason?: 'readings plausible again' }) };
  }
  const p: ModelAlertPayload = {
    v: SCHEMA_VERSION,
    t,
    id: e.id,
    kind: e.kind,
    model: e.model,
    state: e.state,
    score: e.score,
    threshold: e.threshold,
    topFeatures: copyTop(e.topFeatures),
    since: e.since,
  };
  if (e.state === 'cleared') {
    if (e.reason !== undefined) p.reason = e.reason;
    if (e.peak !== undefined) p.peak = { score: e.peak.score, threshold: e.peak.threshold, topFeatures: copyTop(e.peak.topFeatures) };
  }
  return p;
}

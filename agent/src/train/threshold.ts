import type { ThresholdRule } from '../model/bundle.js';
import type { ScoreAggregate } from '../model/error-scale.js';

/**
 * The documented threshold rule: the q-quantile of the reconstruction errors of the validation
 * windows (normal data the model did not train on), times a safety margin. The quantile ignores the
 * few roughest normal windows; the margin covers normal running the validation span did not contain
 * (another load, another ambient). One rule for every model, chosen before looking at test data.
 */
export const DEFAULT_THRESHOLD_RULE: ThresholdRule = { kind: 'validation-quantile', quantile: 0.995, margin: 1.5 };

export function describeRule(rule: ThresholdRule, aggregate: ScoreAggregate = 'mean'): string {
  const score =
    aggregate === 'max'
      ? `the largest over features of reconstruction MSE ÷ that feature's ${rule.quantile}-quantile of validation MSE`
      : "the mean over features of reconstruction MSE ÷ that feature's mean validation MSE";
  return `threshold = quantile(validation scores, ${rule.quantile}) × ${rule.margin}, a score being ${score}`;
}

/** Linear-interpolated quantile (numpy's default 'linear' method). */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) throw new Error('quantile of an empty set');
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile q must be in [0, 1], got ${q}`);
  const s = Float64Array.from(values).sort();
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function thresholdFrom(validationErrors: ArrayLike<number>, rule: ThresholdRule): { threshold: number; quantileValue: number } {
  const quantileValue = quantile(validationErrors, rule.quantile);
  return { threshold: quantileValue * rule.margin, quantileValue };
}

/**
 * A scored window: what a model's scorer makes of one window (pipeline/model-runtime.ts), what its
 * detector judges (detect/detector.ts) and, with the threshold it was judged against, what goes out on
 * the score topic (core/topics.ts ScorePayload).
 */
export interface Score {
  /** ms epoch of the window's last sample. */
  windowEnd: number;
  /** The window's score, the one its model's threshold applies to (model/engines.ts Scorer). */
  score: number;
  /** Per model input — each feature, and `<channel>.shape` for a shape input — its error ÷ normal. */
  perFeature: Record<string, number>;
}

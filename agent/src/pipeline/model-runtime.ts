import type { Logger } from 'pino';
import type { SensorBuffer } from '../buffer/ring.js';
import type { ModelAlert } from '../core/alert.js';
import { Windower } from '../buffer/windower.js';
import { Baseline, type BaselineOptions } from '../detect/baseline.js';
import { Detector, DetectorInputError, type DetectorSettings, type DetectorState } from '../detect/detector.js';
import type { LoadedBundle } from '../model/bundle.js';
import type { BackendPreference, Scorer, ScorerEngine } from '../model/engines.js';
import { createScorer } from '../model/scorer.js';
import { InputLayout } from '../preprocess/shape.js';
import { PROFILES } from '../core/profiles.js';
import type { ScorePayload } from '../core/topics.js';

export interface ModelRuntimeOptions {
  bundle: LoadedBundle;
  channels: ReadonlyMap<string, { sensor: string; index: number }>;
  buffers: ReadonlyMap<string, SensorBuffer>;
  detector: DetectorSettings;
  /** How the model's notion of normal may move (detect/baseline.ts); absent: it stays as trained. */
  baseline?: BaselineOptions;
  maxBatch: number;
  /** Which engine scores (model/scorer.ts createScorer): under `fast` an unsupported bundle is refused by create(). */
  engine: ScorerEngine;
  /** The TensorFlow.js backend, should the bundle be scored with tfjs; default auto. */
  backend?: BackendPreference;
  log: Logger;
  /** The daemon's clock: when a window was last scored (health, the watchdog). */
  now: () => number;
  onScore: (model: string, p: Omit<ScorePayload, 'v' | 't'>) => void;
  onAlert: (e: ModelAlert) => void;
  /** Seconds one scoring call took and how many windows it scored. */
  onScored: (model: string, seconds: number, windows: number) => void;
}

/**
 * The streaming pipeline, for one bundle at work: its windower cuts windows from the shared sensor
 * rings, the scorer turns a batch of them into errors, the detector turns errors into alerts.
 * Windows that fall due in the same turn of the event loop are scored as one batch. The baseline
 * (detect/baseline.ts) moves the inputs of the windows it cuts by its offsets, and learns from every
 * judged window. The daemon runs one per model; the evaluator (evaluate/skab.ts) runs the same one
 * over a recorded file.
 */
export class ModelRuntime {
  readonly model: string;
  readonly sensors: Set<string>;
  readonly windower: Windower;
  detector: Detector;
  /** Where the model's notion of normal sits now; null when it may not move. */
  baseline: Baseline | null;
  /** Model input names (features, then shape inputs): the keys of a score's perFeature. */
  private readonly inputs: string[];
  private readonly batch: Float32Array;
  private readonly batchEnd: Float64Array;
  /** Each window's per-feature mean, scaled, before the baseline's offsets: [maxBatch][features]. */
  private readonly batchLevels: Float64Array;
  /** Whether the machine ran through each window of the batch (1) or stood or slowed below the limit (0). */
  private readonly batchRunning: Uint8Array;
  /** How to tell that the machine stopped (tachometer and accelerometer); null: it is taken to run. */
  private readonly stopGate: StopGate | null;
  /** Whether the last window scored was judged: the log says when the machine stops and runs again. */
  private judging = true;
  /** A window's span, ms (seqLen × period): the on-delay's unit and the stretch the stop gate reads. */
  private readonly spanMs: number;
  private pending = 0;
  private flushQueued = false;
  /** When this runtime last scored, by o.now() (0: not yet; a reload makes a new runtime). */
  lastScoredAt = 0;

  /** The runtime for `o.bundle`, with the scorer its engine makes (which may have to load TensorFlow.js first). */
  static async create(o: ModelRuntimeOptions): Promise<ModelRuntime> {
    const scorer = await createScorer(o.bundle, o.engine, o.maxBatch, o.log, o.backend);
    try {
      return new ModelRuntime(o, scorer);
    } catch (err) {
      scorer.dispose(); // nothing else holds it
      throw err;
    }
  }

  private constructor(
    private readonly o: ModelRuntimeOptions,
    private readonly scorer: Scorer,
  ) {
    const m = o.bundle.manifest;
    this.model = m.modelType;
    this.sensors = new Set(m.features.map((f) => o.channels.get(f)?.sensor ?? '?'));
    const layout = new InputLayout(m.features, m.shape);
    this.inputs = layout.names;
    const stride = m.seqLen * layout.width;
    this.batch = new Float32Array(o.maxBatch * stride);
    this.batchEnd = new Float64Array(o.maxBatch);
    const f = m.features.length;
    this.batchLevels = new Float64Array(o.maxBatch * f);
    this.batchRunning = new Uint8Array(o.maxBatch);
    this.spanMs = m.seqLen * m.periodMs;
    this.stopGate = stopGate(o, m.profile);
    this.detector = this.makeDetector();
    this.baseline = o.baseline ? new Baseline(this.model, m.features, o.baseline) : null;
    this.windower = new Windower({
      features: m.features,
      channels: o.channels,
      buffers: o.buffers,
      periodMs: m.periodMs,
      seqLen: m.seqLen,
      hop: m.hop,
      maxGapMs: m.maxGapMs,
      scaler: m.scaler,
      onWindow: (w) => {
        // The window is a view into the windower's buffer, valid only now: copy it into the batch.
        layout.write(w.x, 0, m.seqLen, this.batch, this.pending * stride, this.baseline?.offsets);
        // Each feature's level, for the baseline only: a model whose normal may not move skips it.
        if (this.baseline) {
          for (let j = 0; j < f; j++) {
            let sum = 0;
            for (let t = 0; t < m.seqLen; t++) sum += w.x[t * f + j]!;
            this.batchLevels[this.pending * f + j] = sum / m.seqLen;
          }
        }
        this.batchRunning[this.pending] = this.ranThrough(w.endT) ? 1 : 0;
        this.batchEnd[this.pending++] = w.endT;
        if (this.pending === o.maxBatch) this.flush();
        else this.queueFlush();
      },
    });
  }

  get manifest() {
    return this.o.bundle.manifest;
  }

  get bundleSha256(): string {
    return this.o.bundle.sha256;
  }

  /** How far the baseline moved from the trained levels, training ranges, to 3 decimals (0 when it may not move). */
  get drift(): number {
    return Math.round((this.baseline?.drift ?? 0) * 1000) / 1000;
  }

  /** The engine scoring this bundle: 'fast' or 'tfjs'. */
  get engine(): string {
    return this.scorer.engine;
  }

  /** The fast engine's matrix kernel, 'wasm' or 'js' (where WebAssembly cannot run); undefined under tfjs. */
  get kernel(): string | undefined {
    return this.scorer.kernel;
  }

  /**
   * Takes over from the runtime this one replaces, at the moment of the swap: the old one judges the
   * windows it has already cut, its detector's state (an open episode, the k-of-n history) carries
   * over, and windows continue after the last one it formed. The baseline starts afresh: the new
   * bundle's levels are its own training's.
   */
  continueFrom(old: ModelRuntime): void {
    old.flush();
    this.detector = this.makeDetector(old.detector.state());
    this.windower.resumeAfter(old.windower.lastWindowEnd);
  }

  private makeDetector(state?: DetectorState): Detector {
    const { onDelaySpans = 0, ...d } = this.o.detector;
    return new Detector({ ...d, onDelayMs: onDelaySpans * this.spanMs, model: this.model, threshold: this.manifest.threshold }, state);
  }

  /** Forms whatever rows and windows the rings now allow. */
  advance(): void {
    const gapsBefore = this.windower.gaps;
    this.windower.advance();
    if (this.windower.gaps !== gapsBefore) {
      this.detector.reset();
      this.baseline?.reset();
    }
  }

  /** Scores the pending batch now. */
  flush(): void {
    const n = this.pending;
    if (n === 0) return;
    this.pending = 0;
    const m = this.manifest;
    const f = this.inputs.length;
    const started = performance.now();
    let result: { score: Float32Array; perFeature: Float32Array };
    try {
      result = this.scorer.score(this.batch, n);
    } catch (err) {
      this.o.log.error({ err: (err as Error).message, windows: n }, 'scoring failed; windows skipped');
      return;
    }
    this.o.onScored(this.model, (performance.now() - started) / 1000, n);
    this.lastScoredAt = this.o.now();
    for (let i = 0; i < n; i++) {
      const perFeature: Record<string, number> = {};
      for (let j = 0; j < f; j++) perFeature[this.inputs[j]!] = result.perFeature[i * f + j]!;
      const windowEnd = this.batchEnd[i]!;
      const score = result.score[i]!;
      const threshold = this.detector.getThreshold();
      this.o.onScore(this.model, { windowEnd, score, threshold, perFeature });
      if (!this.batchRunning[i]) {
        if (this.judging) {
          // What comes after the stop is another run: neither the k-of-n history nor the levels carry over.
          this.judging = false;
          this.detector.reset();
          this.baseline?.reset();
          this.o.log.info({ belowRpm: this.stopGate?.belowRpm }, 'machine stopped: windows are not judged until it runs again');
        }
        continue;
      }
      if (!this.judging) {
        this.judging = true;
        this.o.log.info('machine running: windows are judged again');
      }
      let event;
      try {
        event = this.detector.observe({ windowEnd, score, perFeature }, this.baseline?.clearReason);
      } catch (err) {
        if (!(err instanceof DetectorInputError)) throw err;
        this.o.log.error({ err: err.message }, 'window not judged');
        continue;
      }
      if (event) this.o.onAlert(event);
      const drift = this.baseline?.observe(
        {
          windowEnd,
          ratio: score / threshold,
          levels: this.batchLevels.subarray(i * this.manifest.features.length, (i + 1) * this.manifest.features.length),
          open: this.detector.isOpen(),
          peakRatio: this.detector.peakRatio(),
          low: score < this.o.detector.clearRatio * threshold,
        },
        event?.state === 'cleared' && event.peak ? event.peak.score / event.peak.threshold : null,
      );
      if (drift) this.o.onAlert(drift);
    }
  }

  /**
   * Did the machine run through the window ending at endT? It stopped when the tachometer read under
   * the gate's speed at some sample of the window and the accelerometer, where there is one, stayed
   * quiet (every axis's standard deviation over the window under the gate's vibration): two sensors
   * must agree, so a dead tachometer on a vibrating machine, or a dead accelerometer on a turning
   * one, is still judged — and alerted on.
   */
  private ranThrough(endT: number): boolean {
    const g = this.stopGate;
    if (!g) return true;
    const from = endT - this.spanMs;
    let slow = false;
    for (let i = g.rpm.ring.indexAtOrBefore(endT); i >= 0 && g.rpm.ring.timeAt(i) > from; i--) {
      if (g.rpm.ring.valueAt(i, g.rpm.index) < g.belowRpm) {
        slow = true;
        break;
      }
    }
    if (!slow || !g.accel) return !slow;
    const { ring, indices } = g.accel;
    for (const ch of indices) {
      let n = 0;
      let sum = 0;
      let sq = 0;
      for (let i = ring.indexAtOrBefore(endT); i >= 0 && ring.timeAt(i) > from; i--) {
        const v = ring.valueAt(i, ch);
        n++;
        sum += v;
        sq += v * v;
      }
      if (n > 1 && Math.sqrt(Math.max(0, sq / n - (sum / n) ** 2)) >= g.vibration) return true;
    }
    return false;
  }

  dispose(): void {
    this.flush();
    this.scorer.dispose();
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    // Every window that falls due in this turn of the event loop (a replay tick, an MQTT burst) is
    // already in the batch by the time this runs.
    setImmediate(() => {
      this.flushQueued = false;
      this.flush();
    });
  }
}

interface StopGate {
  rpm: { ring: SensorBuffer; index: number };
  belowRpm: number;
  /** The accelerometer's axes on one ring, when the device has them. */
  accel: { ring: SensorBuffer; indices: number[] } | null;
  vibration: number;
}

const ACCEL_AXES = ['accel_x', 'accel_y', 'accel_z'];

/** The stop gate of a runtime: only where the settings ask for one, the profile has a nominal speed, and an rpm ring exists. */
function stopGate(o: ModelRuntimeOptions, profile: string): StopGate | null {
  const fraction = o.detector.stoppedBelow ?? 0;
  const nominal = (PROFILES as Record<string, { nominalRpm: number } | undefined>)[profile]?.nominalRpm;
  const rpm = o.channels.get('rpm');
  const ring = rpm && o.buffers.get(rpm.sensor);
  if (!(fraction > 0) || !nominal || !rpm || !ring) return null;
  const axes = ACCEL_AXES.map((c) => o.channels.get(c)).filter((c) => c !== undefined);
  const accelRing = axes[0] && axes.every((a) => a.sensor === axes[0]!.sensor) ? o.buffers.get(axes[0].sensor) : undefined;
  const vibration = o.detector.stoppedVibration ?? 0;
  return {
    rpm: { ring, index: rpm.index },
    belowRpm: fraction * nominal,
    accel: accelRing && vibration > 0 ? { ring: accelRing, indices: axes.map((a) => a.index) } : null,
    vibration,
  };
}

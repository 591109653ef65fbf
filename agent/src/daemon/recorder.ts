import { basename } from 'node:path';
import type { AgentConfig } from '../config/schema.js';
import type { Component } from '../core/component.js';
import type { Sample } from '../core/sample.js';
import { topicFilter } from '../core/topics.js';
import { describeParts } from '../hw/build.js';
import type { RecordingSource } from '../record/manifest.js';
import { Recording, type RecordingOptions } from '../record/recording.js';
import type { DaemonContext } from './context.js';

/**
 * Recording in the background (`record.enabled`): every reading the rings accept (`sample` on the
 * bus) goes to a Recording — the writer `anomaly-agent record` uses — as seed-format CSV under
 * `record.dir`, within `record.maxBytes`. Started before the source and stopped after it, so the
 * last rows are written. A recording that cannot start (a directory it cannot write, a budget too
 * small, a directory holding another machine's recording) or that fails later (the disk full) is
 * logged with its reason, and the daemon runs on without it.
 */
export class Recorder implements Component {
  readonly name = 'recorder';
  private recording: Recording | undefined;
  private readonly onSample = (s: Sample) => this.recording!.add(s);
  private stopListening: () => void = () => {};

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    const c = this.ctx.config;
    if (!c.record.enabled) return;
    const recording = new Recording({ ...recordingOptions(c, recordingSource(c)), clock: this.ctx.clock, log: this.ctx.logger });
    try {
      await recording.open();
    } catch (err) {
      this.ctx.log('recorder').error({ dir: c.record.dir }, `not recording: ${(err as Error).message}`);
      return;
    }
    this.recording = recording;
    this.stopListening = this.ctx.events.on('sample', this.onSample);
  }

  async stop(): Promise<void> {
    const r = this.recording;
    if (!r) return;
    this.stopListening();
    this.recording = undefined;
    await r.close();
  }

  /** The recording under way (undefined when off, refused, or stopped); it says itself whether it has failed. */
  get current(): Recording | undefined {
    return this.recording;
  }
}

/** What a recording of the configured source says about it (the manifest's `source`). */
export function recordingSource(c: AgentConfig): RecordingSource {
  switch (c.source.kind) {
    case 'sim': {
      const { seed, load, ambientC, faults } = c.source.sim;
      return { kind: 'sim', chips: describeParts(c.hardware, c.sensors).map((p) => ({ ...p, emulated: true })), detail: { seed, load, ambientC, faults } };
    }
    case 'hardware':
      return { kind: 'hardware', chips: describeParts(c.hardware, c.sensors) };
    case 'replay':
      return { kind: 'replay', detail: { file: basename(c.source.replay.file), speed: c.source.replay.speed } };
    case 'mqtt':
      return { kind: 'mqtt', detail: { topic: topicFilter(c.mqtt.prefix, c.device.id, 'ingest') } };
  }
}

/** A Recording's options from the configuration (`record.*`, the device, the profile and the sensors). */
export function recordingOptions(c: AgentConfig, source: RecordingSource): Omit<RecordingOptions, 'clock' | 'log'> {
  const r = c.record;
  return { dir: r.dir, device: c.device.id, source, profile: c.models.profile, sensors: c.sensors, maxBytes: r.maxBytes, rotateBytes: r.rotateBytes, rotateMs: r.rotateMs };
}

/**
 * A reading of one sensor at one instant (DESIGN.md, data flow): `values` in the order of the
 * sensor's configured channels. Every source produces these; everything downstream consumes them.
 */
export interface Sample {
  sensor: string;
  /** ms since the Unix epoch. */
  t: number;
  values: number[];
}

/**
 * How a sensor is delivering (status topic, /metrics, /healthz): `ok`, `stale` (no good reading for a
 * while) or `error` (none for longer, or its part failed) — what its source says — or `fault`: its
 * readings arrive but are a sensor fault (out of its plausible range, or stuck), so they are not
 * scored. The models that need it pause meanwhile.
 */
export type SensorHealth = 'ok' | 'stale' | 'error' | 'fault';

/**
 * What a reading of one channel can plausibly be (config `sensorFaults.channels`, narrowed by the
 * part's own range where the source knows the part): [min, max]; `rest`, a value it reads while the
 * machine stands (0 rpm), plausible however long it lasts; `stuckMs`, how long an unchanged value
 * means the sensor is stuck (0: never judged stuck).
 */
export interface SensorLimits {
  min: number;
  max: number;
  rest?: number;
  stuckMs: number;
}

/** Sensors are configuration, not code: name → ordered channel names (channel names are global). */
export type SensorSpec = Record<string, { channels: string[] }>;

/** The seed's six channels as sensors (the default configuration). */
export const DEFAULT_SENSORS: SensorSpec = {
  vibration: { channels: ['accel_x', 'accel_y', 'accel_z'] },
  voltage: { channels: ['voltage'] },
  rpm: { channels: ['rpm'] },
  temperature: { channels: ['temperature'] },
};

/** Where each channel lives: channel → { sensor, index in the sensor's values }. */
export function channelIndex(sensors: SensorSpec): Map<string, { sensor: string; index: number }> {
  const out = new Map<string, { sensor: string; index: number }>();
  for (const [sensor, { channels }] of Object.entries(sensors)) {
    channels.forEach((ch, index) => {
      const prev = out.get(ch);
      if (prev) throw new Error(`channel '${ch}' is declared by both sensor '${prev.sensor}' and sensor '${sensor}'`);
      out.set(ch, { sensor, index });
    });
  }
  return out;
}

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
 * while) or `error` (none for longer, or its part failed); the models that need it pause meanwhile.
 */
export type SensorHealth = 'ok' | 'stale' | 'error';

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

/**
 * Commands to the sim source (core/topics.ts FaultCommandPayload), checked: what `anomaly-agent
 * fault` sends, what the source accepts from `<prefix>/<dev>/cmd/fault`, and the syntax of
 * `source.sim.faults`. A light module: the config schema validates with it.
 */
import { FAULT_KINDS, INTENSITIES, type FaultKind, type Intensity } from '../core/faults.js';
import { CHANNELS, type Channel } from '../core/profiles.js';
import { I2C_ERROR_CODES, type I2cErrorCode } from '../hw/i2c.js';

/** Parts of the emulated rig a command can unplug and replug. */
export const SIM_PARTS = ['adxl345', 'ads1115', 'mcp9808', 'tach'] as const;
export type SimPart = (typeof SIM_PARTS)[number];

export type FaultCommand =
  | { action: 'on'; fault: FaultKind; intensity: Intensity; channels?: Channel[] }
  | { action: 'off'; fault?: FaultKind }
  | { action: 'unplug' | 'replug'; part: SimPart }
  | { action: 'bus-errors'; rate: number; code: I2cErrorCode };

/** Validates a command (a parsed payload); returns it typed, or why it is refused. */
export function parseFaultCommand(body: unknown): FaultCommand | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'a command is a JSON object with an action';
  const b = body as Record<string, unknown>;
  const oneOf = <T extends string>(what: string, v: unknown, list: readonly T[]): T | string =>
    typeof v === 'string' && (list as readonly string[]).includes(v) ? (v as T) : `${what} must be one of ${list.join(', ')}, got ${JSON.stringify(v)}`;
  switch (b.action) {
    case 'on': {
      const fault = oneOf('fault', b.fault, FAULT_KINDS);
      if (!FAULT_KINDS.includes(fault as FaultKind)) return fault;
      const intensity = oneOf('intensity', b.intensity, INTENSITIES);
      if (!INTENSITIES.includes(intensity as Intensity)) return intensity;
      const cmd: FaultCommand = { action: 'on', fault: fault as FaultKind, intensity: intensity as Intensity };
      if (b.channels !== undefined) {
        if (!Array.isArray(b.channels) || b.channels.length === 0 || b.channels.some((c) => !(CHANNELS as readonly unknown[]).includes(c))) {
          return `channels must be a non-empty list of ${CHANNELS.join(', ')}`;
        }
        if (fault !== 'stuck' && fault !== 'dropout') return `channels only apply to stuck and dropout (${fault} acts on its own channels)`;
        cmd.channels = b.channels as Channel[];
      }
      return cmd;
    }
    case 'off': {
      if (b.fault === undefined) return { action: 'off' };
      const fault = oneOf('fault', b.fault, FAULT_KINDS);
      return FAULT_KINDS.includes(fault as FaultKind) ? { action: 'off', fault: fault as FaultKind } : fault;
    }
    case 'unplug':
    case 'replug': {
      const part = oneOf('part', b.part, SIM_PARTS);
      return (SIM_PARTS as readonly string[]).includes(part) ? { action: b.action, part: part as SimPart } : part;
    }
    case 'bus-errors': {
      if (typeof b.rate !== 'number' || !(b.rate >= 0 && b.rate <= 1)) return `rate must be a number within 0..1, got ${JSON.stringify(b.rate)}`;
      const codes = Object.keys(I2C_ERROR_CODES) as I2cErrorCode[];
      const code = b.code === undefined ? 'EIO' : oneOf('code', b.code, codes);
      return codes.includes(code as I2cErrorCode) ? { action: 'bus-errors', rate: b.rate, code: code as I2cErrorCode } : code;
    }
    default:
      return `action must be one of on, off, unplug, replug, bus-errors, got ${JSON.stringify(b.action)}`;
  }
}

/** `source.sim.faults`: 'kind:intensity[:channel+channel]' joined by commas → commands (or why not). */
export function parseFaultList(text: string): FaultCommand[] | string {
  const out: FaultCommand[] = [];
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [fault, intensity, channels, extra] = item.split(':');
    if (extra !== undefined) return `'${item}': expected kind:intensity or kind:intensity:channel+channel`;
    const c = parseFaultCommand({ action: 'on', fault, intensity, ...(channels !== undefined ? { channels: channels.split('+') } : {}) });
    if (typeof c === 'string') return `'${item}': ${c}`;
    out.push(c);
  }
  return out;
}


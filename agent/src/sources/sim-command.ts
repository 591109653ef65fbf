/**
 * Commands to the sim source (core/topics.ts FaultCommandPayload), checked: what `anomaly-agent
 * fault` sends, what the source accepts from `<prefix>/<dev>/cmd/fault`, and the syntax of
 * `source.sim.faults`. A light module: the config schema validates with it.
 */
import type { BusErrorCode, FaultKind, Intensity, SimPart } from '../core/faults.js';
import { payloadProblem, type FaultCommandPayload } from '../core/payloads.js';
import type { Channel } from '../core/profiles.js';

export type FaultCommand =
  | { action: 'on'; fault: FaultKind; intensity: Intensity; channels?: Channel[] }
  | { action: 'off'; fault?: FaultKind }
  | { action: 'unplug' | 'replug'; part: SimPart }
  | { action: 'bus-errors'; rate: number; code: BusErrorCode };

/** Validates a command (a parsed payload); returns it typed, or why it is refused. */
export function parseFaultCommand(body: unknown): FaultCommand | string {
  const problem = payloadProblem('fault', body);
  if (problem !== undefined) return problem;
  const c = body as FaultCommandPayload;
  switch (c.action) {
    case 'on':
      if (c.channels !== undefined && c.fault !== 'stuck' && c.fault !== 'dropout') return `channels only apply to stuck and dropout (${c.fault} acts on its own channels)`;
      return { action: 'on', fault: c.fault, intensity: c.intensity, ...(c.channels !== undefined ? { channels: c.channels } : {}) };
    case 'off':
      return c.fault === undefined ? { action: 'off' } : { action: 'off', fault: c.fault };
    case 'unplug':
    case 'replug':
      return { action: c.action, part: c.part };
    case 'bus-errors':
      return { action: 'bus-errors', rate: c.rate, code: c.code ?? 'EIO' };
  }
}

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


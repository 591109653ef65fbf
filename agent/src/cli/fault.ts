import { connectAsync } from 'mqtt';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { loadCommandConfig, takeFlag } from './options.js';
import { redactUrl } from '../config/load.js';
import { loopbackOf } from '../core/address.js';
import { topic, TOPICS, type FaultCommandPayload } from '../core/topics.js';
import { parseFaultCommand } from '../sources/sim-command.js';

export const faultCommand: Command = {
  name: 'fault',
  summary: "switch a simulated fault on or off in a running daemon's sim source (publishes on <prefix>/<dev>/cmd/fault)",
  usage: `usage: anomaly-agent fault on <kind> <intensity> [--channels CH,CH]
       anomaly-agent fault off [<kind>]
       anomaly-agent fault unplug|replug <part>
       anomaly-agent fault bus-errors <rate> [--code EIO|ENXIO|EREMOTEIO|ETIMEDOUT]
       … [--mqtt-url URL] [--device-id ID] [--mqtt-prefix P] [--config FILE]

Publishes one command (QoS 1) to <prefix>/<dev>/cmd/fault, where a daemon running the sim source
takes it; the daemon logs what it did. Other sources ignore the topic.
  kind       imbalance, misalignment, bearing, looseness, sag, swell, overheating, hunting, stuck, dropout
  intensity  subtle, moderate, obvious
  --channels for stuck and dropout: accel_x, accel_y, accel_z, voltage, rpm, temperature
  part       adxl345, ads1115, mcp9808 (I2C: NACKed until replugged, then at reset values) or tach
  rate       fraction of emulated I2C transfers that fail, 0..1 (0 stops it)
The broker, device id and prefix come from the daemon's configuration (--config, ANOMALY_* env,
flags); with mqtt.url empty that is the embedded broker at broker.host:broker.port.
`,
  async run(argv, io) {
    const words: string[] = [];
    let i = 0;
    for (; i < argv.length && !argv[i]!.startsWith('--'); i++) words.push(argv[i]!);
    const rest = argv.slice(i);
    const own = (name: string) => takeFlag(rest, name);
    const channels = own('channels');
    const code = own('code');
    const [action, a, b, ...extra] = words;
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
    let body: Record<string, unknown>;
    switch (action) {
      case 'on':
        body = { action, fault: a, intensity: b, ...(channels ? { channels: channels.split(',') } : {}) };
        break;
      case 'off':
        if (b !== undefined) throw new UsageError(`unexpected argument '${b}'`);
        body = a === undefined ? { action } : { action, fault: a };
        break;
      case 'unplug':
      case 'replug':
        body = { action, part: a };
        break;
      case 'bus-errors':
        body = { action, rate: Number(a), ...(code ? { code } : {}) };
        break;
      default:
        throw new UsageError(action === undefined ? 'say what to do: on, off, unplug, replug or bus-errors' : `unknown action '${action}': on, off, unplug, replug or bus-errors`);
    }
    const checked = parseFaultCommand(body);
    if (typeof checked === 'string') throw new UsageError(checked);
    const config = loadCommandConfig(rest, io);
    if (!config) return 1;
    const url = config.mqtt.url || `mqtt://${loopbackOf(config.broker.host)}:${config.broker.port}`;
    const t = topic(config.mqtt.prefix, config.device.id, 'fault');
    const payload: FaultCommandPayload = checked;
    let client;
    try {
      client = await connectAsync(url, {
        username: config.mqtt.username || undefined,
        password: config.mqtt.password || undefined,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      });
    } catch (err) {
      const where = config.mqtt.url ? 'mqtt.url (--mqtt-url)' : 'broker.port (--broker-port) of the embedded broker';
      io.err.write(`anomaly-agent fault: no broker at ${redactUrl(url)}: ${(err as Error).message}. Is 'anomaly-agent run' running? This command finds it through ${where}: give it the same flags or --config as the daemon.\n`);
      return 1;
    }
    try {
      await client.publishAsync(t, JSON.stringify(payload), { qos: TOPICS.fault.qos });
    } finally {
      await client.endAsync();
    }
    io.out(`${t} ${JSON.stringify(payload)}`);
    return 0;
  },
};

import { connectAsync, type MqttClient } from 'mqtt';
import { redactUrl } from '../config/load.js';
import { loopbackOf } from '../core/address.js';
import { payloadProblem } from '../core/payloads.js';
import { topic, TOPICS, type LearnCommandPayload, type LearnPayload } from '../core/topics.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { loadCommandConfig, takeFlag } from './options.js';

const USAGE = `usage: anomaly-agent learn [--reason TEXT] [--minutes M] [--no-wait] [daemon flags]
       anomaly-agent learn cancel [daemon flags]

Tells the running daemon to learn this machine (publishes on <prefix>/<dev>/cmd/learn, QoS 1): it
records a baseline of learn.baselineMinutes (or --minutes) of what its source reads, checks it
(gaps, a stuck or flat sensor, an alert raised meanwhile, too little data, vibration already in
the damaged zone), trains every enabled model at low priority, signs the bundles with
learn.signingKey and swaps them in; the previous bundles stay for 'anomaly-agent models rollback'.
The models keep running on their old bundles until then.

  --reason TEXT  why (e.g. "bearing replaced"): recorded in the new bundles, shown in the status
  --minutes M    baseline length, minutes (default learn.baselineMinutes)
  --no-wait      send and return; otherwise follow <prefix>/<dev>/learn until the run ends
                 (exit 0 when learned, 1 when refused or failed, saying why)
The broker, device id and prefix come from the daemon's configuration (--config, ANOMALY_* env,
flags). On a broker with users, give an admin's --mqtt-username/--mqtt-password: only an admin may
publish cmd/learn.
`;

const ENDED = ['done', 'refused', 'failed', 'cancelled'];
/** How long the retained learn state is waited for after subscribing (a broker delivers it at once). */
const RETAINED_WAIT_MS = 300;

export const learnCommand: Command = {
  name: 'learn',
  summary: 'learn this machine in the running daemon: record a baseline, check it, train, swap the new bundles in (cmd/learn)',
  usage: USAGE,
  async run(argv, io) {
    const rest = [...argv];
    const flag = (name: string) => takeFlag(rest, name);
    const reason = flag('reason');
    const minutesText = flag('minutes');
    const noWait = rest.includes('--no-wait');
    if (noWait) rest.splice(rest.indexOf('--no-wait'), 1);
    const cancel = rest[0] === 'cancel';
    if (cancel) rest.shift();
    if (rest[0] !== undefined && !rest[0].startsWith('--')) throw new UsageError(`unexpected argument '${rest[0]}'`);
    const body: LearnCommandPayload = cancel ? { action: 'cancel' } : { action: 'start', ...(reason !== undefined ? { reason } : {}), ...(minutesText !== undefined ? { minutes: Number(minutesText) } : {}) };
    const problem = payloadProblem('learnCommand', body);
    if (problem !== undefined) throw new UsageError(problem.replace(/^minutes/, '--minutes').replace(/^reason/, '--reason'));

    const config = loadCommandConfig(rest, io);
    if (!config) return 1;
    const url = config.mqtt.url || `mqtt://${loopbackOf(config.broker.host)}:${config.broker.port}`;
    let client: MqttClient;
    try {
      client = await connectAsync(url, { username: config.mqtt.username || undefined, password: config.mqtt.password || undefined, reconnectPeriod: 0, connectTimeout: 5000 });
    } catch (err) {
      const where = config.mqtt.url ? 'mqtt.url (--mqtt-url)' : 'broker.port (--broker-port) of the embedded broker';
      io.err.write(`anomaly-agent learn: no broker at ${redactUrl(url)}: ${(err as Error).message}. Is 'anomaly-agent run' running? This command finds it through ${where}: give it the same flags or --config as the daemon.\n`);
      return 1;
    }
    const commandTopic = topic(config.mqtt.prefix, config.device.id, 'learnCommand');
    const progressTopic = topic(config.mqtt.prefix, config.device.id, 'learn');
    try {
      // The retained state first: a run under way is not interrupted by a start, and this run's
      // progress is told from an earlier run's by its id.
      let previous: LearnPayload | undefined;
      let sent = false;
      let closedAfterSend = false;
      const ended = new Promise<LearnPayload | undefined>((resolve) => {
        client.on('message', (t, payload) => {
          if (t !== progressTopic) return;
          const p = JSON.parse(payload.toString('utf8')) as LearnPayload;
          if (!sent) {
            previous = p;
            return;
          }
          const ours = cancel ? p.id === previous?.id && p.phase === 'cancelled' : p.id !== previous?.id;
          if (!ours) return;
          const eta = p.etaS !== undefined ? `, about ${p.etaS} s left` : '';
          io.out(`${p.phase} ${p.percent} %${eta}${p.refusal ? `: ${p.refusal}` : ''}${p.models ? `: ${p.models.join(', ')} learned` : ''}`);
          if (ENDED.includes(p.phase)) resolve(p);
        });
        client.on('close', () => {
          closedAfterSend = sent;
          resolve(undefined);
        });
      });
      await client.subscribeAsync(progressTopic, { qos: 1 });
      await new Promise((r) => setTimeout(r, RETAINED_WAIT_MS));
      const underWay = previous !== undefined && !ENDED.includes(previous.phase);
      if (!cancel && underWay) {
        io.err.write(`anomaly-agent learn: run ${previous!.id} is ${previous!.phase} (${previous!.percent} %): wait for it, or 'anomaly-agent learn cancel'\n`);
        return 1;
      }
      if (cancel && !underWay) {
        io.out('no learn run under way');
        return 0;
      }
      sent = true;
      await client.publishAsync(commandTopic, JSON.stringify(body), { qos: TOPICS.learnCommand.qos });
      io.out(`${commandTopic} ${JSON.stringify(body)}`);
      if (noWait) return 0;
      const last = await ended;
      if (last === undefined) {
        io.err.write(
          closedAfterSend
            ? `anomaly-agent learn: the broker closed the connection after the command: only an admin may publish ${TOPICS.learnCommand.suffix} (give an admin's --mqtt-username and --mqtt-password); the broker's log says why\n`
            : 'anomaly-agent learn: the connection to the broker closed before the run ended\n',
        );
        return 1;
      }
      return last.phase === 'done' || (cancel && last.phase === 'cancelled') ? 0 : 1;
    } finally {
      await client.endAsync(true);
    }
  },
};

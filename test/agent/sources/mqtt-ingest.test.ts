import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { ManualClock } from '#agent/core/clock.js';
import { DEFAULT_SENSORS, type Sample } from '#agent/core/sample.js';
import { topic } from '#agent/core/topics.js';
import { settler, startBroker, waitFor, type TestBroker } from './broker-fixture.js';
import { BurstLog } from '#agent/sources/burst-log.js';
import { assertValidSamples, sourceContract } from './contract.js';
import { DROP_REASONS, MqttIngestSource, type DropReason, type MqttIngestOptions } from '#agent/sources/mqtt-ingest.js';

const START = Date.UTC(2024, 4, 1, 12, 0, 0);
let tb: TestBroker;
let devices = 0;

before(async () => {
  tb = await startBroker({
    // A device named 'forbidden' may not subscribe: exercises the 'error' health.
    authorizeSubscribe: (_client, sub, cb) => (sub.topic.includes('/forbidden/') ? cb(new Error('not allowed')) : cb(null, sub)),
  });
});
after(async () => {
  await tb.close();
});

/** A real pino logger writing into an array. */
function captureLog() {
  const lines: { level: number; msg: string; reason?: string; total?: number; reasons?: Record<string, number>; topic?: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines, warns: () => lines.filter((l) => l.level === 40) };
}

interface Rig {
  dev: string;
  clock: ManualClock;
  /** The daemon's client, handed to the source. */
  client: MqttClient;
  /** Another system publishing readings. */
  pub: MqttClient;
  source: MqttIngestSource;
  samples: Sample[];
  dropped: [DropReason, string][];
  log: ReturnType<typeof captureLog>;
  send(sensor: string, payload: string | Buffer): void;
  /** Resolves when everything `pub` sent so far has been handled by the source's client. */
  settle(): Promise<void>;
}

async function rig(opts: Partial<MqttIngestOptions> = {}): Promise<Rig> {
  const dev = `dev-${++devices}`;
  const clock = new ManualClock(START);
  const client = await tb.client();
  const pub = await tb.client();
  const log = captureLog();
  const dropped: [DropReason, string][] = [];
  const source = new MqttIngestSource({
    client,
    sensors: DEFAULT_SENSORS,
    clock,
    device: dev,
    log: log.log,
    onDropped: (r, t) => dropped.push([r, t]),
    ...opts,
  });
  const samples: Sample[] = [];
  source.onSample((s) => samples.push(s));
  const settle = await settler(client, pub, dev);
  return {
    dev,
    clock,
    client,
    pub,
    source,
    samples,
    dropped,
    log,
    send: (sensor, payload) => void pub.publish(`anomaly/${dev}/ingest/${sensor}`, payload),
    settle,
  };
}

test('valid payloads of both forms become samples; t defaults to the clock', async () => {
  const r = await rig();
  await r.source.start();
  try {
    const t1 = START - 1000;
    r.send('vibration', JSON.stringify({ t: t1, values: [0.1, -0.2, 9.81] }));
    r.send('voltage', '230.1');
    r.send('rpm', JSON.stringify({ values: [600] }));
    r.send('temperature', JSON.stringify({ v: 1, t: START, values: [41.5], unit: 'C' })); // extra keys ignored
    await r.settle();
    r.clock.advance(50);
    r.send('voltage', ' -1.5e1 ');
    r.send('vibration', JSON.stringify({ t: t1 + 50, values: [0, 0, 0] }));
    await r.settle();
    assert.deepEqual(r.samples, [
      { sensor: 'vibration', t: t1, values: [0.1, -0.2, 9.81] },
      { sensor: 'voltage', t: START, values: [230.1] },
      { sensor: 'rpm', t: START, values: [600] },
      { sensor: 'temperature', t: START, values: [41.5] },
      { sensor: 'voltage', t: START + 50, values: [-15] },
      { sensor: 'vibration', t: t1 + 50, values: [0, 0, 0] },
    ]);
    assert.equal(r.source.accepted, 6);
    assert.deepEqual(Object.values(r.source.drops), Array(DROP_REASONS.length).fill(0));
    assert.equal(r.log.warns().length, 0);
  } finally {
    await r.source.stop();
  }
});

test('each kind of bad payload is dropped with its reason, counted, and reported to onDropped', async () => {
  const r = await rig();
  await r.source.start();
  try {
    const now = START;
    r.send('voltage', JSON.stringify({ t: now - 10, values: [230] })); // accepted: the reference for bad_time ordering
    const cases: [string, string | Buffer, DropReason][] = [
      ['pressure', '{"values":[1]}', 'unknown_sensor'],
      ['__proto__', '1', 'unknown_sensor'],
      ['constructor', '1', 'unknown_sensor'],
      ['voltage', ' '.repeat(5000) + '1', 'too_large'],
      ['nosuch', Buffer.alloc(1 << 20), 'unknown_sensor'], // the topic is checked before the size
      ['voltage', '{values:[1]}', 'bad_json'],
      ['voltage', '{"values":[1]', 'bad_json'],
      ['voltage', '', 'bad_json'],
      ['voltage', 'abc', 'bad_json'],
      ['voltage', Buffer.from([0xff, 0xfe, 0x00]), 'bad_json'],
      ['voltage', 'NaN', 'not_number'],
      ['voltage', '-Infinity', 'not_number'],
      ['voltage', 'inf', 'not_number'],
      ['voltage', '1e999', 'not_number'],
      ['voltage', '{"values":[null]}', 'not_number'],
      ['voltage', '{"values":["230.1"]}', 'not_number'],
      ['voltage', '{"values":[true]}', 'not_number'],
      ['vibration', '{"values":[1,"x",3]}', 'not_number'],
      ['vibration', '{"values":[1,2,-1e400]}', 'not_number'],
      ['voltage', '"230.1"', 'not_object'],
      ['voltage', '[230.1]', 'not_object'],
      ['voltage', 'null', 'not_object'],
      ['voltage', 'true', 'not_object'],
      ['voltage', '{}', 'not_object'],
      ['voltage', '{"values":5}', 'not_object'],
      ['voltage', '{"value":[5]}', 'not_object'],
      ['vibration', '{"values":[1,2]}', 'wrong_arity'],
      ['vibration', '9.81', 'wrong_arity'],
      ['voltage', '{"values":[]}', 'wrong_arity'],
      ['voltage', '{"values":[1,2]}', 'wrong_arity'],
      ['voltage', '{"t":"now","values":[1]}', 'bad_time'],
      ['voltage', '{"t":null,"values":[1]}', 'bad_time'],
      ['voltage', '{"t":1e999,"values":[1]}', 'bad_time'],
      ['voltage', JSON.stringify({ t: now + 3_600_001, values: [1] }), 'bad_time'],
      ['voltage', JSON.stringify({ t: now - 10, values: [1] }), 'bad_time'], // same t as the previous sample
      ['voltage', JSON.stringify({ t: now - 20, values: [1] }), 'bad_time'], // older than the previous sample
    ];
    for (const [sensor, payload] of cases) r.send(sensor, payload);
    // Boundaries that are fine: exactly 4 KiB, exactly 1 h ahead, the bare number as the clock's now.
    r.send('voltage', '{"values":[231]}'.padEnd(4096, ' '));
    await r.settle();
    r.clock.advance(1);
    r.send('rpm', JSON.stringify({ t: START + 1 + 3_600_000, values: [600] }));
    await r.settle();

    const want = Object.fromEntries(DROP_REASONS.map((k) => [k, 0])) as Record<DropReason, number>;
    for (const [, , reason] of cases) want[reason]++;
    assert.deepEqual(r.source.drops, want);
    assert.deepEqual(
      r.dropped,
      cases.map(([sensor, , reason]) => [reason, `anomaly/${r.dev}/ingest/${sensor}`]),
    );
    assert.deepEqual(
      r.samples.map((s) => [s.sensor, s.t, s.values]),
      [
        ['voltage', now - 10, [230]],
        ['voltage', START, [231]],
        ['rpm', START + 1 + 3_600_000, [600]],
      ],
    );
    // Logged once: the first drop, with reason and topic; the rest only counted so far.
    const warns = r.log.warns();
    assert.equal(warns.length, 1);
    assert.equal(warns[0]!.reason, 'unknown_sensor');
    assert.equal(warns[0]!.topic, `anomaly/${r.dev}/ingest/pressure`);
  } finally {
    await r.source.stop();
  }
});

function forceGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

test('10,000 malformed messages sent fast: each reason counted exactly, no crash, bounded memory, a valid one still arrives', async (t) => {
  const r = await rig();
  await r.source.start();
  const gc = forceGc();
  try {
    const big = Buffer.alloc(1 << 20, 0x31); // 1 MB of '1'
    const mid = Buffer.alloc(5000, 0x20);
    const kinds: [string, string | Buffer, DropReason][] = [
      ['voltage', '{"values":[1,', 'bad_json'],
      ['voltage', 'NaN', 'not_number'],
      ['rpm', '{"values":[NaN]}', 'bad_json'], // NaN inside JSON is not JSON
      ['vibration', '{"values":[1,2]}', 'wrong_arity'],
      ['temperature', '{"values":["41"]}', 'not_number'],
      ['temperature', '{"values":[null]}', 'not_number'],
      ['rpm', '"600"', 'not_object'],
      ['rpm', '[600]', 'not_object'],
      ['voltage', mid, 'too_large'],
      ['gearbox', '{"values":[1]}', 'unknown_sensor'],
      ['rpm', `{"t":${START + 7_200_000},"values":[600]}`, 'bad_time'],
    ];
    gc();
    const memBefore = process.memoryUsage();
    const want = Object.fromEntries(DROP_REASONS.map((k) => [k, 0])) as Record<DropReason, number>;
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      // Every 1000th message is a 1 MB payload (ten in all); the rest cycle through the kinds.
      const [sensor, payload, reason] = i % 1000 === 999 ? (['voltage', big, 'too_large'] as const) : kinds[i % kinds.length]!;
      r.send(sensor, payload);
      want[reason]++;
    }
    r.send('voltage', '229.9');
    await waitFor('the valid message after the flood', () => r.samples.length === 1, 60_000);
    gc();
    const memAfter = process.memoryUsage();
    const growth = memAfter.heapUsed - memBefore.heapUsed;
    const buffers = memAfter.arrayBuffers - memBefore.arrayBuffers; // the 1 MB payloads live here, not on the heap
    t.diagnostic(`growth over the flood: heapUsed ${(growth / 2 ** 20).toFixed(2)} MB, arrayBuffers ${(buffers / 2 ** 20).toFixed(2)} MB`);

    assert.deepEqual(r.samples, [{ sensor: 'voltage', t: START, values: [229.9] }]);
    assert.deepEqual(r.source.drops, want);
    assert.equal(Object.values(r.source.drops).reduce((a, b) => a + b, 0), N);
    assert.equal(r.dropped.length, N);
    assert.ok(growth < 50 * 2 ** 20, `heap grew by ${(growth / 2 ** 20).toFixed(1)} MB`);
    assert.ok(buffers < 50 * 2 ** 20, `buffers grew by ${(buffers / 2 ** 20).toFixed(1)} MB`);

    // One warn line for the whole burst, then one summary with the counts once 10 s have passed.
    assert.equal(r.log.warns().length, 1);
    r.clock.advance(10_000);
    const warns = r.log.warns();
    assert.equal(warns.length, 2);
    assert.equal(warns[1]!.total, N);
    assert.deepEqual(warns[1]!.reasons, Object.fromEntries(Object.entries(want).filter(([, n]) => n > 0)));
    // The next drop opens a new burst.
    r.send('voltage', 'oops');
    await r.settle();
    assert.equal(r.log.warns().length, 3);
    assert.equal(r.log.warns()[2]!.reason, 'bad_json');
  } finally {
    await r.source.stop();
  }
});

test('health: ok after start, stale after staleMs without data, per sensor; error when the broker refuses the subscription', async () => {
  const r = await rig({ staleMs: 2000 });
  assert.deepEqual(Object.values(r.source.health()), ['stale', 'stale', 'stale', 'stale'], 'not started');
  await r.source.start();
  try {
    assert.deepEqual(r.source.health(), { vibration: 'ok', voltage: 'ok', rpm: 'ok', temperature: 'ok' });
    r.clock.advance(1500);
    r.send('rpm', '600');
    await r.settle();
    r.clock.advance(1000);
    assert.deepEqual(r.source.health(), { vibration: 'stale', voltage: 'stale', rpm: 'ok', temperature: 'stale' });
    r.clock.advance(1001);
    assert.equal(r.source.health().rpm, 'stale');
  } finally {
    await r.source.stop();
  }
  assert.deepEqual(Object.values(r.source.health()), ['stale', 'stale', 'stale', 'stale'], 'stopped');

  const log = captureLog();
  const denied = new MqttIngestSource({ client: r.client, sensors: DEFAULT_SENSORS, clock: r.clock, device: 'forbidden', log: log.log });
  await denied.start();
  try {
    assert.deepEqual(Object.values(denied.health()), ['error', 'error', 'error', 'error']);
    assert.ok(log.lines.some((l) => l.level === 50 && l.msg.includes('cannot subscribe to ingest')));
  } finally {
    await denied.stop();
  }
});

test('shares the daemon client: other subscriptions are left alone, stop unsubscribes only the ingest filter', async () => {
  const r = await rig();
  const other: string[] = [];
  r.client.on('message', (t, p) => {
    if (t === `other/${r.dev}`) other.push(p.toString());
  });
  await r.client.subscribeAsync(`other/${r.dev}`);
  const listeners = r.client.listenerCount('message');
  await r.source.start();
  assert.equal(r.client.listenerCount('message'), listeners + 1);
  r.pub.publish(`other/${r.dev}`, 'a');
  r.send('voltage', '1');
  await r.settle();
  await r.source.stop();
  r.pub.publish(`other/${r.dev}`, 'b');
  r.clock.advance(1);
  r.send('voltage', '2');
  await r.settle();
  assert.deepEqual(other, ['a', 'b']);
  assert.deepEqual(r.samples.map((s) => s.values[0]), [1]);
  assert.deepEqual(Object.values(r.source.drops), Array(DROP_REASONS.length).fill(0), 'foreign topics are not drops');
  assert.equal(r.client.listenerCount('message'), listeners, 'the source removed its listener');
});

test('start does not wait for a client that is still connecting; samples flow once it connects', async () => {
  const clock = new ManualClock(START);
  const client = connect(tb.url, { reconnectPeriod: 0 });
  const source = new MqttIngestSource({ client, sensors: DEFAULT_SENSORS, clock, device: 'late' });
  const samples: Sample[] = [];
  source.onSample((s) => samples.push(s));
  try {
    assert.equal(client.connected, false);
    await source.start();
    const pub = await tb.client();
    // The subscription is in place once the broker has the client's subscription.
    await waitFor('the late subscription', () => {
      pub.publish(topic('anomaly', 'late', 'ingest', 'temperature'), JSON.stringify({ t: START + samples.length + Math.random(), values: [40] }));
      return samples.length > 0;
    });
    assertValidSamples(samples, DEFAULT_SENSORS);
  } finally {
    await source.stop();
    await client.endAsync(true);
  }
});

test('options are checked at start with the option named', async () => {
  const client = await tb.client();
  const base = { client, sensors: DEFAULT_SENSORS, clock: new ManualClock(START) };
  await assert.rejects(new MqttIngestSource({ ...base, device: 'a/b' }).start(), /device id 'a\/b' cannot be an MQTT topic level/);
  await assert.rejects(new MqttIngestSource({ ...base, device: 'd', sensors: { 'x+y': { channels: ['z'] } } }).start(), /sensor 'x\+y' cannot be an MQTT topic level/);
  await assert.rejects(new MqttIngestSource({ ...base, device: 'd', staleMs: -1 }).start(), /staleMs must be a finite number > 0, got -1/);
  assert.equal(client.listenerCount('message'), 0, 'a failed start leaves no listener behind');
});

test('BurstLog: first event logged with details, the rest of the window counted, one summary, then a new burst', () => {
  const clock = new ManualClock(START);
  const { log, warns } = captureLog();
  const b = new BurstLog(clock, log, 'thing dropped', 10_000);
  b.note('a', { topic: 'x' });
  clock.advance(9_999);
  b.note('b', {});
  b.note('a', {});
  assert.equal(warns().length, 1);
  assert.equal(warns()[0]!.topic, 'x');
  clock.advance(1);
  assert.equal(warns().length, 2);
  assert.deepEqual(warns()[1]!.reasons, { a: 2, b: 1 });
  assert.match(warns()[1]!.msg, /thing dropped: 3 in the last burst \(a 2, b 1\)/);
  b.note('c', {});
  clock.advance(10_000);
  assert.equal(warns().length, 3, 'a burst of one has no summary');
  b.note('d', {});
  b.note('d', {});
  b.flush();
  b.flush();
  assert.equal(warns().length, 5, 'flush (on stop) writes the pending summary once');
});

sourceContract('mqtt', async () => {
  const r = await rig();
  let t = START;
  return {
    source: r.source,
    sensors: DEFAULT_SENSORS,
    produce: async () => {
      for (let i = 0; i < 3; i++) {
        t += 50;
        r.send('vibration', JSON.stringify({ t, values: [0.1 * i, -0.1, 9.8] }));
        r.send('voltage', JSON.stringify({ t, values: [230 + i] }));
        r.send('rpm', JSON.stringify({ t, values: [600] }));
        r.send('temperature', JSON.stringify({ t, values: [41] }));
      }
    },
    settle: r.settle,
    close: async () => {
      await r.client.endAsync(true);
      await r.pub.endAsync(true);
    },
  };
});

/**
 * The embedded / standalone MQTT broker: aedes plus the listeners it does not own.
 *
 * `createBroker()` builds the aedes instance (no sockets); `listen()` opens a TCP listener and, when
 * asked, MQTT-over-WebSocket and MQTT-over-TLS listeners; `close()` closes the listeners, then aedes,
 * bounded in time and safe to call twice. `BrokerComponent` wraps the three for the daemon's controller.
 *
 * Security (a plant network is not a lab): with a users file every client authenticates (scrypt
 * hashes, broker/src/users.ts) and the ACL of its role applies (broker/src/acl.ts); without one,
 * anonymous clients may do anything, so every listener must then be on loopback — listen() refuses
 * anything else. Each connection passes a PacketGuard that drops a client announcing a packet larger
 * than `maxPacketBytes` before it is buffered.
 *
 * Every accepted TCP socket gets `setNoDelay(true)`: with Nagle on, a small QoS 0 publish that follows
 * another one within an RTT waits for the peer's delayed ACK (40 ms on Linux), which is what a
 * subscriber sees as a ~43 ms worst-case delivery on loopback. With it off, deliveries take a few ms.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Logger } from 'pino';
import type { WebSocketServer } from 'ws';
import type { Component } from '../../agent/src/core/component.js';
import { DEFAULTS } from '../../agent/src/core/defaults.js';
import { isLoopback, publishRefusal, subscribeRefusal, type Principal } from './acl.js';
import { MalformedLengthError, PacketGuard, PacketTooLargeError } from './packet-guard.js';
import { verifyPassword, type UserTable } from './users.js';

export interface BrokerOptions {
  log: Logger;
  /** How long a subscriber whose socket does not drain may hold up delivery before it is disconnected. */
  drainTimeoutMs: number;
  /**
   * When given, every client must authenticate as one of these users and its role's ACL applies;
   * otherwise clients are anonymous and may do anything (loopback listeners only).
   */
  users?: UserTable | undefined;
  /** First topic level the ACL is about (the agent's mqtt.prefix). Default: the daemon's (`DEFAULTS.config.mqtt.prefix`). */
  topicPrefix?: string;
  /** Largest MQTT packet a client may send, bytes (header included). Default: the daemon's (`DEFAULTS.config.broker.maxPacketBytes`). */
  maxPacketBytes?: number;
  /** Upper bound on close(); sockets still open after it are destroyed. Default `DEFAULTS.component.broker.closeTimeoutMs`. */
  closeTimeoutMs?: number;
}

export interface TlsListenOptions {
  port: number;
  /** PEM certificate chain and private key. */
  cert: string | Buffer;
  key: string | Buffer;
}

export interface ListenOptions {
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** MQTT-over-WebSocket port; 0 or undefined means no WebSocket listener. */
  wsPort?: number | undefined;
  /** MQTT over TLS (mqtts://); undefined means no TLS listener. */
  tls?: TlsListenOptions | undefined;
}

export interface BrokerAddress {
  host: string;
  port: number;
  /** The WebSocket listener's port, or null when there is none. */
  wsPort: number | null;
  /** The TLS listener's port, or null when there is none. */
  tlsPort: number | null;
}

export interface EmbeddedBroker {
  /** The aedes instance, for in-process publish/subscribe and tests. */
  readonly aedes: Aedes;
  listen(opts: ListenOptions): Promise<BrokerAddress>;
  /** The ports actually bound (port 0 resolved). Throws before listen(). */
  address(): BrokerAddress;
  close(): Promise<void>;
}

/** CONNACK return code 4 (MQTT 3.1.1 table 3.1): bad user name or password. */
const BAD_USERNAME_OR_PASSWORD = 4;
/** Checked against when the username is unknown, so an unknown user costs the same scrypt as a known one. */
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

function errorFields(err: unknown): { err: string; code?: string } {
  const e = err as { message?: string; code?: string };
  return e && typeof e === 'object' ? { err: e.message ?? String(err), ...(e.code ? { code: e.code } : {}) } : { err: String(err) };
}

function listenOn(server: NetServer | HttpServer | TlsServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: NetServer | HttpServer | TlsServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    // An error here can only be ERR_SERVER_NOT_RUNNING; either way the port is free.
    server.close(() => resolve());
  });
}

class AedesBroker implements EmbeddedBroker {
  private tcp: NetServer | undefined;
  private tlsServer: TlsServer | undefined;
  private wsHttp: HttpServer | undefined;
  private wss: WebSocketServer | undefined;
  private readonly sockets = new Set<Socket>();
  private bound: BrokerAddress | undefined;
  private listening = false;
  private closing: Promise<void> | undefined;

  constructor(
    readonly aedes: Aedes,
    private readonly log: Logger,
    private readonly closeTimeoutMs: number,
    private readonly authenticated: boolean,
    private readonly maxPacketBytes: number,
  ) {}

  async listen(opts: ListenOptions): Promise<BrokerAddress> {
    if (this.closing) throw new Error('broker: listen() after close()');
    if (this.listening) throw new Error('broker: listen() called twice');
    if (!this.authenticated && !isLoopback(opts.host)) {
      throw new Error(
        `broker: refusing to listen on ${opts.host} without users: anonymous clients may do anything, so they are allowed only ` +
          'when every listener is on loopback (127.0.0.1, ::1). Add users (anomaly-broker users add …) and give the broker the users file, or listen on 127.0.0.1.',
      );
    }
    this.listening = true;
    try {
      const tcp = createNetServer((socket) => this.accept(socket));
      this.tcp = tcp;
      const port = await listenOn(tcp, opts.port, opts.host);
      tcp.on('error', (err) => this.log.warn(errorFields(err), 'tcp listener error'));

      let wsPort: number | null = null;
      if (opts.wsPort !== undefined && opts.wsPort > 0) wsPort = await this.listenWs(opts.host, opts.wsPort);

      let tlsPort: number | null = null;
      if (opts.tls) {
        const tls = createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, (socket) => this.accept(socket));
        this.tlsServer = tls;
        // A failed handshake (a plain-TCP client, an untrusted certificate) is that client's problem.
        tls.on('tlsClientError', (err) => this.log.debug(errorFields(err), 'tls handshake failed'));
        tlsPort = await listenOn(tls, opts.tls.port, opts.host);
        tls.on('error', (err) => this.log.warn(errorFields(err), 'tls listener error'));
      }

      this.bound = { host: opts.host, port, wsPort, tlsPort };
      this.log.info({ ...this.bound, authentication: this.authenticated ? 'users' : 'anonymous (loopback only)' }, 'broker listening');
      return this.bound;
    } catch (err) {
      // Leave nothing half-open: a failed listen releases whatever it had bound.
      await this.closeListeners();
      this.tcp = this.tlsServer = this.wsHttp = this.wss = undefined;
      this.listening = false;
      throw err;
    }
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    this.aedes.handle(this.guarded(socket, socket.remoteAddress));
  }

  /**
   * The connection as aedes sees it: reads pass the PacketGuard, writes go straight to the socket.
   * A refused packet ends the connection; the rest of the broker does not notice.
   */
  private guarded(conn: Duplex, remote: string | undefined): Duplex {
    const guard = new PacketGuard(this.maxPacketBytes);
    conn.pipe(guard);
    guard.on('error', (err) => {
      // A guard refusal is news; an abort is only the connection closing under the pipe.
      if (err instanceof PacketTooLargeError || err instanceof MalformedLengthError) this.log.warn({ remote, ...errorFields(err) }, 'client dropped');
      conn.destroy();
    });
    const duplex = Duplex.from({ readable: guard, writable: conn });
    // aedes and our logging read the peer address from the connection.
    Object.defineProperty(duplex, 'remoteAddress', { value: remote });
    conn.once('close', () => duplex.destroy());
    return duplex;
  }

  private async listenWs(host: string, port: number): Promise<number> {
    let ws: typeof import('ws');
    try {
      ws = await import('ws');
    } catch (err) {
      throw new Error(`broker: a WebSocket listener needs the 'ws' package (${errorFields(err).err})`);
    }
    const http = createHttpServer((_req, res) => {
      // Only upgrades are served here; a plain GET gets told what this port speaks.
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
      res.end('MQTT over WebSocket only\n');
    });
    http.on('connection', (socket: Socket) => {
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.wsHttp = http;
    const wss = new ws.WebSocketServer({ server: http });
    this.wss = wss;
    // ws re-emits the HTTP server's errors; a failed listen is listenOn's rejection, not news twice.
    wss.on('error', (err) => {
      if (http.listening) this.log.warn(errorFields(err), 'websocket listener error');
    });
    wss.on('connection', (socket, req: IncomingMessage) => {
      const stream: Duplex = ws.createWebSocketStream(socket);
      // aedes attaches its own error handler to the stream; this one covers the gap before it does.
      stream.on('error', (err) => this.log.debug(errorFields(err), 'websocket stream error'));
      this.aedes.handle(this.guarded(stream, req.socket.remoteAddress), req);
    });
    return listenOn(http, port, host);
  }

  address(): BrokerAddress {
    if (!this.bound) throw new Error('broker: address() before listen()');
    return { ...this.bound };
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.closeTimeoutMs);
      timer.unref();
    });
    const orderly = (async () => {
      // Stop accepting first, so no client arrives while aedes is disconnecting the others; the
      // listeners' close callbacks fire once aedes has ended the sockets they still hold.
      const listeners = this.closeListeners();
      await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
      await listeners;
      return 'closed' as const;
    })();
    const outcome = await Promise.race([orderly, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.log.warn({ sockets: this.sockets.size, timeoutMs: this.closeTimeoutMs }, 'broker close timed out; destroying sockets');
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
    }
    this.log.debug('broker closed');
  }

  private async closeListeners(): Promise<void> {
    const pending: Promise<void>[] = [];
    if (this.wss) {
      const wss = this.wss;
      for (const c of wss.clients) c.terminate();
      pending.push(new Promise((resolve) => wss.close(() => resolve())));
    }
    if (this.wsHttp) pending.push(closeServer(this.wsHttp));
    if (this.tlsServer) pending.push(closeServer(this.tlsServer));
    if (this.tcp) pending.push(closeServer(this.tcp));
    await Promise.all(pending);
  }
}

/**
 * Build the broker: an aedes instance with drainTimeout, optional authentication and logging, and
 * no sockets yet. Call `listen()` to open them.
 */
export async function createBroker(opts: BrokerOptions): Promise<EmbeddedBroker> {
  const log = opts.log;
  const users = opts.users;
  const prefix = opts.topicPrefix ?? DEFAULTS.config.mqtt.prefix;
  const principals = new WeakMap<Client, Principal>();
  const principal = (client: Client | null): Principal | undefined => (client ? (principals.get(client) ?? (users ? undefined : 'anonymous')) : undefined);
  const aedes = await Aedes.createBroker({
    drainTimeout: opts.drainTimeoutMs,
    ...(users
      ? {
          authenticate(client, username, password, done) {
            const user = username === undefined ? undefined : users.get(username);
            verifyPassword(user?.password ?? DUMMY_HASH, password).then(
              (ok) => {
                if (ok && user) {
                  principals.set(client, user);
                  return done(null, true);
                }
                const err = new Error('bad username or password') as AuthenticateError;
                err.returnCode = BAD_USERNAME_OR_PASSWORD;
                done(err, null);
              },
              (err: Error) => done(Object.assign(err, { returnCode: BAD_USERNAME_OR_PASSWORD }) as AuthenticateError, null),
            );
          },
        }
      : {}),
    authorizePublish(client, packet, done) {
      if (!client) return done(null); // the broker's own messages ($SYS, will messages it sends)
      const who = principal(client);
      const why = who === undefined ? 'not authenticated' : publishRefusal(who, packet.topic, prefix);
      if (why === undefined) return done(null);
      // MQTT 3.1.1 has no negative PUBACK: the publisher is disconnected, as the spec allows (§3.3.5).
      log.warn({ clientId: client.id, topic: packet.topic, reason: why }, 'publish refused');
      done(new Error(`publish refused: ${why}`));
    },
    authorizeSubscribe(client, sub, done) {
      const who = principal(client);
      const why = who === undefined ? 'not authenticated' : subscribeRefusal(who, sub.topic, prefix);
      if (why === undefined) return done(null, sub);
      log.warn({ clientId: client?.id, filter: sub.topic, reason: why }, 'subscription refused');
      done(null, null); // SUBACK 0x80 for this filter; the others and the connection stay
    },
  });

  const who = (client: Client | null | undefined): Record<string, unknown> => {
    if (!client) return {};
    // A TCP client's conn is the socket; a WebSocket client's is a stream over the upgraded request's.
    const remote = (client.conn as Partial<Socket> | undefined)?.remoteAddress ?? client.req?.socket?.remoteAddress;
    return { clientId: client.id, remote };
  };
  aedes.on('client', (client) => log.debug(who(client), 'client connected'));
  aedes.on('clientDisconnect', (client) => log.debug(who(client), 'client disconnected'));
  aedes.on('keepaliveTimeout', (client) => log.debug(who(client), 'client keepalive timeout'));
  // aedes reports a refused CONNECT (bad credentials, bad protocol) as a client error carrying the
  // CONNACK code; everything else is a broken connection or a protocol violation.
  const onError = (client: Client | null | undefined, err: Error): void => {
    // A client closing its socket ends the guarded stream under aedes (Duplex.from reports that as
    // an abort): an ordinary disconnect, not a fault.
    if ((err as { code?: string } | undefined)?.code === 'ABORT_ERR') return log.debug(who(client), 'client connection closed');
    const returnCode = (err as { errorCode?: number } | undefined)?.errorCode;
    const fields = { ...who(client), ...errorFields(err), ...(returnCode ? { returnCode } : {}) };
    log.warn(fields, returnCode ? 'connection refused' : 'client error');
    if (!returnCode) log.debug({ ...who(client), stack: err?.stack }, 'client error stack');
  };
  aedes.on('clientError', onError);
  aedes.on('connectionError', onError);

  return new AedesBroker(aedes, log, opts.closeTimeoutMs ?? DEFAULTS.component.broker.closeTimeoutMs, users !== undefined, opts.maxPacketBytes ?? DEFAULTS.config.broker.maxPacketBytes);
}

export type BrokerComponentOptions = BrokerOptions & ListenOptions;

/** The broker as a daemon component: start() creates and listens, stop() closes. */
export class BrokerComponent implements Component {
  readonly name = 'broker';
  private broker: EmbeddedBroker | undefined;

  constructor(private readonly opts: BrokerComponentOptions) {}

  async start(): Promise<void> {
    if (this.broker) return;
    const broker = await createBroker(this.opts);
    try {
      await broker.listen({ host: this.opts.host, port: this.opts.port, wsPort: this.opts.wsPort, tls: this.opts.tls });
    } catch (err) {
      await broker.close();
      throw err;
    }
    this.broker = broker;
  }

  async stop(): Promise<void> {
    const broker = this.broker;
    this.broker = undefined;
    await broker?.close();
  }

  /** The bound ports; throws when not started. */
  address(): BrokerAddress {
    if (!this.broker) throw new Error('broker: not started');
    return this.broker.address();
  }
}

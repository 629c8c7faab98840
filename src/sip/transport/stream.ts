import net from 'node:net';
import tls from 'node:tls';
import { StreamFramer } from '../framing.ts';
import type { SipLimits } from '../limits.ts';
import { isWildcardAddress, plainAddress } from './address.ts';
import type { Endpoint, Flow, PartnerPeer } from './flow.ts';
import { advertisedFor, formatEndpoint } from './flow.ts';
import { type ConnectionGuard, GuardedConnection } from './guard.ts';
import type { TransportSink } from './sink.ts';

/** How long a connection whose framing is lost stays open for the answers to what came before. */
const FRAMING_LOST_GRACE_MS = 1000;

export interface StreamListener {
  readonly local: Endpoint;
  /** whether the listening socket is still bound (readiness) */
  readonly bound: boolean;
  /** stops accepting new connections; the open ones go on (a drain) */
  stopAccepting(): void;
  /**
   * stops accepting and closes every open connection: each is ended (what was written to it, the
   * last answers of a drain, still goes out), and destroyed if still open after CLOSE_GRACE_MS
   */
  close(): Promise<void>;
  /** TLS only: new handshakes use this certificate, established connections keep theirs */
  setSecureContext(options: tls.SecureContextOptions): void;
}

/** How long an ended connection may take to close before it is destroyed, ms. */
const CLOSE_GRACE_MS = 1_000;

/** TCP keep-alive probes on an idle connection after this long, ms (a NAT's mapping stays, a dead peer is found). */
const KEEPALIVE_DELAY_MS = 60_000;

/**
 * Set by the listening socket on each accepted one as node accepts it (no JavaScript call per
 * connection): Nagle's algorithm off (an answer is one write and goes at once), keep-alive probes.
 */
const ACCEPTED_SOCKET_OPTIONS = { noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_DELAY_MS } as const;

/**
 * Linux: an accepted socket inherits TCP_NODELAY and the keep-alive options (SO_KEEPALIVE,
 * TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT) of the listening socket, so they are set once there
 * instead of by node on each accepted socket: five setsockopt calls a connection, a third of the
 * system calls of a short one (bench/tcp-connection-micro.ts). Elsewhere node sets them on each.
 */
const INHERITED_OPTIONS = process.platform === 'linux';

/** the listening socket's handle (node's TCPWrap), with the calls node makes on accepted ones */
interface ListeningHandle {
  setNoDelay?(on: boolean): number;
  setKeepAlive?(on: boolean, delaySeconds: number): number;
}

/** Sets the accepted sockets' options on the listening socket; false when it cannot (they are set on each). */
function setOnListeningSocket(server: net.Server): boolean {
  const handle = (server as unknown as { _handle?: ListeningHandle | null })._handle;
  if (!INHERITED_OPTIONS || typeof handle?.setNoDelay !== 'function' || typeof handle.setKeepAlive !== 'function') return false;
  return handle.setNoDelay(true) === 0 && handle.setKeepAlive(true, Math.floor(KEEPALIVE_DELAY_MS / 1000)) === 0;
}

export interface StreamListenOptions {
  protocol: 'tcp' | 'tls';
  address: string;
  port: number;
  limits: SipLimits;
  sink: TransportSink;
  /** the connection limits and timeouts, shared with the other stream listeners */
  guard: ConnectionGuard;
  tls?: tls.SecureContextOptions;
  /** `sip.advertise`: the host[:port] Via and Contact name instead of the connection's local address */
  advertise?: string | undefined;
  /**
   * TLS only: the federation link's listener (mutual TLS). Every peer must present a certificate
   * chaining to `tls.ca` (the system's CAs when absent): a handshake without one fails with a TLS
   * alert (certificate required); one whose certificate does not verify is closed as its handshake
   * ends, before anything is read (node sends no alert for that). Its flows carry `partner`, and
   * count as trusted by the guard: the handshake authenticated them.
   */
  partners?: PartnerSide;
}

/** What the federation link tells the transport about partners' connections. */
export interface PartnerSide {
  /** who the verified certificate of a connection names (RFC 6125 names, lower case) */
  peerOf(socket: tls.TLSSocket): PartnerPeer;
  /** a handshake that failed (no certificate, one that does not verify, a timeout): for the log */
  onRefused(remote: Endpoint, reason: string, code: string | undefined): void;
}

export interface StreamConnectOptions {
  /** the address to connect to (resolved already) */
  address: string;
  port: number;
  /**
   * TLS: the certificate and key we present, the CAs, servername and checkServerIdentity; null:
   * plain TCP (between the nodes of a cluster, on their own network)
   */
  tls: tls.ConnectionOptions | null;
  /** ms for the TCP connection and the TLS handshake together */
  timeoutMs: number;
  limits: SipLimits;
  sink: TransportSink;
  guard: ConnectionGuard;
  /** TLS: who the connection's verified certificate names, with the partner domain it was opened for */
  peerOf?(socket: tls.TLSSocket): PartnerPeer;
  /** host:port Via and Contact name on this connection (the federation FQDN and port) */
  advertise?: string | undefined;
}

/** Why an outbound connection failed: no answer in time, refused or unreachable, or the TLS checks. */
export type StreamConnectResult =
  | { readonly ok: true; readonly flow: Flow; close(): void }
  | { readonly ok: false; readonly reason: 'timeout' | 'unreachable' | 'tls'; readonly message: string };

let nextConnection = 0;

/** One TCP or TLS connection as the core sees it. */
class StreamFlow extends GuardedConnection implements Flow {
  readonly id: string;
  readonly protocol: 'tcp' | 'tls';
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly advertised?: string;
  readonly reliable = true;
  readonly socket: net.Socket;
  partner?: PartnerPeer;

  constructor(guard: ConnectionGuard, socket: net.Socket, protocol: 'tcp' | 'tls', local: Endpoint, remote: Endpoint, advertised: string | undefined) {
    super(guard);
    if (advertised !== undefined) this.advertised = advertised;
    this.id = `${protocol}:${formatEndpoint(local)}>${formatEndpoint(remote)}#${++nextConnection}`;
    this.protocol = protocol;
    this.local = local;
    this.remote = remote;
    this.socket = socket;
  }

  get closed(): boolean {
    return this.socket.destroyed || !this.socket.writable;
  }

  send(bytes: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(bytes);
    return true;
  }

  sendText(text: string): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(text, 'utf8');
    return true;
  }

  abort(): void {
    this.socket.destroy();
  }
}

function remoteOf(socket: net.Socket): Endpoint {
  return { address: plainAddress(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
}

/**
 * The peer of a TLS socket whose handshake failed: by then the socket may be closed, and a closed
 * socket no longer knows its peer; the TCP socket under it (node's `_parent`) asked for it when it
 * was accepted (the guard's admit), and keeps the answer.
 */
function peerOf(socket: tls.TLSSocket): Endpoint {
  const remote = remoteOf(socket);
  if (remote.address !== '') return remote;
  const parent = (socket as { _parent?: unknown })._parent;
  return parent instanceof net.Socket ? remoteOf(parent) : remote;
}

/** SIP over TCP and TLS (RFC 3261 §18.3): Content-Length framing, CRLF keep-alives (RFC 5626 §3.5.1). */
export function listenStream(opts: StreamListenOptions): Promise<StreamListener> {
  const { guard, sink, protocol } = opts;
  const sockets = new Set<net.Socket>();
  // close()'s wait: called when the last connection has closed
  let allClosed: (() => void) | undefined;
  let closing: Promise<void> | undefined;

  // Partners: node refuses a certificate that does not chain to the CAs by closing the connection
  // at the end of the handshake, with no event (a missing certificate is an OpenSSL alert, and a
  // tlsClientError). A connection that closes with neither a handshake done nor an error reported
  // is that refusal, and is logged as such. Keyed by the peer's address and port, unique while open.
  const partners = opts.partners;
  const settled = new Set<string>();
  const handshakeEnded = (remote: Endpoint): void => {
    const key = formatEndpoint(remote);
    if (!settled.delete(key)) partners?.onRefused(remote, 'the connection closed at the end of the TLS handshake: its certificate does not chain to a trusted CA (or the peer left)', 'TLS_PEER_NOT_VERIFIED');
  };

  // The listener's own address, once it listens: every connection accepted on a specific address
  // has it as its local end, so no accepted socket is asked for it (a getsockname call each);
  // on a wildcard address each connection's own is asked for, the interface it came in on.
  let listening: Endpoint | undefined;
  const localOf = (socket: net.Socket): Endpoint => listening ?? { address: plainAddress(socket.localAddress ?? ''), port: socket.localPort ?? 0 };

  // Limits are checked when the TCP connection is accepted, before a TLS handshake costs anything;
  // the count is released when that socket closes, whatever became of it. Returns the source the
  // connection counts against, or null when it was refused (and destroyed).
  const admit = (socket: net.Socket, remote: Endpoint): string | null => {
    const source = guard.admit(protocol, remote);
    if (source === null) socket.destroy();
    return source;
  };

  // `closed`: what else the connection's close releases (one close listener per connection)
  const onSocket = (socket: net.Socket, remote: Endpoint, closed?: () => void): void => {
    if (partners !== undefined) settled.add(formatEndpoint(remote));
    sockets.add(socket);
    const partner = partners?.peerOf(socket as tls.TLSSocket);
    carry(socket, { protocol, guard, sink, limits: opts.limits, advertise: opts.advertise, partner, local: localOf(socket), remote }, () => {
      sockets.delete(socket);
      closed?.();
      if (sockets.size === 0) allClosed?.();
    });
  };

  let server: net.Server;
  // TCP: whether the accepted sockets' options are set on each (not inherited from the listening one)
  let optionsPerSocket = true;
  if (protocol === 'tls') {
    // A handshake that does not finish in time is a slow sender like any other.
    // Partners: mutual TLS, the peer's certificate verified against the CAs at the handshake.
    const mutual = partners === undefined ? {} : { requestCert: true, rejectUnauthorized: true };
    // An idle TLS connection costs node 24 / OpenSSL 3.5 about 47 KiB of RSS before any Parley
    // state (bench/tls-idle-micro.ts, whose header has the breakdown), nearly all of it
    // per-connection state no option here reaches: OpenSSL's two TLS 1.3 record layers (11 KiB)
    // and SSL object (7 KiB), node's socket objects and buffers. Node already sets
    // SSL_MODE_RELEASE_BUFFERS; session tickets off, malloc arenas and trimming change nothing.
    // One default is a choice: X25519MLKEM768 (post-quantum key exchange), which a client
    // offering it gets, keeps the client's ML-KEM key for the connection's life (+7 KiB); it
    // stays on for what it protects.
    server = tls.createServer({ ...opts.tls, ...mutual, ...ACCEPTED_SOCKET_OPTIONS, handshakeTimeout: guard.limits.messageTimeoutMs }, (socket: tls.TLSSocket) => onSocket(socket, peerOf(socket)));
    // the TCP socket under the TLS one closes whatever became of its handshake: it releases the count
    server.on('connection', (socket: net.Socket) => {
      const remote = remoteOf(socket);
      const source = admit(socket, remote);
      if (source === null) return;
      socket.once('close', () => {
        guard.release(source);
        if (partners !== undefined) handshakeEnded(remote);
      });
    });
    // A TLS handshake failure is the peer's problem, never the process's.
    server.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
      const remote = peerOf(socket);
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') guard.handshakeTimedOut(remote);
      if (partners !== undefined) {
        settled.add(formatEndpoint(remote));
        partners.onRefused(remote, err.message, err.code);
      }
      socket.destroy();
    });
  } else {
    // allowHalfOpen: the peer's close is answered by carry()'s peerEnded, not by node's end()
    server = net.createServer({ allowHalfOpen: true }, (socket) => {
      if (optionsPerSocket) {
        socket.setNoDelay(true);
        socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
      }
      const remote = remoteOf(socket);
      const source = admit(socket, remote);
      if (source !== null) onSocket(socket, remote, () => guard.release(source));
    });
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => {
      server.off('error', reject);
      // An accept that fails (no file descriptor left, say) must not take the process down.
      server.on('error', (err: Error) => guard.acceptFailed(protocol, err));
      if (protocol === 'tcp') optionsPerSocket = !setOnListeningSocket(server);
      const addr = server.address() as net.AddressInfo;
      if (!isWildcardAddress(addr.address)) listening = { address: plainAddress(addr.address), port: addr.port };
      resolve({
        local: { address: addr.address, port: addr.port },
        get bound() {
          return server.listening;
        },
        stopAccepting: () => {
          if (server.listening) server.close();
        },
        setSecureContext: (options) => {
          if (!(server instanceof tls.Server)) throw new Error('setSecureContext: this SIP listener is not TLS');
          server.setSecureContext(options);
        },
        // one close for every caller: a second one while the first waits shares its wait
        close: () =>
          (closing ??= new Promise<void>((done) => {
            if (server.listening) server.close();
            if (sockets.size === 0) return done();
            // Waits on its own set of connections, not on the server's 'close' event: a drain
            // stopped accepting (server.close()) long before, and when the clients closed their
            // connections meanwhile, that event may have fired already; waiting for it held the
            // stop until shutdownTimeout ("still closing TCP and TLS connections").
            const grace = setTimeout(() => {
              for (const s of sockets) s.destroy();
            }, CLOSE_GRACE_MS);
            allClosed = () => {
              allClosed = undefined;
              clearTimeout(grace);
              done();
            };
            for (const s of sockets) s.end();
          })),
      });
    });
  });
}

/**
 * The peer closed its side (an accepted TCP connection, allowHalfOpen): with every answer already
 * handed to the kernel, which still sends it before its FIN, the socket is closed at once, one
 * system call (node's end() would shut the socket down first, then close it: two, and a round of
 * stream callbacks); with answers still queued in node, it is ended, and closes once they are out.
 */
function peerEnded(this: net.Socket): void {
  if (this.writableLength === 0) this.destroy();
  else this.end();
}

/**
 * Reads SIP from a connection and hands it to the sink, for accepted and opened connections alike:
 * the flow, the framing, keep-alives, the guard's bookkeeping. `closed` runs when the socket closes,
 * after the flow was reported closed.
 */
function carry(
  socket: net.Socket,
  o: { protocol: 'tcp' | 'tls'; guard: ConnectionGuard; sink: TransportSink; limits: SipLimits; advertise: string | undefined; partner: PartnerPeer | undefined; local: Endpoint; remote: Endpoint },
  closed?: () => void,
): StreamFlow {
  const { guard, sink } = o;
  const flow = new StreamFlow(guard, socket, o.protocol, o.local, o.remote, advertisedFor(o.advertise, o.local.port));
  if (o.partner !== undefined) flow.partner = o.partner;
  guard.track(flow);
  // a partner's certificate is its authentication: its connection is not an anonymous one
  if (o.partner !== undefined) guard.trust(flow);
  const framer = new StreamFramer(o.limits);
  socket.on('data', (chunk: Buffer) => {
    // After a fatal error the bytes are dropped unread, and keep nothing alive: the peer closes,
    // or the idle timeout does.
    if (framer.closed) return;
    const events = framer.push(chunk);
    for (const event of events) {
      if (event.type === 'message') sink.onMessage(event.message, flow);
      else if (event.type === 'ping') socket.write('\r\n');
      else if (event.type === 'error') {
        sink.onParseError(event.error, flow);
        // Framing is lost: nothing after this point can be read as SIP. Half-closed rather than
        // destroyed, so that unread bytes do not turn into a reset that loses the answer; and a
        // moment later, so that the requests read before the bad bytes, whose handlers may still
        // be asking the database, get their answers out first.
        if (event.fatal) {
          setTimeout(() => socket.end(), FRAMING_LOST_GRACE_MS).unref();
          return;
        }
      }
    }
    guard.received(flow, framer.held, framer.midMessage, events.length > 0);
  });
  socket.on('error', () => socket.destroy());
  if (socket.allowHalfOpen) socket.on('end', peerEnded);
  socket.on('close', () => {
    guard.untrack(flow);
    sink.onFlowClosed(flow);
    closed?.();
  });
  return flow;
}

/**
 * Opens a TLS connection to a partner's server (the federation link's outbound side), or a plain
 * TCP one to another node of a cluster (`tls: null`), and carries SIP on it like an accepted one:
 * what the peer sends, answers and requests alike, reaches the same sink. The guard watches it
 * (idle timeout) but does not count it against the limits of accepted connections. Never
 * rejects: a failure is a value saying why.
 */
export function connectStream(opts: StreamConnectOptions): Promise<StreamConnectResult> {
  return new Promise((resolve) => {
    let settled = false;
    let connected = false;
    const secure = opts.tls !== null;
    const socket = opts.tls !== null ? tls.connect({ ...opts.tls, host: opts.address, port: opts.port }) : net.connect({ host: opts.address, port: opts.port });
    const fail = (reason: 'timeout' | 'unreachable' | 'tls', message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: false, reason, message });
    };
    const timer = setTimeout(() => fail('timeout', `no ${connected ? 'TLS handshake' : 'TCP connection'} within ${opts.timeoutMs} ms`), opts.timeoutMs);
    socket.once('connect', () => {
      connected = true;
    });
    socket.on('error', (err: Error & { code?: string }) => fail(connected ? 'tls' : 'unreachable', connected ? `TLS: ${err.message}` : err.message));
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const partner = secure ? opts.peerOf?.(socket as tls.TLSSocket) : undefined;
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
      const local: Endpoint = { address: plainAddress(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
      const flow = carry(socket, { protocol: secure ? 'tls' : 'tcp', guard: opts.guard, sink: opts.sink, limits: opts.limits, advertise: opts.advertise, partner, local, remote: remoteOf(socket) });
      resolve({ ok: true, flow, close: () => socket.end() });
    });
  });
}

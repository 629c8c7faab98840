import { isUtf8 } from 'node:buffer';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { SipLimits } from '../limits.ts';
import { plainAddress } from './address.ts';
import type { Endpoint, Flow } from './flow.ts';
import { formatEndpoint } from './flow.ts';
import { type ConnectionGuard, GuardedConnection } from './guard.ts';
import { deliverUnit, type TransportSink } from './sink.ts';
import { WebSocketMeter } from './ws-meter.ts';

const PING = Buffer.from('\r\n\r\n');
const PONG = Buffer.from('\r\n');

export interface WebSocketAcceptor {
  /** hands an HTTP upgrade request to SIP; false when the path is not ours */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** refuses new connections (503) while the open ones go on: the server drains */
  stopAccepting(): void;
  /**
   * closes every connection with 1001 Going Away (RFC 6455 §7.4.1: the server is going down);
   * one whose closing handshake is not done after CLOSE_GRACE_MS is cut
   */
  close(): Promise<void>;
}

let nextConnection = 0;

/** How long a closing handshake may take before the connection is cut, ms. */
const CLOSE_GRACE_MS = 1_000;

// Memory per connection matters here: a registered WebSocket client stays connected for hours,
// mostly idle (see bench/ws-load.ts). So a connection carries no closures of its own: the flow
// is a class instance (methods on the prototype), the event handlers are shared by all the
// connections of an acceptor and find their flow through the socket, the server keeps no client
// set and no close listener of its own per connection (clientTracking: false; the acceptor keeps
// the set), and the request of the upgrade is not retained.

/** One SIP-over-WebSocket connection as the core sees it. */
class WebSocketFlow extends GuardedConnection implements Flow {
  readonly id: string;
  readonly protocol: 'ws' | 'wss';
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly reliable = true;
  readonly ws: WebSocket;
  /** what the connection was counted against (guard.admit), released when it closes */
  readonly source: string;
  /** what the library holds of a message not yet whole, read from the frames as they come */
  readonly meter = new WebSocketMeter();

  constructor(guard: ConnectionGuard, ws: WebSocket, protocol: 'ws' | 'wss', local: Endpoint, remote: Endpoint, source: string) {
    super(guard);
    this.id = `${protocol}:${formatEndpoint(local)}>${formatEndpoint(remote)}#${++nextConnection}`;
    this.protocol = protocol;
    this.local = local;
    this.remote = remote;
    this.ws = ws;
    this.source = source;
  }

  abort(): void {
    this.ws.terminate();
  }

  get closed(): boolean {
    return this.ws.readyState !== WebSocket.OPEN;
  }

  send(bytes: Buffer): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    // Browsers' SIP stacks expect text frames; binary only for a body that is not UTF-8.
    this.ws.send(bytes, { binary: !isUtf8(bytes) });
    return true;
  }
}

/** The server's WebSocket class: the connection knows its flow (set once the upgrade completes). */
class SipWebSocket extends WebSocket {
  flow: WebSocketFlow | null = null;
}

/** The socket under a WebSocket, which knows its flow too: its bytes are counted as they come. */
type CountedSocket = Duplex & { sipFlow?: WebSocketFlow };

// A SIP message is one WebSocket message; clients send it in one frame. A message may come in a
// few fragments and TCP reads, but each is kept as an object of its own until the message is
// whole, so their number is held low (the library's defaults are 16,384 and 262,144).
const MAX_FRAGMENTS = 64;
const MAX_BUFFERED_CHUNKS = 1024;

/**
 * SIP over WebSocket (RFC 7118): the `sip` subprotocol is required; each WebSocket message carries
 * exactly one SIP message, so no Content-Length framing is needed.
 */
export function createWebSocketAcceptor(opts: {
  path: string;
  secure: boolean;
  limits: SipLimits;
  sink: TransportSink;
  /** the connection limits and timeouts, shared with the other stream listeners */
  guard: ConnectionGuard;
  /**
   * whether a page of this Origin may open the connection (RFC 6455 §10.2: a browser names the page's
   * origin; a page of another site must not drive a signed-in user's socket). A request without
   * Origin (no browser) is not asked about. Default: every origin.
   */
  originAllowed?: (origin: string) => boolean;
  /** an upgrade refused for its Origin (for the log and /metrics); must not throw */
  onOriginRefused?: (origin: string, remote: Endpoint) => void;
}): WebSocketAcceptor {
  const { limits, sink, guard } = opts;
  const maxPayload = limits.maxStartLine + limits.maxHeaderBytes + limits.maxBody;
  const wss = new WebSocketServer<typeof SipWebSocket>({
    noServer: true,
    maxPayload,
    maxFragments: MAX_FRAGMENTS,
    maxBufferedChunks: MAX_BUFFERED_CHUNKS,
    clientTracking: false,
    WebSocket: SipWebSocket,
    handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
  });
  const protocol = opts.secure ? 'wss' : 'ws';
  /** the open connections, all closed by close() */
  const live = new Set<SipWebSocket>();
  let accepting = true;
  /** the listener's own address: the same for every connection, so one object for all of them */
  let local: Endpoint | null = null;

  // Shared by every connection: `this` is the connection (or its socket) the event is for.
  // The guard sees the socket's bytes before the library does (a listener put first): one past
  // its limits is closed before the library reads the chunk.
  function onSocketData(this: CountedSocket, chunk: Buffer): void {
    const flow = this.sipFlow;
    if (flow === undefined) return;
    const completed = flow.meter.push(chunk);
    const held = flow.meter.held;
    guard.received(flow, held, held > 0, completed);
  }
  function onMessage(this: WebSocket, data: RawData): void {
    const flow = (this as SipWebSocket).flow;
    // a message the library still reads from a connection the guard has just closed is dropped
    if (flow === null || flow.ended) return;
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    // RFC 5626 §3.5.1 keep-alives in their own frames, as a client that cannot see TCP sends
    // them: a CRLFCRLF ping gets a CRLF pong (clients find a dead node by the missing pong), a
    // lone CRLF (a pong, or a bare keep-alive) carries nothing
    if (bytes.length === 4 && bytes.equals(PING)) {
      this.send('\r\n');
      return;
    }
    if (bytes.length === 2 && bytes.equals(PONG)) return;
    deliverUnit(bytes, flow, limits, sink);
  }
  function onError(this: WebSocket): void {
    this.terminate();
  }
  function onClose(this: WebSocket): void {
    const ws = this as SipWebSocket;
    live.delete(ws);
    if (ws.flow === null) return;
    guard.untrack(ws.flow);
    guard.release(ws.flow.source);
    sink.onFlowClosed(ws.flow);
  }

  const onConnection = (ws: SipWebSocket, socket: CountedSocket, remote: Endpoint, source: string): void => {
    const net = socket as Duplex & { localAddress?: string; localPort?: number };
    const address = plainAddress(net.localAddress ?? '');
    const port = net.localPort ?? 0;
    if (local === null || local.address !== address || local.port !== port) local = { address, port };
    const flow = new WebSocketFlow(guard, ws, protocol, local, remote, source);
    ws.flow = flow;
    socket.sipFlow = flow;
    guard.track(flow);
    live.add(ws);
    socket.prependListener('data', onSocketData);
    ws.on('message', onMessage);
    ws.on('error', onError);
    ws.on('close', onClose);
  };

  return {
    handleUpgrade(req, socket, head) {
      const path = (req.url ?? '').split('?')[0];
      if (path !== opts.path) return false;
      const offered = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((p) => p.trim().toLowerCase());
      if (!offered.includes('sip')) {
        socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nWebSocket subprotocol "sip" required (RFC 7118)\r\n');
        return true;
      }
      const peer = socket as Duplex & { remoteAddress?: string; remotePort?: number };
      const remote: Endpoint = { address: plainAddress(peer.remoteAddress ?? ''), port: peer.remotePort ?? 0 };
      const origin = req.headers.origin;
      if (origin !== undefined && opts.originAllowed !== undefined && !opts.originAllowed(origin)) {
        opts.onOriginRefused?.(origin, remote);
        const body = JSON.stringify({ type: 'about:blank', title: 'Forbidden', status: 403, code: 'WEBSOCKET_ORIGIN', detail: 'pages of that origin may not open SIP over WebSocket here: it is not one of this server\'s origins' });
        socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        return true;
      }
      if (!accepting) {
        const body = JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, code: 'DRAINING', detail: 'the server is stopping; connect to another one' });
        socket.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        return true;
      }
      const source = guard.admit(protocol, remote);
      if (source === null) {
        // RFC 6455 §4.2.2: the server may refuse the handshake with an HTTP status; RFC 9457 body.
        const retry = Math.ceil(guard.limits.idleTimeoutMs / 1000);
        const body = JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, code: 'TOO_MANY_CONNECTIONS', detail: `too many connections are open from ${remote.address} or to this server; try again later` });
        socket.end(`HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${retry}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        return true;
      }
      // The library completes a handshake in this call or never (a bad one is answered and closed):
      // a handshake that did not complete gives the count back at once.
      let upgraded = false;
      // the callback keeps the socket, not the request: nothing of the upgrade request outlives it
      wss.handleUpgrade(req, socket, head, (ws) => {
        upgraded = true;
        onConnection(ws, socket, remote, source);
      });
      if (!upgraded) guard.release(source);
      return true;
    },
    stopAccepting() {
      accepting = false;
    },
    async close() {
      accepting = false;
      wss.close();
      if (live.size === 0) return;
      const closed = [...live].map((ws) => new Promise<void>((done) => ws.once('close', () => done())));
      for (const ws of live) ws.close(1001, 'server is stopping');
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.all(closed), new Promise<void>((done) => (grace = setTimeout(done, CLOSE_GRACE_MS)))]);
      clearTimeout(grace);
      for (const ws of live) ws.terminate();
    },
  };
}

import { isUtf8 } from 'node:buffer';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { SipLimits } from '../limits.ts';
import type { Endpoint, Flow } from './flow.ts';
import { formatEndpoint } from './flow.ts';
import { deliverUnit, type TransportSink } from './sink.ts';

export interface WebSocketAcceptor {
  /** hands an HTTP upgrade request to SIP; false when the path is not ours */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): void;
}

let nextConnection = 0;

// Memory per connection matters here: a registered WebSocket client stays connected for hours,
// mostly idle (see bench/ws-load.ts). So a connection carries no closures of its own: the flow
// is a class instance (methods on the prototype), the event handlers are shared by all the
// connections of an acceptor and find their flow through the socket, the server keeps no client
// set and no close listener of its own per connection (clientTracking: false; the acceptor keeps
// the set), and the request of the upgrade is not retained.

/** One SIP-over-WebSocket connection as the core sees it. */
class WebSocketFlow implements Flow {
  readonly id: string;
  readonly protocol: 'ws' | 'wss';
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly reliable = true;
  readonly ws: WebSocket;

  constructor(ws: WebSocket, protocol: 'ws' | 'wss', local: Endpoint, remote: Endpoint) {
    this.id = `${protocol}:${formatEndpoint(local)}>${formatEndpoint(remote)}#${++nextConnection}`;
    this.protocol = protocol;
    this.local = local;
    this.remote = remote;
    this.ws = ws;
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

/**
 * SIP over WebSocket (RFC 7118): the `sip` subprotocol is required; each WebSocket message carries
 * exactly one SIP message, so no Content-Length framing is needed.
 */
export function createWebSocketAcceptor(opts: {
  path: string;
  secure: boolean;
  limits: SipLimits;
  sink: TransportSink;
}): WebSocketAcceptor {
  const { limits, sink } = opts;
  const maxPayload = limits.maxStartLine + limits.maxHeaderBytes + limits.maxBody;
  const wss = new WebSocketServer<typeof SipWebSocket>({
    noServer: true,
    maxPayload,
    clientTracking: false,
    WebSocket: SipWebSocket,
    handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
  });
  const protocol = opts.secure ? 'wss' : 'ws';
  /** the open connections, all closed by close() */
  const live = new Set<SipWebSocket>();
  /** the listener's own address: the same for every connection, so one object for all of them */
  let local: Endpoint | null = null;

  // Shared by every connection: `this` is the connection the event is for.
  function onMessage(this: WebSocket, data: RawData): void {
    const flow = (this as SipWebSocket).flow;
    if (flow === null) return;
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    deliverUnit(bytes, flow, limits, sink);
  }
  function onError(this: WebSocket): void {
    this.terminate();
  }
  function onClose(this: WebSocket): void {
    const ws = this as SipWebSocket;
    live.delete(ws);
    if (ws.flow !== null) sink.onFlowClosed(ws.flow);
  }

  const onConnection = (ws: SipWebSocket, socket: Duplex): void => {
    const net = socket as Duplex & { localAddress?: string; localPort?: number; remoteAddress?: string; remotePort?: number };
    const address = net.localAddress ?? '';
    const port = net.localPort ?? 0;
    if (local === null || local.address !== address || local.port !== port) local = { address, port };
    const remote: Endpoint = { address: net.remoteAddress ?? '', port: net.remotePort ?? 0 };
    ws.flow = new WebSocketFlow(ws, protocol, local, remote);
    live.add(ws);
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
      // the callback keeps the socket, not the request: nothing of the upgrade request outlives it
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, socket));
      return true;
    },
    close() {
      for (const ws of live) ws.terminate();
      wss.close();
    },
  };
}

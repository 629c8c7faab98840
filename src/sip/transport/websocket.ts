import { isUtf8 } from 'node:buffer';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
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
  const maxPayload = opts.limits.maxStartLine + opts.limits.maxHeaderBytes + opts.limits.maxBody;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload,
    handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
  });
  const protocol = opts.secure ? 'wss' : 'ws';

  const onConnection = (ws: WebSocket, req: http.IncomingMessage): void => {
    const local: Endpoint = { address: req.socket.localAddress ?? '', port: req.socket.localPort ?? 0 };
    const remote: Endpoint = { address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0 };
    const flow: Flow = {
      id: `${protocol}:${formatEndpoint(local)}>${formatEndpoint(remote)}#${++nextConnection}`,
      protocol,
      local,
      remote,
      reliable: true,
      get closed() {
        return ws.readyState !== ws.OPEN;
      },
      send(bytes: Buffer): boolean {
        if (ws.readyState !== ws.OPEN) return false;
        // Browsers' SIP stacks expect text frames; binary only for a body that is not UTF-8.
        ws.send(bytes, { binary: !isUtf8(bytes) });
        return true;
      },
    };
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      deliverUnit(bytes, flow, opts.limits, opts.sink);
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => opts.sink.onFlowClosed(flow));
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
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
      return true;
    },
    close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
    },
  };
}

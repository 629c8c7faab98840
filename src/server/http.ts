import http from 'node:http';
import https from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { WebSocketAcceptor } from '../sip/index.ts';

/** A capability's part of the HTTP port (EWS, the admin API, the web client…). */
export interface HttpRoute {
  /** true when this route serves the request; it then answers it */
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean;
}

export interface HttpListener {
  readonly address: string;
  readonly port: number;
  /** whether the listening socket is still bound (readiness) */
  readonly bound: boolean;
  /** stops accepting new connections; the open ones go on (a drain) */
  stopAccepting(): void;
  close(): Promise<void>;
  /** HTTPS only: new handshakes use this certificate, established connections keep theirs */
  setSecureContext(options: SecureContextOptions): void;
}

/**
 * The HTTP port: SIP over WebSocket at /sip, a health check, and (later) the admin API, EWS and
 * the web client. Errors are problem JSON (RFC 9457).
 */
export function listenHttp(opts: {
  address: string;
  port: number;
  websocket: WebSocketAcceptor;
  product: string;
  routes?: readonly HttpRoute[];
  /** ms a request's head may take to arrive (Node's default: 60 s) */
  headersTimeoutMs?: number;
  /** the listening socket failed to accept a connection (no file descriptor left, say) */
  onAcceptError?: (err: Error) => void;
  /** a certificate and key: HTTPS (and WSS) instead of plain HTTP */
  tls?: SecureContextOptions;
}): Promise<HttpListener> {
  const headersTimeout = opts.headersTimeoutMs ?? 60_000;
  // Node checks the timeout every connectionsCheckingInterval (30 s by default): often enough here.
  const timing = { headersTimeout, connectionsCheckingInterval: Math.min(30_000, Math.max(100, headersTimeout / 4)) };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    for (const route of opts.routes ?? []) if (route.handle(req, res, url)) return;
    if (url.pathname === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'application/json', server: opts.product });
      res.end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (url.pathname === '/sip') {
      problem(res, 426, 'Upgrade Required', 'SIP over WebSocket: connect with the "sip" subprotocol (RFC 7118)', opts.product, { upgrade: 'websocket' });
      return;
    }
    problem(res, 404, 'Not Found', `nothing is served at ${url.pathname}`, opts.product);
  };
  // A TLS handshake is held to the same time as a request's head.
  const server = opts.tls === undefined ? http.createServer(timing, handler) : https.createServer({ ...timing, ...opts.tls, handshakeTimeout: headersTimeout }, handler);
  // a failed handshake is the peer's problem, never the process's
  if (server instanceof https.Server) server.on('tlsClientError', (_err: Error, socket: { destroy(): void }) => socket.destroy());
  server.on('upgrade', (req, socket, head) => {
    if (!opts.websocket.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => {
      server.off('error', reject);
      // A failed accept must not take the process down; the client tries again.
      server.on('error', (err: Error) => opts.onAcceptError?.(err));
      const addr = server.address() as AddressInfo;
      resolve({
        address: addr.address,
        port: addr.port,
        get bound() {
          return server.listening;
        },
        stopAccepting: () => {
          if (server.listening) server.close();
        },
        setSecureContext: (options) => {
          if (!(server instanceof https.Server)) throw new Error('setSecureContext: this HTTP listener is not HTTPS');
          server.setSecureContext(options);
        },
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            if (server.listening) server.close(() => done());
            else done();
          }),
      });
    });
  });
}

export function problem(res: http.ServerResponse, status: number, title: string, detail: string, product: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/problem+json', server: product, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
  res.end(JSON.stringify({ type: 'about:blank', title, status, detail }));
}

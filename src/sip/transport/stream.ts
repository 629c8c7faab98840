import net from 'node:net';
import tls from 'node:tls';
import { StreamFramer } from '../framing.ts';
import type { SipLimits } from '../limits.ts';
import type { Endpoint, Flow } from './flow.ts';
import { formatEndpoint } from './flow.ts';
import type { TransportSink } from './sink.ts';

export interface StreamListener {
  readonly local: Endpoint;
  /** stops accepting and closes every open connection */
  close(): Promise<void>;
}

export interface StreamListenOptions {
  protocol: 'tcp' | 'tls';
  address: string;
  port: number;
  limits: SipLimits;
  sink: TransportSink;
  tls?: tls.SecureContextOptions;
  /** closes a connection that has sent nothing for this long (0: never) */
  idleTimeoutMs?: number;
}

let nextConnection = 0;

/** SIP over TCP and TLS (RFC 3261 §18.3): Content-Length framing, CRLF keep-alives (RFC 5626 §3.5.1). */
export function listenStream(opts: StreamListenOptions): Promise<StreamListener> {
  const sockets = new Set<net.Socket>();
  const onSocket = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    if (opts.idleTimeoutMs) socket.setTimeout(opts.idleTimeoutMs, () => socket.destroy());
    const local: Endpoint = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    const remote: Endpoint = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const flow: Flow = {
      id: `${opts.protocol}:${formatEndpoint(local)}>${formatEndpoint(remote)}#${++nextConnection}`,
      protocol: opts.protocol,
      local,
      remote,
      reliable: true,
      get closed() {
        return socket.destroyed || !socket.writable;
      },
      send(bytes: Buffer): boolean {
        if (socket.destroyed || !socket.writable) return false;
        socket.write(bytes);
        return true;
      },
    };
    const framer = new StreamFramer(opts.limits);
    socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (event.type === 'message') opts.sink.onMessage(event.message, flow);
        else if (event.type === 'ping') socket.write('\r\n');
        else if (event.type === 'error') {
          opts.sink.onParseError(event.error, flow);
          // Framing is lost: nothing after this point can be read as SIP.
          if (event.fatal) {
            socket.end();
            return;
          }
        }
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      opts.sink.onFlowClosed(flow);
    });
  };

  const server =
    opts.protocol === 'tls' ? tls.createServer({ ...opts.tls }, onSocket) : net.createServer(onSocket);
  // A TLS handshake failure is the peer's problem, never the process's.
  server.on('tlsClientError', (_err: Error, socket: tls.TLSSocket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({
        local: { address: addr.address, port: addr.port },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

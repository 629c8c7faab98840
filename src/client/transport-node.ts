// Node transports: SIP over TCP and TLS (RFC 3261 §18) with node:net / node:tls, and the
// connector that picks TCP, TLS or WebSocket from the server URL. The only client file that
// imports Node modules.

import * as net from 'node:net';
import * as tls from 'node:tls';
import { ClientError } from './errors.ts';
import type { ClientTransport, ServerAddress, TransportConnector } from './transport.ts';
import { connectWebSocket } from './transport-ws.ts';

export interface NodeTransportOptions {
  connectTimeoutMs?: number;
  /** for tls:// — e.g. `{ ca, rejectUnauthorized }`; servername defaults to the URL host */
  tls?: tls.ConnectionOptions;
  /** for tcp:// and tls://: the local address to connect from, on a host with several */
  localAddress?: string;
}

export function nodeConnector(options: NodeTransportOptions = {}): TransportConnector {
  return (server) => {
    if (server.scheme === 'ws' || server.scheme === 'wss') return connectWebSocket(server, options);
    return connectStream(server, options);
  };
}

function connectStream(server: ServerAddress, options: NodeTransportOptions): Promise<ClientTransport> {
  return new Promise((resolve, reject) => {
    const secure = server.scheme === 'tls';
    const from = options.localAddress !== undefined ? { localAddress: options.localAddress } : {};
    const socket: net.Socket = secure
      ? tls.connect({ host: server.host, port: server.port, ...from, servername: net.isIP(server.host) === 0 ? server.host : undefined, ...options.tls })
      : net.connect({ host: server.host, port: server.port, ...from });
    socket.setNoDelay(true);
    let opened = false;
    let closed = false;
    let lastError: Error | undefined;
    const timer = setTimeout(() => {
      socket.destroy(new ClientError('CONNECT_FAILED', `connecting to ${server.url} timed out`));
    }, options.connectTimeoutMs ?? 10_000);

    socket.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      opened = true;
      const transport: ClientTransport = {
        framing: 'stream',
        viaTransport: secure ? 'TLS' : 'TCP',
        contactTransport: secure ? 'tls' : 'tcp',
        localHost: socket.localAddress ?? '127.0.0.1',
        localPort: socket.localPort ?? null,
        onData: null,
        onClose: null,
        send(data) {
          if (closed || socket.destroyed) throw new ClientError('DISCONNECTED', 'the connection is closed');
          socket.write(data);
        },
        close() {
          if (closed) return;
          closed = true;
          socket.end();
          socket.destroySoon();
          transport.onClose?.(undefined);
        },
      };
      socket.on('data', (chunk: Buffer) => transport.onData?.(chunk));
      socket.on('close', () => {
        if (closed) return;
        closed = true;
        transport.onClose?.(new ClientError('DISCONNECTED', `connection to ${server.url} closed${lastError ? `: ${lastError.message}` : ''}`, { cause: lastError }));
      });
      resolve(transport);
    });
    socket.on('error', (error: Error) => {
      lastError = error;
      if (opened) return;
      clearTimeout(timer);
      reject(error instanceof ClientError ? error : new ClientError('CONNECT_FAILED', `cannot connect to ${server.url}: ${error.message}`, { cause: error }));
    });
  });
}

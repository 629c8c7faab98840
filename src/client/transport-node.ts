// Node transports: SIP over TCP and TLS (RFC 3261 §18) with node:net / node:tls, and the
// connector that picks TCP, TLS or WebSocket from the server URL. The only client file that
// imports Node modules.

import { lookup } from 'node:dns/promises';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ClientError } from './errors.ts';
import type { ClientTransport, ServerAddress, ServerResolver, TransportConnector } from './transport.ts';
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

export interface NodeResolverOptions {
  /** for the order of a name's addresses; default Math.random */
  random?: () => number;
  /** a name's addresses; default the system's resolver (getaddrinfo, as node:dns lookup) */
  lookupAll?: (host: string) => Promise<ReadonlyArray<{ address: string }>>;
}

/**
 * A tcp:// or tls:// host name stands for every address DNS gives it (A and AAAA): one configured
 * name reaches each node of a cluster. The addresses come in a random order, as DNS round robin
 * intends: the system's resolver sorts them the same way for every client, which would send all
 * the clients to one node first, and all the clients of a lost node to the same next one. An IP
 * literal, and a WebSocket URL (the WebSocket API connects to the URL's host itself), stand for
 * themselves.
 */
export function nodeResolver(options: NodeResolverOptions = {}): ServerResolver {
  const { random = Math.random, lookupAll = (host: string) => lookup(host, { all: true }) } = options;
  return async (server) => {
    if (server.scheme === 'ws' || server.scheme === 'wss' || net.isIP(server.host) !== 0) return [server];
    const found = await lookupAll(server.host);
    const addresses = shuffled([...new Set(found.map((a) => a.address))], random);
    return addresses.map((address) => ({ ...server, address }));
  };
}

/** Fisher–Yates. */
function shuffled<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function connectStream(server: ServerAddress, options: NodeTransportOptions): Promise<ClientTransport> {
  return new Promise((resolve, reject) => {
    const secure = server.scheme === 'tls';
    // a name DNS gave several addresses for: this one of them; the name still checks the certificate
    const host = server.address ?? server.host;
    const where = server.address === undefined ? server.url : `${server.url} (${server.address})`;
    const from = options.localAddress !== undefined ? { localAddress: options.localAddress } : {};
    const socket: net.Socket = secure
      ? tls.connect({ host, port: server.port, ...from, servername: net.isIP(server.host) === 0 ? server.host : undefined, ...options.tls })
      : net.connect({ host, port: server.port, ...from });
    socket.setNoDelay(true);
    let opened = false;
    let closed = false;
    let lastError: Error | undefined;
    const timer = setTimeout(() => {
      socket.destroy(new ClientError('CONNECT_FAILED', `connecting to ${where} timed out`));
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
        transport.onClose?.(new ClientError('DISCONNECTED', `connection to ${where} closed${lastError ? `: ${lastError.message}` : ''}`, { cause: lastError }));
      });
      resolve(transport);
    });
    socket.on('error', (error: Error) => {
      lastError = error;
      if (opened) return;
      clearTimeout(timer);
      reject(error instanceof ClientError ? error : new ClientError('CONNECT_FAILED', `cannot connect to ${where}: ${error.message}`, { cause: error }));
    });
  });
}

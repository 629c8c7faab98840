// The user agent sees a connection only through this interface; sockets live at the edge
// (transport-node.ts for TCP/TLS, transport-ws.ts for WebSocket in Node 24 and browsers).
// Nothing here imports a Node module, so a browser build can plug its own WebSocket in.

import { ClientError } from './errors.ts';

export type ServerScheme = 'tcp' | 'tls' | 'ws' | 'wss';

export interface ServerAddress {
  scheme: ServerScheme;
  host: string;
  port: number;
  /** the URL as given (for ws/wss the WebSocket URL, path included) */
  url: string;
  /**
   * the IP address to connect to when `host` is a name that DNS gave several addresses for (tcp://
   * and tls:// in Node): `host` stays the name, for TLS's server name and certificate check
   */
  address?: string;
}

export interface ClientTransport {
  /**
   * 'stream': bytes arrive in arbitrary chunks and need framing (TCP, TLS, RFC 3261 §18.3);
   * 'message': each onData call carries exactly one SIP message (WebSocket, RFC 7118 §5.1).
   */
  readonly framing: 'stream' | 'message';
  /** transport token for the Via header: TCP, TLS, WS, WSS (RFC 3261 §18, RFC 7118 §5.2) */
  readonly viaTransport: string;
  /** value of the Contact URI `transport` parameter: tcp, tls, ws */
  readonly contactTransport: string;
  /** sent-by host for Via and host for Contact; a random `.invalid` name over WebSocket */
  readonly localHost: string;
  /** local port, or null when meaningless (WebSocket) */
  readonly localPort: number | null;
  send(data: Buffer | string): void;
  /** set by the user agent */
  onData: ((data: Buffer) => void) | null;
  /** called once, when the connection is gone; error is undefined after close() */
  onClose: ((error?: Error) => void) | null;
  close(): void;
}

export type TransportConnector = (server: ServerAddress) => Promise<ClientTransport>;

/**
 * The addresses one configured server stands for: a host name with several A/AAAA records is as
 * many servers (each with `address` set); anything else is itself. Node only (a browser cannot
 * resolve names); a failed lookup rejects, and the server is then tried as given.
 */
export type ServerResolver = (server: ServerAddress) => Promise<ServerAddress[]>;

const DEFAULT_PORTS: Readonly<Record<ServerScheme, number>> = { tcp: 5060, tls: 5061, ws: 80, wss: 443 };

/** The `server` option, one URL or several, parsed: INVALID_ARGUMENT for an empty list or a bad URL. */
export function parseServerList(server: string | readonly string[]): ServerAddress[] {
  const urls = typeof server === 'string' ? [server] : server;
  if (urls.length === 0) throw new ClientError('INVALID_ARGUMENT', 'server lists no address: give at least one URL');
  return urls.map(parseServerUrl);
}

/** Parses `tcp://host:port`, `tls://host:port`, `ws://host:port/path`, `wss://…`. */
export function parseServerUrl(url: string): ServerAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new ClientError('INVALID_ARGUMENT', `server URL ${JSON.stringify(url)} is not a URL`, { cause });
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  if (scheme !== 'tcp' && scheme !== 'tls' && scheme !== 'ws' && scheme !== 'wss') {
    throw new ClientError('INVALID_ARGUMENT', `server URL scheme ${JSON.stringify(scheme)} is not one of tcp, tls, ws, wss`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new ClientError('INVALID_ARGUMENT', `server URL ${JSON.stringify(url)} has no host`);
  const port = parsed.port === '' ? DEFAULT_PORTS[scheme] : Number(parsed.port);
  return { scheme, host, port, url };
}

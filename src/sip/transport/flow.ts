// A flow is the path a message came on and its answer goes back on (RFC 5626 §3: "flow"):
// a UDP 5-tuple, or one TCP/TLS/WebSocket connection. The core sees only this interface.

export type TransportProtocol = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

export interface Endpoint {
  address: string;
  port: number;
}

export interface Flow {
  /** stable while the flow lives: identifies a connection, or a UDP peer on a local socket */
  readonly id: string;
  readonly protocol: TransportProtocol;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** connection-oriented (TCP, TLS, WS): no retransmissions, bindings die with the connection */
  readonly reliable: boolean;
  /** false when the flow is closed and the bytes could not be handed to the socket */
  send(data: Buffer): boolean;
  readonly closed: boolean;
  /**
   * Connections only (the transport's connection guard, guard.ts): a request on this flow passed
   * digest authentication, so what it holds no longer counts against the budget of
   * unauthenticated connections.
   */
  markTrusted?(): void;
  /**
   * Connections only: something that lives on this flow (a registration binding, a subscription)
   * lasts until then, epoch ms; the idle timeout does not close the connection before.
   */
  keepOpenUntil?(epochMs: number): void;
}

/** The Via transport token for a flow (RFC 3261 §20.42, RFC 7118 §5). */
export function viaTransport(protocol: TransportProtocol): string {
  return protocol.toUpperCase();
}

export function formatEndpoint(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

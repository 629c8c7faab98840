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
  /**
   * host:port the server names itself by on this flow (Via sent-by, Contact) when set: the
   * `sip.advertise` setting, for a server behind NAT or one whose local address is not the one
   * clients use. Absent: the flow's local address.
   */
  readonly advertised?: string;
  /** connection-oriented (TCP, TLS, WS): no retransmissions, bindings die with the connection */
  readonly reliable: boolean;
  /**
   * A partner organisation's connection (the federation link, mutual TLS): the DNS names of the
   * certificate the peer presented, verified against the trusted CAs at the handshake. Absent on
   * every flow of the organisation's own users and clients.
   */
  readonly partner?: PartnerPeer;
  /** false when the flow is closed and the bytes could not be handed to the socket */
  send(data: Buffer): boolean;
  /**
   * TCP and TLS only (absent elsewhere): sends text as UTF-8, as send(Buffer.from(text)) would,
   * without making that Buffer: the socket encodes the text as it writes it (a presence fan-out
   * sends 10,000 NOTIFYs of about 1 KiB in a burst; see src/events/notifier.ts).
   */
  sendText?(text: string): boolean;
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

/** Who is at the other end of a federation connection, as its certificate says. */
export interface PartnerPeer {
  /** the certificate's subject alternative DNS names (the subject CN when it has none), lower case */
  readonly names: readonly string[];
  /** for an outbound connection: the partner domain it was opened for (its SRV target or ProxyFqdn verified) */
  readonly openedFor?: string;
}

/** The Via transport token for a flow (RFC 3261 §20.42, RFC 7118 §5). */
export function viaTransport(protocol: TransportProtocol): string {
  return protocol.toUpperCase();
}

export function formatEndpoint(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** host:port of this server on a flow, for the Via and Contact it writes (RFC 3261 §18.1.1, §8.1.1.8). */
export function sentBy(flow: Pick<Flow, 'local' | 'advertised'>): string {
  return flow.advertised ?? formatEndpoint(flow.local);
}

/**
 * `sip.advertise` for one listener: host[:port] as configured, the listener's own port when the
 * setting names none (a NAT usually forwards the same port); undefined when not set.
 */
export function advertisedFor(advertise: string | undefined, port: number): string | undefined {
  if (advertise === undefined) return undefined;
  return /^\[.*\]:\d+$|^[^:\]]+:\d+$/.test(advertise) ? advertise : `${advertise}:${port}`;
}

// Connection limits of the stream transports (TCP, TLS, WebSocket) against resource exhaustion
// by peers that never sign in — what Kamailio calls tcp_connection_lifetime, tcp_msg_read_timeout
// and tcp_max_connections, plus per-source limits (its pike module) and a memory budget:
//
// - at most `maxPerSource` connections from one source (an IPv4 address, an IPv6 /64) and
//   `maxTotal` in all; past either, a new connection is closed at once;
// - a connection that has sent nothing for `idleTimeoutMs` is closed, unless a layer above keeps
//   it open (a registration binding or a subscription lives on it: `keepOpenUntil`), and then
//   it is closed `idleTimeoutMs` after that, if it stayed silent (a late refresh still finds it);
// - a message whose first byte came must be whole within `messageTimeoutMs` (slow senders);
// - the bytes held for unfinished messages by connections on which nothing has authenticated yet
//   (`markTrusted`) stay under `unauthenticatedBufferBudget` together: past it, the one holding
//   the most is closed, so that authenticated users keep being served.
//
// The guard decides; the transports report what they read and close what the guard aborts. One
// guard serves every stream listener of a server, so the limits count across TCP, TLS and WS.
// Time comes from `now` and the sweep runs on a timer only after start(): the logic is testable
// with a fake clock.

import type { Endpoint, TransportProtocol } from './flow.ts';

export interface ConnectionLimits {
  /** ms a connection may stay silent (nothing received), beyond what keeps it open */
  idleTimeoutMs: number;
  /** ms a message may take to arrive whole once its first byte came */
  messageTimeoutMs: number;
  /** open connections from one source address (IPv6: one /64) */
  maxPerSource: number;
  /** open connections over all stream transports */
  maxTotal: number;
  /** bytes held for unfinished messages by all unauthenticated connections together */
  unauthenticatedBufferBudget: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = Object.freeze({
  idleTimeoutMs: 60_000,
  messageTimeoutMs: 20_000,
  maxPerSource: 3000,
  maxTotal: 50_000,
  unauthenticatedBufferBudget: 16 * 1024 * 1024,
});

/** Why the guard refused or closed a connection; stable, for logs and tests. */
export const CONNECTION_GUARD_CODES = {
  SOURCE_LIMIT: 'SIP_CONNECTION_SOURCE_LIMIT',
  TOTAL_LIMIT: 'SIP_CONNECTION_TOTAL_LIMIT',
  IDLE: 'SIP_CONNECTION_IDLE',
  MESSAGE_TIMEOUT: 'SIP_CONNECTION_MESSAGE_TIMEOUT',
  BUFFER_BUDGET: 'SIP_CONNECTION_BUFFER_BUDGET',
  /** the listening socket could not accept (out of file descriptors, say) */
  ACCEPT_FAILED: 'SIP_CONNECTION_ACCEPT_FAILED',
} as const;
export type ConnectionGuardCode = (typeof CONNECTION_GUARD_CODES)[keyof typeof CONNECTION_GUARD_CODES];

export interface ConnectionGuardEvent {
  code: ConnectionGuardCode;
  protocol: TransportProtocol;
  /** the peer; null for an accept that failed before there was one */
  remote: Endpoint | null;
  /** the flow, once the connection was one */
  flow: string | null;
  message: string;
}

const C = CONNECTION_GUARD_CODES;

/**
 * A connection as the guard sees it. Its bookkeeping lives on the connection object itself (the
 * transports' flows extend this class), so a guarded connection costs no object of its own: idle
 * WebSocket registrations are many.
 */
export abstract class GuardedConnection {
  abstract readonly id: string;
  abstract readonly protocol: TransportProtocol;
  abstract readonly remote: Endpoint;
  readonly guard: ConnectionGuard;
  /** when something was last received, epoch ms */
  lastActive: number;
  /** when the unfinished message began to arrive; 0: none */
  partialSince = 0;
  /** bytes held for the unfinished message (counted against the budget until trusted) */
  held = 0;
  /** a request on this connection passed authentication */
  trusted = false;
  /** kept open until then (epoch ms) by what lives on it */
  keepUntil = 0;
  /** no longer watched: closed, or being closed by the guard */
  ended = false;

  constructor(guard: ConnectionGuard) {
    this.guard = guard;
    this.lastActive = guard.now();
  }

  /** closes the connection at once; the transport then reports the flow closed as usual */
  abstract abort(): void;

  /** Flow.markTrusted: a request on this connection passed digest authentication. */
  markTrusted(): void {
    this.guard.trust(this);
  }

  /** Flow.keepOpenUntil: something that lives on this connection lasts until then (epoch ms). */
  keepOpenUntil(epochMs: number): void {
    if (epochMs > this.keepUntil) this.keepUntil = epochMs;
  }
}

export class ConnectionGuard {
  readonly limits: Readonly<ConnectionLimits>;
  readonly #report: (event: ConnectionGuardEvent) => void;
  readonly #now: () => number;
  /** source → open connections counted against it */
  readonly #perSource = new Map<string, number>();
  #total = 0;
  readonly #open = new Set<GuardedConnection>();
  /** untrusted connections holding bytes: the only ones the budget may close */
  readonly #holding = new Set<GuardedConnection>();
  #untrustedHeld = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(limits: Readonly<ConnectionLimits>, report: (event: ConnectionGuardEvent) => void, now: () => number = Date.now) {
    this.limits = limits;
    this.#report = report;
    this.#now = now;
  }

  now(): number {
    return this.#now();
  }

  /** what the guard counts now, for logs and tests */
  get usage(): { total: number; sources: number; watched: number; unauthenticatedHeld: number } {
    return { total: this.#total, sources: this.#perSource.size, watched: this.#open.size, unauthenticatedHeld: this.#untrustedHeld };
  }

  /** Open connections per transport (a scan: for /metrics, not for a request path). */
  countByProtocol(): Map<TransportProtocol, number> {
    const counts = new Map<TransportProtocol, number>();
    for (const c of this.#open) counts.set(c.protocol, (counts.get(c.protocol) ?? 0) + 1);
    return counts;
  }

  /**
   * Counts a new connection against the limits: its source, to release() when the connection
   * closes; or null when it is refused (reported), and the caller closes it at once.
   */
  admit(protocol: TransportProtocol, remote: Endpoint): string | null {
    const source = sourceOf(remote.address);
    const { maxTotal, maxPerSource } = this.limits;
    if (this.#total >= maxTotal) {
      this.#report({ code: C.TOTAL_LIMIT, protocol, remote, flow: null, message: `connection from ${remote.address} refused: ${this.#total} connections are open, the most the server takes` });
      return null;
    }
    const count = this.#perSource.get(source) ?? 0;
    if (count >= maxPerSource) {
      this.#report({ code: C.SOURCE_LIMIT, protocol, remote, flow: null, message: `connection from ${remote.address} refused: ${count} connections from ${source} are open, the most one source may have` });
      return null;
    }
    this.#perSource.set(source, count + 1);
    this.#total++;
    return source;
  }

  /** The connection counted by admit() closed. */
  release(source: string): void {
    const count = this.#perSource.get(source);
    if (count === undefined) return;
    if (count <= 1) this.#perSource.delete(source);
    else this.#perSource.set(source, count - 1);
    this.#total--;
  }

  /** Starts watching a connection for the timeouts and the budget. */
  track(c: GuardedConnection): void {
    c.lastActive = this.#now();
    this.#open.add(c);
  }

  /** The connection closed: it is no longer watched. */
  untrack(c: GuardedConnection): void {
    if (c.ended) return;
    c.ended = true;
    this.#open.delete(c);
    this.#forget(c);
  }

  /**
   * A transport read bytes on the connection. `held`: bytes it now holds for an unfinished
   * message; `midMessage`: one is unfinished; `completed`: a message (or a keep-alive) ended in
   * these bytes, so an unfinished one began in them.
   */
  received(c: GuardedConnection, held: number, midMessage: boolean, completed: boolean): void {
    if (c.ended) return;
    const now = this.#now();
    c.lastActive = now;
    if (!midMessage) c.partialSince = 0;
    else if (completed || c.partialSince === 0) c.partialSince = now;
    if (c.trusted) return;
    const delta = held - c.held;
    if (delta === 0) return;
    c.held = held;
    this.#untrustedHeld += delta;
    if (held > 0) this.#holding.add(c);
    else this.#holding.delete(c);
    if (delta > 0 && this.#untrustedHeld > this.limits.unauthenticatedBufferBudget) this.#overBudget();
  }

  /** A request on the connection passed authentication: its bytes no longer count against the budget. */
  trust(c: GuardedConnection): void {
    if (c.trusted) return;
    this.#forget(c);
    c.trusted = true;
  }

  /** Closes the connections past their timeouts; runs on the guard's timer after start(). */
  sweep(): void {
    const now = this.#now();
    const { idleTimeoutMs, messageTimeoutMs } = this.limits;
    for (const c of this.#open) {
      if (c.partialSince !== 0 && now - c.partialSince >= messageTimeoutMs) {
        const seconds = seconds1(now - c.partialSince);
        this.#abort(c, C.MESSAGE_TIMEOUT, `connection from ${c.remote.address} closed: a message began to arrive ${seconds} s ago and is still incomplete (${c.held} bytes held)`);
      } else if (now - Math.max(c.lastActive, c.keepUntil) >= idleTimeoutMs) {
        const kept = c.keepUntil > 0 ? '; what kept it open has expired' : '';
        this.#abort(c, C.IDLE, `connection from ${c.remote.address} closed: nothing received for ${seconds1(now - c.lastActive)} s${kept}`);
      }
    }
  }

  /** A TLS handshake did not complete within the message timeout (the TLS server closes it). */
  handshakeTimedOut(remote: Endpoint): void {
    this.#report({ code: C.MESSAGE_TIMEOUT, protocol: 'tls', remote, flow: null, message: `connection from ${remote.address} closed: its TLS handshake was not complete within ${seconds1(this.limits.messageTimeoutMs)} s` });
  }

  /** A listening socket failed to accept a connection. */
  acceptFailed(protocol: TransportProtocol, err: Error): void {
    this.#report({ code: C.ACCEPT_FAILED, protocol, remote: null, flow: null, message: `accepting a ${protocol} connection failed: ${err.message}` });
  }

  /** Sweeps on a timer, often enough for the shorter timeout to be kept within a quarter of it (at most 1 s late). */
  start(): void {
    if (this.#timer !== null) return;
    const { idleTimeoutMs, messageTimeoutMs } = this.limits;
    const every = Math.min(1000, Math.max(50, Math.min(idleTimeoutMs, messageTimeoutMs) / 4));
    this.#timer = setInterval(() => this.sweep(), every);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Closes the untrusted connections holding the most until the budget is kept. */
  #overBudget(): void {
    const budget = this.limits.unauthenticatedBufferBudget;
    while (this.#untrustedHeld > budget) {
      let worst: GuardedConnection | null = null;
      // the newest of those holding the most: the ones there first are not pushed out by newcomers
      for (const c of this.#holding) if (worst === null || c.held >= worst.held) worst = c;
      if (worst === null) return;
      const total = this.#untrustedHeld;
      this.#abort(worst, C.BUFFER_BUDGET, `connection from ${worst.remote.address} closed: unauthenticated connections held ${total} bytes of unfinished messages, over the budget of ${budget}; this one held the most (${worst.held})`);
    }
  }

  #abort(c: GuardedConnection, code: ConnectionGuardCode, message: string): void {
    this.#report({ code, protocol: c.protocol, remote: c.remote, flow: c.id, message });
    this.untrack(c);
    c.abort();
  }

  /** Takes the connection's bytes out of the budget. */
  #forget(c: GuardedConnection): void {
    if (!c.trusted && c.held !== 0) this.#untrustedHeld -= c.held;
    c.held = 0;
    this.#holding.delete(c);
  }
}

function seconds1(ms: number): string {
  return (ms / 1000).toFixed(1);
}

/**
 * The source a connection counts against: its IPv4 address (an IPv4-mapped IPv6 address is
 * the IPv4 one), or the /64 of an IPv6 address — one site gets a /64, and an attacker with one
 * gets 2^64 addresses.
 */
export function sourceOf(address: string): string {
  const zone = address.indexOf('%');
  const a = (zone < 0 ? address : address.slice(0, zone)).toLowerCase();
  if (!a.includes(':')) return a;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1] as string;
  const [head = '', tail] = a.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  // an embedded IPv4 address at the end fills two groups
  const width = (groups: string[]) => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const missing = tail === undefined ? 0 : Math.max(0, 8 - width(headGroups) - width(tailGroups));
  const groups = [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
  const prefix = groups.slice(0, 4).map((g) => (g.includes('.') ? g : (parseInt(g, 16) || 0).toString(16)));
  while (prefix.length < 4) prefix.push('0');
  return `${prefix.join(':')}::/64`;
}

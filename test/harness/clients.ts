// SDK clients for the end-to-end tests: users of a running `parley serve` connected over TCP or
// WebSocket with the test password `<user>-pw`, all closed at the end; and queues of what arrives
// at them (NOTIFYs, UA events), awaited one by one.
import { SipClient, type NodeSipClientOptions } from '../../src/client/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import type { RunningServer } from './server.ts';

export interface ConnectOptions extends Partial<NodeSipClientOptions> {
  /** the server's SIP over TCP (default) or its WebSocket endpoint */
  over?: 'tcp' | 'ws';
  /** register ({ expires: 300 }) once connected */
  register?: boolean;
}

export interface SdkClients {
  /** A connected SipClient for `user@domain` (password `<user>-pw` unless given). */
  connect(user: string, options?: ConnectOptions): Promise<SipClient>;
  /** Closes every client made so far (errors ignored); for `after`. */
  closeAll(): Promise<void>;
}

/**
 * Clients of the server `server()` returns (asked anew for each client: a restarted server has
 * other ports). `defaults` apply to every connect; the built-in ones are a 5 s request timeout and
 * no keep-alive pings.
 */
export function sdkClients(server: () => RunningServer, domain: string, defaults: ConnectOptions = {}): SdkClients {
  const clients: SipClient[] = [];
  return {
    async connect(user, options = {}) {
      const { over = 'tcp', register = false, ...overrides } = { ...defaults, ...options };
      const s = server();
      const c = new SipClient({
        server: over === 'tcp' ? `tcp://${s.tcp.host}:${s.tcp.port}` : s.wsUrl,
        aor: `sip:${user}@${domain}`,
        password: `${user}-pw`,
        requestTimeoutMs: 5000,
        keepAliveIntervalMs: 0,
        ...overrides,
      });
      clients.push(c);
      await c.connect();
      if (register) await c.register({ expires: 300 });
      return c;
    },
    async closeAll() {
      await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    },
  };
}

/** Values in order of arrival, handed out one by one. */
export interface Arrivals<T> {
  /** The next value: a queued one, or the next to arrive within `timeoutMs`. */
  next(timeoutMs?: number): Promise<T>;
  /** how many arrived that no `next` has taken */
  readonly queued: number;
}

export interface ArrivalsOptions {
  /** what arrives, for the timeout's message */
  what?: string;
  /** how long `next()` waits by default; 10 000 ms: a generous bound (the tests run four files at once on two cores), waited out only when something is missing */
  timeoutMs?: number;
  /** more to say when `next()` times out (server logs, say) */
  context?: () => string;
}

/** Collects what `listen` pushes (call it with a listener: `(push) => ua.on('event', push)`). */
export function arrivals<T>(listen: (push: (value: T) => void) => void, options: ArrivalsOptions = {}): Arrivals<T> {
  const { what = 'event', timeoutMs: defaultTimeoutMs = 10_000, context } = options;
  const queue: T[] = [];
  const waiting: Array<(value: T) => void> = [];
  listen((value) => {
    const w = waiting.shift();
    if (w) w(value);
    else queue.push(value);
  });
  return {
    next(timeoutMs = defaultTimeoutMs): Promise<T> {
      if (queue.length > 0) return Promise.resolve(queue.shift() as T);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${what} arrived within ${timeoutMs} ms${context ? `\n${context()}` : ''}`)), timeoutMs);
        waiting.push((value) => {
          clearTimeout(timer);
          resolve(value);
        });
      });
    },
    get queued(): number {
      return queue.length;
    },
  };
}

/** Answers every NOTIFY to `c` with 200 (any other request with 405) and hands them out in order of arrival. */
export function notifications(c: SipClient): Arrivals<SipRequest> {
  return arrivals<SipRequest>(
    (push) =>
      c.on('request', (request) => {
        if (request.method !== 'NOTIFY') {
          c.respond(request, 405);
          return;
        }
        c.respond(request, 200);
        push(request);
      }),
    { what: 'NOTIFY' },
  );
}

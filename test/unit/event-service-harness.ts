// The event service in-process for unit tests: SUBSCRIBE through the handler with a fake context
// (no sockets), a test package, and a fake transaction layer that records the NOTIFYs; the test
// answers them. Used by events-service.test.ts, events-limits.test.ts and cluster-presence.test.ts
// (two of these as two nodes, with one clock).
import pino from 'pino';
import { EventService } from '../../src/events/index.ts';
import type { Authorization, EventPackage, SubscriptionLimits, Subscription } from '../../src/events/index.ts';
import { ManualTimers } from '../../src/events/timers.ts';
import type { Incoming, MethodHandler, SipContext } from '../../src/router/context.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';
import { createResponseMessage, parseMessage } from '../../src/sip/index.ts';

export const logger = pino({ level: 'silent' });
export const DOMAIN = 'parley.test';
export const tick = (): Promise<unknown> => new Promise((r) => setImmediate(r));

/** A package whose documents are whatever the test puts in `state`. */
export function testPackage(name = 'x-test', state = new Map<string, string>()): EventPackage & { state: Map<string, string> } {
  return {
    name,
    contentType: 'text/plain',
    expiry: { min: 60, max: 600, default: 300 },
    state,
    authorize(_ctx: SipContext, watcher: string, resource: string): Authorization {
      return watcher.startsWith('mallory') ? { status: 403, warning: `${watcher} may not watch ${resource}` } : 'ok';
    },
    body(sub: Subscription): string {
      return state.get(sub.resource) ?? 'nothing';
    },
  };
}

export interface SubscribeOptions {
  from?: string;
  to?: string;
  event?: string | null;
  expires?: number;
  accept?: string;
  callId?: string;
  fromTag?: string;
  toTag?: string;
  /** the connection it arrives on (default tcp#1); NOTIFYs take it */
  flow?: string;
  /** more header lines, e.g. `Supported: eventlist` */
  headers?: string[];
}

export interface SetupOptions {
  limits?: SubscriptionLimits;
  users?: string[];
  /** the clock (default: one of its own); nodes of a cluster share one */
  clock?: ManualTimers;
  /** more of the context: what the packages read of it (`registrations`, `location` for presence) */
  context?: Record<string, unknown>;
}

export function setup(packages: EventPackage[] = [testPackage()], opts: SetupOptions = {}) {
  const clock = opts.clock ?? new ManualTimers();
  const notifies: Array<{ request: SipRequest; user: ClientTransactionUser }> = [];
  const transactions = {
    sendRequest(request: SipRequest, _flow: Flow, user: ClientTransactionUser) {
      notifies.push({ request, user });
      return undefined as never;
    },
  };
  const responses: SipResponse[] = [];
  const flows = new Map<string, Flow>();
  const flowOf = (id: string): Flow => {
    let flow = flows.get(id);
    if (flow === undefined) {
      flow = {
        id, protocol: 'tcp', local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 + flows.size }, reliable: true, closed: false,
        send(data: Buffer) {
          responses.push(parseMessage(data) as SipResponse);
          return true;
        },
      };
      flows.set(id, flow);
    }
    return flow;
  };
  const users = new Set((opts.users ?? ['alice', 'bob', 'mallory']).map((u) => `${u}@${DOMAIN}`));
  const events = new EventService({ packages, timers: clock, ...(opts.limits === undefined ? {} : { limits: opts.limits }) });
  const ctx = {
    domain: DOMAIN, product: 'Parley/test', logger, transactions, now: clock.now,
    resolveFlow: (ref: { id: string }) => flows.get(ref.id),
    userExists: (a: string) => users.has(a),
    // the watcher is whoever the From header names: authentication is tested elsewhere
    auth: { authenticate: (r: SipRequest) => ({ ok: true, address: /<sip:([^>]+)>/.exec(r.headers.get('from') ?? '')?.[1] }) },
    events,
    ...opts.context,
  } as unknown as SipContext;
  events.start(ctx);
  const [handler] = events.handlers;
  let cseq = 1;
  /** `lines` (a request without its blank line) through `via`, as if it came on connection `flow`; the response it got */
  async function send(via: MethodHandler, lines: string[], flow = 'tcp#1', body = '') {
    const text = [...lines, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
    const request = parseMessage(Buffer.from(text)) as SipRequest;
    const incoming: Incoming = { request, flow: flowOf(flow), tx: null, log: logger };
    const before = responses.length;
    await via.handle(ctx, incoming);
    await tick();
    return responses.length > before ? responses.at(-1)! : undefined;
  }
  async function subscribe(o: SubscribeOptions) {
    const from = o.from ?? 'alice';
    const to = o.to ?? `bob@${DOMAIN}`;
    const lines = [
      `SUBSCRIBE sip:${to} SIP/2.0`,
      `Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK${Math.random().toString(36).slice(2)}`,
      'Max-Forwards: 70',
      `From: <sip:${from}@${DOMAIN}>;tag=${o.fromTag ?? 'ft'}`,
      `To: <sip:${to}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
      `Call-ID: ${o.callId ?? `call-${cseq}`}`,
      `CSeq: ${cseq++} SUBSCRIBE`,
      `Contact: <sip:${from}@127.0.0.1:40000;transport=tcp>`,
      ...(o.event === null ? [] : [`Event: ${o.event ?? 'x-test'}`]),
      ...(o.expires === undefined ? [] : [`Expires: ${o.expires}`]),
      ...(o.accept === undefined ? [] : [`Accept: ${o.accept}`]),
      ...(o.headers ?? []),
    ];
    await send(handler!, lines, o.flow);
    return responses.at(-1)!;
  }
  const answer = (i: number, status = 200) => notifies[i]!.user.onFinal(createResponseMessage(status, 'x') as SipResponse);
  /** answers every NOTIFY not yet answered with `status` */
  let answered = 0;
  const answerAll = (status = 200) => {
    while (answered < notifies.length) answer(answered++, status);
  };
  const tagOf = (header: string | undefined) => /tag=([^;>]+)/.exec(header ?? '')?.[1];
  /** closes a connection: its flow is gone for resolveFlow, and the service hears of it */
  const closeFlow = (id: string) => {
    const flow = flows.get(id);
    if (flow !== undefined) (flow as { closed: boolean }).closed = true;
    flows.delete(id);
    events.flowClosed(id);
  };
  return { clock, ctx, events, notifies, responses, send, subscribe, answer, answerAll, tagOf, users, closeFlow };
}

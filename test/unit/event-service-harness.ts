// The event service in-process for unit tests: SUBSCRIBE through the handler with a fake context
// (no sockets), a test package, and a fake transaction layer that records the NOTIFYs; the test
// answers them. Used by events-service.test.ts and events-limits.test.ts.
import pino from 'pino';
import { EventService } from '../../src/events/index.ts';
import type { Authorization, EventPackage, SubscriptionLimits, Subscription } from '../../src/events/index.ts';
import { ManualTimers } from '../../src/events/timers.ts';
import type { Incoming, SipContext } from '../../src/router/context.ts';
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
}

export function setup(packages: EventPackage[] = [testPackage()], opts: { limits?: SubscriptionLimits; users?: string[] } = {}) {
  const clock = new ManualTimers();
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
  } as unknown as SipContext;
  events.start(ctx);
  const [handler] = events.handlers;
  let cseq = 1;
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
      'Content-Length: 0', '', '',
    ];
    const request = parseMessage(Buffer.from(lines.join('\r\n'))) as SipRequest;
    const incoming: Incoming = { request, flow: flowOf(o.flow ?? 'tcp#1'), tx: null, log: logger };
    await handler!.handle(ctx, incoming);
    await tick();
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
  return { clock, events, notifies, responses, subscribe, answer, answerAll, tagOf, users, closeFlow };
}

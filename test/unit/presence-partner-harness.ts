// Presence across organisations in-process (issue 15): the event service with the presence package,
// a fake context whose federation gate is a small fake of the FederationGate interface, fake flows
// (local clients' and partners' connections) and a fake transaction layer that records every
// request sent; the test answers them. No sockets. Used by presence-partner.test.ts and
// dialog-proxy.test.ts.
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { EventService, ManualTimers } from '../../src/events/index.ts';
import { PresenceService } from '../../src/presence/service.ts';
import type { Binding } from '../../src/registrar/index.ts';
import type { FederationGate, FederationRefusal, Incoming, MethodHandler, PartnerConnection, SipContext } from '../../src/router/context.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';
import { createResponse, parseMessage, serialize } from '../../src/sip/index.ts';

export const logger = pino({ level: 'silent' });
export const DOMAIN = 'org-a.test';
export const PARTNER = 'org-b.test';
/** how org-a names itself towards partners */
export const FED = 'sip.org-a.test:5061';
export const tick = (): Promise<unknown> => new Promise((r) => setImmediate(r));

export interface SentRequest {
  request: SipRequest;
  flow: Flow;
  user: ClientTransactionUser;
}

export interface FakeFlow extends Flow {
  closed: boolean;
  /** what the flow carried back: responses to the requests that came on it */
  responses: SipResponse[];
  keptOpenUntil: number | undefined;
}

/** The fake gate: partners' certificates name `sip.<domain>`; refusals as the test sets them. */
export class FakeGate implements FederationGate {
  readonly sentBy: string;
  /** domains (outbound and inbound) the decision refuses */
  readonly refusedDomains = new Set<string>();
  /** local users whose policy keeps them from partners */
  readonly notEnabled = new Set<string>();
  /** what connect() answers; ok with a new partner flow each time by default */
  connectFails: PartnerConnection | undefined;
  readonly connects: string[] = [];
  readonly inboundAsked: Array<{ flow: string; domain: string; recipient: string | undefined }> = [];
  readonly #newFlow: (domain: string) => Flow;
  readonly #users: Set<string>;

  constructor(newFlow: (domain: string) => Flow, users: Set<string>, sentBy = FED) {
    this.sentBy = sentBy;
    this.#newFlow = newFlow;
    this.#users = users;
  }

  async outboundRefusal(sender: string, domain: string): Promise<FederationRefusal | null> {
    if (this.refusedDomains.has(domain)) return { code: 'DOMAIN_BLOCKED', warning: `${domain} is blocked (Remove-CsBlockedDomain ${domain})` };
    if (this.notEnabled.has(sender)) return { code: 'USER_NOT_ENABLED', warning: `${sender} may not talk to partners (EnableFederationAccess)` };
    return null;
  }

  async inboundRefusal(flow: Flow, fromDomain: string, recipient: string | undefined): Promise<FederationRefusal | null> {
    this.inboundAsked.push({ flow: flow.id, domain: fromDomain, recipient });
    if (!(flow.partner?.names ?? []).includes(`sip.${fromDomain}`)) return { code: 'PARTNER_NOT_VERIFIED', warning: `the certificate names ${flow.partner?.names.join(', ')}, not sip.${fromDomain}` };
    if (this.refusedDomains.has(fromDomain)) return { code: 'DOMAIN_BLOCKED', warning: `${fromDomain} is blocked` };
    if (recipient !== undefined && (!this.#users.has(recipient) || this.notEnabled.has(recipient))) return { code: 'USER_NOT_ENABLED', warning: `${recipient} cannot be reached from ${fromDomain}` };
    return null;
  }

  async connect(domain: string): Promise<PartnerConnection> {
    this.connects.push(domain);
    return this.connectFails ?? { ok: true, flow: this.#newFlow(domain) };
  }
}

export interface SetupOptions {
  federation?: boolean;
  blocked?: Array<[watcher: string, presentity: string]>;
  /** the organisation's domain, default org-a.test; it names itself sip.<domain>:5061 to partners */
  domain?: string;
  /** user names of the organisation, default alice, bob, carol */
  users?: string[];
  /** the server's local address, default 127.0.0.1 */
  address?: string;
  /** the dialog proxy's key (a cluster's nodes share one); default a random one */
  dialogKey?: Uint8Array;
}

export function setup(opts: SetupOptions = {}) {
  const domain = opts.domain ?? DOMAIN;
  const address = opts.address ?? '127.0.0.1';
  const clock = new ManualTimers();
  const sent: SentRequest[] = [];
  const transactions = {
    sendRequest(request: SipRequest, flow: Flow, user: ClientTransactionUser) {
      sent.push({ request, flow, user });
      return undefined as never;
    },
  };
  const flows = new Map<string, FakeFlow>();
  let port = 40000;
  const makeFlow = (id: string, partner?: { names: string[]; openedFor?: string }, protocol: Flow['protocol'] = partner ? 'tls' : 'tcp'): FakeFlow => {
    const flow: FakeFlow = {
      id, protocol, reliable: true, closed: false, responses: [], keptOpenUntil: undefined,
      local: { address, port: partner ? 5061 : 5060 },
      remote: { address: partner ? '192.0.2.1' : address, port: port++ },
      ...(partner ? { partner } : {}),
      send(data: Buffer) {
        flow.responses.push(parseMessage(data) as SipResponse);
        return true;
      },
      keepOpenUntil(at: number) {
        flow.keptOpenUntil = at;
      },
    };
    flows.set(id, flow);
    return flow;
  };
  let partnerFlows = 0;
  const users = new Set((opts.users ?? ['alice', 'bob', 'carol']).map((u) => `${u}@${domain}`));
  const gate = new FakeGate((to) => makeFlow(`tls#out${++partnerFlows}`, { names: [`sip.${to}`], openedFor: to }), users, `sip.${domain}:5061`);
  const blocked = new Set((opts.blocked ?? []).map(([w, p]) => `${w}\n${p}`));
  const presence = new PresenceService({ timers: clock, isBlocked: (w, p) => blocked.has(`${w}\n${p}`) });
  const summary = { name: 'message-summary', contentType: 'application/simple-message-summary', authorize: () => 'ok' as const, body: () => 'Messages-Waiting: no\r\n' };
  const events = new EventService({ packages: [presence, summary], timers: clock, ...(opts.dialogKey === undefined ? {} : { dialogKey: opts.dialogKey }) });
  const online = new Set<string>();
  const registrations = new EventEmitter<{ changed: [aor: string] }>();
  /** who digest authentication was asked for: never a partner */
  const authenticated: string[] = [];
  const ctx = {
    domain, product: 'Parley/test', logger, transactions, now: clock.now, registrations,
    isOwnHost: (host: string) => [`sip.${domain}`, address].includes(host.toLowerCase()),
    resolveFlow: (ref: { id: string }) => flows.get(ref.id),
    userExists: (a: string) => users.has(a),
    displayName: () => null,
    location: { lookup: async (aor: string) => (online.has(aor) ? [{ aor } as Binding] : []) },
    // the sender is whoever the From header names: digest itself is tested elsewhere
    auth: {
      authenticate: (r: SipRequest) => {
        const address = /<sip:([^>;]+)>/.exec(r.headers.get('from') ?? '')?.[1] ?? '';
        authenticated.push(address);
        return { ok: true, address };
      },
    },
    events,
    ...(opts.federation === false ? {} : { federation: gate }),
  } as unknown as SipContext;
  events.start(ctx);
  const byMethod = new Map<string, MethodHandler>(events.handlers.map((h) => [h.method, h]));

  /** what the handlers threw: a test fails on it in done() */
  const failures: unknown[] = [];
  /**
   * A request arrives on `flow`; resolves once the handler answered or sent something on (a
   * forwarded request waits for the test to answer it: the handler is not awaited to its end).
   */
  async function receive(flow: FakeFlow, lines: string[], body = ''): Promise<Incoming> {
    const text = [...lines, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
    return receiveRequest(flow, parseMessage(Buffer.from(text)) as SipRequest);
  }

  /** As receive(), for a request another server sent (through the wire and back, as over a connection). */
  async function receiveRequest(flow: FakeFlow, sentRequest: SipRequest): Promise<Incoming> {
    const request = parseMessage(serialize(sentRequest)) as SipRequest;
    const incoming: Incoming = { request, flow, tx: null, log: logger };
    const handler = byMethod.get(request.method);
    if (handler === undefined) throw new Error(`no handler for ${request.method}`);
    Promise.resolve(handler.handle(ctx, incoming)).catch((err: unknown) => failures.push(err));
    for (let i = 0; i < 5; i++) await tick();
    if (failures.length > 0) throw failures[0];
    return incoming;
  }

  /** Answers a request sent through the fake transaction layer, as its recipient would. */
  function answer(i: number, status = 200, extra: Array<[string, string]> = []): SipResponse {
    const s = sent[i];
    if (s === undefined) throw new Error(`no request #${i}`);
    const response = createResponse(s.request, status);
    for (const [n, v] of extra) response.headers.append(n, v);
    // through the wire and back, as a real answer would be
    const parsed = parseMessage(serialize(response)) as SipResponse;
    s.user.onFinal(parsed);
    return parsed;
  }

  const closeFlow = (id: string) => {
    const flow = flows.get(id);
    if (flow !== undefined) flow.closed = true;
    flows.delete(id);
    events.flowClosed(id);
  };

  /** Hands a response from elsewhere (another server's) to the transaction of request #i. */
  function deliver(i: number, response: SipResponse): void {
    const s = sent[i];
    if (s === undefined) throw new Error(`no request #${i}`);
    s.user.onFinal(parseMessage(serialize(response)) as SipResponse);
  }

  return { clock, ctx, events, presence, gate, sent, flows, makeFlow, receive, receiveRequest, answer, deliver, closeFlow, online, users, blocked, authenticated };
}

export const tagOf = (header: string | undefined): string | undefined => /tag=([^;>]+)/.exec(header ?? '')?.[1];

let branches = 0;
export const branch = (): string => `z9hG4bK-test-${++branches}`;

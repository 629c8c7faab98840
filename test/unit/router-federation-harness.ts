// What the router's federation unit tests share: a SipContext with small fakes of the interfaces
// around the router (the FederationGate, the transaction layer, the registrar's location service,
// the offline hand-off, Conversation History, the authenticator) and flows that keep what they are
// sent. No sockets. parley.test is this organisation (alice, bob, and carol who may not federate);
// org-b.test a partner whose certificate names sip.org-b.test.
import pino from 'pino';
import type { Binding } from '../../src/registrar/location.ts';
import type { FederationGate, FederationRefusal, Incoming, PartnerConnection, RecordedMessage, SipContext } from '../../src/router/context.ts';
import type { OfflineDecision, OfflineMessage } from '../../src/offline/service.ts';
import { createResponse, parseMessage } from '../../src/sip/index.ts';
import type { ClientTransactionUser, Flow, PartnerPeer, SipRequest, SipResponse } from '../../src/sip/index.ts';

export const logger = pino({ level: 'silent' });
export const D = 'parley.test';
export const ALICE = `alice@${D}`;
export const BOB = `bob@${D}`;
export const CAROL = `carol@${D}`;
export const DAVE = 'dave@org-b.test';
export const SENT_BY = 'sip.parley.test:5061';
const USERS = new Map([[ALICE, 'Alice Liddell'], [BOB, 'Bob Builder'], [CAROL, 'Carol Closed']]);
/** who may talk to partners (EnableFederationAccess) */
const FEDERATING = new Set([ALICE, BOB]);
/** the gate's one text for a recipient who does not exist and one who is not enabled */
export const NOT_ENABLED = 'the recipient may not receive messages from other organisations (their CsExternalAccessPolicy does not enable federation)';

/** What a partner (or a device) does with a request sent to it. */
export type Answer = SipResponse | 'timeout' | 'transport-error' | 'never';

export interface Sent {
  request: SipRequest;
  flow: Flow;
}

export interface HarnessOptions {
  /** no ctx.federation: the link is not configured */
  noFederation?: boolean;
  /** outbound refusals by partner domain */
  outboundRefusals?: Record<string, FederationRefusal>;
  /** partner domains gate.connect cannot reach */
  unreachable?: Record<string, { status: 480 | 503; warning: string }>;
  /** registered users (their one binding each) */
  online?: string[];
  /** what the offline hand-off decides */
  offline?: (m: OfflineMessage) => OfflineDecision;
}

export function flowOf(id: string, partner?: PartnerPeer): Flow & { sent: SipResponse[] } {
  const sent: SipResponse[] = [];
  return {
    id,
    protocol: partner === undefined ? 'tcp' : 'tls',
    local: { address: '127.0.0.1', port: partner === undefined ? 5060 : 5061 },
    remote: { address: '127.0.0.2', port: 40000 },
    reliable: true,
    closed: false,
    ...(partner === undefined ? {} : { partner }),
    send(data: Buffer) {
      sent.push(parseMessage(data) as SipResponse);
      return true;
    },
    sent,
  } as Flow & { sent: SipResponse[] };
}

export function setup(answer: (sent: Sent) => Answer, o: HarnessOptions = {}) {
  const sent: Sent[] = [];
  const offered: OfflineMessage[] = [];
  const recorded: RecordedMessage[] = [];
  const connected: string[] = [];
  const inbound: Array<{ fromDomain: string; recipient: string | undefined }> = [];
  let authCalls = 0;
  const partnerOut = flowOf('tls#to-org-b', { names: ['sip.org-b.test'], openedFor: 'org-b.test' });
  const devices = new Map<string, Flow>();
  const gate: FederationGate = {
    sentBy: SENT_BY,
    outboundRefusal: async (_sender, domain) => o.outboundRefusals?.[domain] ?? null,
    async inboundRefusal(flow, fromDomain, recipient) {
      inbound.push({ fromDomain, recipient });
      const names = flow.partner?.names ?? [];
      if (!names.includes(`sip.${fromDomain}`)) return { code: 'PARTNER_NOT_VERIFIED', warning: `the connection's certificate (${names.join(', ')}) is not ${fromDomain}'s federation proxy` };
      if (recipient !== undefined && !FEDERATING.has(recipient)) return { code: 'USER_NOT_ENABLED', warning: NOT_ENABLED };
      return null;
    },
    async connect(domain): Promise<PartnerConnection> {
      connected.push(domain);
      const down = o.unreachable?.[domain];
      return down === undefined ? { ok: true, flow: partnerOut } : { ok: false, ...down };
    },
  };
  let entries = 0;
  const ctx = {
    domain: D,
    product: 'Parley/test',
    logger,
    now: Date.now,
    isOwnHost: (host: string) => host === '127.0.0.1' || host === 'sip.parley.test',
    allow: ['REGISTER', 'MESSAGE', 'OPTIONS', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH'],
    messaging: { maxBody: 65536, deviceTimeout: 10 },
    auth: {
      // the digest check of a local user: alice when the request carries credentials, else a challenge
      async authenticate(request: SipRequest) {
        authCalls++;
        if (request.headers.has('proxy-authorization')) return { ok: true, address: ALICE };
        return { ok: false, status: 407, headers: [['Proxy-Authenticate', 'Digest realm="parley.test", nonce="n"']], warning: 'credentials needed' };
      },
    },
    userExists: async (a: string) => USERS.has(a),
    user: async (a: string) => (USERS.has(a) ? { displayName: USERS.get(a) ?? null } : undefined),
    location: {
      async lookup(aor: string) {
        if (!(o.online ?? []).includes(aor)) return [];
        const ref = { id: `tcp#${aor}`, protocol: 'tcp', local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.3', port: 41000 } };
        devices.set(ref.id, flowOf(ref.id));
        return [{ aor, contact: `sip:${aor.split('@')[0]}@127.0.0.3:41000;transport=tcp`, flow: ref } as unknown as Binding];
      },
    },
    resolveFlow: (ref: { id: string }) => devices.get(ref.id),
    transactions: {
      sendRequest(request: SipRequest, flow: Flow, user: ClientTransactionUser) {
        sent.push({ request, flow });
        const a = answer({ request, flow });
        queueMicrotask(() => {
          if (a === 'timeout') user.onTimeout();
          else if (a === 'transport-error') user.onTransportError();
          else if (a !== 'never') user.onFinal(a);
        });
        return undefined as never;
      },
    },
    offline: {
      async accept(m: OfflineMessage): Promise<OfflineDecision> {
        offered.push(m);
        return o.offline?.(m) ?? { kind: 'spooled', entryId: `sp-${++entries}`, seq: 1, joined: false, pickupAt: 0 };
      },
    },
    history: { record: (m: RecordedMessage) => recorded.push(m) },
    ...(o.noFederation ? {} : { federation: gate }),
  } as unknown as SipContext;

  return {
    ctx,
    sent,
    offered,
    recorded,
    connected,
    inbound,
    partnerOut,
    get authCalls() {
      return authCalls;
    },
  };
}

/** A request as text: the start line, the headers given (Content-Length added), the body. */
export function request(startLine: string, headers: string[], body = ''): SipRequest {
  const text = [startLine, ...headers, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

/** alice's MESSAGE to `to` from her client (with credentials), plus `extra` headers. */
export function fromAlice(to: string, extra: string[] = [], body = 'hi'): SipRequest {
  return request(`MESSAGE sip:${to} SIP/2.0`, [
    'Via: SIP/2.0/TCP 127.0.0.2:40000;branch=z9hG4bKalice1',
    'Max-Forwards: 70',
    `From: "Alice" <sip:${ALICE}>;tag=a`,
    `To: <sip:${to}>`,
    'Call-ID: out-1',
    'CSeq: 1 MESSAGE',
    'Proxy-Authorization: Digest username="alice", realm="parley.test", nonce="n", uri="sip:x", response="r"',
    ...extra,
    'Content-Type: text/plain',
  ], body);
}

/** A partner's MESSAGE from `from` to `to`, as the partner's proxy forwards it, plus `extra` headers. */
export function fromPartnerUser(from: string, to: string, extra: string[] = [], body = 'hello'): SipRequest {
  return request(`MESSAGE sip:${to} SIP/2.0`, [
    'Via: SIP/2.0/TLS sip.org-b.test:5061;branch=z9hG4bKorgb1',
    'Via: SIP/2.0/TCP 10.0.0.9:50000;branch=z9hG4bKdave1',
    'Max-Forwards: 69',
    `From: "Dave" <sip:${from}>;tag=d`,
    `To: <sip:${to}>`,
    'Call-ID: in-1',
    'CSeq: 1 MESSAGE',
    ...extra,
    'Content-Type: text/plain',
  ], body);
}

/** The answer `status` to a request that was sent, as its receiver would write it, with `extra` headers. */
export function answer(to: SipRequest, status: number, extra: Array<[string, string]> = []): SipResponse {
  const response = createResponse(to, status);
  for (const [name, value] of extra) response.headers.append(name, value);
  return response;
}

/** Runs a handler on `request` arriving on `flow`; the last response sent on it. */
export async function handle(handler: { handle(ctx: SipContext, incoming: Incoming): void | Promise<void> }, ctx: SipContext, req: SipRequest, flow: Flow & { sent: SipResponse[] }): Promise<SipResponse | undefined> {
  await handler.handle(ctx, { request: req, flow, tx: null, log: logger });
  return flow.sent.at(-1);
}

import type { RequestDrain } from './drain.ts';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/authenticator.ts';
import type { FlowRef, LocationService } from '../registrar/location.ts';
import type { OfflineHandoff } from '../offline/service.ts';
import type { RegistrationEvents } from '../registrar/events.ts';
import type { RegistrarSettings } from '../registrar/plan.ts';
import type { Flow, NonInviteServerTransaction, SipRequest, TransactionLayer } from '../sip/index.ts';

/** What a method handler may use. Built once by the server; handlers keep no state of their own. */
export interface SipContext {
  /** the SIP domain Parley serves, `parley.local` */
  domain: string;
  /** whether a host (a Route's, say) names Parley itself: its own names, addresses and `sip.advertise` host */
  isOwnHost(host: string): boolean;
  /** the methods Parley serves, for Allow */
  allow: readonly string[];
  /** `Server`/`User-Agent` header value */
  product: string;
  logger: Logger;
  auth: Authenticator;
  location: LocationService;
  /** emitted after every change of an address-of-record's bindings */
  registrations: RegistrationEvents;
  registrar: RegistrarSettings;
  transactions: TransactionLayer;
  /** a live flow for a binding's flow reference, or undefined when it is gone */
  resolveFlow(ref: FlowRef): Flow | undefined;
  /** true when the address (`bob@parley.local`) is a user of this organisation (a kept answer costs no query) */
  userExists(address: string): Promise<boolean>;
  /**
   * The directory's entry of a user of this organisation (`bob@parley.local`), undefined when there
   * is none (a kept answer costs no query, and comes at once: no promise): a handler looks a user
   * up once per request, for whether they exist and their display name both.
   */
  user(address: string): SipUser | undefined | Promise<SipUser | undefined>;
  messaging: MessagingSettings;
  /** RFC 6665 notifications (src/events): `events.changed('message-summary', 'bob@parley.local')` NOTIFYs that resource's subscribers whose document changed */
  events: { changed(packageName: string, resource: string): void };
  /** where a MESSAGE goes when no registration of its recipient takes it */
  offline: OfflineHandoff;
  /** Conversation History (src/history implements it): told what became of each MESSAGE between users; absent: nothing is recorded */
  history?: ConversationRecorder;
  now(): number;
  /** what /metrics counts (src/observability/metrics.ts implements it); absent: nothing is counted */
  stats?: SipStats;
  /** a stopping server's drain (src/router/drain.ts): counts the requests in flight, refuses new ones; absent: never drains */
  drain?: RequestDrain;
  /** the federation link with partner organisations (src/federation implements it); absent: federation is not configured and other domains are refused */
  federation?: FederationGate;
  /** the other nodes of a cluster (src/cluster implements it); absent: one process, every flow is local */
  cluster?: ClusterHops;
}

/** What the router uses of a user's directory entry. */
export interface SipUser {
  /** `Alice Liddell`; null when they have none */
  readonly displayName: string | null;
}

/**
 * What the router needs to reach a flow held by another node of a cluster (issue 16): a pooled
 * connection to that node, and a token naming the flow that only the cluster's nodes can make.
 * The relaying itself (Route, Via, the answer's way back) is the router's (hop.ts).
 */
export interface ClusterHops {
  /** this node's id: bindings whose flow names another node are relayed there */
  readonly node: string;
  /**
   * A connection to node `node`'s SIP TCP listener (one per node, reused) and the host:port it is
   * reached at; or why not: the node is not alive (no connection is tried then), or it refused.
   */
  connect(node: string): Promise<{ readonly ok: true; readonly flow: Flow; readonly address: string } | { readonly ok: false; readonly why: string }>;
  /** the token naming `flow` for this request (bound to its Call-ID and CSeq), signed with the cluster key */
  sign(flow: FlowRef, request: SipRequest): string;
  /** the flow a token names when a node of this cluster signed it for this request; null: forged, altered or another request's */
  verify(token: string, request: SipRequest): FlowRef | null;
}

/**
 * What the router needs to talk to partner organisations (issue 15). src/federation implements
 * it: the administration's decision (CsAccessEdgeConfiguration, allowed/blocked domains, the
 * user's CsExternalAccessPolicy), the mutual-TLS link and DNS. A request is a partner's when it
 * came on a flow with `flow.partner` set; every other request is a local user's.
 */
export interface FederationGate {
  /** host:port this server names itself by towards partners (its federation FQDN and port): Via sent-by, Record-Route */
  readonly sentBy: string;
  /**
   * May local user `sender` send to a user of `domain`? null: yes. Else the refusal; the router
   * answers 403 with its warning (the cmdlet that would change it included). Asynchronous: the
   * decision is read from storage (kept in a cache, so a request seldom waits for it).
   */
  outboundRefusal(sender: string, domain: string): Promise<FederationRefusal | null>;
  /**
   * May a request that came on partner flow `flow`, whose From names `fromDomain`, reach local
   * user `recipient` (undefined: a request for no user, such as OPTIONS)? null: yes. Refused
   * (403) when the flow's certificate was not verified for `fromDomain` (its SRV target or
   * ProxyFqdn is not among the certificate's names), when `fromDomain` is this organisation's own
   * domain, blocked or not allowed, when federation is off, and when the recipient's policy does
   * not enable federation; a recipient who does not exist gets the same refusal text as one who
   * is not enabled, so a partner cannot learn who exists. Asynchronous: may ask DNS.
   */
  inboundRefusal(flow: Flow, fromDomain: string, recipient: string | undefined): Promise<FederationRefusal | null>;
  /**
   * A connection to the proxy of partner `domain` (pooled: an open one is reused). Resolves with
   * its flow, or why the partner cannot be reached: 503 when DNS names no server for it or every
   * server refused or failed the TLS check, 480 when the servers did not answer in time; the
   * router answers with that status and warning.
   */
  connect(domain: string): Promise<PartnerConnection>;
}

export interface FederationRefusal {
  /** FEDERATION_DISABLED, DOMAIN_BLOCKED, DOMAIN_NOT_ALLOWED, USER_NOT_ENABLED, BAD_DOMAIN, PARTNER_NOT_VERIFIED (src/federation) */
  readonly code: string;
  /** for the Warning header: what was refused and why */
  readonly warning: string;
}

export type PartnerConnection =
  | { readonly ok: true; readonly flow: Flow }
  | { readonly ok: false; readonly status: 480 | 503; readonly warning: string };

/**
 * The router's events /metrics counts. Called once per request and per response: an
 * implementation must keep them to a lookup and an increment (the REGISTER/MESSAGE path is hot).
 */
export interface SipStats {
  /** a new request (not a retransmission) reached the dispatcher */
  request(method: string): void;
  /** a response left for a request of `method` */
  response(method: string, status: number): void;
  /** what became of a MESSAGE to a local user: a device answered it, stored for offline delivery (202), or refused (480) */
  message(outcome: MessageOutcome): void;
}

export type MessageOutcome = 'relayed' | 'stored' | 'refused';

/**
 * What the router tells Conversation History about a MESSAGE between two users, once its sender
 * has the answer. It is called on the relay path: an implementation must only take note (queue
 * it) and return; the recording happens later, off this path (its group commit).
 */
export interface ConversationRecorder {
  record(message: RecordedMessage): void;
}

export interface RecordedMessage {
  sender: string;
  recipient: string;
  callId: string;
  /** the Content-Type header value, undefined when there is none */
  contentType: string | undefined;
  /** the body as received: owned by the recorder from now on, never changed */
  body: Uint8Array;
  /** when the router received it, ms since the epoch */
  at: number;
  /**
   * relayed: a device of the recipient answered 2xx; spooled: kept for offline delivery (202) in
   * spool entry `entryId`; undelivered: refused (480) because the recipient is offline and it
   * could not be kept — typing notices and read reports to an offline user are (a `displayed`
   * report still says the reader saw the message)
   */
  outcome: 'relayed' | 'spooled' | 'undelivered';
  entryId?: string;
}

export interface MessagingSettings {
  /** largest MESSAGE body accepted, bytes (413 above) */
  maxBody: number;
  /**
   * How long a relayed MESSAGE waits for the recipient's devices, seconds. A device that has not
   * answered by then counts as unreachable, so the message goes offline while the sender's own
   * transaction (Timer F, 32 s) still waits for our answer.
   */
  deviceTimeout: number;
}

/** One incoming request with what answers it: its server transaction, or the flow when stateless. */
export interface Incoming {
  request: SipRequest;
  flow: Flow;
  tx: NonInviteServerTransaction | null;
  log: Logger;
  /** the context's stats, so that send() counts the response (absent in handlers' unit tests) */
  stats?: SipStats | undefined;
}

export interface MethodHandler {
  readonly method: string;
  handle(ctx: SipContext, incoming: Incoming): void | Promise<void>;
}

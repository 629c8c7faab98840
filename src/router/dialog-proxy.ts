// Dialogs across organisations (issue 15): Parley as the proxy in the middle of a dialog between a
// local user's client and a partner's user, such as a presence subscription (RFC 6665) of alice
// to dave@partner. Parley record-routes the dialog-forming request, so every later request of the
// dialog passes through it again, and forwards those requests by their Route header:
//
//   client ──SUBSCRIBE──▶ Parley ──(TLS, federation link)──▶ partner proxy ──▶ dave's notifier
//          ◀──NOTIFY────        ◀──NOTIFY──────────────────
//
// Double Record-Route (RFC 5658 §4): the copy towards the partner carries two Record-Route
// values, one per side. The top one names this server as partners know it (ctx.federation.sentBy,
// TLS): the partner's requests come to it. The second names the client's connection: its user
// part is a flow token (RFC 5626 §5.2: "the proxy … MUST be able to determine the flow … from the
// Route header field value"), so that a NOTIFY from the partner finds the connection the
// subscriber is on. A token is tied to the local user it was made for and signed with a key of
// this process (an HMAC): a partner can neither forge one nor use alice's to reach bob.
//
// In a cluster (issue 16) the key is the cluster's (PostgreSQL's cluster_secrets, like the nonce
// and hop keys) and the token names the node that holds the client's connection: the partner's
// request may reach any node (the partner-side Record-Route names the cluster's federation name),
// and a node that does not hold the flow relays the request to the one that does, over the
// cluster's hop (router/hop.ts), which sends it to the client and returns the answer.
//
//   partner ──NOTIFY──▶ node A (token: node B's flow) ──hop (Route parley-hop)──▶ node B ──▶ client
//
// Rules: nothing is relayed between two partner connections (a partner's request goes only to a
// local client, and only along a token); a local client reaches a partner only as the
// authenticated user it is, and only where the gate lets that user go (outboundRefusal).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FlowRef } from '../registrar/location.ts';
import type { Incoming, MethodHandler, SipContext } from './context.ts';
import { CLIENT_IDENTITY_HEADERS } from './asserted-identity.ts';
import { addressOf, authenticateSender } from './identity.ts';
import { authenticatePartner, foreignDomain, fromPartner, namesUs, sendToPartner } from './partner.ts';
import { reply, send } from './reply.ts';
import { routeOverHop } from './hop.ts';
import { newBranch, parseNameAddr, parseUri, SipParseError, sentBy, viaTransport } from '../sip/index.ts';
import type { Flow, SipRequest, SipResponse, SipUri } from '../sip/index.ts';

/** RFC 5626 §11.6: 430 Flow Failed, a request that could not go over the flow its Route names. */
export const FLOW_FAILED = 430;

/** Which way an in-dialog request may be forwarded: from a partner to a local client, or back. */
export type ProxyDirection = 'to-client' | 'to-partner';

/** What a flow token says: the client's connection and the local user it was made for. */
export interface FlowToken {
  /** with `node` when a node of a cluster made it: the node that holds the connection */
  flow: FlowRef;
  /** `alice@parley.local` */
  user: string;
}

/** The HMAC tag length in bytes: 96 bits, as much as the Route header needs to be unforgeable. */
const TAG_BYTES = 12;

export class DialogProxy {
  readonly #key: Uint8Array;

  /**
   * `key`: the HMAC key of the flow tokens; a fresh random one by default (one process: its
   * connections die with it anyway). A cluster's nodes share one (every node reads every token).
   */
  constructor(key: Uint8Array = randomBytes(32)) {
    this.#key = key;
  }

  /** A token naming the client's connection `flow` (and its node, if any) for local user `user` (base64url, fits a URI user part). */
  flowToken(flow: FlowRef, user: string): string {
    const text = [flow.id, flow.protocol, flow.local.address, flow.local.port, flow.remote.address, flow.remote.port, user, flow.node ?? ''].join('\n');
    const data = Buffer.from(text, 'utf8');
    return `${data.toString('base64url')}.${this.#tag(data).toString('base64url')}`;
  }

  /** The token's flow and user, or undefined when it is not one of this process's tokens. */
  readToken(token: string): FlowToken | undefined {
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    const data = Buffer.from(token.slice(0, dot), 'base64url');
    const tag = Buffer.from(token.slice(dot + 1), 'base64url');
    // one spelling per token: the decoder would skip stray characters
    if (`${data.toString('base64url')}.${tag.toString('base64url')}` !== token) return undefined;
    const expected = this.#tag(data);
    if (tag.length !== expected.length || !timingSafeEqual(tag, expected)) return undefined;
    const [id, protocol, localAddress, localPort, remoteAddress, remotePort, user, node] = data.toString('utf8').split('\n');
    if (id === undefined || user === undefined || remotePort === undefined) return undefined;
    const flow: FlowRef = { id, protocol: protocol as FlowRef['protocol'], local: { address: localAddress ?? '', port: Number(localPort) }, remote: { address: remoteAddress ?? '', port: Number(remotePort) } };
    if (node !== undefined && node !== '') flow.node = node;
    return { flow, user };
  }

  #tag(data: Buffer): Buffer {
    return createHmac('sha256', this.#key).update(data).digest().subarray(0, TAG_BYTES);
  }

  /**
   * The two Record-Route values (RFC 5658 §4) for a dialog of local user `user`, whose client is
   * on `flow`, with a partner: top first (the partner's side), then the client's side.
   */
  recordRoutes(ctx: SipContext, flow: Flow, user: string): [string, string] {
    const gate = ctx.federation;
    if (gate === undefined) throw new Error('recordRoutes needs ctx.federation');
    const ref: FlowRef = { id: flow.id, protocol: flow.protocol, local: flow.local, remote: flow.remote };
    if (ctx.cluster !== undefined) ref.node = ctx.cluster.node;
    return [`<sip:${gate.sentBy};transport=tls;lr>`, `<sip:${this.flowToken(ref, user)}@${sentBy(flow)};transport=${flow.protocol};lr>`];
  }

  /**
   * The flow token of a request in a dialog this server record-routed: the Routes at the top that
   * name this server, one of which carries a token of ours (in a cluster, the Route with the token
   * may name another node: the one holding the flow). Undefined for every other request (a local
   * subscription's refresh, which has no such Route).
   */
  tokenOf(ctx: SipContext, request: SipRequest): FlowToken | undefined {
    for (const route of request.headers.getAll('route')) {
      const token = this.#routeToken(ctx, route);
      if (token !== undefined) return token;
      if (!routeNamesUs(ctx, route)) return undefined;
    }
    return undefined;
  }

  /** The token of a Route value of ours: one naming this server, or (cluster) another node of it. */
  #routeToken(ctx: SipContext, route: string): FlowToken | undefined {
    const user = routeUser(route);
    const token = user === undefined ? undefined : this.readToken(user);
    if (token === undefined) return undefined;
    return token.flow.node !== undefined || routeNamesUs(ctx, route) ? token : undefined;
  }

  /** Whether a Route value is used up here (RFC 3261 §16.4): it names this server, or carries a token of ours. */
  #ours(ctx: SipContext, route: string | undefined): boolean {
    return route !== undefined && (routeNamesUs(ctx, route) || this.#routeToken(ctx, route) !== undefined);
  }

  /**
   * A local user's dialog-forming request to a partner's user (a SUBSCRIBE to dave@partner): the
   * sender is authenticated (`sender`) and the gate let them reach `domain`. Record-routed on both
   * sides, sent over the federation link, the final answer relayed back with the Record-Route the
   * partner's side added. A 2xx keeps the client's connection open while the dialog lasts (its
   * Expires), since the partner's requests come back over it.
   */
  async forwardToPartner(ctx: SipContext, incoming: Incoming, sender: string, domain: string): Promise<void> {
    const { request } = incoming;
    if (!hopsLeft(ctx, incoming)) return;
    // RFC 3261 §16.6 step 4: our values go before any the request already has.
    const [partnerSide, clientSide] = this.recordRoutes(ctx, incoming.flow, sender);
    request.headers.prepend('record-route', clientSide);
    request.headers.prepend('record-route', partnerSide);
    const outcome = await sendToPartner(ctx, request, domain);
    relay(ctx, incoming, outcome, domain);
  }

  /**
   * A request within a record-routed dialog (its Route names us with a flow token, tokenOf), in
   * the direction `allowed` only. From a partner's connection it goes to the client's connection
   * of the token, for the token's user; from a local client to the partner the To header names,
   * as the authenticated user the token was made for.
   */
  async forwardInDialog(ctx: SipContext, incoming: Incoming, token: FlowToken, allowed: ProxyDirection): Promise<void> {
    const direction: ProxyDirection = fromPartner(incoming) ? 'to-client' : 'to-partner';
    if (direction !== allowed) {
      const what = direction === 'to-client' ? `a partner's ${incoming.request.method}` : `a ${incoming.request.method} from a client`;
      reply(ctx, incoming, 403, { warning: `${what} is not forwarded within a dialog across organisations` });
      return;
    }
    if (direction === 'to-client') await this.#toClient(ctx, incoming, token);
    else await this.#toPartner(ctx, incoming, token);
  }

  async #toClient(ctx: SipContext, incoming: Incoming, token: FlowToken): Promise<void> {
    const { request } = incoming;
    const sender = await authenticatePartner(ctx, incoming, token.user);
    if (sender === undefined) return;
    // the token is alice's: it carries requests to alice only
    const recipient = headerAddress(request.headers.get('to'));
    if (recipient !== token.user) {
      reply(ctx, incoming, 403, { warning: `the route of this dialog leads to ${token.user}, not to ${recipient ?? 'the To address'}` });
      return;
    }
    if (!hopsLeft(ctx, incoming)) return;
    const forwarded = forwardedCopy(request, (route) => this.#ours(ctx, route));
    // what a partner asserts about itself is not ours to pass on (RFC 3325 §5: outside the trust domain)
    for (const name of CLIENT_IDENTITY_HEADERS) forwarded.headers.delete(name);
    // the client's connection is on another node of the cluster: relayed there (hop.ts)
    const node = token.flow.node;
    const cluster = ctx.cluster;
    if (cluster !== undefined && node !== undefined && node !== cluster.node) {
      const hop = await cluster.connect(node);
      if (!hop.ok) {
        incoming.log.info({ from: sender, to: recipient, node }, '%s from %s not forwarded: %s', request.method, sender, hop.why);
        reply(ctx, incoming, FLOW_FAILED, { reason: 'Flow Failed', warning: `the connection of ${recipient} is unreachable: ${hop.why}` });
        return;
      }
      forwarded.headers.prepend('via', `SIP/2.0/${viaTransport(hop.flow.protocol)} ${sentBy(hop.flow)};branch=${newBranch()}`);
      routeOverHop(cluster, forwarded, token.flow, hop.address);
      sendOn(ctx, incoming, forwarded, hop.flow, recipient);
      return;
    }
    const flow = ctx.resolveFlow(token.flow);
    if (flow === undefined || flow.closed) {
      incoming.log.info({ from: sender, to: recipient }, '%s from %s not forwarded: the connection of %s is gone', request.method, sender, recipient);
      reply(ctx, incoming, FLOW_FAILED, { reason: 'Flow Failed', warning: `the connection of ${recipient} closed; the dialog is over` });
      return;
    }
    // a token names a local client's connection: never another partner's (no relay between partners)
    if (flow.partner !== undefined) {
      reply(ctx, incoming, 403, { warning: `${ctx.domain} relays nothing from one partner organisation to another` });
      return;
    }
    forwarded.headers.prepend('via', `SIP/2.0/${viaTransport(flow.protocol)} ${sentBy(flow)};branch=${newBranch()}`);
    sendOn(ctx, incoming, forwarded, flow, recipient);
  }

  async #toPartner(ctx: SipContext, incoming: Incoming, token: FlowToken): Promise<void> {
    const { request } = incoming;
    const sender = await authenticateSender(ctx, incoming);
    if (sender === undefined) return;
    if (sender !== token.user) {
      reply(ctx, incoming, 403, { warning: `${sender} may not send within the dialog of ${token.user}` });
      return;
    }
    const gate = ctx.federation;
    let to: SipUri;
    try {
      to = parseUri(parseNameAddr(request.headers.get('to') ?? '').uri);
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
      reply(ctx, incoming, 400, { warning: `To header: ${err.message}` });
      return;
    }
    const domain = foreignDomain(ctx, to);
    if (gate === undefined || domain === undefined) {
      reply(ctx, incoming, 403, { warning: `the dialog's other end ${addressOf(to)} is not at a partner organisation reachable from ${ctx.domain}` });
      return;
    }
    const refusal = await gate.outboundRefusal(sender, domain);
    if (refusal !== null) {
      reply(ctx, incoming, 403, { warning: refusal.warning });
      return;
    }
    if (!hopsLeft(ctx, incoming)) return;
    // the Routes naming us are used up (RFC 3261 §16.4); the partner's own stay
    while (this.#ours(ctx, request.headers.get('route'))) request.headers.shift('route');
    relay(ctx, incoming, await sendToPartner(ctx, request, domain), domain);
  }
}

/**
 * NOTIFY (RFC 6665 §4.1.3) reaches Parley within a subscription of a local user to a partner's
 * user that Parley record-routed: it goes on to the subscriber's client. Parley itself subscribes
 * only for contact lists with partners' users (src/presence/remote.ts): `subscriber` takes the
 * NOTIFYs of those dialogs (true: taken and answered). Any other NOTIFY is refused (481).
 */
export function dialogNotifyHandler(proxy: DialogProxy, subscriber?: (ctx: SipContext, incoming: Incoming) => Promise<boolean>): MethodHandler {
  return {
    method: 'NOTIFY',
    async handle(ctx: SipContext, incoming: Incoming): Promise<void> {
      const token = proxy.tokenOf(ctx, incoming.request);
      if (token === undefined && subscriber !== undefined && (await subscriber(ctx, incoming))) return;
      if (token === undefined) {
        reply(ctx, incoming, 481, { warning: `no subscription here takes this NOTIFY: ${ctx.domain} forwards NOTIFY only along the route of a subscription it record-routed` });
        return;
      }
      await proxy.forwardInDialog(ctx, incoming, token, 'to-client');
    },
  };
}

/** The partner's answer to the client; a 2xx keeps the client's connection open for the dialog's requests. */
function relay(ctx: SipContext, incoming: Incoming, outcome: Awaited<ReturnType<typeof sendToPartner>>, domain: string): void {
  if (outcome.kind === 'unreachable') {
    incoming.log.info({ domain, status: outcome.status }, '%s to %s not answered: %s', incoming.request.method, domain, outcome.warning);
    reply(ctx, incoming, outcome.status, { warning: outcome.warning });
    return;
  }
  const { response } = outcome;
  if (response.status < 300 && incoming.request.method === 'SUBSCRIBE') {
    const expires = Number.parseInt(response.headers.get('expires') ?? '', 10);
    if (Number.isFinite(expires) && expires > 0) incoming.flow.keepOpenUntil?.(ctx.now() + expires * 1000);
  }
  send(incoming, response);
}

/** RFC 3261 §16.3 step 3: a request with Max-Forwards 0 goes no further (483). */
function hopsLeft(ctx: SipContext, incoming: Incoming): boolean {
  const value = incoming.request.headers.get('max-forwards');
  if (value !== undefined && Number.parseInt(value, 10) <= 0) {
    reply(ctx, incoming, 483, { warning: 'Max-Forwards reached 0' });
    return false;
  }
  return true;
}

/** RFC 3261 §16.6 for a request towards a client: Max-Forwards one less, the Routes of ours (`ours`) used up (§16.4). */
function forwardedCopy(request: SipRequest, ours: (route: string | undefined) => boolean): SipRequest {
  const headers = request.headers.clone();
  const maxForwards = Number.parseInt(headers.get('max-forwards') ?? '70', 10);
  headers.set('max-forwards', String((Number.isFinite(maxForwards) ? maxForwards : 70) - 1));
  while (ours(headers.get('route'))) headers.shift('route');
  return { kind: 'request', method: request.method, uri: request.uri, headers, body: request.body };
}

/** Sends `forwarded` (its Via ours) over `flow`, the client's or a hop to its node; the answer goes back to the partner. */
function sendOn(ctx: SipContext, incoming: Incoming, forwarded: SipRequest, flow: Flow, recipient: string): void {
  ctx.transactions.sendRequest(forwarded, flow, {
    onFinal(response: SipResponse) {
      response.headers.shift('via');
      send(incoming, response);
    },
    onTimeout: () => reply(ctx, incoming, 408, { warning: `${recipient} did not answer the ${forwarded.method} in time` }),
    onTransportError: () => reply(ctx, incoming, FLOW_FAILED, { reason: 'Flow Failed', warning: `the connection of ${recipient} closed before it answered` }),
  });
}

/**
 * Whether a Route value names this server: one of its names (namesUs), or the name it gives
 * partners (ctx.federation.sentBy), which the partner-side Record-Route carries.
 */
function routeNamesUs(ctx: SipContext, route: string | undefined): boolean {
  if (route === undefined) return false;
  if (namesUs(ctx, route)) return true;
  const sentByHost = ctx.federation?.sentBy.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
  if (sentByHost === undefined) return false;
  try {
    return parseUri(parseNameAddr(route).uri).host === sentByHost;
  } catch {
    return false;
  }
}

/** The user part of a Route value's URI, undefined when it has none or does not parse. */
function routeUser(route: string): string | undefined {
  try {
    return parseUri(parseNameAddr(route).uri).user ?? undefined;
  } catch {
    return undefined;
  }
}

/** `user@host` (lower case) of a From/To value, undefined when it does not parse. */
function headerAddress(value: string | undefined): string | undefined {
  try {
    return addressOf(parseUri(parseNameAddr(value ?? '').uri)).toLowerCase();
  } catch {
    return undefined;
  }
}

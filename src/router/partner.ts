// Requests across organisations (issue 15): the SIP side of the federation link. Who sent a
// request that came on a partner's connection, and the copy of a local user's request that goes
// to a partner. Whether a user or a domain may, and how the partner is reached, is src/federation's
// (ctx.federation, the FederationGate); MESSAGE (message.ts) and the event packages use these.

import type { Incoming, SipContext } from './context.ts';
import { CLIENT_IDENTITY_HEADERS } from './asserted-identity.ts';
import { addressOf, fromUri } from './identity.ts';
import { reply } from './reply.ts';
import { newBranch, parseNameAddr, parseUri } from '../sip/index.ts';
import type { SipRequest, SipResponse, SipUri } from '../sip/index.ts';

/**
 * The partner domain a URI names (lower case), or undefined when it names this organisation: its
 * domain or one of this server's own hosts.
 */
export function foreignDomain(ctx: SipContext, uri: SipUri): string | undefined {
  const host = uri.host.toLowerCase().replace(/\.$/, '');
  if (host === ctx.domain || ctx.isOwnHost(host)) return undefined;
  return host;
}

/** Whether the request came on a partner organisation's connection (the federation link). */
export function fromPartner(incoming: Incoming): boolean {
  return incoming.flow.partner !== undefined;
}

/**
 * The sender of a request that came on a partner's connection, once the gate admitted it for
 * local `recipient` (undefined: a request for no user). Partners are never challenged: the
 * certificate verified at the handshake is their authentication, and digest credentials are for
 * this organisation's own users. A From naming this organisation is a forgery whatever the
 * certificate (403). Returns `user@domain`, or undefined after answering.
 */
export async function authenticatePartner(ctx: SipContext, incoming: Incoming, recipient: string | undefined): Promise<string | undefined> {
  const gate = ctx.federation;
  if (gate === undefined) {
    // partner flows exist only with the link configured; a request on one without it is a bug
    reply(ctx, incoming, 403, { warning: `${ctx.domain} has no federation link configured` });
    return undefined;
  }
  const from = fromUri(ctx, incoming);
  if (from === undefined) return undefined;
  const domain = foreignDomain(ctx, from);
  if (domain === undefined) {
    reply(ctx, incoming, 403, { warning: `a partner's connection may not send as a user of ${ctx.domain}: the From address must be in the partner's own domain` });
    return undefined;
  }
  const refusal = await gate.inboundRefusal(incoming.flow, domain, recipient);
  if (refusal !== null) {
    incoming.log.info({ from: addressOf(from), to: recipient, code: refusal.code }, 'request from partner %s refused: %s', domain, refusal.warning);
    reply(ctx, incoming, 403, { warning: refusal.warning });
    return undefined;
  }
  return `${from.user ?? ''}@${domain}`;
}

/**
 * The copy of a local user's request that goes to a partner (RFC 3261 §16.6): Max-Forwards one
 * less, this server's Via (its federation name, TLS), the credentials for our realm and the Routes
 * naming us used up (§22.3, §16.4). The identity headers stay inside the organisation: a partner
 * is outside its trust domain (RFC 3325 §5), so no P-Asserted-Identity goes out, and what a client
 * put there was never passed on anyway. `uri`: the Request-URI, the request's own by default.
 */
export function toPartner(ctx: SipContext, request: SipRequest, uri: string = request.uri): SipRequest {
  const gate = ctx.federation;
  if (gate === undefined) throw new Error('toPartner needs ctx.federation');
  const headers = request.headers.clone();
  const maxForwards = Number.parseInt(headers.get('max-forwards') ?? '70', 10);
  headers.set('max-forwards', String((Number.isFinite(maxForwards) ? maxForwards : 70) - 1));
  headers.delete('proxy-authorization');
  while (namesUs(ctx, headers.get('route'))) headers.shift('route');
  for (const name of CLIENT_IDENTITY_HEADERS) headers.delete(name);
  headers.prepend('via', `SIP/2.0/TLS ${gate.sentBy};branch=${newBranch()}`);
  return { kind: 'request', method: request.method, uri, headers, body: request.body };
}

export type PartnerOutcome =
  /** the partner's final answer, its top Via (ours) removed */
  | { kind: 'answered'; response: SipResponse }
  /** no answer: no connection (the gate's 480/503), no final answer in time (408), or the connection failed (503) */
  | { kind: 'unreachable'; status: 408 | 480 | 503; warning: string };

/**
 * Sends a local user's request to partner `domain` over the federation link and waits for the
 * final answer. A non-INVITE client transaction over TLS: no retransmissions, Timer F (64·T1) bounds
 * the wait.
 */
export async function sendToPartner(ctx: SipContext, request: SipRequest, domain: string, uri: string = request.uri): Promise<PartnerOutcome> {
  const gate = ctx.federation;
  if (gate === undefined) return { kind: 'unreachable', status: 503, warning: `${ctx.domain} has no federation link configured` };
  const connection = await gate.connect(domain);
  if (!connection.ok) return { kind: 'unreachable', status: connection.status, warning: connection.warning };
  const forwarded = toPartner(ctx, request, uri);
  return new Promise((resolve) => {
    ctx.transactions.sendRequest(forwarded, connection.flow, {
      onFinal(response) {
        response.headers.shift('via');
        resolve({ kind: 'answered', response });
      },
      onTimeout: () => resolve({ kind: 'unreachable', status: 408, warning: `${domain} did not answer the ${request.method} in time` }),
      onTransportError: () => resolve({ kind: 'unreachable', status: 503, warning: `the connection to ${domain} closed before it answered the ${request.method}` }),
    });
  });
}

/** Whether a Route value names this server (its domain or one of its hosts). */
export function namesUs(ctx: SipContext, route: string | undefined): boolean {
  if (route === undefined) return false;
  try {
    const host = parseUri(parseNameAddr(route).uri).host;
    return host === ctx.domain || ctx.isOwnHost(host);
  } catch {
    return false;
  }
}

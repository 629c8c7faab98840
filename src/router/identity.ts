import type { AuthOutcome } from '../auth/authenticator.ts';
import type { Incoming, SipContext } from './context.ts';
import { preferredIdentityRefusal } from './asserted-identity.ts';
import { reply } from './reply.ts';
import { parseNameAddr, parseUri, SipParseError } from '../sip/index.ts';
import type { SipUri } from '../sip/index.ts';

/**
 * The Request-URI of a request Parley must serve itself, or undefined after answering: 400 when it
 * cannot be read, 403 when it names another domain (`refusal` says what Parley does instead).
 */
export function localTarget(ctx: SipContext, incoming: Incoming, refusal: string): SipUri | undefined {
  const target = requestTarget(ctx, incoming);
  return target === undefined ? undefined : servedHere(ctx, incoming, target, refusal);
}

/** The Request-URI, or undefined after answering 400 when it cannot be read. */
export function requestTarget(ctx: SipContext, incoming: Incoming): SipUri | undefined {
  try {
    return parseUri(incoming.request.uri);
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err;
    reply(ctx, incoming, 400, { warning: `Request-URI: ${err.message}` });
    return undefined;
  }
}

/**
 * `target` when it names this domain; else undefined after answering 403 (`refusal` says what
 * Parley does instead; a function when the text is made for the refusal only, not per request).
 */
export function servedHere(ctx: SipContext, incoming: Incoming, target: SipUri, refusal: string | (() => string)): SipUri | undefined {
  if (target.host !== ctx.domain) {
    reply(ctx, incoming, 403, { warning: `${target.host} is not served here; ${typeof refusal === 'string' ? refusal : refusal()}` });
    return undefined;
  }
  return target;
}

/** The From header's URI, or undefined after answering 400 when it cannot be read. */
export function fromUri(ctx: SipContext, incoming: Incoming): SipUri | undefined {
  try {
    return parseUri(parseNameAddr(incoming.request.headers.get('from') ?? '').uri);
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err;
    reply(ctx, incoming, 400, { warning: `From header: ${err.message}` });
    return undefined;
  }
}

/** `user@host` of a SIP URI: how Parley names an address-of-record. */
export function addressOf(uri: SipUri): string {
  return `${uri.user ?? ''}@${uri.host}`;
}

/**
 * The sender of a request that is not a REGISTER: a local user must prove who they are (407
 * challenge, RFC 3261 §22.3) and may only send as themselves — the From address and any
 * P-Preferred-Identity (RFC 3325 §6) must name the authenticated user. Returns the sender's
 * address, or undefined after answering; at once when the account's lookup answers at once (a kept
 * account: no promise, no microtask hop), else through a promise.
 */
export function authenticateSender(ctx: SipContext, incoming: Incoming): string | undefined | Promise<string | undefined> {
  if (incoming.flow.partner !== undefined) {
    // A partner's connection is authenticated by its certificate (router/partner.ts,
    // authenticatePartner), never challenged: digest credentials are for this organisation's users.
    reply(ctx, incoming, 403, { warning: `a partner organisation may not send ${incoming.request.method} as a user of ${ctx.domain}` });
    return undefined;
  }
  const from = fromUri(ctx, incoming);
  if (from === undefined) return undefined;
  if (from.host !== ctx.domain) {
    // A local client sends as a user of this domain only: a partner's users come over the
    // federation link, where their organisation's certificate vouches for them.
    reply(ctx, incoming, 403, { warning: `senders from ${from.host} are not accepted here: users of ${ctx.domain} send as themselves, and partner organisations' users come over the federation link` });
    return undefined;
  }
  const authenticating = ctx.auth.authenticate(incoming.request, 'proxy', incoming.flow.remote.address);
  return authenticating instanceof Promise ? authenticating.then((auth) => senderOf(ctx, incoming, from, auth)) : senderOf(ctx, incoming, from, authenticating);
}

/** The sender once the credentials are checked: the authenticated user, if the request may name them. */
function senderOf(ctx: SipContext, incoming: Incoming, from: SipUri, auth: AuthOutcome): string | undefined {
  if (!auth.ok) {
    refuseCredentials(ctx, incoming, auth);
    return undefined;
  }
  // the connection is a user's now: what it holds no longer counts as a stranger's
  incoming.flow.markTrusted?.();
  const claimed = addressOf(from);
  if (auth.address !== claimed) {
    // The From display name is the sender's to choose; the address is not (RFC 3261 §26.1.1).
    reply(ctx, incoming, 403, { warning: `${auth.address} may not send as ${claimed}: the From address must be the signed-in user's` });
    return undefined;
  }
  const preferred = preferredIdentityRefusal(incoming.request.headers, auth.address);
  if (preferred !== undefined) {
    reply(ctx, incoming, 403, { warning: preferred });
    return undefined;
  }
  return auth.address;
}

/**
 * Answers a request whose credentials did not pass: a challenge (401/407) carries no Warning, the
 * client simply answers it, and is sent statelessly, since challenging a retransmission again does
 * no harm; a refusal (403/400) says why.
 */
export function refuseCredentials(ctx: SipContext, incoming: Incoming, auth: AuthOutcome & { ok: false }): void {
  const challenge = auth.status === 401 || auth.status === 407;
  reply(ctx, incoming, auth.status, { headers: auth.headers, warning: challenge ? undefined : auth.warning, stateless: challenge });
}

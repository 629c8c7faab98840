// MESSAGE across organisations (issue 15): a local user's message to a partner organisation's user
// over the federation link, and a partner's user's message to a local user. Who may talk to whom
// and how a partner is reached are the FederationGate's (ctx.federation, src/federation); the SIP
// side of the link is partner.ts.
//
// The reference document's rule for offline messages across organisations: what a partner's user
// could not take goes to them as an ordinary e-mail from the sender (offline delivery `email`);
// what a local user could not take from a partner's user lands in their Inbox as a plain note
// (`inbox-note`), never as a Missed Conversation.

import type { Incoming, SipContext } from './context.ts';
import { CLIENT_IDENTITY_HEADERS } from './asserted-identity.ts';
import { forkRequest } from './fork.ts';
import { addressOf, authenticateSender, requestTarget, servedHere } from './identity.ts';
import { bodyAccepted, maxForwardsSpent } from './message-checks.ts';
import { handOffline, recordFor } from './message-offline.ts';
import { authenticatePartner, sendToPartner } from './partner.ts';
import type { PartnerOutcome } from './partner.ts';
import { reply, send } from './reply.ts';
import { formatUri } from '../sip/index.ts';
import type { Headers, SipResponse, SipUri } from '../sip/index.ts';

/**
 * How long a local sender's MESSAGE may wait for a partner, retries included, ms. The sender's own
 * transaction gives up after Timer F (64·T1, 32 s): the answer — relayed, or 202 once the message
 * is kept for e-mail — must reach it before that. The partner itself may wait for its user's
 * devices (Parley: messaging.deviceTimeout, 10 s by default) before it answers 480.
 */
export const PARTNER_BUDGET_MS = 25_000;

/** At most this many tries of one MESSAGE towards a partner (the first and its retries). */
export const PARTNER_ATTEMPTS = 3;

/** The wait before retry n (1, 2…) when the partner gave no Retry-After, ms. */
const RETRY_BACKOFF_MS = [1000, 2000];

/**
 * A partner's answers that say "not now" rather than "no": 503 Service Unavailable (its server is
 * overloaded or stopping, RFC 3261 §21.5.4) and 408 Request Timeout (its user's devices did not
 * answer in time, §21.4.9). Retried, then treated as the user being offline.
 */
const RETRIED = new Set([408, 503]);

/**
 * A local user's MESSAGE to `uri`, a user of partner `domain`: authenticated as every local
 * sender's (digest), allowed by the administration (the gate's outboundRefusal: 403 with its
 * Warning), sent over the link; the partner's final answer is relayed. When the partner's user is
 * offline (480, or 408/503 after the retries) the message is kept for e-mail (202, Warning).
 * When the partner cannot be reached at all, the sender gets that 480/503/408 with the reason.
 */
export async function sendToPartnerUser(ctx: SipContext, incoming: Incoming, uri: SipUri, domain: string): Promise<void> {
  const gate = ctx.federation;
  if (gate === undefined) throw new Error('sendToPartnerUser needs ctx.federation');
  if (maxForwardsSpent(ctx, incoming)) return;
  const sender = await authenticateSender(ctx, incoming);
  if (sender === undefined) return;
  const receivedAt = ctx.history === undefined ? 0 : ctx.now();
  if (!bodyAccepted(ctx, incoming, sender)) return;
  if (uri.user === null || uri.user === '') {
    reply(ctx, incoming, 404, { warning: `sip:${domain} names no user: a message to another organisation goes to one of its users, sip:user@${domain}` });
    return;
  }
  const recipient = `${uri.user}@${domain}`;
  const refusal = gate.outboundRefusal(sender, domain);
  if (refusal !== null) {
    incoming.log.info({ from: sender, to: recipient, code: refusal.code }, 'message to partner %s refused: %s', domain, refusal.warning);
    reply(ctx, incoming, 403, { warning: refusal.warning });
    return;
  }

  const outcome = await deliverToPartner(ctx, incoming, domain);
  if (outcome.kind === 'unreachable') {
    // No answer from the partner's user: the partner may still deliver it, so no e-mail copy
    // (it would arrive twice); the sender learns why and may send again.
    incoming.log.info({ from: sender, to: recipient, status: outcome.status }, 'partner %s unreachable: %s', domain, outcome.warning);
    reply(ctx, incoming, outcome.status, { warning: outcome.warning });
    return;
  }
  const response = outcome.response;
  if (response.status === 480 || RETRIED.has(response.status)) {
    // The reference document's rule: to a partner's user who is offline, the conversation goes by e-mail.
    const said = `${domain} answered ${response.status} ${response.reason}`;
    incoming.log.info({ from: sender, to: recipient, status: response.status, attempts: outcome.attempts }, '%s; offline delivery by e-mail', said);
    await handOffline(ctx, incoming, { sender, recipient, why: said, receivedAt, delivery: 'email' }, said);
    return;
  }
  if (response.status === 401 || response.status === 407) {
    // A partner that challenges: the sender's credentials are for this organisation and never go
    // out (toPartner strips them), so relaying the challenge would only make the client try again.
    reply(ctx, incoming, 403, { warning: `${domain} asked for credentials (${response.status}); partner organisations authenticate each other by certificate, so the message was not delivered` });
    return;
  }
  // RFC 3325 §5: identity headers from outside the trust domain are not passed on; Parley asserts
  // nothing about the partner's user either (it knows only that the answer came from their domain).
  removeIdentityHeaders(response.headers);
  send(incoming, response);
  if (ctx.logger.isLevelEnabled('debug')) incoming.log.debug({ from: sender, to: recipient, status: response.status }, 'message relayed to partner %s', domain);
  if (response.status < 300) recordFor(ctx, incoming, sender, recipient, receivedAt, 'relayed');
}

/**
 * Sends the MESSAGE to the partner, again after a 503/408 (at most PARTNER_ATTEMPTS tries, after
 * the Retry-After the partner gave or a short backoff), all within PARTNER_BUDGET_MS. Returns the
 * last outcome; a partner that has not answered when the budget is spent is unreachable (408).
 */
async function deliverToPartner(ctx: SipContext, incoming: Incoming, domain: string): Promise<PartnerOutcome & { attempts: number }> {
  const deadline = ctx.now() + PARTNER_BUDGET_MS;
  for (let attempt = 1; ; attempt++) {
    const outcome = await withDeadline(sendToPartner(ctx, incoming.request, domain), deadline - ctx.now(), domain, incoming.request.method);
    if (outcome.kind !== 'answered' || !RETRIED.has(outcome.response.status) || attempt >= PARTNER_ATTEMPTS) return { ...outcome, attempts: attempt };
    const wait = retryWait(outcome.response, attempt);
    // a partner that asks for more time than the sender has is not asked again
    if (ctx.now() + wait >= deadline) return { ...outcome, attempts: attempt };
    incoming.log.info({ status: outcome.response.status, attempt, waitMs: wait }, '%s answered %d; trying again in %d ms', domain, outcome.response.status, wait);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** Retry-After (RFC 3261 §20.33: delta-seconds, then an optional comment and parameters), else the backoff. */
function retryWait(response: SipResponse, attempt: number): number {
  const value = response.headers.get('retry-after');
  const seconds = value === undefined ? undefined : /^\s*(\d{1,6})/.exec(value)?.[1];
  if (seconds !== undefined) return Number(seconds) * 1000;
  return RETRY_BACKOFF_MS[Math.min(attempt, RETRY_BACKOFF_MS.length) - 1] as number;
}

/** The outcome, or 408 when `ms` pass first (a late answer is then ignored: a MESSAGE cannot be cancelled, RFC 3261 §9.1). */
function withDeadline(pending: Promise<PartnerOutcome>, ms: number, domain: string, method: string): Promise<PartnerOutcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<PartnerOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'unreachable', status: 408, warning: `${domain} did not answer the ${method} within ${Math.round(PARTNER_BUDGET_MS / 1000)} s` }), Math.max(ms, 0));
  });
  return Promise.race([pending, late]).finally(() => clearTimeout(timer));
}

/**
 * A partner's user's MESSAGE, on a partner's connection: for a user of this domain only (no relay
 * to a third domain, ever: 403), admitted by the gate (authenticatePartner: the certificate, the
 * administration, the recipient's policy; no digest challenge), then forked to the recipient's
 * devices like a local user's. An offline recipient finds it in their Inbox (202).
 */
export async function receiveFromPartner(ctx: SipContext, incoming: Incoming): Promise<void> {
  const uri = requestTarget(ctx, incoming);
  if (uri === undefined) return;
  const target = servedHere(ctx, incoming, uri, `a partner's message goes to users of ${ctx.domain} only; Parley relays nothing to another domain`);
  if (target === undefined) return;
  if (maxForwardsSpent(ctx, incoming)) return;
  const recipient = addressOf(target);
  // the gate answers for an unknown recipient exactly as for one not enabled: never 404, a
  // partner does not learn who exists
  const sender = await authenticatePartner(ctx, incoming, recipient);
  if (sender === undefined) return;
  const receivedAt = ctx.history === undefined ? 0 : ctx.now();
  if (!bodyAccepted(ctx, incoming, sender)) return;
  if (!(await ctx.userExists(recipient))) {
    // removed since the gate looked: the same answer a partner gets for anyone it may not reach
    reply(ctx, incoming, 403, { warning: `${recipient} may not receive messages from other organisations` });
    return;
  }

  const { request } = incoming;
  assertPartnerIdentity(request.headers, sender);
  const bindings = await ctx.location.lookup(recipient, ctx.now());
  if (bindings.length === 0) {
    await handOffline(ctx, incoming, { sender, recipient, why: 'not signed in', receivedAt, delivery: 'inbox-note' });
    return;
  }
  const outcome = await forkRequest(ctx, request, bindings, ctx.messaging.deviceTimeout * 1000);
  if (outcome.kind === 'unreachable') {
    incoming.log.info({ from: sender, to: recipient, reasons: outcome.reasons }, 'no registration of %s took the message', recipient);
    await handOffline(ctx, incoming, { sender, recipient, why: `no registration took it: ${outcome.reasons.join('; ')}`, receivedAt, delivery: 'inbox-note' });
    return;
  }
  // the answer leaves the trust domain: whatever the device asserted stays inside (RFC 3325 §5)
  removeIdentityHeaders(outcome.response.headers);
  send(incoming, outcome.response);
  ctx.stats?.message('relayed');
  if (ctx.logger.isLevelEnabled('debug')) incoming.log.debug({ from: sender, to: recipient, status: outcome.response.status }, 'message from a partner relayed');
  if (outcome.response.status < 300) recordFor(ctx, incoming, sender, recipient, receivedAt, 'relayed');
}

/**
 * The identity a local recipient may believe of a partner's user, at the trust boundary. What the
 * partner put in the identity headers (CLIENT_IDENTITY_HEADERS) is its own claim, made outside
 * this organisation's trust domain, so it is removed (RFC 3325 §5; an RFC 8224 Identity signature
 * Parley does not verify would lend the claim a credibility nobody checked). In its place Parley
 * asserts the From address: the gate verified that the connection's certificate belongs to the
 * From's domain, and that domain authenticated its own user — the same vouching a local user's
 * message gets, at domain level. Without a display name: the certificate says nothing of names.
 */
function assertPartnerIdentity(headers: Headers, sender: string): void {
  removeIdentityHeaders(headers);
  // escaped: a partner's user part is the partner's to choose, unlike a local user's (the directory's)
  const at = sender.lastIndexOf('@');
  const uri = formatUri({ scheme: 'sip', user: sender.slice(0, at) || null, password: null, host: sender.slice(at + 1), port: null, params: new Map(), headers: new Map() });
  headers.append('p-asserted-identity', `<${uri}>`);
}

function removeIdentityHeaders(headers: Headers): void {
  for (const name of CLIENT_IDENTITY_HEADERS) headers.delete(name);
}

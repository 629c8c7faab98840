// MESSAGE (RFC 3428): page-mode instant messages between the organisation's users.

import type { Incoming, MethodHandler, SipContext } from './context.ts';
import { assertIdentity, cpimSenderRefusal } from './asserted-identity.ts';
import { forkRequest } from './fork.ts';
import { addressOf, authenticateSender, localTarget } from './identity.ts';
import { reply, send } from './reply.ts';
import { parseContentType, SipParseError } from '../sip/index.ts';

/** Bodies Parley relays: plain and HTML text, CPIM-wrapped text (RFC 3862), is-composing (RFC 3994). */
export const ACCEPTED_MESSAGE_TYPES = ['text/plain', 'text/html', 'message/cpim', 'application/im-iscomposing+xml'] as const;

export const messageHandler: MethodHandler = {
  method: 'MESSAGE',
  async handle(ctx: SipContext, incoming: Incoming): Promise<void> {
    const { request } = incoming;
    // No open relay: Parley delivers only to its own domain (federation comes later).
    const target = localTarget(ctx, incoming, `${ctx.domain} relays only to its own users`);
    if (target === undefined) return;
    const maxForwards = request.headers.get('max-forwards');
    if (maxForwards !== undefined && Number.parseInt(maxForwards, 10) <= 0) {
      reply(ctx, incoming, 483, { warning: 'Max-Forwards reached 0' });
      return;
    }

    const sender = authenticateSender(ctx, incoming);
    if (sender === undefined) return;
    const receivedAt = ctx.history === undefined ? 0 : ctx.now();

    if (request.body.length > ctx.messaging.maxBody) {
      reply(ctx, incoming, 413, { warning: `message body is ${request.body.length} bytes; the limit is ${ctx.messaging.maxBody}` });
      return;
    }
    const contentType = request.headers.get('content-type');
    if (request.body.length > 0 || contentType !== undefined) {
      const type = contentType === undefined ? undefined : safeMediaType(contentType);
      if (type === undefined || !(ACCEPTED_MESSAGE_TYPES as readonly string[]).includes(type)) {
        reply(ctx, incoming, 415, {
          headers: [['Accept', ACCEPTED_MESSAGE_TYPES.join(', ')]],
          warning: `content type ${contentType ?? '(none)'} is not relayed`,
        });
        return;
      }
      // a CPIM wrapper names a sender of its own, which some clients show: it must be the signed-in user
      const refusal = type === 'message/cpim' ? cpimSenderRefusal(request.body, sender) : undefined;
      if (refusal !== undefined) {
        reply(ctx, incoming, 403, { warning: refusal });
        return;
      }
    }

    const recipient = addressOf(target);
    if (!ctx.userExists(recipient)) {
      reply(ctx, incoming, 404, { warning: `no user ${recipient}` });
      return;
    }
    const bindings = await ctx.location.lookup(recipient, ctx.now());
    if (bindings.length === 0) {
      await handOffline(ctx, incoming, sender, recipient, 'not signed in', receivedAt);
      return;
    }
    // The recipient learns who really sent it: Parley's assertion, not the client's (RFC 3325 §5).
    // The request is the handler's own from here on; changing it in place spares a copy per message.
    assertIdentity(request.headers, { address: sender, displayName: ctx.displayName(sender) });
    const outcome = await forkRequest(ctx, request, bindings, ctx.messaging.deviceTimeout * 1000);
    if (outcome.kind === 'answered') {
      if (ctx.logger.isLevelEnabled('debug')) incoming.log.debug({ from: sender, to: recipient, status: outcome.response.status }, 'message relayed');
      // The same the other way (RFC 3325 §9.1 allows the header in responses): the answer came over
      // a registration of the recipient, authenticated when it was made, so that is who answered.
      assertIdentity(outcome.response.headers, { address: recipient, displayName: ctx.displayName(recipient) });
      send(incoming, outcome.response);
      ctx.stats?.message('relayed');
      // recorded after the answer went out: history never delays a relayed message
      if (outcome.response.status < 300) recordFor(ctx, incoming, sender, recipient, receivedAt, 'relayed');
      return;
    }
    incoming.log.info({ from: sender, to: recipient, reasons: outcome.reasons }, 'no registration of %s took the message', recipient);
    await handOffline(ctx, incoming, sender, recipient, `no registration took it: ${outcome.reasons.join('; ')}`, receivedAt);
  },
};

/**
 * The recipient is offline (RFC 3428 §7: 202 when the message is accepted but not yet delivered):
 * the offline-IM pipeline keeps it — on disk before the 202 — or says why not: 480 Temporarily
 * Unavailable, the recipient cannot take it now, with a Warning naming the setting or quota that
 * refused and, when the pipeline knows when a retry can succeed (a rate), Retry-After
 * (RFC 3261 §20.33 allows it on 480).
 */
async function handOffline(ctx: SipContext, incoming: Incoming, sender: string, recipient: string, why: string, receivedAt: number): Promise<void> {
  const { request } = incoming;
  let decision;
  try {
    decision = await ctx.offline.accept({
      sender,
      recipient,
      callId: request.headers.get('call-id') ?? '',
      contentType: request.headers.get('content-type'),
      body: request.body,
      why,
    });
  } catch (err) {
    // not on disk, so not accepted: the sender must know (a disk full, a locked database)
    incoming.log.error({ err, from: sender, to: recipient }, 'could not store a message for offline delivery');
    reply(ctx, incoming, 500, { warning: `${recipient} is offline and the message could not be stored for later; it was not accepted` });
    return;
  }
  if (decision.kind === 'refused') {
    const headers: Array<[string, string]> = decision.retryAfter === undefined ? [] : [['Retry-After', String(decision.retryAfter)]];
    reply(ctx, incoming, 480, { headers, warning: decision.warning });
    ctx.stats?.message('refused');
    recordFor(ctx, incoming, sender, recipient, receivedAt, 'undelivered');
    return;
  }
  incoming.log.info({ from: sender, to: recipient, entry: decision.entryId, message: decision.seq }, 'stored for offline delivery as %s', decision.entryId);
  ctx.stats?.message('stored');
  reply(ctx, incoming, 202, { warning: `${recipient} is offline; stored for delivery to their mailbox (spool entry ${decision.entryId})` });
  recordFor(ctx, incoming, sender, recipient, receivedAt, 'spooled', decision.entryId);
}

/** Tells Conversation History (when there is one) what became of the message. */
function recordFor(ctx: SipContext, incoming: Incoming, sender: string, recipient: string, at: number, outcome: 'relayed' | 'spooled' | 'undelivered', entryId?: string): void {
  if (ctx.history === undefined) return;
  const { request } = incoming;
  ctx.history.record({
    sender,
    recipient,
    callId: request.headers.get('call-id') ?? '',
    contentType: request.headers.get('content-type'),
    body: request.body,
    at,
    outcome,
    ...(entryId !== undefined ? { entryId } : {}),
  });
}

function safeMediaType(value: string): string | undefined {
  try {
    const ct = parseContentType(value);
    return `${ct.type}/${ct.subtype}`;
  } catch (err) {
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
}

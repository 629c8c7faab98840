// MESSAGE (RFC 3428): page-mode instant messages between the organisation's users, and across the
// federation link to and from partner organisations' users (message-partner.ts).

import type { Incoming, MethodHandler, SipContext } from './context.ts';
import { assertIdentity } from './asserted-identity.ts';
import { forkRequest } from './fork.ts';
import { addressOf, authenticateSender, requestTarget, servedHere } from './identity.ts';
import { bodyAccepted, maxForwardsSpent } from './message-checks.ts';
import { handOffline, recordFor } from './message-offline.ts';
import { receiveFromPartner, sendToPartnerUser } from './message-partner.ts';
import { foreignDomain, fromPartner } from './partner.ts';
import { reply, send } from './reply.ts';
import type { SipUri } from '../sip/index.ts';

export { ACCEPTED_MESSAGE_TYPES } from './message-checks.ts';

export const messageHandler: MethodHandler = {
  method: 'MESSAGE',
  handle(ctx: SipContext, incoming: Incoming): void | Promise<void> {
    // a partner organisation's user, over the federation link: certificate, not digest
    if (fromPartner(incoming)) return receiveFromPartner(ctx, incoming);
    const uri = requestTarget(ctx, incoming);
    if (uri === undefined) return;
    // a partner organisation's user, when the federation link is configured
    const partnerDomain = ctx.federation === undefined ? undefined : foreignDomain(ctx, uri);
    if (partnerDomain !== undefined) return sendToPartnerUser(ctx, incoming, uri, partnerDomain);
    // No open relay: without the link, Parley delivers only to its own domain.
    const target = servedHere(ctx, incoming, uri, () => `${ctx.domain} relays only to its own users${ctx.federation === undefined ? ' (no federation link is configured)' : ''}`);
    if (target === undefined) return;
    if (maxForwardsSpent(ctx, incoming)) return;

    // A challenge (most first requests) is answered without a promise when the account is kept.
    const authenticating = authenticateSender(ctx, incoming);
    if (authenticating instanceof Promise) return authenticating.then((sender) => (sender === undefined ? undefined : relay(ctx, incoming, target, sender)));
    return authenticating === undefined ? undefined : relay(ctx, incoming, target, authenticating);
  },
};

/** A MESSAGE from `sender`, authenticated, to a user of this domain (`target`): relayed to their devices, or kept for them. */
async function relay(ctx: SipContext, incoming: Incoming, target: SipUri, sender: string): Promise<void> {
  const receivedAt = ctx.history === undefined ? 0 : ctx.now();
  if (!bodyAccepted(ctx, incoming, sender)) return;

  const recipient = addressOf(target);
  // a kept answer is used at once (ctx.user): an await would cost a microtask hop per lookup
  const recipientLookup = ctx.user(recipient);
  const recipientUser = recipientLookup instanceof Promise ? await recipientLookup : recipientLookup;
  if (recipientUser === undefined) {
    reply(ctx, incoming, 404, { warning: `no user ${recipient}` });
    return;
  }
  const { request } = incoming;
  const lookedUp = ctx.location.lookup(recipient, ctx.now());
  const bindings = lookedUp instanceof Promise ? await lookedUp : lookedUp;
  if (bindings.length === 0) {
    await handOffline(ctx, incoming, { sender, recipient, why: 'not signed in', receivedAt, delivery: 'missed' });
    return;
  }
  // The recipient learns who really sent it: Parley's assertion, not the client's (RFC 3325 §5).
  // The request is the handler's own from here on; changing it in place spares a copy per message.
  const senderLookup = ctx.user(sender);
  const senderUser = senderLookup instanceof Promise ? await senderLookup : senderLookup;
  assertIdentity(request.headers, { address: sender, displayName: senderUser?.displayName ?? null });
  const outcome = await forkRequest(ctx, request, bindings, ctx.messaging.deviceTimeout * 1000);
  if (outcome.kind === 'answered') {
    if (ctx.logger.isLevelEnabled('debug')) incoming.log.debug({ from: sender, to: recipient, status: outcome.response.status }, 'message relayed');
    // The same the other way (RFC 3325 §9.1 allows the header in responses): the answer came over
    // a registration of the recipient, authenticated when it was made, so that is who answered.
    assertIdentity(outcome.response.headers, { address: recipient, displayName: recipientUser.displayName });
    send(incoming, outcome.response);
    ctx.stats?.message('relayed');
    // recorded after the answer went out: history never delays a relayed message
    if (outcome.response.status < 300) recordFor(ctx, incoming, sender, recipient, receivedAt, 'relayed');
    return;
  }
  incoming.log.info({ from: sender, to: recipient, reasons: outcome.reasons }, 'no registration of %s took the message', recipient);
  await handOffline(ctx, incoming, { sender, recipient, why: `no registration took it: ${outcome.reasons.join('; ')}`, receivedAt, delivery: 'missed' });
}

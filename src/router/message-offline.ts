// What becomes of a MESSAGE its recipient could not take, and what Conversation History is told
// of each MESSAGE, whichever way it went (message.ts, message-partner.ts).

import type { Incoming, RecordedMessage, SipContext } from './context.ts';
import { reply } from './reply.ts';
import type { OfflineMessage } from '../offline/service.ts';

export type OfflineDelivery = NonNullable<OfflineMessage['delivery']>;

export interface Undelivered {
  sender: string;
  recipient: string;
  /** for the trace: why no device took it */
  why: string;
  /** when the router received it (Conversation History), ms since the epoch */
  receivedAt: number;
  /**
   * missed: a local user's Missed Conversation; email: a partner's user, as an e-mail from the
   * local sender; inbox-note: a local user, from a partner's user, as a plain note in their Inbox
   */
  delivery: OfflineDelivery;
}

/**
 * The recipient is offline (RFC 3428 §7: 202 when the message is accepted but not yet delivered):
 * the offline-IM pipeline keeps it — on disk before the 202 — or says why not: 480 Temporarily
 * Unavailable, the recipient cannot take it now, with a Warning naming the setting or quota that
 * refused and, when the pipeline knows when a retry can succeed (a rate), Retry-After
 * (RFC 3261 §20.33 allows it on 480). `refusedDetail` is added to that Warning (what the partner said).
 */
export async function handOffline(ctx: SipContext, incoming: Incoming, u: Undelivered, refusedDetail?: string): Promise<void> {
  const { request } = incoming;
  const { sender, recipient } = u;
  // /metrics counts what became of messages to local users; an e-mail to a partner is not one
  const stats = u.delivery === 'email' ? undefined : ctx.stats;
  let decision;
  try {
    decision = await ctx.offline.accept({
      sender,
      recipient,
      callId: request.headers.get('call-id') ?? '',
      contentType: request.headers.get('content-type'),
      body: request.body,
      why: u.why,
      // the default is left unsaid: what the pipeline was always given for local users
      ...(u.delivery === 'missed' ? {} : { delivery: u.delivery }),
    });
  } catch (err) {
    // not on disk, so not accepted: the sender must know (a disk full, a locked database)
    incoming.log.error({ err, from: sender, to: recipient }, 'could not store a message for offline delivery');
    reply(ctx, incoming, 500, { warning: `${recipient} is offline and the message could not be stored for later; it was not accepted` });
    return;
  }
  if (decision.kind === 'refused') {
    const headers: Array<[string, string]> = decision.retryAfter === undefined ? [] : [['Retry-After', String(decision.retryAfter)]];
    reply(ctx, incoming, 480, { headers, warning: refusedDetail === undefined ? decision.warning : `${refusedDetail}; ${decision.warning}` });
    stats?.message('refused');
    recordFor(ctx, incoming, sender, recipient, u.receivedAt, 'undelivered');
    return;
  }
  incoming.log.info({ from: sender, to: recipient, entry: decision.entryId, message: decision.seq, delivery: u.delivery }, 'stored for offline delivery as %s', decision.entryId);
  stats?.message('stored');
  reply(ctx, incoming, 202, { warning: acceptedWarning(u, decision.entryId) });
  recordFor(ctx, incoming, sender, recipient, u.receivedAt, 'spooled', decision.entryId);
}

/** The 202's Warning: where the message goes now. */
function acceptedWarning(u: Undelivered, entryId: string): string {
  switch (u.delivery) {
    case 'email':
      return `${u.recipient} is offline; the message goes by e-mail to ${u.recipient} (spool entry ${entryId})`;
    case 'inbox-note':
      return `${u.recipient} is offline; the message goes to their Inbox as an e-mail (spool entry ${entryId})`;
    default:
      return `${u.recipient} is offline; stored for delivery to their mailbox (spool entry ${entryId})`;
  }
}

/**
 * Tells Conversation History (when there is one) what became of the message. One of the two is
 * always a local user; a partner's user on the other side has no history here, and the recorder
 * keeps the conversation for the local side only (src/history/commit.ts).
 */
export function recordFor(ctx: SipContext, incoming: Incoming, sender: string, recipient: string, at: number, outcome: RecordedMessage['outcome'], entryId?: string): void {
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

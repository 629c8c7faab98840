// What a MESSAGE (RFC 3428) must be before Parley relays it, whichever way it goes: between two
// users of the organisation, from one of them to a partner's user, or from a partner's user to one
// of them (message.ts, message-partner.ts).

import type { Incoming, SipContext } from './context.ts';
import { cpimSenderRefusal } from './asserted-identity.ts';
import { reply } from './reply.ts';
import { parseContentType, SipParseError } from '../sip/index.ts';

/** Bodies Parley relays: plain and HTML text, CPIM-wrapped text (RFC 3862), is-composing (RFC 3994). */
export const ACCEPTED_MESSAGE_TYPES = ['text/plain', 'text/html', 'message/cpim', 'application/im-iscomposing+xml'] as const;

/** RFC 3261 §16.3 step 3: a request whose Max-Forwards is spent goes no further (483). Answers it; true when it did. */
export function maxForwardsSpent(ctx: SipContext, incoming: Incoming): boolean {
  const maxForwards = incoming.request.headers.get('max-forwards');
  if (maxForwards !== undefined && Number.parseInt(maxForwards, 10) <= 0) {
    reply(ctx, incoming, 483, { warning: 'Max-Forwards reached 0' });
    return true;
  }
  return false;
}

/**
 * Whether the body may be relayed: its size (413), its type (415, with Accept) and, for CPIM, the
 * sender its wrapper names (403): some clients show the CPIM From instead of the SIP one, so it
 * must be `sender`, the sender Parley established. Answers a refused one; true when the body passes.
 */
export function bodyAccepted(ctx: SipContext, incoming: Incoming, sender: string): boolean {
  const { request } = incoming;
  if (request.body.length > ctx.messaging.maxBody) {
    reply(ctx, incoming, 413, { warning: `message body is ${request.body.length} bytes; the limit is ${ctx.messaging.maxBody}` });
    return false;
  }
  const contentType = request.headers.get('content-type');
  if (request.body.length === 0 && contentType === undefined) return true;
  const type = contentType === undefined ? undefined : safeMediaType(contentType);
  if (type === undefined || !(ACCEPTED_MESSAGE_TYPES as readonly string[]).includes(type)) {
    reply(ctx, incoming, 415, {
      headers: [['Accept', ACCEPTED_MESSAGE_TYPES.join(', ')]],
      warning: `content type ${contentType ?? '(none)'} is not relayed`,
    });
    return false;
  }
  const refusal = type === 'message/cpim' ? cpimSenderRefusal(request.body, sender) : undefined;
  if (refusal !== undefined) {
    reply(ctx, incoming, 403, { warning: refusal });
    return false;
  }
  return true;
}

/**
 * The media types of the Content-Type values seen, parsed once each: clients send the same few
 * values ("text/plain;charset=UTF-8") with every message. Bounded: past the bound, values are parsed
 * every time (a sender inventing a value per message fills nothing).
 */
const mediaTypes = new Map<string, string | null>();
const MAX_MEDIA_TYPES = 256;

function safeMediaType(value: string): string | undefined {
  const known = mediaTypes.get(value);
  if (known !== undefined) return known ?? undefined;
  let type: string | null;
  try {
    const ct = parseContentType(value);
    type = `${ct.type}/${ct.subtype}`;
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err;
    type = null;
  }
  if (mediaTypes.size < MAX_MEDIA_TYPES) mediaTypes.set(value, type);
  return type ?? undefined;
}

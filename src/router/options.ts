import type { Incoming, MethodHandler, SipContext } from './context.ts';
import { ACCEPTED_MESSAGE_TYPES } from './message-checks.ts';
import { PARTNER_METHODS } from './dispatch.ts';
import { reply } from './reply.ts';

/**
 * OPTIONS (RFC 3261 §11): what Parley serves. Answered by Parley itself, whoever it names, without
 * credentials; to a partner organisation (the federation link) with what a partner may send.
 */
export const optionsHandler: MethodHandler = {
  method: 'OPTIONS',
  handle(ctx: SipContext, incoming: Incoming): void {
    const allow = incoming.flow.partner === undefined ? ctx.allow : ctx.allow.filter((m) => PARTNER_METHODS.has(m));
    reply(ctx, incoming, 200, {
      headers: [
        ['Allow', allow.join(', ')],
        ['Accept', ACCEPTED_MESSAGE_TYPES.join(', ')],
        ['Accept-Encoding', 'identity'],
        ['Accept-Language', 'en'],
      ],
    });
  },
};

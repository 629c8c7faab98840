import type { Incoming, MethodHandler, SipContext } from './context.ts';
import { ACCEPTED_MESSAGE_TYPES } from './message.ts';
import { reply } from './reply.ts';

/** OPTIONS (RFC 3261 §11): what Parley serves. Answered by Parley itself, whoever it names. */
export const optionsHandler: MethodHandler = {
  method: 'OPTIONS',
  handle(ctx: SipContext, incoming: Incoming): void {
    reply(ctx, incoming, 200, {
      headers: [
        ['Allow', ctx.allow.join(', ')],
        ['Accept', ACCEPTED_MESSAGE_TYPES.join(', ')],
        ['Accept-Encoding', 'identity'],
        ['Accept-Language', 'en'],
      ],
    });
  },
};

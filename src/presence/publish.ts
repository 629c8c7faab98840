// PUBLISH for `presence` (RFC 3903 §6): a user publishes the presence of one of their devices.
// Parley is the event state compositor; the publications are kept by PublicationStore (one
// process) or SharedPublicationStore (the nodes of a cluster).

import type { Incoming, MethodHandler, SipContext } from '../router/context.ts';
import { addressOf, authenticateSender, localTarget } from '../router/identity.ts';
import { reply } from '../router/reply.ts';
import { PresenceError } from './errors.ts';
import { eventPackage, expiresOf } from '../events/index.ts';
import { mediaTypeOf, PRESENCE_EVENT } from './headers.ts';
import { parsePidf, PIDF_TYPE } from './pidf.ts';
import type { PresenceState } from './pidf.ts';
import type { PresenceService } from './service.ts';

/**
 * The largest PUBLISH body accepted, bytes (413 above). A device's PIDF document is well under a
 * kilobyte; this also bounds what the SIP framing reads for any method (see src/server/start.ts).
 */
export const MAX_PUBLISH_BODY = 64 * 1024;

export function publishHandler(presence: PresenceService): MethodHandler {
  return {
    method: 'PUBLISH',
    async handle(ctx: SipContext, incoming: Incoming): Promise<void> {
      const { request } = incoming;
      // Step 1: "The ESC inspects the Request-URI to determine whether this request is targeted
      // to a resource for which the ESC is responsible".
      const target = localTarget(ctx, incoming, `publish to ${ctx.domain}`);
      if (target === undefined) return;
      // Step 2: "The ESC examines the Event header field … If the ESC does not support the event
      // package, it MUST respond with a 489 (Bad Event)".
      const event = eventPackage(request.headers.get('event'));
      if (event !== PRESENCE_EVENT) {
        reply(ctx, incoming, 489, { headers: [['Allow-Events', PRESENCE_EVENT]], warning: `event package ${event ?? '(no Event header)'} is not served; only presence` });
        return;
      }
      // Step 3: "The ESC … MUST authenticate and authorize the EPA": a user publishes only their own presence.
      const sender = await authenticateSender(ctx, incoming);
      if (sender === undefined) return;
      const aor = addressOf(target);
      if (aor !== sender) {
        reply(ctx, incoming, 403, { warning: `${sender} may not publish the presence of ${aor}` });
        return;
      }

      const expires = expiresOf(request.headers.get('expires'));
      if (expires === null) {
        reply(ctx, incoming, 400, { warning: `Expires "${request.headers.get('expires')}" is not a number of seconds` });
        return;
      }
      // Step 6: the body, when there is one, must be a document of a type the package allows.
      let document: PresenceState | undefined;
      const contentType = request.headers.get('content-type');
      if (request.body.length > MAX_PUBLISH_BODY) {
        reply(ctx, incoming, 413, { warning: `presence document is ${request.body.length} bytes; the limit is ${MAX_PUBLISH_BODY}` });
        return;
      }
      if (request.body.length > 0) {
        const type = contentType === undefined ? undefined : mediaTypeOf(contentType);
        if (type !== PIDF_TYPE) {
          reply(ctx, incoming, 415, { headers: [['Accept', PIDF_TYPE]], warning: `content type ${contentType ?? '(none)'} is not a presence document; send ${PIDF_TYPE}` });
          return;
        }
        try {
          document = parsePidf(request.body, `sip:${aor}`);
        } catch (err) {
          if (!(err instanceof PresenceError)) throw err;
          reply(ctx, incoming, err.status, { warning: err.message });
          return;
        }
      }

      const ifMatch = request.headers.get('sip-if-match');
      const outcome = await presence.publications.publish({ aor, ifMatch, expires, document });
      switch (outcome.kind) {
        case 'published':
          // Step 8: "the ESC MUST include an Expires header field … and a SIP-ETag header field".
          reply(ctx, incoming, 200, { headers: [['SIP-ETag', outcome.etag], ['Expires', String(outcome.expires)]] });
          incoming.log.debug({ aor, change: outcome.change, state: document?.state }, 'publication of %s: %s', aor, outcome.change);
          return;
        case 'removed':
          reply(ctx, incoming, 200, { headers: [['Expires', '0']] });
          return;
        case 'too-brief':
          reply(ctx, incoming, 423, { headers: [['Min-Expires', String(outcome.minExpires)]], warning: `publications last at least ${outcome.minExpires} s` });
          return;
        case 'unknown-etag':
          reply(ctx, incoming, 412, { warning: `no publication of ${aor} has the entity-tag ${ifMatch ?? ''}; it expired or was replaced` });
          return;
        case 'invalid':
          reply(ctx, incoming, 400, { warning: outcome.reason });
          return;
        case 'unavailable':
          // RFC 3261 §21.5.4: a client that knows another server of the domain tries it; this one may work again soon
          reply(ctx, incoming, 503, { headers: [['Retry-After', '5']], warning: outcome.reason });
          return;
      }
    },
  };
}

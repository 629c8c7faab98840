// SUBSCRIBE to `presence` (RFC 6665 §4.2.1, RFC 3856 §6): creates, refreshes or ends a
// subscription, answers 200 with Expires, then sends a NOTIFY with the full state at once.

import type { FlowRef } from '../registrar/index.ts';
import type { Incoming, MethodHandler, SipContext } from '../router/context.ts';
import { addressOf, authenticateSender } from '../router/identity.ts';
import { reply, send } from '../router/reply.ts';
import { createResponse, parseCSeq, parseNameAddr, parseUri, SipParseError } from '../sip/index.ts';
import type { SipUri } from '../sip/index.ts';
import { acceptsPidf, eventPackage, expiresOf, PRESENCE_EVENT } from './headers.ts';
import { notifierContact } from './notifier.ts';
import { PIDF_TYPE } from './pidf.ts';
import type { PresenceService } from './service.ts';
import { dialogId, Subscription } from './subscriptions.ts';

export function subscribeHandler(presence: PresenceService): MethodHandler {
  return {
    method: 'SUBSCRIBE',
    handle(ctx: SipContext, incoming: Incoming): void {
      const { request } = incoming;
      let target: SipUri;
      let from: ReturnType<typeof parseNameAddr>;
      let to: ReturnType<typeof parseNameAddr>;
      let cseq: number;
      try {
        target = parseUri(request.uri);
        from = parseNameAddr(request.headers.get('from') ?? '');
        to = parseNameAddr(request.headers.get('to') ?? '');
        cseq = parseCSeq(request.headers.get('cseq') ?? '').seq;
      } catch (err) {
        if (!(err instanceof SipParseError)) throw err;
        reply(ctx, incoming, 400, { warning: err.message });
        return;
      }
      // RFC 6665 §4.2.1: "If the notifier does not understand the event package … it MUST
      // respond with a 489 (Bad Event)"; §8.2.2 Allow-Events lists the ones it does.
      const event = eventPackage(request.headers.get('event'));
      if (event !== PRESENCE_EVENT) {
        reply(ctx, incoming, 489, { headers: [['Allow-Events', PRESENCE_EVENT]], warning: `event package ${event ?? '(no Event header)'} is not served; only presence` });
        return;
      }
      const watcher = authenticateSender(ctx, incoming);
      if (watcher === undefined) return;
      // RFC 6665 §4.2.1.1: the notifier may shorten the duration, never lengthen it, and answers
      // 423 with Min-Expires when it is too short; 0 is a fetch (§4.4.3).
      const requested = expiresOf(request.headers.get('expires'));
      if (requested === null) {
        reply(ctx, incoming, 400, { warning: `Expires "${request.headers.get('expires')}" is not a number of seconds` });
        return;
      }
      const limits = presence.subscribeExpiry;
      const wanted = requested ?? limits.default;
      if (wanted !== 0 && wanted < limits.min) {
        reply(ctx, incoming, 423, { headers: [['Min-Expires', String(limits.min)]], warning: `subscriptions last at least ${limits.min} s` });
        return;
      }
      const expires = Math.min(wanted, limits.max);
      let contactUri: string | undefined;
      const contact = request.headers.get('contact');
      if (contact !== undefined) {
        try {
          contactUri = parseNameAddr(contact).uri;
        } catch (err) {
          if (!(err instanceof SipParseError)) throw err;
          reply(ctx, incoming, 400, { warning: `Contact: ${err.message}` });
          return;
        }
      }
      const flow: FlowRef = { id: incoming.flow.id, protocol: incoming.flow.protocol, local: incoming.flow.local, remote: incoming.flow.remote };
      const expiresAt = ctx.now() + expires * 1000;
      const fromTag = from.params.get('tag') ?? '';
      const toTag = to.params.get('tag');

      let sub: Subscription;
      if (toTag !== undefined && toTag !== null) {
        // RFC 6665 §4.2.1.2 refresh (or unsubscribe) within the dialog.
        const found = presence.subscriptions.get(dialogId(request.headers.get('call-id') ?? '', toTag, fromTag));
        if (found === undefined || found.state !== 'active') {
          reply(ctx, incoming, 481, { warning: 'no such subscription: it expired or was terminated' });
          return;
        }
        if (found.watcher !== watcher) {
          reply(ctx, incoming, 403, { warning: `${watcher} may not refresh the subscription of ${found.watcher}` });
          return;
        }
        // RFC 3261 §12.2.2: a CSeq lower than the last one is out of order.
        if (cseq <= found.dialog.remoteCSeq) {
          reply(ctx, incoming, 500, { warning: `CSeq ${cseq} is not above ${found.dialog.remoteCSeq}` });
          return;
        }
        found.refresh(expiresAt, cseq, contactUri, flow);
        sub = found;
        answer(ctx, incoming, expires);
        if (expires === 0) presence.terminate(sub, 'timeout');
        else {
          presence.subscriptions.schedule(sub);
          presence.notifier.notify(sub);
        }
        incoming.log.debug({ watcher, presentity: sub.presentity, expires }, 'subscription of %s to %s refreshed', watcher, sub.presentity);
        return;
      }

      // A new subscription. RFC 3856 §6.6 authorization: users of the organisation may watch
      // each other; other domains are refused until federation exists.
      if (target.host !== ctx.domain) {
        reply(ctx, incoming, 403, { warning: `${target.host} is not served here: no federation with that domain` });
        return;
      }
      const presentity = addressOf(target);
      if (!ctx.userExists(presentity)) {
        reply(ctx, incoming, 404, { warning: `no user ${presentity}` });
        return;
      }
      // RFC 3856 §6.7: PIDF is the format every presence watcher must accept.
      if (!acceptsPidf(request.headers.getAll('accept'))) {
        reply(ctx, incoming, 406, { headers: [['Accept', PIDF_TYPE]], warning: `presence is sent as ${PIDF_TYPE}` });
        return;
      }
      if (contactUri === undefined) {
        reply(ctx, incoming, 400, { warning: 'a SUBSCRIBE needs a Contact header (RFC 6665 §4.1.2.1)' });
        return;
      }
      const response = answer(ctx, incoming, expires);
      const localHeader = response.headers.get('to') ?? '';
      sub = new Subscription({
        watcher,
        presentity,
        event: request.headers.get('event') ?? PRESENCE_EVENT,
        flow,
        expiresAt,
        dialog: {
          callId: request.headers.get('call-id') ?? '',
          localTag: parseNameAddr(localHeader).params.get('tag') ?? '',
          remoteTag: fromTag,
          localHeader,
          remoteHeader: request.headers.get('from') ?? '',
          remoteTarget: contactUri,
          routeSet: request.headers.getAll('record-route'),
          remoteCSeq: cseq,
        },
      });
      presence.subscriptions.add(sub);
      // RFC 6665 §4.2.1: "the notifier MUST immediately construct and send a NOTIFY request";
      // a fetch (Expires: 0) gets that one NOTIFY with Subscription-State: terminated (§4.4.3).
      if (expires === 0) presence.terminate(sub, 'timeout');
      else presence.notifier.notify(sub);
      incoming.log.debug({ watcher, presentity, expires }, 'subscription of %s to %s created', watcher, presentity);
    },
  };
}

/** RFC 6665 §4.2.1.1: 200 (not the deprecated 202) with Expires and the notifier's Contact. */
function answer(ctx: SipContext, incoming: Incoming, expires: number) {
  const response = createResponse(incoming.request, 200);
  response.headers.append('expires', String(expires));
  response.headers.append('contact', notifierContact(incoming.flow));
  response.headers.append('server', ctx.product);
  send(incoming, response);
  incoming.log.debug({ status: 200, expires }, 'answered SUBSCRIBE with 200');
  return response;
}

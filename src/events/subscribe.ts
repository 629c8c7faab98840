// SUBSCRIBE (RFC 6665 §4.2.1) for every event package: finds the package from the Event header,
// then creates (within the limits of limits.ts), refreshes or ends a subscription, answers 200
// with Expires, and sends a NOTIFY with the package's current document at once.
//
// Across organisations (issue 15), for the packages marked `federated` (presence): a partner's
// watcher, on a connection of the federation link, subscribes to a local user without digest (the
// gate admits it, src/router/partner.ts); a local user's SUBSCRIBE to a partner's user goes on
// over the link, record-routed, and so do its refreshes (src/router/dialog-proxy.ts).

import type { FlowRef } from '../registrar/index.ts';
import type { Incoming, MethodHandler, SipContext } from '../router/context.ts';
import type { DialogProxy } from '../router/dialog-proxy.ts';
import { addressOf, authenticateSender } from '../router/identity.ts';
import { authenticatePartner, foreignDomain, fromPartner } from '../router/partner.ts';
import { reply, send } from '../router/reply.ts';
import { createResponse, parseCSeq, parseNameAddr, parseUri, SipParseError } from '../sip/index.ts';
import type { SipUri } from '../sip/index.ts';
import { acceptsType, eventPackage, expiresOf } from './headers.ts';
import { notifierContact } from './notifier.ts';
import type { Notifier } from './notifier.ts';
import type { EventPackage, ExpirySettings } from './package.ts';
import { dialogId, Subscription } from './subscriptions.ts';
import type { SubscriptionStore, TerminationReason } from './subscriptions.ts';

/**
 * Seconds a replaced subscription's device should wait before subscribing again (RFC 6665 §4.1.3
 * probation): long enough that devices over the limit cannot take turns replacing each other in
 * a tight loop, short enough that one replaced by mistake watches again soon.
 */
export const REPLACED_RETRY_AFTER = 600;

/** What the handler needs of the event service. */
export interface SubscribeDeps {
  packageOf(name: string): EventPackage | undefined;
  /** the Allow-Events value: every package served (RFC 6665 §8.2.2) */
  readonly allowEvents: string;
  /** the Allow-Events value towards partners: the federated packages */
  readonly federatedEvents: string;
  /** forwards local users' subscriptions to partners' users, and their in-dialog requests */
  readonly proxy: DialogProxy;
  expiryOf(pkg: EventPackage): ExpirySettings;
  readonly subscriptions: SubscriptionStore;
  readonly notifier: Notifier;
  terminate(sub: Subscription, reason: TerminationReason, retryAfter?: number): void;
}

export function subscribeHandler(events: SubscribeDeps): MethodHandler {
  return {
    method: 'SUBSCRIBE',
    async handle(ctx: SipContext, incoming: Incoming): Promise<void> {
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
      // A refresh or unsubscribe in a subscription to a partner's user: Parley only passes it on.
      const token = events.proxy.tokenOf(ctx, request);
      if (token !== undefined) {
        await events.proxy.forwardInDialog(ctx, incoming, token, 'to-partner');
        return;
      }
      // RFC 6665 §4.2.1: "If the notifier does not understand the event package … it MUST
      // respond with a 489 (Bad Event)"; §8.2.2 Allow-Events lists the ones it does.
      const name = eventPackage(request.headers.get('event'));
      const pkg = name === undefined ? undefined : events.packageOf(name);
      const partner = fromPartner(incoming);
      if (pkg === undefined || (partner && pkg.federated !== true)) {
        const served = partner ? events.federatedEvents : events.allowEvents;
        const why = pkg === undefined ? 'is not served' : `is served to ${ctx.domain}'s own users only`;
        reply(ctx, incoming, 489, { headers: [['Allow-Events', served]], warning: `event package ${name ?? '(no Event header)'} ${why}; ${partner ? 'partners may subscribe to' : 'these are'}: ${served || 'none'}` });
        return;
      }
      const fromTag = from.params.get('tag') ?? '';
      const toTag = to.params.get('tag');
      const inDialog = toTag !== undefined && toTag !== null;
      const found = inDialog ? events.subscriptions.get(dialogId(request.headers.get('call-id') ?? '', toTag, fromTag)) : undefined;
      let watcher: string | undefined;
      if (partner) {
        // A partner's watcher: the certificate of the link is the authentication, the gate
        // decides (the domain, and the watched user's external access policy). A partner
        // subscribes to this organisation's users only: nothing is relayed to a third domain.
        if (!inDialog && target.host !== ctx.domain) {
          reply(ctx, incoming, 403, { warning: `${ctx.domain} relays nothing to ${target.host}: a partner may subscribe to users of ${ctx.domain} only` });
          return;
        }
        watcher = (await authenticatePartner(ctx, incoming, inDialog ? found?.resource : addressOf(target).toLowerCase()))?.toLowerCase();
      } else {
        watcher = await authenticateSender(ctx, incoming);
        const domain = watcher === undefined || inDialog || ctx.federation === undefined ? undefined : foreignDomain(ctx, target);
        if (watcher !== undefined && domain !== undefined && target.host !== ctx.domain) {
          await subscribeToPartner(ctx, incoming, events, pkg, watcher, domain);
          return;
        }
      }
      if (watcher === undefined) return;
      // RFC 6665 §4.2.1.1: the notifier may shorten the duration, never lengthen it, and answers
      // 423 with Min-Expires when it is too short; 0 is a fetch (§4.4.3).
      const requested = expiresOf(request.headers.get('expires'));
      if (requested === null) {
        reply(ctx, incoming, 400, { warning: `Expires "${request.headers.get('expires')}" is not a number of seconds` });
        return;
      }
      const limits = events.expiryOf(pkg);
      const wanted = requested ?? limits.default;
      if (wanted !== 0 && wanted < limits.min) {
        reply(ctx, incoming, 423, { headers: [['Min-Expires', String(limits.min)]], warning: `${pkg.name} subscriptions last at least ${limits.min} s` });
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

      if (inDialog) {
        // RFC 6665 §4.2.1.2 refresh (or unsubscribe) within the dialog.
        if (found === undefined || found.state !== 'active' || found.package !== pkg.name) {
          reply(ctx, incoming, 481, { warning: `no such ${pkg.name} subscription: it expired or was terminated` });
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
        events.subscriptions.refresh(found, expiresAt, cseq, contactUri, flow);
        keepFlowOpen(incoming, expires, expiresAt);
        answer(ctx, incoming, expires);
        // §4.1.2.3: "Unsubscribing is handled in the same way as refreshing of a subscription,
        // with the "Expires" header field set to "0"" — the notifier sends a final NOTIFY.
        if (expires === 0) events.terminate(found, 'timeout');
        else {
          events.subscriptions.schedule(found);
          events.notifier.notify(found);
        }
        incoming.log.debug({ watcher, event: pkg.name, resource: found.resource, expires }, '%s subscription of %s to %s refreshed', pkg.name, watcher, found.resource);
        return;
      }

      // A new subscription: only resources of the organisation, users that exist, and what the
      // package authorizes (RFC 6665 §4.2.1: "the notifier SHOULD authenticate … and
      // … MUST determine whether the authenticated subscriber is authorized").
      if (target.host !== ctx.domain) {
        reply(ctx, incoming, 403, { warning: `${target.host} is not served here: no federation with that domain` });
        return;
      }
      const resource = addressOf(target).toLowerCase();
      // (a partner never gets here for a user who does not exist: the gate refused it with the
      // same words as for a user whose policy keeps them from partners)
      if (!(await (pkg.hasResource?.(ctx, resource) ?? ctx.userExists(resource)))) {
        reply(ctx, incoming, 404, { warning: `no user ${resource}` });
        return;
      }
      const decision = await pkg.authorize(ctx, watcher, resource, request);
      if (decision !== 'ok') {
        reply(ctx, incoming, decision.status, { headers: decision.headers?.map(([n, v]) => [n, v]), warning: decision.warning });
        return;
      }
      // RFC 6665 §4.2.1: the notifier "SHOULD … ensure that the subscriber can receive" the body
      // formats; 406 Not Acceptable with Accept naming the one it sends.
      const accept = request.headers.getAll('accept');
      if (!(pkg.accepts?.(accept) ?? acceptsType(accept, pkg.contentType))) {
        reply(ctx, incoming, 406, { headers: [['Accept', pkg.contentType]], warning: `${pkg.name} is sent as ${pkg.contentType}` });
        return;
      }
      if (contactUri === undefined) {
        reply(ctx, incoming, 400, { warning: 'a SUBSCRIBE needs a Contact header (RFC 6665 §4.1.2.1)' });
        return;
      }
      // The limits (limits.ts; a fetch creates nothing that lasts). RFC 6665 has no status for a
      // quota: 403, which RFC 3261 §21.4.4 says not to repeat, with a Warning naming the limit.
      // From here on nothing awaits, so no other SUBSCRIBE can slip in between count and add.
      const admission = expires === 0 ? undefined : events.subscriptions.admit(watcher, pkg.name, resource);
      if (admission?.kind === 'refused') {
        incoming.log.info({ watcher, event: pkg.name, resource }, 'SUBSCRIBE refused: %s', admission.warning);
        reply(ctx, incoming, 403, { warning: admission.warning });
        return;
      }
      if (admission?.kind === 'replace') {
        // The least recently refreshed one goes: most often a device that went away without
        // unsubscribing. RFC 6665 §4.1.3 `probation` with retry-after: a device still there may
        // subscribe again, later — `deactivated` would have it come back at once and replace
        // another one in turn, in a loop.
        incoming.log.info(
          { watcher, event: pkg.name, resource, limit: admission.limit },
          '%s subscription of %s to %s replaced by a new one: %d per watcher and resource at most',
          pkg.name, watcher, resource, admission.limit,
        );
        events.terminate(admission.oldest, 'probation', REPLACED_RETRY_AFTER);
      }
      const response = answer(ctx, incoming, expires);
      const localHeader = response.headers.get('to') ?? '';
      const sub = new Subscription({
        watcher,
        package: pkg.name,
        resource,
        event: request.headers.get('event') ?? pkg.name,
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
        ...(partner ? { partner: watcher.slice(watcher.lastIndexOf('@') + 1) } : {}),
      });
      events.subscriptions.add(sub);
      keepFlowOpen(incoming, expires, expiresAt);
      // RFC 6665 §4.2.1: "the notifier MUST immediately construct and send a NOTIFY request";
      // a fetch (Expires: 0) gets that one NOTIFY with Subscription-State: terminated (§4.4.3).
      if (expires === 0) events.terminate(sub, 'timeout');
      else events.notifier.notify(sub);
      incoming.log.debug({ watcher, event: pkg.name, resource, expires }, '%s subscription of %s to %s created', pkg.name, watcher, resource);
    },
  };
}

/**
 * A local user's new subscription to a partner's user: only federated packages leave the
 * organisation, and only where the gate lets the user go (the same decision as for a MESSAGE).
 */
async function subscribeToPartner(ctx: SipContext, incoming: Incoming, events: SubscribeDeps, pkg: EventPackage, watcher: string, domain: string): Promise<void> {
  if (pkg.federated !== true) {
    reply(ctx, incoming, 403, { warning: `${pkg.name} subscriptions stay within ${ctx.domain}; subscriptions to partner organisations: ${events.federatedEvents || 'none'}` });
    return;
  }
  const refusal = (await ctx.federation?.outboundRefusal(watcher, domain)) ?? null;
  if (refusal !== null) {
    incoming.log.info({ watcher, domain, code: refusal.code }, 'SUBSCRIBE to %s refused: %s', domain, refusal.warning);
    reply(ctx, incoming, 403, { warning: refusal.warning });
    return;
  }
  return events.proxy.forwardToPartner(ctx, incoming, watcher, domain);
}

/**
 * NOTIFYs go over the subscription's flow: its connection is kept open while the subscription
 * lasts (lengthened only: one that ends early leaves it to the idle timeout after its old expiry).
 */
function keepFlowOpen(incoming: Incoming, expires: number, expiresAt: number): void {
  if (expires > 0) incoming.flow.keepOpenUntil?.(expiresAt);
}

/**
 * RFC 6665 §4.2.1.1: 200 (not the deprecated 202) with Expires and the notifier's Contact; towards
 * a partner the Contact names this server as partners know it (the federation name, TLS). RFC 3261
 * §12.1.1: the UAS copies the Record-Route values into the answer (a partner's proxy puts one).
 */
function answer(ctx: SipContext, incoming: Incoming, expires: number) {
  const response = createResponse(incoming.request, 200);
  for (const route of incoming.request.headers.getAll('record-route')) response.headers.append('record-route', route);
  response.headers.append('expires', String(expires));
  const gate = ctx.federation;
  response.headers.append('contact', incoming.flow.partner !== undefined && gate !== undefined ? `<sip:${gate.sentBy};transport=tls>` : notifierContact(incoming.flow));
  response.headers.append('server', ctx.product);
  send(incoming, response);
  incoming.log.debug({ status: 200, expires }, 'answered SUBSCRIBE with 200');
  return response;
}

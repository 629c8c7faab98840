import type { Incoming, MethodHandler, SipContext } from '../router/context.ts';
import { reply } from '../router/reply.ts';
import { refuseCredentials } from '../router/identity.ts';
import type { AuthOutcome } from '../auth/authenticator.ts';
import type { Binding, FlowRef, LocationService } from './location.ts';
import { planRegistration, type RegistrarSettings } from './plan.ts';
import { parseNameAddr, parseUri, SipParseError } from '../sip/index.ts';
import type { Flow, SipRequest } from '../sip/index.ts';

/** REGISTER (RFC 3261 §10.3): Parley is the registrar of its one domain. */
export const registerHandler: MethodHandler = {
  method: 'REGISTER',
  handle(ctx: SipContext, incoming: Incoming): void | Promise<void> {
    const { request, flow } = incoming;
    const required = request.headers.getAll('require');
    if (required.length > 0) {
      reply(ctx, incoming, 420, { headers: [['Unsupported', required.join(', ')]], warning: `extensions not supported: ${required.join(', ')}` });
      return;
    }

    // The address-of-record is the To URI (§10.3 step 5); Parley only registers its own domain.
    let aor: string;
    try {
      const to = parseUri(parseNameAddr(request.headers.get('to') ?? '').uri);
      if (to.host !== ctx.domain) {
        reply(ctx, incoming, 403, { warning: `${to.host} is not the domain of this registrar (${ctx.domain})` });
        return;
      }
      aor = `${to.user ?? ''}@${to.host}`;
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
      reply(ctx, incoming, 400, { warning: `To header: ${err.message}` });
      return;
    }

    // at once when the account is kept: a REGISTER whose lookups all answer at once is handled
    // without a promise or a microtask hop (a 401 and a refresh's 200 alike)
    const authenticating = ctx.auth.authenticate(request, 'registrar', flow.remote.address);
    return authenticating instanceof Promise ? authenticating.then((auth) => authenticated(ctx, incoming, aor, auth)) : authenticated(ctx, incoming, aor, authenticating);
  },
};

/** The REGISTER of `aor` once its credentials are checked; a promise only when something waits. */
function authenticated(ctx: SipContext, incoming: Incoming, aor: string, auth: AuthOutcome): void | Promise<void> {
  const { request, flow } = incoming;
  if (!auth.ok) {
    // right credentials with a used nonce count: a replay, or a retransmission of a REGISTER
    // whose 200 was sent without keeping its transaction (below), which gets that answer again
    if (auth.replayOf === aor && incoming.tx?.retransmission === true) return answerRetransmission(ctx, incoming, aor);
    refuseCredentials(ctx, incoming, auth);
    return;
  }
  // the connection is a user's now: what it holds no longer counts as a stranger's
  flow.markTrusted?.();
  if (auth.address !== aor) {
    reply(ctx, incoming, 403, { warning: `${auth.address} may not register ${aor}` });
    return;
  }

  const now = ctx.now();
  const ref: FlowRef = { id: flow.id, protocol: flow.protocol, local: flow.local, remote: flow.remote };
  const applying = planAndApply(ctx.location, ctx.registrar, { aor, request, flow: ref, now });
  return applying instanceof Promise ? applying.then((applied) => answerApplied(ctx, incoming, aor, now, applied)) : answerApplied(ctx, incoming, aor, now, applying);
}

function answerApplied(ctx: SipContext, incoming: Incoming, aor: string, now: number, applied: Applied): void | Promise<void> {
  const { flow } = incoming;
  if (!applied.ok) {
    const headers: Array<[string, string]> = applied.minExpires ? [['Min-Expires', String(applied.minExpires)]] : [];
    if (applied.retryAfter !== undefined) headers.push(['Retry-After', String(applied.retryAfter)]);
    reply(ctx, incoming, applied.status, { headers, warning: applied.warning });
    return;
  }
  const { current, plan, bindings } = applied;
  // The connection closed while this REGISTER was being handled: its close dropped the flow's
  // bindings (sip-service.ts) before these were stored, so they are dropped again here; else
  // they would outlive the connection until they expire, and requests for the AoR would try them.
  if (flow.reliable && flow.closed) {
    return ctx.location.removeFlow(flow.id).then((gone) => {
      incoming.log.info({ aor, flow: flow.id }, 'registration of %s over a connection that closed meanwhile: its bindings dropped', aor);
      answerRegistered(ctx, incoming, aor, now, current, plan, bindings.filter((b) => !gone.some((g) => g.key === b.key && g.flow.id === b.flow.id)));
    });
  }
  answerRegistered(ctx, incoming, aor, now, current, plan, bindings);
}

function answerRegistered(ctx: SipContext, incoming: Incoming, aor: string, now: number, current: readonly Binding[], plan: { stateless: boolean }, bindings: Binding[]): void {
  const { flow } = incoming;
  if (flow.keepOpenUntil !== undefined) keepFlowOpen(flow, bindings);
  // A refresh (the same contacts, later expiry) changes nothing anyone watches; it is also most of
  // a registrar's traffic, so it is logged at debug level only.
  if (sameContacts(current, bindings)) {
    if (ctx.logger.isLevelEnabled('debug')) incoming.log.debug({ aor, bindings: bindings.length }, 'registration of %s refreshed', aor);
  } else {
    ctx.registrations.emit('changed', aor);
    incoming.log.info({ aor, bindings: bindings.length, flow: flow.id }, 'registration of %s: %d binding(s)', aor, bindings.length);
  }
  // Most REGISTERs only bind: their transactions are not kept for Timer J (32 s over UDP, ~700
  // bytes each), the transaction layer only remembers they were answered (answerAgain)
  reply(ctx, incoming, 200, { headers: bindingHeaders(bindings, now), stateless: plan.stateless, answerAgain: plan.stateless });
}

/** Plans made from a lookup that another REGISTER overtook before they were applied, at most. */
const PLAN_ATTEMPTS = 5;

export type Applied =
  | { ok: true; current: Binding[]; bindings: Binding[]; plan: { stateless: boolean } }
  | { ok: false; status: number; warning: string; minExpires?: number; retryAfter?: number };

/**
 * §10.3 steps 6–7 against the bindings as they are when the changes land: the plan is applied only
 * if the AoR's bindings are still those it was made from (applyIf), else planned again from a new
 * lookup. Two REGISTERs of one AoR at two nodes (or between two awaits here) thus keep CSeq order
 * per Call-ID and maxBindings as if they had come one after the other.
 */
export function planAndApply(location: LocationService, settings: RegistrarSettings, input: { aor: string; request: SipRequest; flow: FlowRef; now: number }): Applied | Promise<Applied> {
  // in this process's memory lookup and applyIf answer at once: no promise, no microtask hop
  const { aor, now } = input;
  const looked = location.lookup(aor, now);
  if (looked instanceof Promise) return planAndApplyWaiting(location, settings, input, 0, looked);
  const plan = planRegistration({ ...input, current: looked, settings });
  if (!plan.ok) return plan;
  const applying = location.applyIf(aor, looked, plan.changes, now);
  if (applying instanceof Promise) return applying.then((bindings) => (bindings !== null ? { ok: true, current: looked, bindings, plan } : planAndApplyWaiting(location, settings, input, 1)));
  if (applying !== null) return { ok: true, current: looked, bindings: applying, plan };
  return planAndApplyWaiting(location, settings, input, 1);
}

/** planAndApply from attempt `first` on (`looked`: that attempt's lookup, already asked). */
async function planAndApplyWaiting(location: LocationService, settings: RegistrarSettings, input: { aor: string; request: SipRequest; flow: FlowRef; now: number }, first: number, looked?: Promise<Binding[]>): Promise<Applied> {
  const { aor, now } = input;
  for (let attempt = first; attempt < PLAN_ATTEMPTS; attempt++) {
    const lookup = attempt === first && looked !== undefined ? looked : location.lookup(aor, now);
    const current = lookup instanceof Promise ? await lookup : lookup;
    const plan = planRegistration({ ...input, current, settings });
    if (!plan.ok) return plan;
    const applying = location.applyIf(aor, current, plan.changes, now);
    const bindings = applying instanceof Promise ? await applying : applying;
    if (bindings !== null) return { ok: true, current, bindings, plan };
  }
  // each conflict was another REGISTER of this AoR succeeding: this one is for the client to retry
  return { ok: false, status: 500, retryAfter: 1, warning: `the registrations of ${aor} kept changing while this REGISTER was applied (${PLAN_ATTEMPTS} tries); send it again` };
}

/**
 * Answers a retransmission of a REGISTER whose 200 was sent without keeping its transaction: a 200
 * with the current bindings, nothing changed (RFC 3261 §17.2.2: a retransmission changes nothing
 * and gets the final answer again; §8.2.7). Its credentials were those of the first request, whose
 * nonce count it repeats: the transaction layer's mark (a fingerprint of the Via branch and
 * sent-by) and the repeated count together tell it from a replay with other credentials.
 */
async function answerRetransmission(ctx: SipContext, incoming: Incoming, aor: string): Promise<void> {
  const now = ctx.now();
  const current = await ctx.location.lookup(aor, now);
  if (ctx.logger.isLevelEnabled('debug')) incoming.log.debug({ aor }, 'retransmitted REGISTER of %s answered again', aor);
  reply(ctx, incoming, 200, { headers: bindingHeaders(current, now), stateless: true });
}

/** §10.3 step 8: the 200's Contact for every current binding, and Date. */
function bindingHeaders(bindings: readonly Binding[], now: number): Array<[string, string]> {
  const headers = bindings.map((b) => ['Contact', contactValue(b, now)] as [string, string]);
  headers.push(['Date', httpDate(now)]);
  return headers;
}

/** The Date value (RFC 1123 form, whole seconds), written once per second: formatting a date costs more than a REGISTER's other headers together. */
let dateSecond = Number.NaN;
let dateText = '';
function httpDate(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}

/**
 * RFC 5626 §5.3: requests for a binding go back over the flow its REGISTER came on, so a
 * connection is kept open while a binding made over it lives (the client refreshes it over the
 * same connection, or sends CRLF keep-alives). Only lengthened: a binding removed early leaves
 * the connection open until its old expiry at most.
 */
function keepFlowOpen(flow: Flow, bindings: readonly Binding[]): void {
  let until = 0;
  for (const b of bindings) if (b.flow.id === flow.id && b.expiresAt > until) until = b.expiresAt;
  if (until > 0) flow.keepOpenUntil?.(until);
}

function sameContacts(before: readonly Binding[], after: readonly Binding[]): boolean {
  if (before.length !== after.length) return false;
  return after.every((b) => before.some((a) => a.key === b.key && a.contact === b.contact && a.flow.id === b.flow.id));
}

/** §10.3 step 8: every current binding, each with the seconds it has left. */
function contactValue(binding: Binding, now: number): string {
  return `<${binding.contact}>;expires=${Math.max(0, Math.round((binding.expiresAt - now) / 1000))}`;
}

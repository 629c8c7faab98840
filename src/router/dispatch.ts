// The SIP request entry point above the transaction layer: checks every request must pass
// (RFC 3261 §8.2.1–8.2.2, §16.3) and hands it to the handler of its method.

import type { Logger } from 'pino';
import type { Incoming, MethodHandler, SipContext, SipStats } from './context.ts';
import { reply } from './reply.ts';
import { hopToken, relayHop } from './hop.ts';
import type { Flow, NonInviteServerTransaction, SipRequest } from '../sip/index.ts';

/**
 * What a partner organisation's connection (the federation link, issue 15) may ask of Parley:
 * messages, presence subscriptions and their notifications, and what Parley serves. Registering
 * devices and publishing presence are for this organisation's own users: a partner's users register
 * and publish at their own server. (INVITE, ACK and CANCEL get the answers everyone gets.)
 */
export const PARTNER_METHODS: ReadonlySet<string> = new Set(['MESSAGE', 'SUBSCRIBE', 'NOTIFY', 'OPTIONS']);

const NONE: readonly string[] = [];

export function createDispatcher(ctx: SipContext, handlers: readonly MethodHandler[]) {
  const byMethod = new Map(handlers.map((h) => [h.method, h] as const));

  return function dispatch(request: SipRequest, flow: Flow, tx: NonInviteServerTransaction | null): void {
    ctx.stats?.request(request.method);
    // An ACK only ever acknowledges a final answer to an INVITE, which Parley gave statelessly.
    if (request.method === 'ACK') return;
    const incoming = new IncomingRequest(request, flow, tx, ctx.logger, ctx.stats);
    if (request.method === 'CANCEL') {
      reply(ctx, incoming, 481, { warning: 'nothing to cancel: Parley keeps no INVITE transactions' });
      return;
    }
    const drain = ctx.drain;
    if (drain?.draining) {
      reply(ctx, incoming, 503, { headers: [['Retry-After', String(drain.retryAfter)]], warning: 'the server is stopping; send this request to another server of the domain, or try again later' });
      return;
    }
    // A request another node of the cluster relayed: its signature is checked before anything else,
    // and it is neither challenged nor routed again (the sending node did both; hop.ts)
    const hop = hopToken(request);
    if (hop !== undefined) {
      const relayed = relayHop(ctx, incoming, hop);
      if (relayed) drain?.track(relayed);
      return;
    }
    if (flow.partner !== undefined && !PARTNER_METHODS.has(request.method) && byMethod.has(request.method)) {
      reply(ctx, incoming, 403, { warning: `a partner organisation may not ${request.method} here: over the federation link ${ctx.domain} takes ${[...PARTNER_METHODS].join(', ')}` });
      return;
    }
    const handler = byMethod.get(request.method);
    if (!handler) {
      reply(ctx, incoming, 405, { headers: [['Allow', ctx.allow.join(', ')]], warning: `${request.method} is not served: Parley is an IM and presence server` });
      return;
    }
    if (!/^sips?:/i.test(request.uri)) {
      reply(ctx, incoming, 416, { warning: `Request-URI scheme of "${request.uri.slice(0, 80)}" is not sip or sips` });
      return;
    }
    // most requests have none: looked for before a list is made
    const proxyRequire = request.headers.has('proxy-require') ? request.headers.getAll('proxy-require') : NONE;
    if (proxyRequire.length > 0) {
      reply(ctx, incoming, 420, { headers: [['Unsupported', proxyRequire.join(', ')]], warning: `proxy extensions not supported: ${proxyRequire.join(', ')}` });
      return;
    }
    let result;
    try {
      result = handler.handle(ctx, incoming);
    } catch (err) {
      failed(ctx, incoming, err);
      return;
    }
    if (result) {
      result.catch((err: unknown) => failed(ctx, incoming, err));
      drain?.track(result);
    }
  };
}

/**
 * A request on its way through the handlers. Its logger is made on first use: most requests log
 * nothing at the usual levels, and making a child logger serialises its bindings. (A class, not an
 * object literal with a getter, which would cost an accessor pair per request.)
 */
class IncomingRequest implements Incoming {
  readonly request: SipRequest;
  readonly flow: Flow;
  readonly tx: NonInviteServerTransaction | null;
  readonly stats: SipStats | undefined;
  readonly #parent: Logger;
  #log: Logger | undefined;

  constructor(request: SipRequest, flow: Flow, tx: NonInviteServerTransaction | null, parent: Logger, stats: SipStats | undefined) {
    this.request = request;
    this.flow = flow;
    this.tx = tx;
    this.stats = stats;
    this.#parent = parent;
  }

  get log(): Logger {
    return (this.#log ??= this.#parent.child({ callId: this.request.headers.get('call-id'), method: this.request.method, flow: this.flow.id }));
  }
}

/** A bug or an unavailable dependency: the sender still gets an answer, the log gets the cause. */
function failed(ctx: SipContext, incoming: Incoming, err: unknown): void {
  incoming.log.error({ err }, 'handling %s failed', incoming.request.method);
  if (!incoming.tx || !incoming.tx.answered) reply(ctx, incoming, 500, { warning: 'internal error; see the server log' });
}

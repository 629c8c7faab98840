// Wires the SIP layers: transports → parser → transaction layer → dispatcher, and answers what
// cannot be parsed. Sockets live in the listeners; this module only connects them.

import type { Logger } from 'pino';
import type { LocationService } from '../registrar/location.ts';
import type { RegistrationEvents } from '../registrar/events.ts';
import type { SipContext } from '../router/context.ts';
import { checkRequest, createResponse, parseVia, serialize, SipParseError, stampReceived, warning } from '../sip/index.ts';
import type { Flow, Headers, SipMessage, TransactionLayer, TransportSink } from '../sip/index.ts';

/**
 * Whether a response to a malformed request can be sent: its top Via must be read (RFC 3261
 * §18.2.2; the response carries it back). From, To, Call-ID and CSeq are copied when there, as
 * RFC 4475 asks for a request that lacks them or whose CSeq overflows (§3.3.1, §3.1.2.4).
 */
function answerable(headers: Headers): boolean {
  const via = headers.get('via');
  if (via === undefined) return false;
  try {
    parseVia(via);
    return true;
  } catch {
    return false;
  }
}

/** The transport sink of the server: the only place where bytes become requests for the core. */
export function createSipSink(opts: {
  logger: Logger;
  transactions: TransactionLayer;
  location: LocationService;
  registrations: RegistrationEvents;
  connections: Map<string, Flow>;
  ctx: Pick<SipContext, 'domain' | 'product'>;
  /** the subscriptions whose NOTIFYs took a closed connection end with it */
  events: { flowClosed(flowId: string): void };
}): TransportSink {
  const { logger, transactions, location, registrations, connections, ctx, events } = opts;

  const answerUnparsable = (error: SipParseError, flow: Flow): void => {
    const headers = error.headers;
    if (!error.isRequest || !headers || !answerable(headers)) {
      // a response, or a request whose answer could not find its way: nothing to send (debug only,
      // since anyone can send such bytes, as often as they like)
      logger.debug({ flow: flow.id, code: error.code, err: error.message }, 'unparsable message dropped: %s', error.message);
      return;
    }
    // RFC 3261 §8.2: a malformed request still gets an answer, when the answer can find its way.
    const response = createResponse({ headers }, error.status);
    response.headers.append('warning', warning(ctx.domain, error.message));
    response.headers.append('server', ctx.product);
    flow.send(serialize(response));
    logger.info({ flow: flow.id, callId: headers.get('call-id'), code: error.code, status: error.status }, 'malformed request answered %d: %s', error.status, error.message);
  };

  return {
    onMessage(message: SipMessage, flow: Flow): void {
      if (flow.reliable && !connections.has(flow.id)) connections.set(flow.id, flow);
      try {
        const topVia = message.kind === 'request' ? stampReceived(message, flow.remote) : undefined;
        if (message.kind === 'request' && topVia !== undefined) checkRequest(message, topVia);
        if (!transactions.receive(message, flow, topVia)) logger.debug({ flow: flow.id, callId: message.headers.get('call-id') }, 'response matches no transaction; dropped');
      } catch (err) {
        if (err instanceof SipParseError) {
          answerUnparsable(new SipParseError(err.code, err.message, 400, message.headers, message.kind === 'request'), flow);
          return;
        }
        logger.error({ err, flow: flow.id, callId: message.headers.get('call-id') }, 'message handling failed');
      }
    },
    onParseError: answerUnparsable,
    onFlowClosed(flow: Flow): void {
      connections.delete(flow.id);
      events.flowClosed(flow.id);
      location.removeFlow(flow.id).then(
        (gone) => {
          for (const b of gone) logger.info({ aor: b.aor, flow: flow.id }, 'binding of %s dropped: connection closed', b.aor);
          for (const aor of new Set(gone.map((b) => b.aor))) registrations.emit('changed', aor);
        },
        (err: unknown) => logger.error({ err, flow: flow.id }, 'dropping bindings of a closed connection failed'),
      );
    },
  };
}

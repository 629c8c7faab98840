import type { Incoming, SipContext } from './context.ts';
import { createResponse, serialize, warning as warningValue } from '../sip/index.ts';
import type { SipResponse } from '../sip/index.ts';

export interface ReplyOptions {
  reason?: string;
  /** a sentence for the person reading the client's log: why this answer */
  warning?: string;
  headers?: Array<[string, string]>;
  body?: { type: string; content: string };
  /** end the transaction with this answer (no Timer J): only for answers harmless to give again, see RespondOptions */
  stateless?: boolean;
  /** with `stateless`: a retransmission comes to the handler again, marked `tx.retransmission` (RespondOptions) */
  answerAgain?: boolean;
}

/** Answers a request: through its transaction, or statelessly over its flow. */
export function reply(ctx: SipContext, incoming: Incoming, status: number, opts: ReplyOptions = {}): SipResponse {
  const response = createResponse(incoming.request, status, opts.reason);
  for (const [name, value] of opts.headers ?? []) response.headers.append(name, value);
  if (opts.warning) response.headers.append('warning', warningValue(ctx.domain, opts.warning));
  response.headers.append('server', ctx.product);
  if (opts.body) {
    response.headers.append('content-type', opts.body.type);
    response.body = Buffer.from(opts.body.content, 'utf8');
  }
  send(incoming, response, opts.stateless === true, opts.answerAgain === true);
  const level = status >= 500 ? 'warn' : 'debug';
  if (ctx.logger.isLevelEnabled(level)) incoming.log[level]({ status, warning: opts.warning }, 'answered %s with %d', incoming.request.method, status);
  return response;
}

/** Sends a response built elsewhere (a relayed one) on the request's transaction or flow. */
export function send(incoming: Incoming, response: SipResponse, stateless = false, answerAgain = false): void {
  if (incoming.tx) {
    if (incoming.tx.answered) return;
    incoming.tx.respond(response, { stateless, answerAgain });
  } else incoming.flow.send(serialize(response));
  incoming.stats?.response(incoming.request.method, response.status);
}

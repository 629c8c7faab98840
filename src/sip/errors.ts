import { ParleyError } from '../errors.ts';
import type { Headers } from './message.ts';

/**
 * A message that could not be parsed. `status` is what a server answers when a response can be
 * routed (400, 413, 414, 505, 513); `headers` holds what was read before the fault, so the edge
 * can build that response from Via/From/To/Call-ID/CSeq, or drop the message when it cannot.
 */
export class SipParseError extends ParleyError {
  readonly status: number;
  readonly headers: Headers | undefined;
  /** true when the first line said this is a request (only requests are answered) */
  readonly isRequest: boolean;

  constructor(code: string, message: string, status: number, headers?: Headers, isRequest = false) {
    super(code, message);
    this.status = status;
    this.headers = headers;
    this.isRequest = isRequest;
  }
}

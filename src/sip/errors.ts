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

/**
 * Every code a SipParseError can carry, in one place. Codes are stable: the edge, logs and tests
 * match on them. The wire status depends on where the fault is (see each throw site), but is
 * usually: 400 for syntax, 413 body too large, 414 Request-URI too long, 416 URI scheme, 505 version,
 * 513 header section too large; 500 for a message we refuse to serialize.
 */
export const SIP_PARSE_ERRORS = {
  /** nothing but CRLFs (a keep-alive datagram) or no bytes at all */
  EMPTY_MESSAGE: 'SIP_EMPTY_MESSAGE',
  BAD_START_LINE: 'SIP_BAD_START_LINE',
  BAD_VERSION: 'SIP_BAD_VERSION',
  BAD_STATUS: 'SIP_BAD_STATUS',
  START_LINE_TOO_LONG: 'SIP_START_LINE_TOO_LONG',
  /** NUL, bare CR or another control character where none may be */
  BAD_CHARACTER: 'SIP_BAD_CHARACTER',
  BAD_HEADER: 'SIP_BAD_HEADER',
  HEADER_TOO_LONG: 'SIP_HEADER_TOO_LONG',
  TOO_MANY_HEADERS: 'SIP_TOO_MANY_HEADERS',
  HEADERS_TOO_LARGE: 'SIP_HEADERS_TOO_LARGE',
  MISSING_HEADER: 'SIP_MISSING_HEADER',
  DUPLICATE_HEADER: 'SIP_DUPLICATE_HEADER',
  /** the header section does not end with an empty line */
  TRUNCATED: 'SIP_TRUNCATED',
  BAD_CONTENT_LENGTH: 'SIP_BAD_CONTENT_LENGTH',
  /** stream transports only: without Content-Length the framing is lost */
  MISSING_CONTENT_LENGTH: 'SIP_MISSING_CONTENT_LENGTH',
  BODY_TOO_LARGE: 'SIP_BODY_TOO_LARGE',
  BAD_URI: 'SIP_BAD_URI',
  UNSUPPORTED_URI_SCHEME: 'SIP_UNSUPPORTED_URI_SCHEME',
  BAD_NAME_ADDR: 'SIP_BAD_NAME_ADDR',
  BAD_VIA: 'SIP_BAD_VIA',
  BAD_CSEQ: 'SIP_BAD_CSEQ',
  BAD_MAX_FORWARDS: 'SIP_BAD_MAX_FORWARDS',
  BAD_PARAMS: 'SIP_BAD_PARAMS',
  BAD_QUOTED_STRING: 'SIP_BAD_QUOTED_STRING',
  BAD_LIST: 'SIP_BAD_LIST',
  BAD_AUTH: 'SIP_BAD_AUTH',
  BAD_CONTENT_TYPE: 'SIP_BAD_CONTENT_TYPE',
  /** a Date that is not an RFC 1123 date in GMT (RFC 3261 §20.17) */
  BAD_DATE: 'SIP_BAD_DATE',
  /** the serializer refuses a message that would mis-frame on the wire (CR/LF in a value…) */
  CANNOT_SERIALIZE: 'SIP_CANNOT_SERIALIZE',
} as const;

export type SipParseErrorCode = (typeof SIP_PARSE_ERRORS)[keyof typeof SIP_PARSE_ERRORS];

// DNS could not answer at all, as opposed to answering "no such name" (which is an answer: a
// DnsAnswer without records). Callers tell the two apart: a failure is worth a retry, an answer is not.
import { ParleyError } from '../errors.ts';

export class DnsError extends ParleyError {}

export const DNS_CODES = {
  /** no server answered in time */
  TIMEOUT: 'DNS_TIMEOUT',
  /** every server answered SERVFAIL, REFUSED or an unreadable packet */
  FAILED: 'DNS_FAILED',
} as const;

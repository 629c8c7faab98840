// Size limits of the SIP grammar layer, in one place (STYLE: limits enforced while parsing).
// These are hard caps against abuse. The server lowers maxBody to the largest body any method
// accepts (src/server/start.ts), so that the framing of a connection never holds a body that
// would be refused once read; each method still enforces its own limit (413).

export interface SipLimits {
  /** bytes of the start line (Request-Line / Status-Line), without its CRLF; over it: 414 for a request */
  maxStartLine: number;
  /** header field lines (a folded field counts once; a comma list counts once) */
  maxHeaderCount: number;
  /** bytes of one header field, folded continuation lines included */
  maxHeaderLine: number;
  /** bytes of the whole header section after the start line, line ends included */
  maxHeaderBytes: number;
  /** bytes of the body; over it: 413 */
  maxBody: number;
}

export const DEFAULT_SIP_LIMITS: SipLimits = Object.freeze({
  maxStartLine: 8 * 1024,
  maxHeaderCount: 100,
  maxHeaderLine: 8 * 1024,
  maxHeaderBytes: 64 * 1024,
  maxBody: 1024 * 1024,
});

/**
 * Default limits with some replaced, checked and frozen: for configuration at start-up.
 * Throws a RangeError naming the bad limit.
 */
export function sipLimits(overrides: Partial<SipLimits> = {}): SipLimits {
  const out: SipLimits = { ...DEFAULT_SIP_LIMITS, ...overrides };
  for (const [key, value] of Object.entries(out)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`SIP limit ${key} must be a positive integer, got ${String(value)}`);
  }
  return Object.freeze(out);
}

// The SIP message model (RFC 3261 §7). Plain data: the parser produces it, the serializer writes it,
// and everything above the transport works on it. Header values stay as text; the grammar module
// parses the few structured headers on demand, so relaying a message costs no more than it must.

/** Header names are kept in their canonical lower-case long form (compact forms expanded, §7.3.3). */
const COMPACT: Readonly<Record<string, string>> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  o: 'event', // RFC 6665
  u: 'allow-events', // RFC 6665
  r: 'refer-to', // RFC 3515
  b: 'referred-by', // RFC 3892
  x: 'session-expires', // RFC 4028
  y: 'identity', // RFC 8224
  a: 'accept-contact', // RFC 3841
  j: 'reject-contact', // RFC 3841
  d: 'request-disposition', // RFC 3841
};

/** Spellings that differ from plain capitalisation of each dash-separated word. */
const DISPLAY: Readonly<Record<string, string>> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  'mime-version': 'MIME-Version',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
  'authentication-info': 'Authentication-Info',
};

export function canonicalHeaderName(name: string): string {
  const lower = name.toLowerCase();
  return COMPACT[lower] ?? lower;
}

export function displayHeaderName(canonical: string): string {
  const fixed = DISPLAY[canonical];
  if (fixed !== undefined) return fixed;
  return canonical.replace(/(^|-)([a-z])/g, (_m, dash: string, ch: string) => dash + ch.toUpperCase());
}

export interface HeaderField {
  /** canonical lower-case long name */
  readonly name: string;
  value: string;
}

/**
 * An ordered list of header fields. A comma-separated list header (Via, Contact, Route…) is split
 * by the parser into one field per element, so `getAll('via')` is the Via list top first.
 */
export class Headers {
  readonly #fields: HeaderField[];

  constructor(fields: Iterable<HeaderField> = []) {
    this.#fields = Array.from(fields, (f) => ({ name: canonicalHeaderName(f.name), value: f.value }));
  }

  /**
   * Takes fields whose names are already canonical, as they are (the parser's fast path: no copy
   * of each field, no second canonicalisation).
   */
  static fromCanonical(fields: readonly HeaderField[]): Headers {
    const h = new Headers();
    for (const f of fields) h.#fields.push(f);
    return h;
  }

  get(name: string): string | undefined {
    const n = canonicalHeaderName(name);
    for (const f of this.#fields) if (f.name === n) return f.value;
    return undefined;
  }

  getAll(name: string): string[] {
    const n = canonicalHeaderName(name);
    const out: string[] = [];
    for (const f of this.#fields) if (f.name === n) out.push(f.value);
    return out;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  count(name: string): number {
    return this.getAll(name).length;
  }

  /** Replaces every field of that name with one field, at the place of the first (or at the end). */
  set(name: string, value: string): this {
    const n = canonicalHeaderName(name);
    const at = this.#fields.findIndex((f) => f.name === n);
    this.delete(n);
    if (at < 0 || at > this.#fields.length) this.#fields.push({ name: n, value });
    else this.#fields.splice(at, 0, { name: n, value });
    return this;
  }

  append(name: string, value: string): this {
    this.#fields.push({ name: canonicalHeaderName(name), value });
    return this;
  }

  /** Inserts before the first field of that name (a new top Via, a new top Record-Route). */
  prepend(name: string, value: string): this {
    const n = canonicalHeaderName(name);
    const at = this.#fields.findIndex((f) => f.name === n);
    this.#fields.splice(at < 0 ? this.#fields.length : at, 0, { name: n, value });
    return this;
  }

  /** Removes the first field of that name and returns its value. */
  shift(name: string): string | undefined {
    const n = canonicalHeaderName(name);
    const at = this.#fields.findIndex((f) => f.name === n);
    if (at < 0) return undefined;
    const [removed] = this.#fields.splice(at, 1);
    return removed?.value;
  }

  delete(name: string): this {
    const n = canonicalHeaderName(name);
    for (let i = this.#fields.length - 1; i >= 0; i--) if (this.#fields[i]?.name === n) this.#fields.splice(i, 1);
    return this;
  }

  get size(): number {
    return this.#fields.length;
  }

  [Symbol.iterator](): IterableIterator<HeaderField> {
    return this.#fields[Symbol.iterator]();
  }

  clone(): Headers {
    return new Headers(this.#fields);
  }
}

export interface SipRequest {
  readonly kind: 'request';
  method: string;
  /** the Request-URI as written on the wire */
  uri: string;
  headers: Headers;
  body: Buffer;
}

export interface SipResponse {
  readonly kind: 'response';
  status: number;
  reason: string;
  headers: Headers;
  body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

export function createRequest(method: string, uri: string, headers: Headers = new Headers(), body: Buffer = Buffer.alloc(0)): SipRequest {
  return { kind: 'request', method, uri, headers, body };
}

export function createResponseMessage(status: number, reason: string, headers: Headers = new Headers(), body: Buffer = Buffer.alloc(0)): SipResponse {
  return { kind: 'response', status, reason, headers, body };
}

/** Parameters of a header or URI (`;tag=x;lr`): names lower-cased, a flag parameter has value null. */
export type Params = Map<string, string | null>;

export interface SipUri {
  scheme: 'sip' | 'sips';
  /** unescaped user part, or null */
  user: string | null;
  password: string | null;
  /** host lower-cased; an IPv6 reference without its brackets */
  host: string;
  port: number | null;
  params: Params;
  /** URI headers (`?subject=x`), names as written, values unescaped */
  headers: Map<string, string>;
}

/** name-addr / addr-spec with header parameters: From, To, Contact, Route, Record-Route… */
export interface NameAddr {
  displayName: string | null;
  /** the URI as written (unparsed), so non-SIP schemes survive a round trip */
  uri: string;
  params: Params;
}

export interface Via {
  /** e.g. `SIP/2.0` */
  protocol: string;
  /** upper-case: UDP, TCP, TLS, WS, WSS */
  transport: string;
  /** as written: a host name, IPv4 address or bracketed IPv6 reference */
  host: string;
  port: number | null;
  params: Params;
}

export interface CSeq {
  seq: number;
  method: string;
}

/** Authorization / Proxy-Authorization, WWW-Authenticate / Proxy-Authenticate (RFC 3261 §25 auth grammar). */
export interface AuthField {
  scheme: string;
  /** parameter names lower-cased, values unquoted */
  params: Map<string, string>;
}

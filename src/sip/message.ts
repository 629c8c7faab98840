// The SIP message model (RFC 3261 §7). Plain data: the parser produces it, the serializer writes it,
// and everything above the transport works on it. Header values stay as text; the grammar module
// parses the few structured headers on demand, so relaying a message costs no more than it must.

/**
 * Header names are kept in their canonical lower-case long form (compact forms expanded, §7.3.3).
 * The name tables are Maps, not object literals: a header named "constructor" or "__proto__" must
 * not find a property of Object.prototype (it would become a function or an object, not a name).
 */
const COMPACT: ReadonlyMap<string, string> = new Map([
  ['i', 'call-id'],
  ['m', 'contact'],
  ['e', 'content-encoding'],
  ['l', 'content-length'],
  ['c', 'content-type'],
  ['f', 'from'],
  ['s', 'subject'],
  ['k', 'supported'],
  ['t', 'to'],
  ['v', 'via'],
  ['o', 'event'], // RFC 6665
  ['u', 'allow-events'], // RFC 6665
  ['r', 'refer-to'], // RFC 3515
  ['b', 'referred-by'], // RFC 3892
  ['x', 'session-expires'], // RFC 4028
  ['y', 'identity'], // RFC 8224
  ['a', 'accept-contact'], // RFC 3841
  ['j', 'reject-contact'], // RFC 3841
  ['d', 'request-disposition'], // RFC 3841
]);

/** Spellings that differ from plain capitalisation of each dash-separated word. */
const DISPLAY: ReadonlyMap<string, string> = new Map([
  ['call-id', 'Call-ID'],
  ['cseq', 'CSeq'],
  ['www-authenticate', 'WWW-Authenticate'],
  ['mime-version', 'MIME-Version'],
  ['sip-etag', 'SIP-ETag'],
  ['sip-if-match', 'SIP-If-Match'],
  ['authentication-info', 'Authentication-Info'],
]);

/**
 * Canonical names of the header fields seen in practice, each mapped to itself. The code asks for
 * headers by these names ('via', 'call-id'…), and canonicalHeaderName finds them as they are
 * (lower-casing allocates a copy even when nothing changes); it returns these string constants, so
 * the parser's field names are the very strings callers compare them with.
 */
const COMMON: ReadonlyMap<string, string> = new Map(
  [
    'accept', 'accept-contact', 'accept-encoding', 'accept-language', 'alert-info', 'allow', 'allow-events',
    'authentication-info', 'authorization', 'call-id', 'call-info', 'contact', 'content-disposition',
    'content-encoding', 'content-language', 'content-length', 'content-type', 'cseq', 'date', 'error-info',
    'event', 'expires', 'from', 'identity', 'in-reply-to', 'max-forwards', 'min-expires', 'mime-version',
    'organization', 'path', 'priority', 'proxy-authenticate', 'proxy-authorization', 'proxy-require',
    'record-route', 'refer-to', 'referred-by', 'reject-contact', 'reply-to', 'request-disposition', 'require',
    'retry-after', 'route', 'server', 'service-route', 'session-expires', 'sip-etag', 'sip-if-match', 'subject',
    'subscription-state', 'supported', 'timestamp', 'to', 'unsupported', 'user-agent', 'via', 'warning',
    'www-authenticate',
  ].map((name) => [name, name]),
);

export function canonicalHeaderName(name: string): string {
  const common = COMMON.get(name);
  if (common !== undefined) return common;
  const lower = name.toLowerCase();
  return COMPACT.get(lower) ?? COMMON.get(lower) ?? lower;
}

export function displayHeaderName(canonical: string): string {
  const fixed = DISPLAY.get(canonical);
  if (fixed !== undefined) return fixed;
  return canonical.replace(/(^|-)([a-z])/g, (_m, dash: string, ch: string) => dash + ch.toUpperCase());
}

export interface HeaderField {
  /** canonical lower-case long name */
  readonly name: string;
  /** never changed in place: a field may be shared by several messages (a forwarded request's copy) */
  readonly value: string;
}

/**
 * An ordered list of header fields. A comma-separated list header (Via, Contact, Route…) is split
 * by the parser into one field per element, so `getAll('via')` is the Via list top first.
 */
export class Headers {
  #fields: HeaderField[] = [];

  constructor(fields: Iterable<HeaderField> = []) {
    // a plain loop: Array.from with a mapping function cost as much as the rest of a parse's Headers
    for (const f of fields) this.#fields.push({ name: canonicalHeaderName(f.name), value: f.value });
  }

  /**
   * Takes fields whose names are already canonical, as they are (the parser's fast path: no copy
   * of each field, no second canonicalisation, no copy of the array): `fields` becomes the new
   * Headers' own, and the caller must not change it afterwards.
   */
  static fromCanonical(fields: HeaderField[]): Headers {
    const h = new Headers();
    h.#fields = fields;
    return h;
  }

  // get and getAll look for the name as given first: callers mostly pass the canonical name, and a
  // name equal to a field's is canonical itself. Only when that finds nothing is it canonicalised.

  get(name: string): string | undefined {
    for (const f of this.#fields) if (f.name === name) return f.value;
    const n = canonicalHeaderName(name);
    if (n !== name) for (const f of this.#fields) if (f.name === n) return f.value;
    return undefined;
  }

  getAll(name: string): string[] {
    const out: string[] = [];
    for (const f of this.#fields) if (f.name === name) out.push(f.value);
    if (out.length > 0) return out;
    const n = canonicalHeaderName(name);
    if (n !== name) for (const f of this.#fields) if (f.name === n) out.push(f.value);
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

  /** Gives the first field of that name a new value in its place (or appends one): a stamped top Via. */
  replaceFirst(name: string, value: string): this {
    const n = canonicalHeaderName(name);
    const at = this.#fields.findIndex((f) => f.name === n);
    // a new field object: the old one may be shared with another Headers (fromCanonical, clone)
    if (at < 0) this.#fields.push({ name: n, value });
    else this.#fields[at] = { name: n, value };
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

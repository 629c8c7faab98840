// HTTP Basic (RFC 7617) with the user's Parley password — EWS, autodiscover and the user's presence
// endpoints sign in this way — and where such a password may travel.
//
// Each check of a password costs one scrypt run, so a sign-in passes, in order:
//  1. the sign-in guard (lockout.ts): a locked-out source or account is refused at once, before
//     any hashing, with the right password too → 429 SIGN_IN_LOCKED with Retry-After;
//  2. the cache of recently verified credentials: a client that sends Basic on every EWS request
//     pays scrypt once per `cacheMs`, not per request. Entries are keyed by an HMAC of address and
//     password under a key made at start (never stored), and hold the user's password stamp: a new
//     password, or a removed user, misses the cache. Only successes are kept;
//  3. the fair hashing queue (hash-queue.ts): a source past its share, or a full queue, is refused
//     at once → 429 / 503 SIGN_IN_BUSY with Retry-After; otherwise it waits its round-robin turn.
// A wrong password and an unknown user are counted alike as a failure of the source and account.

import { createHmac, randomBytes } from 'node:crypto';
import type http from 'node:http';
import { findUser, passwordStamp, verifyPassword } from '../directory/index.ts';
import { HttpProblem, type CallerOutcome } from '../http-json.ts';
import type { Sql } from '../storage/index.ts';
import { FairQueue } from './hash-queue.ts';
import type { Refusal, SignInGuard } from './lockout.ts';
import { httpSource, isLoopbackAddress, plainAddress, sourceKey } from './source.ts';

export type BasicOutcome =
  | { readonly ok: true; readonly address: string }
  /** no credentials, or not the right ones: answer 401 with basicChallenge() */
  | { readonly ok: false; readonly status: 401 }
  /** refused without a look at the password: answer with answerSignInRefusal() */
  | { readonly ok: false; readonly status: 429 | 503; readonly code: 'SIGN_IN_LOCKED' | 'SIGN_IN_BUSY'; readonly detail: string; readonly retryAfterSeconds: number };

export type SignInRefusal = Extract<BasicOutcome, { status: 429 | 503 }>;

export interface BasicSignInOptions {
  sql: Sql;
  /** the organisation's domain: `alice` signs in as alice@domain */
  domain: string;
  /** counts failures and refuses locked-out sources and accounts; none: nothing is counted */
  guard?: SignInGuard;
  /** default: 2 hashes at once, 64 waiting, 4 per source */
  queue?: FairQueue;
  /** how long a verified password is remembered, ms; 0: never (default 300 s) */
  cacheMs?: number;
  /** peers whose X-Forwarded-For names the real client (a local TLS proxy) */
  trustedProxies?: readonly string[];
  now?: () => number;
}

export const DEFAULT_HASH_QUEUE = { concurrency: 2, maxQueued: 64, maxPerSource: 4 } as const;
const MAX_CACHED = 10_000;

interface Verified {
  address: string;
  stamp: string;
  expires: number;
}

/** The sign-in of the HTTP routes; one per server, shared by EWS, autodiscover and presence. */
export class BasicSignIn {
  readonly #opts: BasicSignInOptions;
  readonly #queue: FairQueue;
  readonly #now: () => number;
  readonly #cacheMs: number;
  readonly #trusted: ReadonlySet<string>;
  readonly #cacheKey = randomBytes(32);
  readonly #verified = new Map<string, Verified>();

  constructor(opts: BasicSignInOptions) {
    this.#opts = opts;
    this.#queue = opts.queue ?? new FairQueue(DEFAULT_HASH_QUEUE);
    this.#now = opts.now ?? Date.now;
    this.#cacheMs = opts.cacheMs ?? 300_000;
    this.#trusted = new Set((opts.trustedProxies ?? []).map(plainAddress));
  }

  /** Checks the request's HTTP Basic credentials. */
  authenticate(req: http.IncomingMessage): Promise<BasicOutcome> {
    return this.#check(req, parseBasic(req.headers.authorization, this.#opts.domain));
  }

  /**
   * Checks a user name (`alice`, `alice@domain`, `DOMAIN\alice`) and password given some other way
   * than a Basic header (the browser's sign-in form, src/session): the same guard, cache and queue.
   */
  checkPassword(req: http.IncomingMessage, user: string, password: string): Promise<BasicOutcome> {
    return this.#check(req, credentialsOf(user, password, this.#opts.domain));
  }

  async #check(req: http.IncomingMessage, credentials: { address: string; password: string } | undefined): Promise<BasicOutcome> {
    const source = httpSource(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], this.#trusted);
    const guard = this.#opts.guard;
    const locked = guard?.check(source, credentials?.address);
    if (locked !== undefined) return lockedOut(locked);
    if (credentials === undefined) return { ok: false, status: 401 };
    const { address, password } = credentials;

    // the stored password's stamp, read once: a remembered sign-in counts only while it is unchanged
    const stamp = await passwordStamp(this.#opts.sql, address);
    const cacheKey = this.#cacheMs > 0 ? createHmac('sha256', this.#cacheKey).update(`${address}\0${password}`).digest('base64') : '';
    const hit = this.#cacheMs > 0 ? this.#verified.get(cacheKey) : undefined;
    if (hit !== undefined) {
      if (hit.expires > this.#now() && stamp === hit.stamp) {
        guard?.succeeded(hit.address, source);
        return { ok: true, address: hit.address };
      }
      this.#verified.delete(cacheKey);
    }

    const admission = await this.#queue.run(sourceKey(source), async () => {
      // a lockout may have started while this job waited: it costs no hash then
      const late = guard?.check(source, address);
      return late ?? (await verifyPassword(this.#opts.sql, address, password));
    });
    if (!admission.admitted) {
      const detail = admission.reason === 'source'
        ? `too many sign-ins from ${source} are being checked at once; try again in ${admission.retryAfterSeconds} s`
        : `the server is checking too many sign-ins at once; try again in ${admission.retryAfterSeconds} s`;
      return { ok: false, status: admission.reason === 'source' ? 429 : 503, code: 'SIGN_IN_BUSY', detail, retryAfterSeconds: admission.retryAfterSeconds };
    }
    const verdict = admission.value;
    if (typeof verdict === 'object') return lockedOut(verdict);
    if (!verdict) {
      guard?.failed(source, address);
      return { ok: false, status: 401 };
    }
    const user = await findUser(this.#opts.sql, address);
    if (user === undefined) return { ok: false, status: 401 }; // removed meanwhile
    guard?.succeeded(user.address, source);
    if (this.#cacheMs > 0 && stamp !== undefined) this.#remember(cacheKey, { address: user.address, stamp, expires: this.#now() + this.#cacheMs });
    return { ok: true, address: user.address };
  }

  #remember(key: string, entry: Verified): void {
    if (this.#verified.size >= MAX_CACHED) {
      // the oldest entry goes (a Map iterates in insertion order)
      const oldest = this.#verified.keys().next();
      if (oldest.done !== true) this.#verified.delete(oldest.value);
    }
    this.#verified.set(key, entry);
  }
}

/** The address and password of a Basic header; accepts `alice`, `alice@domain` and `DOMAIN\alice`. */
function parseBasic(header: string | undefined, domain: string): { address: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return credentialsOf(decoded.slice(0, colon), decoded.slice(colon + 1), domain);
}

/** The address a user name stands for (`alice`, `alice@domain`, `DOMAIN\alice`), with the password. */
function credentialsOf(userName: string, password: string, domain: string): { address: string; password: string } {
  const user = userName.trim().replace(/^[^\\]*\\/, '');
  return { address: (user.includes('@') ? user : `${user}@${domain}`).toLowerCase(), password };
}

function lockedOut(refusal: Refusal): SignInRefusal {
  return { ok: false, status: 429, code: 'SIGN_IN_LOCKED', detail: refusal.message, retryAfterSeconds: refusal.retryAfterSeconds };
}

/**
 * Answers a refused sign-in: problem JSON (RFC 9457) with its stable code and Retry-After
 * (RFC 9110 §10.2.3). EWS and autodiscover answer it the same way, before any SOAP is read.
 */
export function answerSignInRefusal(res: http.ServerResponse, product: string, refusal: SignInRefusal): void {
  const title = refusal.status === 429 ? 'Too Many Requests' : 'Service Unavailable';
  const text = `${JSON.stringify({ type: 'about:blank', title, status: refusal.status, detail: refusal.detail, code: refusal.code })}\n`;
  res.writeHead(refusal.status, {
    server: product,
    'cache-control': 'no-store',
    'retry-after': String(refusal.retryAfterSeconds),
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * The HttpCaller (src/http-json.ts) of routes that take HTTP Basic alone: the outcome as a problem
 * with its stable code (401 UNAUTHORIZED with a Basic challenge, 429/503 with Retry-After).
 * `challenge: false` leaves the WWW-Authenticate header out (a browser would show its own
 * password dialog for it).
 */
export function basicCaller(signIn: BasicSignIn, domain: string): (req: http.IncomingMessage, options?: { challenge?: boolean }) => Promise<CallerOutcome> {
  return async (req, options = {}) => {
    const outcome = await signIn.authenticate(req);
    if (outcome.ok) return { ok: true, address: outcome.address, via: 'basic' };
    if (outcome.status !== 401) return { ok: false, problem: new HttpProblem(outcome.status, outcome.code, outcome.detail, { 'retry-after': String(outcome.retryAfterSeconds) }) };
    const detail = req.headers.authorization === undefined
      ? 'sign in: HTTP Basic authentication with your Parley address (or user name) and password is needed'
      : 'the user name or password is wrong';
    return { ok: false, problem: new HttpProblem(401, 'UNAUTHORIZED', detail, options.challenge === false ? {} : basicChallenge(domain)) };
  };
}

/** The WWW-Authenticate header of a 401 that asks for Basic credentials. */
export function basicChallenge(domain: string): Record<string, string> {
  return { 'www-authenticate': `Basic realm="${domain.replace(/["\\]/g, '')}", charset="UTF-8"` };
}

/** TLS, or a peer on loopback (a local TLS-terminating proxy, tests, the CLI on the server): where a password or token may travel. */
export function isSecureOrLocal(req: http.IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
  return isLoopbackAddress(req.socket.remoteAddress ?? '');
}

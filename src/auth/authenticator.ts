// Who is sending: SIP digest authentication (RFC 3261 §22) against the directory. REGISTER is
// challenged as a registrar (401 + WWW-Authenticate), everything else as a proxy (407 +
// Proxy-Authenticate). Both challenges offer SHA-256 and MD5 (RFC 8760), with qop=auth, which
// answers must use: the nonce count is what lets a replayed answer be told from a new one.

import { challenges, type DigestAlgorithm, formatAuthField, type NonceIssuer, parseAuthField, SipParseError, verifyCredentials } from '../sip/index.ts';
import type { AuthField, SipRequest } from '../sip/index.ts';
import type { SignInGuard } from './lockout.ts';


export interface DigestAccount {
  address: string;
  ha1: Readonly<Record<DigestAlgorithm, string>>;
}

export type AuthOutcome =
  | { ok: true; address: string }
  /**
   * answer with `status`; `headers` carry the challenges when there are any. `replayOf`: the
   * credentials were right, for this account's address, but their nonce count was used before — a
   * replay, or a retransmission of the request that used it first, which only the handler can tell
   * (the registrar does, from its bindings: handler.ts)
   */
  | { ok: false; status: 401 | 407 | 403 | 400; warning: string; headers: Array<[string, string]>; replayOf?: string };

export interface AuthenticatorOptions {
  realm: string;
  nonces: NonceIssuer;
  /** offered in this order (most preferred first); credentials with another algorithm are refused */
  algorithms: readonly DigestAlgorithm[];
  /** compare the digest uri with the Request-URI (sip.checkDigestUri); default true */
  checkDigestUri?: boolean;
  /** the account for a digest username in this realm (the server's is cachedUserLookup: a kept answer costs no query and comes at once) */
  findAccount(username: string): DigestAccount | undefined | Promise<DigestAccount | undefined>;
  /**
   * Counts failed sign-ins and refuses locked-out sources and accounts (lockout.ts). A refusal is
   * `403 Forbidden` with the reason and the wait in the Warning: RFC 3261 has no "too many
   * attempts" status (SIP's 429 means "Provide Referrer Identity", RFC 3892), allows Retry-After
   * only on 404/413/480/486/500/503/600/603 (§20), and a 503 tells a proxy in front of Parley to
   * send it no request at all for the Retry-After time (§21.5.4) — while 403 says what is true:
   * "authorization will not help" (§21.4.4), for now.
   */
  guard?: SignInGuard;
}

/** Stands for the nonce in a challenge made once as a template (a nonce is base64url: never this). */
const NONCE_MARK = '\x01';

export class Authenticator {
  readonly #opts: AuthenticatorOptions;
  /**
   * The challenges' text around the nonce, one pair per offered algorithm, without and with
   * stale=true: only the nonce changes from one challenge to the next, so the rest is written once.
   */
  readonly #challenges: Record<'fresh' | 'stale', ReadonlyArray<readonly [string, string]>>;

  constructor(opts: AuthenticatorOptions) {
    this.#opts = opts;
    const template = (stale: boolean) =>
      challenges(opts.realm, NONCE_MARK, stale, { algorithms: opts.algorithms }).map((c) => {
        const [before = '', after = ''] = formatAuthField(c).split(NONCE_MARK);
        return [before, after] as const;
      });
    this.#challenges = { fresh: template(false), stale: template(true) };
  }

  /**
   * `source`: the IP address the request came from (its flow's remote address), for the guard.
   * The outcome comes at once when the account's lookup answers at once (a kept answer), through a
   * promise otherwise: an await per request would cost a microtask hop and a promise.
   */
  authenticate(request: SipRequest, as: 'registrar' | 'proxy', source?: string): AuthOutcome | Promise<AuthOutcome> {
    const header = as === 'registrar' ? 'authorization' : 'proxy-authorization';
    const realm = this.#opts.realm;
    let credentials: AuthField | undefined;
    try {
      // every field of the header is parsed (a malformed one is a 400 wherever it stands); the
      // first Digest one for our realm counts
      for (const field of request.headers) {
        if (field.name !== header) continue;
        const c = parseAuthField(field.value);
        if (credentials === undefined && c.scheme.toLowerCase() === 'digest' && c.params.get('realm') === realm) credentials = c;
      }
    } catch (err) {
      if (err instanceof SipParseError) return { ok: false, status: 400, warning: `malformed ${header} header: ${err.message}`, headers: [] };
      throw err;
    }
    const username = credentials?.params.get('username') ?? '';
    const locked = source === undefined ? undefined : this.#opts.guard?.check(source, credentials && `${username}@${realm}`);
    if (locked) return { ok: false, status: 403, warning: locked.message, headers: [] };
    if (!credentials) return this.#challenge(as, false, 'authentication required', source);

    // read before the (synchronous) check
    const lookup = this.#opts.findAccount(username);
    const checked = credentials;
    return lookup instanceof Promise ? lookup.then((found) => this.#check(request, as, source, checked, username, found)) : this.#check(request, as, source, checked, username, lookup);
  }

  /** The credentials checked against the account found for their username (undefined: none). */
  #check(request: SipRequest, as: 'registrar' | 'proxy', source: string | undefined, credentials: AuthField, username: string, found: DigestAccount | undefined): AuthOutcome {
    const realm = this.#opts.realm;
    // `account` is set only when the check asked for it
    let account: DigestAccount | undefined;
    const verdict = verifyCredentials(credentials, {
      method: request.method,
      requestUri: request.uri,
      checkUri: this.#opts.checkDigestUri !== false,
      ha1For: (algorithm) => {
        account = found;
        return account?.ha1[algorithm];
      },
      expectedRealm: realm,
      // The nonce is checked after the response, so only a client that knows the password learns
      // that its nonce went stale (RFC 7616 §3.3); replayed nonce counts are refused.
      nonces: this.#opts.nonces,
      source: source ?? '',
    });
    if (verdict.ok && account !== undefined) {
      if (!this.#opts.algorithms.includes(verdict.algorithm)) {
        return { ok: false, status: 403, warning: `digest algorithm ${verdict.algorithm} is not allowed here; use ${this.#opts.algorithms.join(' or ')}`, headers: [] };
      }
      if (source !== undefined) this.#opts.guard?.succeeded(account.address, source);
      return { ok: true, address: account.address };
    }
    if (verdict.ok) return this.#failed(source, username, `authentication failed for "${username}": wrong user name or password`);
    if (verdict.reason === 'stale') {
      const challenge = this.#challenge(as, true, `${verdict.detail}; answer the new challenge`, source);
      return verdict.replayed === true && account !== undefined ? { ...challenge, replayOf: account.address } : challenge;
    }
    // A user who does not exist and a wrong password read alike, so the answer tells no one which
    // user names exist; both are guesses, counted by the guard. Malformed credentials are not.
    if (verdict.reason === 'unknown-user' || verdict.reason === 'bad-response') {
      return this.#failed(source, username, `authentication failed for "${username}": wrong user name or password`);
    }
    // RFC 7616 §3.4.6: credentials for another resource than the Request-URI are a Bad Request
    const status = verdict.reason === 'uri-mismatch' ? 400 : 403;
    return { ok: false, status, warning: `authentication failed for "${username}": ${verdict.detail}`, headers: [] };
  }

  /** A failed guess (wrong password or unknown user alike): counted by the guard, answered 403. */
  #failed(source: string | undefined, username: string, warning: string): AuthOutcome {
    if (source !== undefined) this.#opts.guard?.failed(source, `${username}@${this.#opts.realm}`);
    return { ok: false, status: 403, warning, headers: [] };
  }

  /** A 401/407 with a nonce bound to the client's address (see NonceIssuer.issue). */
  #challenge(as: 'registrar' | 'proxy', stale: boolean, warning: string, source: string | undefined): AuthOutcome & { ok: false } {
    const name = as === 'registrar' ? 'WWW-Authenticate' : 'Proxy-Authenticate';
    const nonce = this.#opts.nonces.issue(source ?? '');
    const headers = this.#challenges[stale ? 'stale' : 'fresh'].map(([before, after]) => [name, before + nonce + after] as [string, string]);
    return { ok: false, status: as === 'registrar' ? 401 : 407, warning, headers };
  }
}

// HTTP Digest authentication as SIP uses it (RFC 3261 §22.4), with the computations of RFC 7616
// §3.4 and the SHA-256 algorithm for SIP of RFC 8760. Pure functions on the parsed AuthField form;
// the header text is parsed and written by grammar.ts. Only randomness (nonces, cnonces) and the
// clock come from outside, and both can be injected.
//
// RFC 7616 §3.4.1-3.4.3, for qop=auth and the non-"-sess" algorithms used here:
//   HA1      = H(username ":" realm ":" password)
//   HA2      = H(method ":" digest-uri)
//   response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)
// and without qop (RFC 2069 compatibility, RFC 2617 §3.2.2.1):
//   response = H(HA1 ":" nonce ":" HA2)

import { hash as oneShotHash, randomBytes } from 'node:crypto';
import { ParleyError } from '../errors.ts';
import { detach } from './chars.ts';
import { UserNonces } from './nonce-counts.ts';
import { fillRandom } from './random.ts';
import type { AuthField } from './message.ts';
import { parseUri, sameUri } from './uri.ts';

export type DigestAlgorithm = 'MD5' | 'SHA-256';

/** The algorithms we support, in our order of preference: RFC 8760 §2.4 puts the preferred challenge first. */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-256', 'MD5'];

const HASHES: Readonly<Record<DigestAlgorithm, { readonly node: string; readonly hexLength: number }>> = {
  MD5: { node: 'md5', hexLength: 32 },
  'SHA-256': { node: 'sha256', hexLength: 64 },
};

export type DigestErrorCode =
  /** the challenge is not a Digest challenge */
  | 'UNSUPPORTED_SCHEME'
  /** the challenge names an algorithm we do not implement (MD5-sess, SHA-512-256…) */
  | 'UNSUPPORTED_ALGORITHM'
  /** the challenge offers qop values, but not "auth" (we do not implement auth-int) */
  | 'UNSUPPORTED_QOP'
  /** the challenge lacks realm or nonce */
  | 'CHALLENGE_MALFORMED'
  /** a caller passed arguments that cannot work (short secret, qop without cnonce…) */
  | 'BAD_ARGUMENT';

export class DigestError extends ParleyError {
  declare readonly code: DigestErrorCode;

  constructor(code: DigestErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * The algorithm a challenge or credentials name: absent means MD5 (RFC 7616 §3.3), tokens are
 * compared case-insensitively. undefined when we do not support it.
 */
export function parseDigestAlgorithm(token: string | undefined): DigestAlgorithm | undefined {
  if (token === undefined) return 'MD5';
  const upper = token.trim().toUpperCase();
  return upper === 'MD5' || upper === 'SHA-256' ? upper : undefined;
}

function hash(algorithm: DigestAlgorithm, data: string): string {
  return oneShotHash(HASHES[algorithm].node, data, 'hex');
}

export function computeHa1(algorithm: DigestAlgorithm, username: string, realm: string, password: string): string {
  return hash(algorithm, `${username}:${realm}:${password}`);
}

export interface ResponseInput {
  algorithm: DigestAlgorithm;
  ha1: string;
  method: string;
  uri: string;
  nonce: string;
  /** absent: the RFC 2069 form without nc and cnonce */
  qop?: 'auth';
  /** the nonce count: a number is written as 8 hex digits; a string is used as sent on the wire */
  nc?: number | string;
  cnonce?: string;
}

export function computeResponse(input: ResponseInput): string {
  const { algorithm, ha1, method, uri, nonce } = input;
  const ha2 = ha2Of(algorithm, method, uri);
  if (input.qop === undefined) return hash(algorithm, `${ha1}:${nonce}:${ha2}`);
  if (input.nc === undefined || input.cnonce === undefined) {
    throw new DigestError('BAD_ARGUMENT', 'computeResponse with qop=auth needs nc and cnonce');
  }
  const nc = typeof input.nc === 'number' ? formatNonceCount(input.nc) : input.nc;
  return hash(algorithm, `${ha1}:${nonce}:${nc}:${input.cnonce}:${input.qop}:${ha2}`);
}

/**
 * The last HA2 computed, and what from: a registrar's REGISTERs all name the same method and digest
 * uri (the domain), so most checks need one hash fewer.
 */
let lastHa2 = { algorithm: '' as DigestAlgorithm | '', method: '', uri: '', ha2: '' };

function ha2Of(algorithm: DigestAlgorithm, method: string, uri: string): string {
  const last = lastHa2;
  if (last.uri === uri && last.method === method && last.algorithm === algorithm) return last.ha2;
  const ha2 = hash(algorithm, `${method}:${uri}`);
  // kept beyond this request: not as slices of its text
  lastHa2 = { algorithm, method: detach(method), uri: detach(uri), ha2 };
  return ha2;
}

/** nc-value = 8LHEX (RFC 3261 §25.1) */
export function formatNonceCount(nc: number): string {
  if (!Number.isInteger(nc) || nc < 1 || nc > 0xffffffff) {
    throw new DigestError('BAD_ARGUMENT', `nonce count ${nc} is not an integer from 1 to ffffffff`);
  }
  return nc.toString(16).padStart(8, '0');
}

// ---------------------------------------------------------------------------------------------
// Server side

export type NonceState = 'valid' | 'stale' | 'invalid';

export interface NonceIssuerOptions {
  /** HMAC key, at least 16 bytes. Nodes of a cluster that share it accept each other's nonces. */
  secret: Buffer;
  /** how long a nonce is accepted; default 300 s */
  lifetimeSeconds?: number;
  /** milliseconds since the epoch; default Date.now */
  now?: () => number;
  /** nonces whose counts are tracked per user (those used last); default 64 (see acceptCount) */
  maxNoncesPerUser?: number;
  /** nonces whose counts are tracked in all; default 500 000 (see acceptCount) */
  maxTrackedNonces?: number;
}

export const DEFAULT_NONCE_LIFETIME_SECONDS = 300;
const TIMESTAMP_BYTES = 8;
const RANDOM_BYTES = 8;
const MAC_BYTES = 32;
const NONCE_BYTES = TIMESTAMP_BYTES + RANDOM_BYTES + MAC_BYTES;
/** SHA-256's block size: the HMAC key pads are one block (RFC 2104 §2) */
const HMAC_BLOCK_BYTES = 64;
/** room for the client's address that a nonce is bound to (an IPv6 address with a zone fits) */
const MAX_SOURCE_BYTES = 64;
const NONCE_PATTERN = new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((NONCE_BYTES * 4) / 3)}}$`);
/** a nonce stamped this far in our future came from a node whose clock runs ahead: still accepted */
const CLOCK_SKEW_MS = 30_000;

/** What acceptCount decided: `forgotten` means the nonce may have been used before and its counts are gone. */
export type CountVerdict = 'accepted' | 'replayed' | 'forgotten';

/**
 * Issues stateless nonces and checks them: nonce = base64url(timestamp || random || HMAC-SHA256(
 * secret, timestamp || random)). The random part keeps two nonces issued in the same millisecond
 * apart, which the nonce-count tracking needs. Checking a nonce needs no storage; only the replay
 * tracking (`acceptCount`) keeps bounded maps.
 */
export class NonceIssuer {
  readonly lifetimeSeconds: number;
  readonly #now: () => number;
  readonly #maxPerUser: number;
  readonly #maxTracked: number;
  /**
   * HMAC-SHA256 (RFC 2104) as two one-shot hashes over these buffers: (key ⊕ ipad) then the nonce
   * head, and (key ⊕ opad) then the inner digest. Node's Hmac object is a stream, costly to make for
   * every nonce (two per authenticated request); the pads are made once and only the tails written.
   */
  readonly #inner = Buffer.alloc(HMAC_BLOCK_BYTES + TIMESTAMP_BYTES + RANDOM_BYTES + MAX_SOURCE_BYTES);
  readonly #outer = Buffer.alloc(HMAC_BLOCK_BYTES + MAC_BYTES);
  /** #inner's first bytes for each length of the source address: the view to hash, made once */
  readonly #innerViews = Array.from({ length: MAX_SOURCE_BYTES + 1 }, (_, n) => this.#inner.subarray(0, HMAC_BLOCK_BYTES + TIMESTAMP_BYTES + RANDOM_BYTES + n));
  /** the last nonce check() found ours, and its issue time: acceptCount need not decode it again */
  #checked = '';
  #checkedIssuedAt = 0;
  /** the nonce being issued or checked (one at a time: all of it is synchronous) */
  readonly #nonce = Buffer.alloc(NONCE_BYTES);
  /** digest user name → the nonces they used */
  #users = new Map<string, UserNonces>();
  #tracked = 0;
  /** counts the accepted uses of nonces: a tracked nonce's last one orders them for forgetting */
  #uses = 0;
  /** like UserNonces.floor, for everyone: raised when the tracking as a whole had to be emptied */
  #floor = -Infinity;
  #lastSweep: number;

  constructor(options: NonceIssuerOptions) {
    if (options.secret.length < 16) {
      throw new DigestError('BAD_ARGUMENT', `the nonce secret has ${options.secret.length} bytes; use at least 16 random bytes`);
    }
    this.lifetimeSeconds = options.lifetimeSeconds ?? DEFAULT_NONCE_LIFETIME_SECONDS;
    if (!(this.lifetimeSeconds > 0)) throw new DigestError('BAD_ARGUMENT', 'the nonce lifetime must be a positive number of seconds');
    // a key longer than a block is hashed first (RFC 2104 §2); the pads copy it, so a later change
    // to the caller's buffer does not matter
    const key = options.secret.length > HMAC_BLOCK_BYTES ? oneShotHash('sha256', options.secret, 'buffer') : options.secret;
    for (let i = 0; i < HMAC_BLOCK_BYTES; i++) {
      const k = i < key.length ? (key[i] as number) : 0;
      this.#inner[i] = k ^ 0x36;
      this.#outer[i] = k ^ 0x5c;
    }
    this.#now = options.now ?? Date.now;
    this.#maxPerUser = Math.max(1, options.maxNoncesPerUser ?? 64);
    this.#maxTracked = Math.max(this.#maxPerUser, options.maxTrackedNonces ?? 500_000);
    this.#lastSweep = this.#now();
  }

  /**
   * A new nonce, bound to `source` (the client's IP address, '' for none): only a request from that
   * address can use it. Over UDP anyone can write any source address, but the challenge goes to the
   * real one, so a forger cannot get a nonce for an address it does not hold — and its guesses with
   * its own nonces are neither checked nor counted against that address (see verifyCredentials).
   */
  issue(source = ''): string {
    const nonce = this.#nonce;
    // the timestamp as a 64-bit big-endian count of milliseconds, written in two halves
    const ms = Math.max(0, Math.floor(this.#now()));
    nonce.writeUInt32BE(Math.floor(ms / 2 ** 32), 0);
    nonce.writeUInt32BE(ms % 2 ** 32, 4);
    fillRandom(nonce, TIMESTAMP_BYTES, RANDOM_BYTES);
    nonce.write(this.#mac(nonce, source), TIMESTAMP_BYTES + RANDOM_BYTES, MAC_BYTES, 'latin1');
    return nonce.toString('base64url');
  }

  /** 'invalid': not issued with our secret to `source` (or mangled); 'stale': ours but older than the lifetime. */
  check(nonce: string, source = ''): NonceState {
    const issuedAt = this.#issuedAt(nonce, source);
    if (issuedAt === undefined) return 'invalid';
    this.#checked = nonce;
    this.#checkedIssuedAt = issuedAt;
    const age = this.#now() - issuedAt;
    if (age < -CLOCK_SKEW_MS) return 'invalid';
    return age > this.lifetimeSeconds * 1000 ? 'stale' : 'valid';
  }

  /** how many (user, nonce) pairs are tracked now */
  get trackedNonces(): number {
    return this.#tracked;
  }

  /**
   * Records that `user` used nonce count `nc` with `nonce` (one we issued, checked valid with check():
   * its issue time is read here without checking its MAC again): 'replayed'
   * when that count was already used, or is too far below the highest seen (counts may arrive out of
   * order within a window of 32).
   *
   * A count is refused as long as the nonce is valid, however many nonces are in use: each user's
   * tracking keeps the nonces they used last, and when it must forget one to stay bounded, it raises
   * that user's floor to the forgotten nonce's issue time, so any nonce issued up to then that is not
   * tracked is 'forgotten' — refused, and the client asked to take a fresh one (stale=true) — rather
   * than taken as never used. The same holds for everyone at once when the whole tracking is full
   * (only after dropping what has expired). So one user can only make their own nonces be forgotten,
   * and a forgotten nonce costs an honest client one more challenge, never a replay.
   */
  acceptCount(user: string, nonce: string, nc: number): CountVerdict {
    const now = this.#now();
    if (now - this.#lastSweep > this.lifetimeSeconds * 1000) this.#sweep(now);
    // usually the nonce check() has just read (verifyCredentials checks, then counts)
    const issuedAt = (nonce === this.#checked ? this.#checkedIssuedAt : timestampOf(nonce)) ?? -Infinity;
    const key = nonceKey(nonce);
    let tracked = this.#users.get(user);
    const slot = tracked === undefined ? -1 : tracked.find(key);
    if (slot >= 0) {
      // another nonce of this user with the same 30 random bits, issued another millisecond: not
      // this one's counts, so none can be trusted (one in 2^30 per tracked nonce; a new challenge)
      if (tracked!.issuedAt(slot) !== issuedAt) return 'forgotten';
      // an accepted count marks the nonce used last: the next to be forgotten is the one unused longest
      return tracked!.count(slot, nc, ++this.#uses) ? 'accepted' : 'replayed';
    }

    if (issuedAt <= this.#floor || (tracked !== undefined && issuedAt <= tracked.floor)) return 'forgotten';
    if (tracked === undefined) {
      tracked = new UserNonces();
      this.#users.set(detach(user), tracked);
    }
    if (tracked.size >= this.#maxPerUser) this.#forgetOldest(tracked, now);
    if (this.#tracked >= this.#maxTracked) {
      this.#sweep(now);
      if (this.#tracked >= this.#maxTracked) {
        // Everyone's nonces so far are forgotten at once; honest clients take new ones.
        this.#users.clear();
        this.#tracked = 0;
        this.#floor = now;
        return 'forgotten';
      }
    }
    tracked.add(key, issuedAt, nc, ++this.#uses);
    this.#tracked++;
    return 'accepted';
  }

  /** Drops the least recently used nonce of one user, expired or not, raising their floor if it was not expired. */
  #forgetOldest(tracked: UserNonces, now: number): void {
    const oldest = tracked.oldest();
    if (oldest < 0) return;
    const issuedAt = tracked.issuedAt(oldest);
    tracked.remove(oldest);
    this.#tracked--;
    if (now - issuedAt <= this.lifetimeSeconds * 1000 + CLOCK_SKEW_MS && issuedAt > tracked.floor) tracked.floor = issuedAt;
  }

  /** Forgets the nonces that have expired (they are refused as stale anyway) and the users left with none. */
  #sweep(now: number): void {
    this.#lastSweep = now;
    const expiredBefore = now - this.lifetimeSeconds * 1000;
    for (const [user, tracked] of this.#users) {
      this.#tracked -= tracked.expire(expiredBefore);
      // a floor older than the lifetime no longer matters: nonces issued before it are stale
      if (tracked.size === 0 && tracked.floor < expiredBefore) this.#users.delete(user);
    }
  }

  /** The issue time (ms) written in a nonce we issued to `source`; undefined when it is not. */
  #issuedAt(nonce: string, source: string): number | undefined {
    const raw = this.#nonce;
    if (!decodeNonce(nonce, raw)) return undefined;
    const mac = this.#mac(raw, source);
    if (!sameSecret(mac, raw.toString('latin1', TIMESTAMP_BYTES + RANDOM_BYTES, NONCE_BYTES))) return undefined;
    return raw.readUInt32BE(0) * 2 ** 32 + raw.readUInt32BE(4);
  }

  /**
   * HMAC-SHA256 of the nonce's head (timestamp and random bytes, the first bytes of `nonce`) and
   * the source it is for, as latin1 text (one char per byte): a digest written to text costs less
   * than one returned in a new Buffer.
   */
  #mac(nonce: Buffer, source: string): string {
    nonce.copy(this.#inner, HMAC_BLOCK_BYTES, 0, TIMESTAMP_BYTES + RANDOM_BYTES);
    // an IPv4 client reached through a dual-stack socket is written ::ffff:a.b.c.d there: one address
    const address = source.startsWith('::ffff:') ? source.slice(7) : source;
    const length = this.#inner.write(address, HMAC_BLOCK_BYTES + TIMESTAMP_BYTES + RANDOM_BYTES, MAX_SOURCE_BYTES, 'latin1');
    this.#outer.write(oneShotHash('sha256', this.#innerViews[length] as Buffer, 'binary'), HMAC_BLOCK_BYTES, MAC_BYTES, 'latin1');
    return oneShotHash('sha256', this.#outer, 'binary');
  }
}

/**
 * Decodes a nonce's text into `raw` (NONCE_BYTES long); false when it has not a nonce's shape.
 * Into a kept buffer, since a nonce is decoded for every authenticated request.
 */
function decodeNonce(nonce: string, raw: Buffer): boolean {
  return NONCE_PATTERN.test(nonce) && raw.write(nonce, 0, NONCE_BYTES, 'base64url') === NONCE_BYTES;
}

const timestampBytes = Buffer.alloc(NONCE_BYTES);

/** The issue time (ms) written in a nonce, its MAC unchecked; undefined when it has not a nonce's shape. */
function timestampOf(nonce: string): number | undefined {
  return decodeNonce(nonce, timestampBytes) ? timestampBytes.readUInt32BE(0) * 2 ** 32 + timestampBytes.readUInt32BE(4) : undefined;
}

/** base64url character code → its 6 bits */
const BASE64URL = (() => {
  const values = new Uint8Array(128);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (let i = 0; i < alphabet.length; i++) values[alphabet.charCodeAt(i)] = i;
  return values;
})();

/**
 * 30 bits of a nonce's random part, read from its text (characters 12-16 of the base64url stand
 * for bits 72-101 of the nonce, all in its random bytes): the key a user's nonce is tracked by.
 * Two of a user's tracked nonces share one once in 2^30; the issue time kept with the counts tells
 * them apart (acceptCount).
 */
function nonceKey(nonce: string): number {
  let key = 0;
  for (let i = 12; i < 17; i++) key = (key << 6) | (BASE64URL[nonce.charCodeAt(i) & 0x7f] as number);
  return key;
}

export interface ChallengeOptions {
  opaque?: string;
  /** which algorithms to offer, most preferred first; default SHA-256 then MD5 */
  algorithms?: readonly DigestAlgorithm[];
}

/**
 * The WWW-Authenticate / Proxy-Authenticate values for a 401 / 407: one Digest challenge per
 * algorithm, the preferred first (RFC 8760 §2.4), all with the same nonce, qop="auth", and
 * stale=true when the request carried a correct response for a nonce we no longer accept.
 * Formatting note: realm, nonce, opaque and qop are quoted-strings in a challenge; algorithm and
 * stale are tokens (RFC 3261 §25.1).
 */
export function challenges(realm: string, nonce: string, stale = false, options: ChallengeOptions = {}): AuthField[] {
  return (options.algorithms ?? DIGEST_ALGORITHMS).map((algorithm) => {
    const params = new Map<string, string>([
      ['realm', realm],
      ['nonce', nonce],
    ]);
    if (options.opaque !== undefined) params.set('opaque', options.opaque);
    params.set('algorithm', algorithm);
    params.set('qop', 'auth');
    if (stale) params.set('stale', 'true');
    return { scheme: 'Digest', params };
  });
}

export type DigestFailureReason =
  /** a required parameter is missing or ill-formed, or the scheme is not Digest */
  | 'malformed'
  | 'unknown-algorithm'
  /** the credentials are for another realm */
  | 'realm'
  /** the credentials have no qop: the RFC 2069 form, which cannot be protected against replay */
  | 'no-qop'
  /** the digest uri is not the Request-URI: credentials made for another request */
  | 'uri-mismatch'
  /** ha1For knows no such user */
  | 'unknown-user'
  | 'bad-response'
  /** the response is right but the nonce is expired, not ours, or its count was replayed: challenge again with stale=true */
  | 'stale';

export type DigestVerification =
  | { ok: true; username: string; algorithm: DigestAlgorithm; uri: string }
  /**
   * `replayed`: the response was right but its nonce count had been used: a replay, or a
   * retransmission of the request it was first used with (which a caller with a record of that
   * request, a registrar, can tell apart)
   */
  | { ok: false; reason: DigestFailureReason; detail: string; username?: string; replayed?: true };

export interface VerifyOptions {
  /** the request method (HA2 uses it) */
  method: string;
  /**
   * the Request-URI of the request the credentials came with: the digest uri must identify the same
   * resource (RFC 7616 §3.4.6), or credentials seen on one request could authorise another
   */
  requestUri: string;
  /**
   * compare the digest uri with requestUri; default true. Off only for clients that cannot put the
   * Request-URI there (sipp sends one fixed uri): replays stay refused by the nonce counts, but a
   * man in the middle could send an intercepted request elsewhere.
   */
  checkUri?: boolean;
  /** the realm we challenge with; credentials for another realm are refused */
  expectedRealm: string;
  /**
   * When given, the nonce is checked here, after the response (so 'stale' is only reported to a
   * client that knows the password, RFC 7616 §3.3), and nonce counts are checked for replays.
   * When absent, the caller checks the nonce itself.
   */
  nonces?: NonceIssuer;
  /** the client's address, which the nonce must have been issued to (NonceIssuer.issue); default '' */
  source?: string;
  /**
   * accept the RFC 2069 form without qop (no nonce count, so nothing tells a replay from the first
   * use): only for a client proven to need it; default false
   */
  allowNoQop?: boolean;
  /** the stored HA1 of that user for that algorithm, or undefined when there is no such user */
  ha1For: (algorithm: DigestAlgorithm, username: string) => string | undefined;
}

/** A stand-in HA1 for a user who does not exist, so that a wrong user costs what a wrong password does. */
const NO_USER_HA1: Readonly<Record<DigestAlgorithm, string>> = { MD5: '0'.repeat(32), 'SHA-256': '0'.repeat(64) };

const REQUIRED_CREDENTIALS = ['username', 'realm', 'nonce', 'uri', 'response'] as const;

/** Checks an Authorization / Proxy-Authorization value against the request (RFC 3261 §22.4). */
export function verifyCredentials(cred: AuthField, options: VerifyOptions): DigestVerification {
  const fail = (reason: DigestFailureReason, detail: string, username?: string): DigestVerification =>
    username === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, username };

  if (cred.scheme.toLowerCase() !== 'digest') return fail('malformed', `scheme ${cred.scheme} is not Digest`);
  const p = cred.params;
  const username = p.get('username');
  for (const name of REQUIRED_CREDENTIALS) {
    if (!p.has(name)) return fail('malformed', `the credentials lack the ${name} parameter`, username);
  }
  const realm = p.get('realm') ?? '';
  const nonce = p.get('nonce') ?? '';
  const uri = p.get('uri') ?? '';
  const user = username ?? '';
  const algorithm = parseDigestAlgorithm(p.get('algorithm'));
  if (algorithm === undefined) return fail('unknown-algorithm', `algorithm ${p.get('algorithm') ?? ''} is not supported`, user);
  if (realm !== options.expectedRealm) return fail('realm', `realm "${realm}" is not "${options.expectedRealm}"`, user);

  const response = (p.get('response') ?? '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(response) || response.length !== HASHES[algorithm].hexLength) {
    return fail('malformed', `the response is not ${HASHES[algorithm].hexLength} hex digits`, user);
  }

  const qop = p.get('qop');
  let nc: string | undefined;
  let cnonce: string | undefined;
  if (qop !== undefined) {
    // we offer only qop=auth
    if (qop.toLowerCase() !== 'auth') return fail('malformed', `qop ${qop} was not offered`, user);
    nc = p.get('nc');
    cnonce = p.get('cnonce');
    if (nc === undefined || !/^[0-9a-fA-F]{8}$/.test(nc) || Number.parseInt(nc, 16) === 0) {
      return fail('malformed', 'qop=auth needs nc, 8 hex digits from 00000001', user);
    }
    if (cnonce === undefined || cnonce === '') return fail('malformed', 'qop=auth needs a cnonce', user);
  } else if (options.allowNoQop !== true) {
    // RFC 7616 §3.3 keeps the qop-less form only for RFC 2069 compatibility: with no nonce count,
    // nothing tells a replay from the first use.
    return fail('no-qop', 'credentials without qop=auth are not accepted (RFC 7616 §3.3); answer the challenge with qop=auth', user);
  }
  if (options.checkUri !== false && !sameResource(uri, options.requestUri)) {
    return fail('uri-mismatch', `the digest uri ${uri} is not the Request-URI ${options.requestUri}`, user);
  }

  // A nonce we did not issue to this address is refused before the password is looked at: the
  // answer (a new challenge) then says nothing about the password, so guessing with forged or
  // borrowed nonces learns nothing, and such a guess is not a failure of that address either —
  // which keeps a forger of UDP source addresses from locking someone else's address out.
  const nonces = options.nonces;
  const state = nonces?.check(nonce, options.source);
  if (state === 'invalid') return fail('stale', 'the nonce was not issued to this client; answer the new challenge', user);

  const known = options.ha1For(algorithm, user);
  const ha1 = known ?? NO_USER_HA1[algorithm];
  const expected = computeResponse(
    qop === undefined
      ? { algorithm, ha1, method: options.method, uri, nonce }
      : { algorithm, ha1, method: options.method, uri, nonce, qop: 'auth', nc: nc ?? '', cnonce: cnonce ?? '' },
  );
  if (known === undefined) return fail('unknown-user', `no user ${user} in realm ${realm}`, user);
  if (!sameSecret(expected, response)) {
    return fail('bad-response', 'the response does not match the password', user);
  }

  // The client knows the password. Whether the nonce still counts decides between 2xx and a new
  // challenge with stale=true (RFC 7616 §3.3: stale only when the digest itself was valid).
  if (nonces === undefined) return { ok: true, username: user, algorithm, uri };
  if (state === 'stale') return fail('stale', 'the nonce has expired', user);
  if (nc !== undefined) {
    const verdict = nonces.acceptCount(user, nonce, Number.parseInt(nc, 16));
    if (verdict === 'replayed') return { ok: false, reason: 'stale', detail: `nonce count ${nc} was already used with this nonce`, username: user, replayed: true };
    if (verdict === 'forgotten') return fail('stale', 'the nonce is no longer tracked; take a new one', user);
  }
  return { ok: true, username: user, algorithm, uri };
}

/** Whether two texts of the same length are equal, compared in full whatever differs (as timingSafeEqual does). */
function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The digest uri names the Request-URI: the same text, or the same URI by RFC 3261 §19.1.4. */
function sameResource(digestUri: string, requestUri: string): boolean {
  if (digestUri === requestUri) return true;
  try {
    return sameUri(parseUri(digestUri), parseUri(requestUri));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Client side

/**
 * The challenge to answer among several (one 401 may carry one per algorithm): the topmost Digest
 * challenge with an algorithm and qop we support (RFC 8760 §2.4: the UAC uses the topmost one it
 * supports). undefined when none fits.
 */
export function pickChallenge(fields: readonly AuthField[]): AuthField | undefined {
  return fields.find((f) => {
    if (f.scheme.toLowerCase() !== 'digest') return false;
    if (parseDigestAlgorithm(f.params.get('algorithm')) === undefined) return false;
    const qop = f.params.get('qop');
    return qop === undefined || qopOptions(qop).includes('auth');
  });
}

export interface AnswerOptions {
  username: string;
  password: string;
  method: string;
  /** the digest-uri: the Request-URI of the request being authorised */
  uri: string;
  /** default: 16 random bytes in hex */
  cnonce?: string;
  /** how many requests this nonce has now been used for, this one included; default 1 */
  nc?: number;
}

/**
 * The Authorization / Proxy-Authorization value answering `challenge`. Uses qop=auth when the
 * challenge offers it, else the RFC 2069 form. Formatting note: username, realm, nonce, uri,
 * response, cnonce and opaque are quoted-strings; algorithm, qop and nc are tokens (RFC 3261 §25.1).
 */
export function answerChallenge(challenge: AuthField, options: AnswerOptions): AuthField {
  if (challenge.scheme.toLowerCase() !== 'digest') {
    throw new DigestError('UNSUPPORTED_SCHEME', `cannot answer a ${challenge.scheme} challenge; only Digest is supported`);
  }
  const cp = challenge.params;
  const realm = cp.get('realm');
  const nonce = cp.get('nonce');
  if (realm === undefined || nonce === undefined) {
    throw new DigestError('CHALLENGE_MALFORMED', `the Digest challenge lacks ${realm === undefined ? 'realm' : 'nonce'}`);
  }
  const algorithm = parseDigestAlgorithm(cp.get('algorithm'));
  if (algorithm === undefined) {
    throw new DigestError('UNSUPPORTED_ALGORITHM', `the challenge asks for algorithm ${cp.get('algorithm') ?? ''}; supported: ${DIGEST_ALGORITHMS.join(', ')}`);
  }
  const offered = cp.get('qop');
  if (offered !== undefined && !qopOptions(offered).includes('auth')) {
    throw new DigestError('UNSUPPORTED_QOP', `the challenge offers qop "${offered}"; only auth is supported`);
  }

  const ha1 = computeHa1(algorithm, options.username, realm, options.password);
  const params = new Map<string, string>([
    ['username', options.username],
    ['realm', realm],
    ['nonce', nonce],
    ['uri', options.uri],
  ]);
  if (offered === undefined) {
    params.set('response', computeResponse({ algorithm, ha1, method: options.method, uri: options.uri, nonce }));
    if (cp.has('algorithm')) params.set('algorithm', algorithm);
  } else {
    const nc = formatNonceCount(options.nc ?? 1);
    const cnonce = options.cnonce ?? randomBytes(16).toString('hex');
    params.set('response', computeResponse({ algorithm, ha1, method: options.method, uri: options.uri, nonce, qop: 'auth', nc, cnonce }));
    // echo algorithm only when the challenge named it, for servers that predate the parameter
    if (cp.has('algorithm')) params.set('algorithm', algorithm);
    params.set('qop', 'auth');
    params.set('nc', nc);
    params.set('cnonce', cnonce);
  }
  const opaque = cp.get('opaque');
  if (opaque !== undefined) params.set('opaque', opaque);
  return { scheme: 'Digest', params };
}

function qopOptions(value: string): string[] {
  return value.split(',').map((v) => v.trim().toLowerCase());
}

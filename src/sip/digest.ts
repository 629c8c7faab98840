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

import { hash as oneShotHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ParleyError } from '../errors.ts';
import { detach } from './chars.ts';
import { fillRandom } from './random.ts';
import type { AuthField } from './message.ts';

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
  const ha2 = hash(algorithm, `${method}:${uri}`);
  if (input.qop === undefined) return hash(algorithm, `${ha1}:${nonce}:${ha2}`);
  if (input.nc === undefined || input.cnonce === undefined) {
    throw new DigestError('BAD_ARGUMENT', 'computeResponse with qop=auth needs nc and cnonce');
  }
  const nc = typeof input.nc === 'number' ? formatNonceCount(input.nc) : input.nc;
  return hash(algorithm, `${ha1}:${nonce}:${nc}:${input.cnonce}:${input.qop}:${ha2}`);
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
  /** how many nonces the nonce-count replay window is kept for (about; see acceptCount); default 10 000 */
  maxTrackedNonces?: number;
}

export const DEFAULT_NONCE_LIFETIME_SECONDS = 300;
const TIMESTAMP_BYTES = 8;
const RANDOM_BYTES = 8;
const MAC_BYTES = 32;
const NONCE_BYTES = TIMESTAMP_BYTES + RANDOM_BYTES + MAC_BYTES;
/** SHA-256's block size: the HMAC key pads are one block (RFC 2104 §2) */
const HMAC_BLOCK_BYTES = 64;
const NONCE_PATTERN = new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((NONCE_BYTES * 4) / 3)}}$`);
/** a nonce stamped this far in our future came from a node whose clock runs ahead: still accepted */
const CLOCK_SKEW_MS = 30_000;
/** nonce counts may arrive out of order (UDP): accept any unseen count within this many of the highest */
const COUNT_WINDOW = 32;

interface NonceCounts {
  highest: number;
  seen: number;
}

/**
 * Issues stateless nonces and checks them: nonce = base64url(timestamp || random || HMAC-SHA256(
 * secret, timestamp || random)). The random part keeps two nonces issued in the same millisecond
 * apart, which the nonce-count tracking needs. Checking a nonce needs no storage; only the optional
 * replay window (`acceptCount`) keeps a bounded map.
 */
export class NonceIssuer {
  readonly lifetimeSeconds: number;
  readonly #now: () => number;
  /** how many nonces each generation of the nonce-count tracking holds */
  readonly #generationSize: number;
  /**
   * HMAC-SHA256 (RFC 2104) as two one-shot hashes over these buffers: (key ⊕ ipad) then the nonce
   * head, and (key ⊕ opad) then the inner digest. Node's Hmac object is a stream, costly to make for
   * every nonce (two per authenticated request); the pads are made once and only the tails written.
   */
  readonly #inner = Buffer.alloc(HMAC_BLOCK_BYTES + TIMESTAMP_BYTES + RANDOM_BYTES);
  readonly #outer = Buffer.alloc(HMAC_BLOCK_BYTES + MAC_BYTES);
  /** nonce → highest nc seen and a bitmap of the COUNT_WINDOW counts below it */
  #recent = new Map<string, NonceCounts>();
  #older = new Map<string, NonceCounts>();

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
    this.#generationSize = Math.max(1, Math.ceil((options.maxTrackedNonces ?? 10_000) / 2));
  }

  issue(): string {
    const nonce = Buffer.allocUnsafe(NONCE_BYTES);
    // the timestamp as a 64-bit big-endian count of milliseconds, written in two halves
    const ms = Math.max(0, Math.floor(this.#now()));
    nonce.writeUInt32BE(Math.floor(ms / 2 ** 32), 0);
    nonce.writeUInt32BE(ms % 2 ** 32, 4);
    fillRandom(nonce, TIMESTAMP_BYTES, RANDOM_BYTES);
    this.#mac(nonce).copy(nonce, TIMESTAMP_BYTES + RANDOM_BYTES);
    return nonce.toString('base64url');
  }

  /** 'invalid': not issued with our secret (or mangled); 'stale': ours but older than the lifetime. */
  check(nonce: string): NonceState {
    if (!NONCE_PATTERN.test(nonce)) return 'invalid';
    const raw = Buffer.from(nonce, 'base64url');
    if (raw.length !== NONCE_BYTES) return 'invalid';
    if (!timingSafeEqual(this.#mac(raw), raw.subarray(TIMESTAMP_BYTES + RANDOM_BYTES))) return 'invalid';
    const age = this.#now() - (raw.readUInt32BE(0) * 2 ** 32 + raw.readUInt32BE(4));
    if (age < -CLOCK_SKEW_MS) return 'invalid';
    return age > this.lifetimeSeconds * 1000 ? 'stale' : 'valid';
  }

  /**
   * Records nonce count `nc` for `nonce`; false when that count was already used (a replay), or is
   * too far below the highest seen. Counts may arrive out of order within a window of 32. What is
   * tracked is bounded: nonces live in two generations of half the limit each, and when the recent
   * one is full the older one is forgotten (a nonce used again moves to the recent one), so a
   * replay of a forgotten nonce is caught only by its expiry. (A single Map evicting its oldest key
   * made keys().next() walk the deleted entries at its front on every call: a hot spot.)
   */
  acceptCount(nonce: string, nc: number): boolean {
    let window = this.#recent.get(nonce);
    if (window === undefined) {
      window = this.#older.get(nonce);
      if (window !== undefined) this.#older.delete(nonce);
    }
    let next: NonceCounts;
    if (window === undefined) {
      next = { highest: nc, seen: 0 };
      nonce = detach(nonce); // kept for a while: not as a slice of the whole request
    } else if (nc > window.highest) {
      const shift = nc - window.highest;
      // bit i stands for count highest-1-i; the old highest moves to bit shift-1
      const seen = shift > COUNT_WINDOW ? 0 : shift === COUNT_WINDOW ? 1 << 31 : (window.seen << shift) | (1 << (shift - 1));
      next = { highest: nc, seen: seen >>> 0 };
    } else {
      const bit = window.highest - nc - 1;
      if (bit < 0 || bit >= COUNT_WINDOW || (window.seen & (1 << bit)) !== 0) {
        this.#remember(nonce, window);
        return false;
      }
      next = { highest: window.highest, seen: (window.seen | (1 << bit)) >>> 0 };
    }
    this.#remember(nonce, next);
    return true;
  }

  #remember(nonce: string, counts: NonceCounts): void {
    if (this.#recent.size >= this.#generationSize && !this.#recent.has(nonce)) {
      this.#older = this.#recent;
      this.#recent = new Map();
    }
    this.#recent.set(nonce, counts);
  }

  /** HMAC-SHA256 of the nonce's head (timestamp and random bytes), the first bytes of `nonce` */
  #mac(nonce: Buffer): Buffer {
    nonce.copy(this.#inner, HMAC_BLOCK_BYTES, 0, TIMESTAMP_BYTES + RANDOM_BYTES);
    oneShotHash('sha256', this.#inner, 'buffer').copy(this.#outer, HMAC_BLOCK_BYTES);
    return oneShotHash('sha256', this.#outer, 'buffer');
  }
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
  /** ha1For knows no such user */
  | 'unknown-user'
  | 'bad-response'
  /** the response is right but the nonce is expired, not ours, or its count was replayed: challenge again with stale=true */
  | 'stale';

export type DigestVerification =
  | { ok: true; username: string; algorithm: DigestAlgorithm; uri: string }
  | { ok: false; reason: DigestFailureReason; detail: string; username?: string };

export interface VerifyOptions {
  /** the request method (HA2 uses it) */
  method: string;
  /** the realm we challenge with; credentials for another realm are refused */
  expectedRealm: string;
  /**
   * When given, the nonce is checked here, after the response (so 'stale' is only reported to a
   * client that knows the password, RFC 7616 §3.3), and nonce counts are checked for replays.
   * When absent, the caller checks the nonce itself.
   */
  nonces?: NonceIssuer;
  /** the stored HA1 of that user for that algorithm, or undefined when there is no such user */
  ha1For: (algorithm: DigestAlgorithm, username: string) => string | undefined;
}

/** Checks an Authorization / Proxy-Authorization value against the request (RFC 3261 §22.4). */
export function verifyCredentials(cred: AuthField, options: VerifyOptions): DigestVerification {
  const fail = (reason: DigestFailureReason, detail: string, username?: string): DigestVerification =>
    username === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, username };

  if (cred.scheme.toLowerCase() !== 'digest') return fail('malformed', `scheme ${cred.scheme} is not Digest`);
  const p = cred.params;
  const username = p.get('username');
  for (const name of ['username', 'realm', 'nonce', 'uri', 'response'] as const) {
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
  }

  const ha1 = options.ha1For(algorithm, user);
  if (ha1 === undefined) return fail('unknown-user', `no user ${user} in realm ${realm}`, user);
  const expected = computeResponse(
    qop === undefined
      ? { algorithm, ha1, method: options.method, uri, nonce }
      : { algorithm, ha1, method: options.method, uri, nonce, qop: 'auth', nc: nc ?? '', cnonce: cnonce ?? '' },
  );
  if (!timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(response, 'latin1'))) {
    return fail('bad-response', 'the response does not match the password', user);
  }

  // The client knows the password. Whether the nonce still counts decides between 2xx and a new
  // challenge with stale=true (RFC 7616 §3.3: stale only when the digest itself was valid).
  const nonces = options.nonces;
  if (nonces === undefined) return { ok: true, username: user, algorithm, uri };
  const state = nonces.check(nonce);
  if (state !== 'valid') return fail('stale', state === 'stale' ? 'the nonce has expired' : 'the nonce was not issued by us', user);
  if (nc !== undefined && !nonces.acceptCount(nonce, Number.parseInt(nc, 16))) {
    return fail('stale', `nonce count ${nc} was already used with this nonce`, user);
  }
  return { ok: true, username: user, algorithm, uri };
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

// Answering digest challenges as a UAC (RFC 3261 §22.2–22.4, RFC 8760 for SHA-256). Pure logic
// over messages: which challenge to answer, and the Authorization / Proxy-Authorization fields.

import { formatAuthField, parseAuthField } from '../sip/pure.ts';
import type { AuthField, SipRequest, SipResponse } from '../sip/pure.ts';
import { randomToken } from './ids.ts';
import { answerChallenge } from '../sip/pure.ts';

export type ChallengeKind = 'www' | 'proxy';

const CHALLENGE_HEADER: Readonly<Record<ChallengeKind, string>> = { www: 'www-authenticate', proxy: 'proxy-authenticate' };
const CREDENTIALS_HEADER: Readonly<Record<ChallengeKind, string>> = { www: 'authorization', proxy: 'proxy-authorization' };

/** RFC 8760 §2.4: a server may offer one challenge per algorithm, most preferred first; we prefer SHA-256. */
const ALGORITHM_RANK: Readonly<Record<string, number>> = { 'sha-256': 2, md5: 1 };

export function algorithmOf(challenge: AuthField): string {
  return (challenge.params.get('algorithm') ?? 'MD5').toLowerCase();
}

/**
 * From the values of WWW-Authenticate (or Proxy-Authenticate), the challenges to answer: one per
 * realm (§22.3: answer every realm), the best algorithm we support, Digest scheme only, qop `auth`
 * or no qop (RFC 2069 compatibility). Unparseable values and those without realm or nonce are skipped.
 */
export function selectChallenges(values: readonly string[]): AuthField[] {
  const best = new Map<string, AuthField>();
  for (const value of values) {
    let field: AuthField;
    try {
      field = parseAuthField(value);
    } catch {
      continue;
    }
    if (field.scheme.toLowerCase() !== 'digest' || !field.params.has('nonce') || !field.params.has('realm')) continue;
    const rank = ALGORITHM_RANK[algorithmOf(field)];
    if (rank === undefined) continue;
    const qop = field.params.get('qop');
    if (qop !== undefined && !qop.split(',').some((q) => q.trim().toLowerCase() === 'auth')) continue;
    const realm = field.params.get('realm') ?? '';
    const current = best.get(realm);
    if (current === undefined || rank > (ALGORITHM_RANK[algorithmOf(current)] ?? 0)) best.set(realm, field);
  }
  return [...best.values()];
}

export interface Credentials {
  username: string;
  password: string;
}

interface CachedChallenge {
  challenge: AuthField;
  /** nonce count already used with this nonce (RFC 7616 §3.4: nc increases with each use) */
  nc: number;
}

/**
 * Keeps the last challenges per kind, so that requests after the first can carry credentials
 * up front (§22.3: "a UAC MAY pre-emptively send credentials") with an increasing nonce count;
 * a stale or unknown nonce just costs one more challenge round.
 */
export class DigestAuthenticator {
  readonly #credentials: Credentials;
  readonly #preemptive: boolean;
  readonly #cache = new Map<ChallengeKind, CachedChallenge[]>();
  readonly #kindsByMethod = new Map<string, Set<ChallengeKind>>();

  constructor(credentials: Credentials, preemptive = true) {
    this.#credentials = credentials;
    this.#preemptive = preemptive;
  }

  /** Takes the challenges of a 401 or 407; returns the kinds it can answer (empty: none usable). */
  accept(method: string, response: SipResponse): ChallengeKind[] {
    const kinds: ChallengeKind[] = [];
    for (const kind of ['www', 'proxy'] as const) {
      const challenges = selectChallenges(response.headers.getAll(CHALLENGE_HEADER[kind]));
      if (challenges.length === 0) continue;
      this.#cache.set(kind, challenges.map((challenge) => ({ challenge, nc: 0 })));
      kinds.push(kind);
    }
    if (this.#preemptive && kinds.length > 0) {
      const known = this.#kindsByMethod.get(method.toUpperCase()) ?? new Set<ChallengeKind>();
      for (const kind of kinds) known.add(kind);
      this.#kindsByMethod.set(method.toUpperCase(), known);
    }
    return kinds;
  }

  /**
   * Sets the request's credentials: answers to the cached challenges of `kinds` (those of the 401
   * or 407 just received) and of the kinds this method was challenged with before (pre-emptive).
   */
  authorize(request: SipRequest, kinds: Iterable<ChallengeKind> = []): void {
    const wanted = new Set<ChallengeKind>(kinds);
    for (const kind of this.#kindsByMethod.get(request.method.toUpperCase()) ?? []) wanted.add(kind);
    for (const kind of wanted) {
      const cached = this.#cache.get(kind);
      if (cached === undefined) continue;
      request.headers.delete(CREDENTIALS_HEADER[kind]);
      for (const entry of cached) {
        entry.nc += 1;
        const answer = answerChallenge(entry.challenge, {
          username: this.#credentials.username,
          password: this.#credentials.password,
          method: request.method,
          uri: request.uri,
          cnonce: randomToken(16),
          nc: entry.nc,
        });
        request.headers.append(CREDENTIALS_HEADER[kind], formatAuthField(answer));
      }
    }
  }

  /** Forgets everything (after a definitive authentication failure). */
  clear(): void {
    this.#cache.clear();
    this.#kindsByMethod.clear();
  }
}

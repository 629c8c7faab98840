// The sign-in guard: counts failed sign-ins (SIP digest and HTTP Basic alike) per source address
// and per account, and refuses a source, then an account, that failed too often. Pure logic over
// an injectable clock; lockout-keeper.ts keeps it in step with the database.
//
// The model is Active Directory's account lockout (a threshold of failures within an observation
// window locks for a duration; the count resets when the window passes without a failure) with
// two changes taken from the "extranet smart lockout" of AD FS and Entra ID:
//
//  - The SOURCE is locked first. Password guessing comes from addresses the account's owner does
//    not use, so locking the guessing address stops the attack without touching the user.
//  - The ACCOUNT is locked only against UNFAMILIAR sources: past a higher threshold of failures
//    from addresses that never signed in to it (a slow attack spread over many sources, each
//    under the source threshold), the account refuses new addresses, while the addresses it
//    recently signed in from ("familiar", up to MAX_FAMILIAR per account, for FAMILIAR_MS) still
//    work. So nobody can lock a user out of their own usual address by guessing from elsewhere.
//    Failures from a familiar address (the user mistyping) count for that address only.
//
// Repeated lockouts last longer: duration × 2^(lockouts so far), up to the maximum. The count is
// not reset by a lockout, so once it ends a single further failure within the window locks again,
// for twice as long (as Entra ID's smart lockout does). The count resets when a window passes
// without a failure, the streak when a window passes after the lockout ended.
//
// A locked source is refused before any password check (no hashing), with the right password too:
// otherwise a guesser would still learn when a guess was right.
//
// Hot path (every SIP REGISTER, every EWS request): check() is one or two Map lookups; nothing
// is read from the database. Failures and lockouts are rare and written by the keeper.

import { sourceKey } from './source.ts';

export interface LockoutPolicy {
  /** failed sign-ins from one source within the window that lock the source */
  sourceThreshold: number;
  /** failed sign-ins for one account from unfamiliar sources within the window that lock it for them */
  accountThreshold: number;
  /** observation window: a count resets when this passes without a failure, ms */
  windowMs: number;
  /** the first lockout, ms; each further one in a streak doubles it */
  durationMs: number;
  /** the longest lockout, ms */
  maxDurationMs: number;
}

export type LockoutKind = 'source' | 'account';

/** What the guard knows of one source or account. */
export interface LockoutState {
  readonly kind: LockoutKind;
  /** a source key (sourceKey()) or an account address, lower case */
  readonly key: string;
  /** failures in the current window */
  failures: number;
  /** ms since the epoch; 0 when none */
  lastFailure: number;
  /** ms since the epoch; 0 when never locked */
  lockedUntil: number;
  /** lockouts in the current streak (the next lasts duration × 2^lockouts) */
  lockouts: number;
}

/** Why a sign-in is refused without looking at its password. */
export interface Refusal {
  readonly kind: LockoutKind;
  readonly key: string;
  readonly until: number;
  readonly retryAfterSeconds: number;
  /** for the Warning / problem detail: what happened and when to try again */
  readonly message: string;
}

export interface FamiliarSource {
  readonly account: string;
  readonly source: string;
  /** the last successful sign-in from there (recorded to within FAMILIAR_REFRESH_MS) */
  readonly at: number;
}

/** What changed since the last takeChanges(): for the keeper to write. */
export interface GuardChanges {
  readonly saved: readonly LockoutState[];
  readonly removed: ReadonlyArray<{ kind: LockoutKind; key: string }>;
  readonly familiar: readonly FamiliarSource[];
}

export interface SignInGuardOptions {
  now?: () => number;
  /** a lockout started; must not throw */
  onLockout?: (state: Readonly<LockoutState>, refusal: Refusal) => void;
  /** most sources (and most accounts) tracked at once; default 100,000 each */
  maxTracked?: number;
}

/** an address stays familiar this long after its last successful sign-in */
export const FAMILIAR_MS = 30 * 86_400_000;
/** a familiar address's time is written again only when older than this (not on every sign-in) */
export const FAMILIAR_REFRESH_MS = 86_400_000;
/** familiar addresses kept per account; the least recent gives way */
export const MAX_FAMILIAR = 8;
const EVICTION_SCAN = 64;
/** a longer account name (no user has one) is counted against its source only */
const MAX_ACCOUNT_LENGTH = 320;

export class SignInGuard {
  readonly policy: Readonly<LockoutPolicy>;
  readonly #now: () => number;
  readonly #onLockout: SignInGuardOptions['onLockout'];
  readonly #maxTracked: number;
  readonly #sources = new Map<string, LockoutState>();
  readonly #accounts = new Map<string, LockoutState>();
  /** account → its familiar sources, most recent last */
  readonly #familiar = new Map<string, FamiliarSource[]>();
  /** since the start, what /metrics reads: failed sign-ins counted, lockouts started per kind */
  readonly counts = { failures: 0, lockouts: { source: 0, account: 0 } };
  #dirty = new Set<LockoutState>();
  #removed = new Map<string, { kind: LockoutKind; key: string }>();
  /** `account source` → the newest record to write */
  #familiarDirty = new Map<string, FamiliarSource>();

  constructor(policy: LockoutPolicy, options: SignInGuardOptions = {}) {
    this.policy = { ...policy };
    this.#now = options.now ?? Date.now;
    this.#onLockout = options.onLockout;
    this.#maxTracked = options.maxTracked ?? 100_000;
  }

  /**
   * The refusal for a sign-in from `address` (the peer's IP address) for `account`
   * (`alice@parley.local`; undefined when the request names none yet), or undefined: go on.
   */
  check(address: string, account?: string): Refusal | undefined {
    const source = sourceKey(address);
    const bySource = this.#sources.get(source);
    const byAccount = account === undefined || this.#accounts.size === 0 ? undefined : this.#accounts.get(account.toLowerCase());
    if (bySource === undefined && byAccount === undefined) return undefined;
    const now = this.#now();
    if (bySource !== undefined && bySource.lockedUntil > now) return this.#refusal(bySource, now);
    if (byAccount !== undefined && byAccount.lockedUntil > now && !this.#isFamiliar(byAccount.key, source, now)) return this.#refusal(byAccount, now);
    return undefined;
  }

  /**
   * A wrong password or an unknown user (counted alike: the answer must not tell them apart).
   * Returns the lockout this failure started, if any.
   */
  failed(address: string, account?: string): Refusal | undefined {
    this.counts.failures++;
    const now = this.#now();
    const source = sourceKey(address);
    const started = this.#count(this.#sources, 'source', source, this.policy.sourceThreshold, now);
    const name = account === undefined || account.length > MAX_ACCOUNT_LENGTH ? undefined : account.toLowerCase();
    if (name === undefined || this.#isFamiliar(name, source, now)) return started;
    return this.#count(this.#accounts, 'account', name, this.policy.accountThreshold, now) ?? started;
  }

  /**
   * A successful sign-in: `address` becomes (or stays) familiar for the account. Unlike AD, it
   * resets no count: SIP clients refresh their registration every few minutes, so the owner's
   * client would keep handing a slow guesser a fresh account budget, and a guesser who knows one
   * password would reset its own source's.
   */
  succeeded(account: string, address: string): void {
    const name = account.toLowerCase();
    const source = sourceKey(address);
    const now = this.#now();
    // the common case, every REGISTER refresh: a known address, recorded less than a day ago
    const known = this.#familiar.get(name)?.find((f) => f.source === source);
    if (known === undefined || now - known.at >= FAMILIAR_REFRESH_MS) this.#remember(name, source, now);
  }

  /** Forgets a source (`192.0.2.7`) or an account: its count, lockout and streak. */
  clear(kind: LockoutKind, key: string): boolean {
    const map = kind === 'source' ? this.#sources : this.#accounts;
    const normalised = kind === 'source' ? sourceKey(key) : key.toLowerCase();
    const state = map.get(normalised);
    if (state === undefined) return false;
    this.#forget(map, state);
    return true;
  }

  /** Sources and accounts locked out now (a scan: for /metrics, not for a request path). */
  lockedNow(): Record<LockoutKind, number> {
    const now = this.#now();
    let source = 0;
    let account = 0;
    for (const s of this.#sources.values()) if (s.lockedUntil > now) source++;
    for (const s of this.#accounts.values()) if (s.lockedUntil > now) account++;
    return { source, account };
  }

  /** What the guard tracks now, sources first. */
  entries(): LockoutState[] {
    return [...this.#sources.values(), ...this.#accounts.values()].map((s) => ({ ...s }));
  }

  /** The familiar sources of an account, most recent last. */
  familiarSources(account: string): readonly FamiliarSource[] {
    return this.#familiar.get(account.toLowerCase()) ?? [];
  }

  /** Takes back what the database held (at start): nothing of it is written again. */
  load(states: readonly LockoutState[], familiar: readonly FamiliarSource[]): void {
    const now = this.#now();
    for (const s of states) {
      if (this.#expired(s, now)) continue;
      (s.kind === 'source' ? this.#sources : this.#accounts).set(s.key, { ...s });
    }
    for (const f of [...familiar].sort((a, b) => a.at - b.at)) {
      if (now - f.at >= FAMILIAR_MS) continue;
      const list = this.#familiar.get(f.account) ?? [];
      list.push(f);
      if (list.length > MAX_FAMILIAR) list.shift();
      this.#familiar.set(f.account, list);
    }
  }

  /** Drops what has expired: a count whose window passed, a streak a window after its lockout. */
  sweep(): void {
    const now = this.#now();
    for (const map of [this.#sources, this.#accounts]) {
      for (const state of map.values()) if (this.#expired(state, now)) this.#forget(map, state);
    }
    for (const [account, list] of this.#familiar) {
      const kept = list.filter((f) => now - f.at < FAMILIAR_MS);
      if (kept.length === 0) this.#familiar.delete(account);
      else if (kept.length !== list.length) this.#familiar.set(account, kept);
    }
  }

  /** What changed since the last call, to write down. */
  takeChanges(): GuardChanges {
    const changes = { saved: [...this.#dirty].map((s) => ({ ...s })), removed: [...this.#removed.values()], familiar: [...this.#familiarDirty.values()] };
    this.#dirty = new Set();
    this.#removed = new Map();
    this.#familiarDirty = new Map();
    return changes;
  }

  /** Puts back changes whose write failed, to be written with the next round. */
  restoreChanges(changes: GuardChanges): void {
    for (const s of changes.saved) {
      const live = (s.kind === 'source' ? this.#sources : this.#accounts).get(s.key);
      if (live !== undefined) this.#dirty.add(live);
    }
    for (const r of changes.removed) {
      if (!(r.kind === 'source' ? this.#sources : this.#accounts).has(r.key)) this.#removed.set(`${r.kind} ${r.key}`, r);
    }
    for (const f of changes.familiar) {
      const key = `${f.account} ${f.source}`;
      if (!this.#familiarDirty.has(key)) this.#familiarDirty.set(key, f);
    }
  }

  #count(map: Map<string, LockoutState>, kind: LockoutKind, key: string, threshold: number, now: number): Refusal | undefined {
    let state = map.get(key);
    if (state === undefined) {
      if (map.size >= this.#maxTracked && !this.#evictOne(map, now)) return undefined;
      state = { kind, key, failures: 0, lastFailure: 0, lockedUntil: 0, lockouts: 0 };
      map.set(key, state);
      this.#removed.delete(`${kind} ${key}`);
    }
    const { windowMs } = this.policy;
    if (now - Math.max(state.lastFailure, state.lockedUntil) > windowMs) state.lockouts = 0;
    if (now - state.lastFailure > windowMs) state.failures = 0;
    state.failures++;
    state.lastFailure = now;
    this.#dirty.add(state);
    if (state.lockedUntil > now || state.failures < threshold) return undefined;
    const duration = Math.min(this.policy.maxDurationMs, this.policy.durationMs * 2 ** state.lockouts);
    state.lockedUntil = now + duration;
    state.lockouts++;
    this.counts.lockouts[state.kind]++;
    const refusal = this.#refusal(state, now);
    this.#onLockout?.({ ...state }, refusal);
    return refusal;
  }

  #refusal(state: LockoutState, now: number): Refusal {
    const retryAfterSeconds = Math.max(1, Math.ceil((state.lockedUntil - now) / 1000));
    const message =
      state.kind === 'source'
        ? `too many failed sign-ins from ${state.key}; try again in ${retryAfterSeconds} s`
        : `too many failed sign-ins for ${state.key} from addresses it has not signed in from; try again in ${retryAfterSeconds} s, or from an address it used before`;
    return { kind: state.kind, key: state.key, until: state.lockedUntil, retryAfterSeconds, message };
  }

  #isFamiliar(account: string, source: string, now: number): boolean {
    const list = this.#familiar.get(account);
    if (list === undefined) return false;
    for (const f of list) if (f.source === source) return now - f.at < FAMILIAR_MS;
    return false;
  }

  #remember(account: string, source: string, now: number): void {
    const list = (this.#familiar.get(account) ?? []).filter((f) => f.source !== source);
    const entry = { account, source, at: now };
    list.push(entry);
    if (list.length > MAX_FAMILIAR) list.shift();
    this.#familiar.set(account, list);
    this.#familiarDirty.set(`${account} ${source}`, entry);
  }

  #expired(state: LockoutState, now: number): boolean {
    return state.lockedUntil <= now && now - Math.max(state.lastFailure, state.lockedUntil) > this.policy.windowMs;
  }

  #forget(map: Map<string, LockoutState>, state: LockoutState): void {
    map.delete(state.key);
    this.#dirty.delete(state);
    this.#removed.set(`${state.kind} ${state.key}`, { kind: state.kind, key: state.key });
  }

  /**
   * Makes room for a new key: the oldest tracked entry that is not locked goes (a Map iterates in
   * insertion order). False when the first few are all locked: then the new key is not tracked.
   */
  #evictOne(map: Map<string, LockoutState>, now: number): boolean {
    let scanned = 0;
    for (const state of map.values()) {
      if (state.lockedUntil <= now) {
        this.#forget(map, state);
        return true;
      }
      if (++scanned >= EVICTION_SCAN) break;
    }
    return false;
  }
}

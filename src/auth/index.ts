// What other capabilities may use of sign-in: SIP digest (authenticator.ts), HTTP Basic
// (http-basic.ts), and the sign-in guard that locks out guessing sources and accounts.
export type { AuthOutcome, AuthenticatorOptions, DigestAccount } from './authenticator.ts';
export { Authenticator } from './authenticator.ts';
export type { AuthErrorCode } from './errors.ts';
export { AUTH_ERRORS, AuthError } from './errors.ts';
export type { Admission, FairQueueOptions } from './hash-queue.ts';
export { FairQueue } from './hash-queue.ts';
export type { BasicOutcome, BasicSignInOptions, SignInRefusal } from './http-basic.ts';
export { BasicSignIn, DEFAULT_HASH_QUEUE, answerSignInRefusal, basicCaller, basicChallenge, isSecureOrLocal } from './http-basic.ts';
export type { FamiliarSource, GuardChanges, LockoutKind, LockoutPolicy, LockoutState, Refusal, SignInGuardOptions } from './lockout.ts';
export { FAMILIAR_MS, MAX_FAMILIAR, SignInGuard } from './lockout.ts';
export type { LockoutKeeperOptions } from './lockout-keeper.ts';
export { LockoutKeeper, lockoutIdentity } from './lockout-keeper.ts';
export { AUTH_MIGRATIONS, clearLockout, getLockout, listLockouts, purgeExpiredLockoutBatch } from './lockout-store.ts';
export { httpSource, isLoopbackAddress, plainAddress, sourceKey } from './source.ts';

// Browser sign-in sessions (the web client's HTTP side): what other capabilities may use.
export { SESSION_COOKIE, clearedCookie, hasSessionCookie, readCookie, sessionCookie } from './cookie.ts';
export { SESSION_MIGRATIONS, purgeExpiredSessionBatch } from './store.ts';
export type { SessionCheck, SessionEnd, WebSessionsOptions } from './sessions.ts';
export { DEFAULT_IDLE_MS, DEFAULT_MAX_AGE_MS, IDLE_WRITE_MS, MAX_SESSIONS_PER_USER, WebSessions, tokenHash } from './sessions.ts';
export type { SessionCallerOptions } from './caller.ts';
export { originProblem, sessionCaller } from './caller.ts';
export type { SessionInfo, SessionRouteOptions } from './route.ts';
export { SESSION_PATH, createSessionRoute } from './route.ts';

// Who is calling, for the HTTP routes a browser uses (/api/*, /presence/*): the session cookie, or
// HTTP Basic for other clients (scripts, `parley chat`). One function, given to each route
// (HttpCaller, src/http-json.ts), so every route applies the same rules:
//  - a password or token travels over TLS, or from loopback (a local TLS proxy, the tests), as Basic;
//  - a request with an Authorization header is checked as Basic (explicit credentials win);
//  - a request authenticated by the cookie whose method changes something (not GET/HEAD) must come
//    from one of the server's own pages: its Origin header names one of the server's own origins
//    (Fetch standard: browsers send Origin on every such request), else 403 CSRF_ORIGIN. SameSite=Strict
//    already keeps the cookie off other sites' requests; this also covers a sibling site
//    (another port or subdomain of the same site) and older browsers.

import type http from 'node:http';
import { isSecureOrLocal } from '../auth/index.ts';
import type { basicCaller } from '../auth/index.ts';
import { HttpProblem, type CallerOutcome, type HttpCaller } from '../http-json.ts';
import { hasSessionCookie, readCookie } from './cookie.ts';
import type { SessionEnd, WebSessions } from './sessions.ts';

export interface SessionCallerOptions {
  sessions: WebSessions;
  /** HTTP Basic through the server's sign-in (lockouts, hashing queue) */
  basic: ReturnType<typeof basicCaller>;
  /** the server's own origins (src/server/origins.ts) */
  isOwnOrigin(origin: string): boolean;
  /**
   * a request with neither cookie nor Authorization gets a Basic challenge (the /presence routes,
   * as before sessions); the /api routes never send one: a browser would show its password dialog
   */
  challenge: boolean;
  /** accept credentials over plain HTTP from other hosts than loopback (default false) */
  allowPlainHttp?: boolean;
}

const ENDED: Readonly<Record<SessionEnd, string>> = {
  unknown: 'you are not signed in (or your session was ended); sign in again',
  idle: 'your session ended after 12 hours without use; sign in again',
  expired: 'your session ended 7 days after sign-in; sign in again',
  'password-changed': 'your password was changed, which ended your session; sign in with the new password',
  'user-removed': 'your account was removed',
};

export function sessionCaller(opts: SessionCallerOptions): HttpCaller {
  return async (req): Promise<CallerOutcome> => {
    if (opts.allowPlainHttp !== true && !isSecureOrLocal(req)) {
      return refuse(403, 'INSECURE_TRANSPORT', 'your password or session must not travel in clear: use HTTPS (plain HTTP is accepted on loopback only)');
    }
    const cookie = req.headers.cookie;
    if (req.headers.authorization !== undefined) return opts.basic(req, { challenge: opts.challenge && !hasSessionCookie(cookie) });
    const token = readCookie(cookie);
    if (token === undefined) {
      if (opts.challenge) return opts.basic(req, { challenge: true });
      return refuse(401, 'NO_SESSION', ENDED.unknown);
    }
    const session = await opts.sessions.check(token);
    if (!session.ok) return refuse(401, 'NO_SESSION', ENDED[session.reason]);
    const origin = originProblem(req, opts.isOwnOrigin);
    if (origin !== undefined) return { ok: false, problem: origin };
    return { ok: true, address: session.address, via: 'session' };
  };
}

/**
 * 403 CSRF_ORIGIN for a request that changes something (not GET/HEAD) and does not come from one of
 * the server's own pages; undefined when it may go on.
 */
export function originProblem(req: http.IncomingMessage, isOwnOrigin: (origin: string) => boolean): HttpProblem | undefined {
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD') return undefined;
  const origin = req.headers.origin;
  if (origin !== undefined && isOwnOrigin(origin)) return undefined;
  const detail = origin === undefined
    ? `a ${method} with the session cookie must carry an Origin header naming this server (browsers send it)`
    : `a ${method} with the session cookie from the page of ${JSON.stringify(origin.slice(0, 200))} is refused: that origin is not this server's (config web.allowedOrigins lists more)`;
  return new HttpProblem(403, 'CSRF_ORIGIN', detail);
}

function refuse(status: number, code: string, detail: string): CallerOutcome {
  return { ok: false, problem: new HttpProblem(status, code, detail) };
}

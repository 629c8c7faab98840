// /api/session: the browser's sign-in. JSON in, JSON out, problem JSON with a stable `code`.
//
//   POST   /api/session {"user": "alice" | "alice@parley.local", "password": "…"}
//          → 201 {address, sipUri, displayName, authUser, domain, webSocketUrl, contactListUri, demo}
//            Set-Cookie: parley_session=…; Path=/; HttpOnly; SameSite=Strict (+ Secure over TLS)
//          | 403 SIGN_IN_FAILED | 429 SIGN_IN_LOCKED, SIGN_IN_BUSY (Retry-After) | 503 SIGN_IN_BUSY
//          | 400 BAD_JSON, MISSING_FIELD | 413 BODY_TOO_LARGE | 415 UNSUPPORTED_MEDIA_TYPE | 403 CSRF_ORIGIN
//   GET    /api/session → 200 (the same JSON) | 401 NO_SESSION
//   DELETE /api/session → 204, the cookie cleared (and the session ended)
//
// The password is checked exactly as HTTP Basic checks it (BasicSignIn: lockouts of source and
// account, the cache of verified passwords, the fair scrypt queue); a failure counts toward the
// lockouts as a failed Basic sign-in does. The sign-in itself must come from one of the server's
// own pages (Origin), so another site cannot sign a browser in under its own account (login CSRF).

import type http from 'node:http';
import { discardBody, readJsonBody } from '../admin/http/body.ts';
import { type BasicSignIn, isSecureOrLocal, plainAddress } from '../auth/index.ts';
import { findUser } from '../directory/index.ts';
import { HttpProblem, INTERNAL_PROBLEM, answerJson, answerProblem, problemOf } from '../http-json.ts';
import type { Logger } from '../observability/logger.ts';
import { listResource } from '../presence/index.ts';
import type { HttpRoute } from '../server/http.ts';
import type { Sql } from '../storage/index.ts';
import { originProblem } from './caller.ts';
import { clearedCookie, readCookie, sessionCookie } from './cookie.ts';
import type { WebSessions } from './sessions.ts';

export const SESSION_PATH = '/api/session';
/** a sign-in is two short strings */
export const MAX_SIGN_IN_BYTES = 4096;

export interface SessionRouteOptions {
  sql: Sql;
  logger: Logger;
  domain: string;
  product: string;
  signIn: BasicSignIn;
  sessions: WebSessions;
  /** the server's own origins (src/server/origins.ts) */
  isOwnOrigin(origin: string): boolean;
  /**
   * the base URL of this server (`http://host:port`, `https://chat.example.com`) for a request
   * (OwnNames.baseFor): publicUrl, the request's Host when it is one of ours, else the connection's
   * local address; never a foreign name
   */
  baseFor(req: http.IncomingMessage, tls: boolean): string;
  /** peers whose X-Forwarded-Proto tells whether the browser used TLS (config auth.trustedProxies) */
  trustedProxies?: readonly string[];
  /** accept passwords over plain HTTP from other hosts than loopback (default false) */
  allowPlainHttp?: boolean;
  /** in a cluster: every live node's SIP WebSocket URLs (the web client moves to the next when one fails); absent: one server */
  clusterWebSocketUrls?: () => string[];
}

/** What the web client needs to know of the signed-in user. */
export interface SessionInfo {
  address: string;
  sipUri: string;
  displayName: string | null;
  /** the digest user name for SIP (the user part) */
  authUser: string;
  domain: string;
  webSocketUrl: string;
  /** in a cluster: every live node's SIP WebSocket URLs, webSocketUrl among them; absent on one server */
  webSocketUrls?: string[];
  /** the resource list of the user's contacts (RFC 4662) */
  contactListUri: string;
  demo: boolean;
}

export function createSessionRoute(opts: SessionRouteOptions): HttpRoute {
  const trusted = new Set((opts.trustedProxies ?? []).map(plainAddress));
  return {
    handle(req, res, url) {
      if (url.pathname !== SESSION_PATH) return false;
      serve(req, res).catch((error: unknown) => {
        const problem = problemOf(error);
        if (problem === undefined) opts.logger.error({ err: error }, 'session request failed');
        if (res.headersSent) return void res.destroy();
        discardBody(req);
        answerProblem(res, opts.product, problem ?? INTERNAL_PROBLEM);
      });
      return true;
    },
  };

  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (opts.allowPlainHttp !== true && !isSecureOrLocal(req)) {
      throw new HttpProblem(403, 'INSECURE_TRANSPORT', 'your password must not travel in clear: use HTTPS (plain HTTP is accepted on loopback only)');
    }
    const tls = isTls(req, trusted);
    switch (req.method) {
      case 'POST':
        return signIn(req, res, tls);
      case 'GET':
      case 'HEAD': {
        discardBody(req);
        const token = readCookie(req.headers.cookie);
        const session = token === undefined ? undefined : await opts.sessions.check(token);
        if (session === undefined || !session.ok) throw new HttpProblem(401, 'NO_SESSION', 'you are not signed in (or your session ended); sign in with POST /api/session');
        return answerJson(res, opts.product, 200, await infoOf(session.address, req, tls));
      }
      case 'DELETE': {
        discardBody(req);
        const token = readCookie(req.headers.cookie);
        if (token !== undefined) {
          const refused = originProblem(req, opts.isOwnOrigin);
          if (refused !== undefined) throw refused;
          await opts.sessions.close(token);
        }
        return answerJson(res, opts.product, 204, undefined, { 'set-cookie': clearedCookie(tls) });
      }
      default:
        throw new HttpProblem(405, 'METHOD_NOT_ALLOWED', `${SESSION_PATH} accepts GET, POST and DELETE, not ${req.method ?? '?'}`, { allow: 'GET, POST, DELETE' });
    }
  }

  async function signIn(req: http.IncomingMessage, res: http.ServerResponse, tls: boolean): Promise<void> {
    // login CSRF: another site's page must not sign this browser in, not even under its own account
    const refused = originProblem(req, opts.isOwnOrigin);
    if (refused !== undefined) throw refused;
    const body = await readJsonBody(req, MAX_SIGN_IN_BYTES);
    const { user, password } = fieldsOf(body);
    const outcome = await opts.signIn.checkPassword(req, user, password);
    if (!outcome.ok && outcome.status === 401) {
      opts.logger.info({ user: user.slice(0, 100), source: req.socket.remoteAddress }, 'web sign-in of %s failed', user.slice(0, 100));
      throw new HttpProblem(403, 'SIGN_IN_FAILED', 'the user name or password is wrong');
    }
    if (!outcome.ok) throw new HttpProblem(outcome.status, outcome.code, outcome.detail, { 'retry-after': String(outcome.retryAfterSeconds) });
    const token = await opts.sessions.open(outcome.address);
    opts.logger.info({ user: outcome.address }, 'web sign-in of %s', outcome.address);
    answerJson(res, opts.product, 201, await infoOf(outcome.address, req, tls), { 'set-cookie': sessionCookie(token, tls) });
  }

  async function infoOf(address: string, req: http.IncomingMessage, tls: boolean): Promise<SessionInfo> {
    const user = await findUser(opts.sql, address);
    const base = opts.baseFor(req, tls);
    return {
      address,
      sipUri: `sip:${address}`,
      displayName: user?.displayName ?? null,
      authUser: address.slice(0, address.lastIndexOf('@')),
      domain: address.slice(address.lastIndexOf('@') + 1),
      webSocketUrl: `${base.replace(/^http/, 'ws')}/sip`,
      ...(opts.clusterWebSocketUrls === undefined ? {} : { webSocketUrls: clusterUrls(`${base.replace(/^http/, 'ws')}/sip`, opts.clusterWebSocketUrls()) }),
      contactListUri: `sip:${listResource(address)}`,
      demo: user?.demo ?? false,
    };
  }
}

/** The cluster's WebSocket URLs with the one this request reached first (the page's own node). */
function clusterUrls(own: string, all: readonly string[]): string[] {
  return [own, ...all.filter((u) => u !== own)];
}

/** The user name and password of a sign-in body; 400 MISSING_FIELD naming what is missing. */
function fieldsOf(body: unknown): { user: string; password: string } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpProblem(400, 'MISSING_FIELD', 'send {"user": "alice@example.com", "password": "…"} as application/json');
  }
  const { user, password } = body as Record<string, unknown>;
  if (typeof user !== 'string' || user.trim() === '') throw new HttpProblem(400, 'MISSING_FIELD', '"user" is missing: your SIP address or user name, as a string');
  if (typeof password !== 'string' || password === '') throw new HttpProblem(400, 'MISSING_FIELD', '"password" is missing: your password, as a string');
  if (user.length > 320) throw new HttpProblem(400, 'MISSING_FIELD', '"user" is longer than any address');
  return { user, password };
}

/** TLS to this server, or to a trusted local proxy that says so (X-Forwarded-Proto: https). */
function isTls(req: http.IncomingMessage, trusted: ReadonlySet<string>): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
  if (!trusted.has(plainAddress(req.socket.remoteAddress ?? ''))) return false;
  const proto = req.headers['x-forwarded-proto'];
  return typeof proto === 'string' && proto.split(',')[0]?.trim().toLowerCase() === 'https';
}

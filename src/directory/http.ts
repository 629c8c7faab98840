// The organisation's directory for its users, on the HTTP port: who can I add, write to, watch?
//
//   GET /api/directory?q=ali&page=1&pageSize=20
//     → 200 {"users": [{"address", "sipUri", "displayName"}], "page", "pageSize", "total"}
//     | 400 BAD_QUERY | 401 NO_SESSION / UNAUTHORIZED | 405 METHOD_NOT_ALLOWED
//
// Signed-in users only (the browser session or HTTP Basic: the server's HttpCaller). Every user of
// the organisation may see every other one, as in a Teams or Skype for Business address book; a
// result holds the address and display name only. `q` matches the address or display name,
// case-insensitively, anywhere; results are ordered by display name.

import type http from 'node:http';
import { answerJson, answerProblem, HttpProblem, INTERNAL_PROBLEM, pageParams, problemOf, type HttpCaller } from '../http-json.ts';
import type { Logger } from '../observability/logger.ts';
import type { HttpRoute } from '../server/http.ts';
import type { Sql } from '../storage/index.ts';
import { searchUsers } from './users.ts';

export const DIRECTORY_PATH = '/api/directory';
export const MAX_PAGE_SIZE = 50;
const DEFAULT_PAGE_SIZE = 20;
/** longer search text than any address or name */
const MAX_QUERY = 256;

export interface DirectoryRouteOptions {
  sql: Sql;
  logger: Logger;
  product: string;
  /** who is calling (src/session: the browser session or HTTP Basic) */
  caller: HttpCaller;
}

export function createDirectoryRoute(opts: DirectoryRouteOptions): HttpRoute {
  return {
    handle(req, res, url) {
      if (url.pathname !== DIRECTORY_PATH) return false;
      req.resume(); // no body is read
      serve(req, url.searchParams).then(
        (body) => answerJson(res, opts.product, 200, body),
        (error: unknown) => {
          const problem = problemOf(error);
          if (problem === undefined) opts.logger.error({ err: error }, 'directory request failed');
          answerProblem(res, opts.product, problem ?? INTERNAL_PROBLEM);
        },
      );
      return true;
    },
  };

  async function serve(req: http.IncomingMessage, query: URLSearchParams) {
    const caller = await opts.caller(req);
    if (!caller.ok) throw caller.problem;
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw new HttpProblem(405, 'METHOD_NOT_ALLOWED', `${DIRECTORY_PATH} accepts GET, not ${method}`, { allow: 'GET' });
    const q = query.get('q') ?? '';
    if (q.length > MAX_QUERY) throw new HttpProblem(400, 'BAD_QUERY', `q has ${q.length} characters; at most ${MAX_QUERY} are searched for`);
    const { page, pageSize, offset } = pageParams(query, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    const { users, total } = await searchUsers(opts.sql, q, offset, pageSize);
    return {
      users: users.map((u) => ({ address: u.address, sipUri: `sip:${u.address}`, displayName: u.displayName })),
      page,
      pageSize,
      total,
    };
  }
}

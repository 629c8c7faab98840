// The JSON edge shared by the user-facing HTTP routes (/api/*, /presence/*): answers in JSON,
// errors as problem details (RFC 9457) with a stable `code`, and the one type by which a route
// learns who is calling (a browser session or HTTP Basic). A leaf module, like errors.ts: the
// capabilities' routes (presence, directory, session, conversations) use it without importing each
// other; the implementations of HttpCaller live in src/auth (Basic) and src/session (cookie).

import http from 'node:http';
import { ParleyError } from './errors.ts';

/**
 * An HTTP problem: status, stable code, a message a person can act on, and headers to send with
 * it (Retry-After, Allow, WWW-Authenticate).
 */
export class HttpProblem extends ParleyError {
  readonly httpStatus: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, code: string, detail: string, headers: Record<string, string> = {}) {
    super(code, detail);
    this.httpStatus = status;
    this.headers = headers;
  }
}

/** Who sent a request: the signed-in user's address and how they proved it. */
export type CallerOutcome = { readonly ok: true; readonly address: string; readonly via: 'session' | 'basic' } | { readonly ok: false; readonly problem: HttpProblem };

/** Finds out who is calling (session cookie or HTTP Basic); never throws for a bad request, answers a problem. */
export type HttpCaller = (req: http.IncomingMessage) => Promise<CallerOutcome>;

/**
 * Headers on every answer of the user-facing JSON routes: nothing is cached (answers are personal),
 * and a browser never sniffs a JSON answer into something it would run or render.
 */
export const API_HEADERS: Readonly<Record<string, string>> = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

/** Answers JSON (or nothing, for 204) with the API headers. */
export function answerJson(res: http.ServerResponse, product: string, status: number, body: unknown, extra: Record<string, string | string[]> = {}): void {
  const headers: Record<string, string | string[] | number> = { server: product, ...API_HEADERS, ...extra };
  if (body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The problem for an error that carries an HTTP status (HttpProblem, or any ParleyError with an
 * `httpStatus`: DirectoryError, PresenceError, the admin body reader's errors), or undefined for
 * one that does not (a bug: the caller logs it and answers INTERNAL).
 */
export function problemOf(error: unknown): HttpProblem | undefined {
  if (error instanceof HttpProblem) return error;
  if (!(error instanceof ParleyError)) return undefined;
  const status = (error as { httpStatus?: unknown }).httpStatus;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) return undefined;
  const headers = (error as { headers?: unknown }).headers;
  return new HttpProblem(status, error.code, error.message, typeof headers === 'object' && headers !== null ? (headers as Record<string, string>) : {});
}

/** Answers the problem as application/problem+json, with the API headers and the problem's own. */
export function answerProblem(res: http.ServerResponse, product: string, problem: HttpProblem, extra: Record<string, string | string[]> = {}): void {
  const body = { type: 'about:blank', title: http.STATUS_CODES[problem.httpStatus] ?? 'Error', status: problem.httpStatus, detail: problem.message, code: problem.code };
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(problem.httpStatus, {
    server: product,
    ...API_HEADERS,
    ...problem.headers,
    ...extra,
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export const INTERNAL_PROBLEM = new HttpProblem(500, 'INTERNAL', 'internal error; see the server log');

/** A whole number query parameter from `min` to `max`, or `fallback` when absent; 400 BAD_QUERY otherwise. */
export function intParam(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const value = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= min && value <= max)) throw new HttpProblem(400, 'BAD_QUERY', `${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw.slice(0, 40))}`);
  return value;
}

/** The page of a paged list: `page` from 1, `pageSize` from 1 to `maxPageSize`, and the rows to skip. */
export function pageParams(query: URLSearchParams, defaultSize: number, maxPageSize: number): { page: number; pageSize: number; offset: number } {
  const pageSize = intParam(query, 'pageSize', defaultSize, 1, maxPageSize);
  // a page past ~10^7 rows is refused rather than turned into a huge OFFSET
  const page = intParam(query, 'page', 1, 1, Math.floor(10_000_000 / pageSize) + 1);
  return { page, pageSize, offset: (page - 1) * pageSize };
}

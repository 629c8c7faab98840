// Errors of the admin API as problem details (RFC 9457): `type`, `title`, `status`, `detail`, and
// a stable `code` (the same code the error carries in the server: UNKNOWN_CMDLET, SITE_IN_USE…).
//
// RFC 9457 §4.2.1: with `"type": "about:blank"` the title is the HTTP status phrase, and the
// problem is told apart by the `code` member (an extension member, §3.2).

import http from 'node:http';
import { ParleyError } from '../../errors.ts';
import { AdminError } from '../errors.ts';

/** The admin API's own codes, with the HTTP status each is answered with. */
export const ADMIN_API_ERROR_STATUS = {
  /** no `Authorization: Bearer <token>`, or not the server's token */
  UNAUTHORIZED: 401,
  /** plain HTTP from another host than loopback: the token would travel in clear */
  INSECURE_TRANSPORT: 403,
  /** nothing is served at that path under /admin/ */
  NOT_FOUND: 404,
  /** the path exists, not with that method; the Allow header lists the methods */
  METHOD_NOT_ALLOWED: 405,
  /** the body is larger than the limit */
  BODY_TOO_LARGE: 413,
  /** the body is not application/json (UTF-8) */
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** the body is not JSON, or not UTF-8 */
  BAD_JSON: 400,
  /** a path segment has a malformed percent-encoding */
  BAD_PATH: 400,
  /** the JSON is not of the expected shape, e.g. not {"parameters": {...}} */
  BAD_BODY: 400,
  /** a bug, or the storage failed; the server log has the details */
  INTERNAL: 500,
} as const;

export type AdminApiErrorCode = keyof typeof ADMIN_API_ERROR_STATUS;

/** An error of the admin API itself; endpoints may throw it too (e.g. NOT_FOUND). */
export class AdminApiError extends ParleyError {
  declare readonly code: AdminApiErrorCode;
  readonly httpStatus: number;
  /** headers to send with the problem (WWW-Authenticate, Allow) */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: AdminApiErrorCode, message: string, headers: Record<string, string> = {}) {
    super(code, message);
    this.httpStatus = ADMIN_API_ERROR_STATUS[code];
    this.headers = headers;
  }
}

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  /** more members, e.g. `closest` for UNKNOWN_CMDLET, `validParameters` for UNKNOWN_PARAMETER */
  readonly [extension: string]: unknown;
}

/**
 * The problem for an error, or undefined for an error that is not ours (a bug: the caller logs it
 * and answers INTERNAL). Every ParleyError that carries an `httpStatus` (SettingsError,
 * DirectoryError, a capability's own error) keeps its code and status; AdminError (the cmdlet
 * parser's) is 400, except UNKNOWN_CMDLET: 404, as the cmdlet is part of the path.
 */
export function problemOf(error: unknown, extensions: Record<string, unknown> = {}): Problem | undefined {
  if (!(error instanceof ParleyError)) return undefined;
  let status: unknown = (error as { httpStatus?: unknown }).httpStatus;
  if (error instanceof AdminError) status = error.code === 'UNKNOWN_CMDLET' ? 404 : 400;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) return undefined;
  return makeProblem(status, error.code, error.message, extensions);
}

export function makeProblem(status: number, code: string, detail: string, extensions: Record<string, unknown> = {}): Problem {
  return { ...extensions, type: 'about:blank', title: http.STATUS_CODES[status] ?? 'Error', status, detail, code };
}

export const INTERNAL_PROBLEM: Problem = makeProblem(500, 'INTERNAL', 'internal error; see the server log');

/** The problem's body, parsed back (the remote CLI); undefined when it is not one. */
export function readProblem(value: unknown): Problem | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const p = value as Record<string, unknown>;
  if (typeof p.status !== 'number' || typeof p.detail !== 'string') return undefined;
  return {
    ...p,
    type: typeof p.type === 'string' ? p.type : 'about:blank',
    title: typeof p.title === 'string' ? p.title : (http.STATUS_CODES[p.status] ?? 'Error'),
    status: p.status,
    detail: p.detail,
    code: typeof p.code === 'string' ? p.code : 'UNKNOWN',
  };
}

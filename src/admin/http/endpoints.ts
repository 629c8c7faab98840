// Endpoints of the admin API: a method, a path under /admin with `:name` segments, and a handler
// that takes the decoded parameters and the JSON body and returns the JSON answer. The cmdlets
// are served this way (cmdlets.ts), and other capabilities add theirs (the offline spool…).

import type { Logger } from '../../observability/logger.ts';
import { AdminApiError } from './problem.ts';

export type AdminMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface AdminEndpointRequest {
  /** the `:name` segments of the path, percent-decoded */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** the parsed JSON body (POST, PUT, PATCH), undefined when there is none */
  readonly body: unknown;
  /** who calls, for the audit log (`admin-api`) */
  readonly actor: string;
  /** a child logger of this request */
  readonly logger: Logger;
}

export interface AdminEndpoint {
  readonly method: AdminMethod;
  /** under /admin, e.g. `/spool/:id`; a `:name` segment matches one non-empty segment */
  readonly path: string;
  /**
   * The JSON answer (200), or undefined (204 No Content). For a problem, throw: an AdminApiError,
   * or any ParleyError with an `httpStatus` (its `code` goes into the problem JSON); anything
   * else is answered 500 and logged.
   */
  handle(req: AdminEndpointRequest): unknown;
}

export const METHODS_WITH_BODY: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

interface Compiled {
  readonly endpoint: AdminEndpoint;
  readonly segments: readonly string[];
  /** literal segments count more: /spool/stats is chosen over /spool/:id */
  readonly literals: number;
}

export interface EndpointMatch {
  readonly endpoint: AdminEndpoint;
  readonly params: Record<string, string>;
}

/** The endpoints of one admin route, and the lookup of a request's method and path. */
export class EndpointTable {
  readonly #compiled: Compiled[] = [];

  add(endpoint: AdminEndpoint): void {
    if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(endpoint.method)) throw new Error(`admin endpoint ${endpoint.path}: method ${endpoint.method} is not supported`);
    const segments = splitPath(endpoint.path);
    if (!endpoint.path.startsWith('/') || segments.some((s) => s === '' || s === ':' || (s.startsWith(':') && !/^:[A-Za-z_][A-Za-z0-9_]*$/.test(s)))) {
      throw new Error(`admin endpoint path ${endpoint.path} is not like /spool/:id`);
    }
    const shape = segments.map((s) => (s.startsWith(':') ? ':' : s)).join('/');
    for (const other of this.#compiled) {
      if (other.endpoint.method === endpoint.method && other.segments.map((s) => (s.startsWith(':') ? ':' : s)).join('/') === shape) {
        throw new Error(`admin endpoint ${endpoint.method} ${endpoint.path} is registered twice (also ${other.endpoint.path})`);
      }
    }
    this.#compiled.push({ endpoint, segments, literals: segments.filter((s) => !s.startsWith(':')).length });
    this.#compiled.sort((a, b) => b.literals - a.literals);
  }

  /** The endpoint for the method and path (below /admin); NOT_FOUND or METHOD_NOT_ALLOWED otherwise. */
  find(method: string, path: string): EndpointMatch {
    const raw = splitPath(path);
    let segments: string[];
    try {
      segments = raw.map((s) => decodeURIComponent(s));
    } catch {
      throw new AdminApiError('BAD_PATH', `the path ${path} has a malformed percent-encoding`);
    }
    const allowed = new Set<string>();
    for (const c of this.#compiled) {
      const params = matchSegments(c.segments, segments);
      if (params === undefined) continue;
      if (c.endpoint.method === method) return { endpoint: c.endpoint, params };
      allowed.add(c.endpoint.method);
    }
    if (allowed.size > 0) {
      const allow = [...allowed].sort().join(', ');
      throw new AdminApiError('METHOD_NOT_ALLOWED', `${path === '' ? '/admin' : `/admin${path}`} accepts ${allow}, not ${method}`, { allow });
    }
    throw new AdminApiError('NOT_FOUND', `nothing is served at /admin${path}; GET /admin/cmdlets lists the cmdlets`);
  }
}

/** `/spool/12/` → ['spool', '12']; '' and '/' → []. */
function splitPath(path: string): string[] {
  const trimmed = path.replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed === '' ? [] : trimmed.split('/');
}

function matchSegments(pattern: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params = Object.create(null) as Record<string, string>;
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] ?? '';
    const s = segments[i] ?? '';
    if (p.startsWith(':')) {
      if (s === '') return undefined;
      params[p.slice(1)] = s;
    } else if (p !== s) return undefined;
  }
  return params;
}

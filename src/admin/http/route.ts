// The admin API on the HTTP port, under /admin/: JSON in, JSON out, problem JSON (RFC 9457) for
// every error, a bearer token on every request. See cmdlets.ts for the cmdlet endpoints and
// endpoints.ts for how other capabilities add theirs.

import type http from 'node:http';
import type { Logger } from '../../observability/logger.ts';
import type { HttpRoute } from '../../server/http.ts';
import type { Sql } from '../../storage/index.ts';
import { CMDLETS } from '../registry.ts';
import type { CmdletSpec } from '../types.ts';
import { isSecureOrLocal } from '../../auth/http-basic.ts';
import { createTokenCheck } from './auth.ts';
import { DEFAULT_MAX_BODY_BYTES, discardBody, readJsonBody } from './body.ts';
import { cmdletEndpoints } from './cmdlets.ts';
import type { AdminEndpoint } from './endpoints.ts';
import { EndpointTable, METHODS_WITH_BODY } from './endpoints.ts';
import type { Problem } from './problem.ts';
import { AdminApiError, INTERNAL_PROBLEM, problemOf } from './problem.ts';

export const ADMIN_PATH = '/admin';

export interface AdminRouteOptions {
  /** the storage the cmdlets act on, on either engine */
  sql: Sql;
  logger: Logger;
  /** the bearer token every request must carry (loadAdminToken in src/server/secrets.ts) */
  token: string;
  /** the domain of a user address written without one */
  domain: string;
  /** the Server header, e.g. Parley/0.1.0 */
  product: string;
  /** more endpoints under /admin (also later, with register) */
  endpoints?: readonly AdminEndpoint[];
  /** called after every cmdlet that changed something (Set-, New-, Remove-, Grant-, Enable-, Disable-) */
  onSettingsChanged?: () => void;
  /** the audit log's "who" for changes made through the API (default `admin-api`) */
  actor?: string;
  /** default 64 KiB */
  maxBodyBytes?: number;
  /** accept the token over plain HTTP from other hosts than loopback (default false: TLS or a local proxy) */
  allowPlainHttp?: boolean;
  /** default the cmdlets of `parley admin` */
  cmdlets?: readonly CmdletSpec[];
  now?: () => number;
}

export interface AdminRoute extends HttpRoute {
  /** adds an endpoint under /admin; throws when the method and path are taken */
  register(endpoint: AdminEndpoint): void;
}

export function createAdminRoute(opts: AdminRouteOptions): AdminRoute {
  const checkToken = createTokenCheck(opts.token);
  const actor = opts.actor ?? 'admin-api';
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const table = new EndpointTable();
  const onChanged = (cmdlet: string) => {
    try {
      opts.onSettingsChanged?.();
    } catch (err) {
      opts.logger.error({ err, cmdlet }, 'a listener of settings changes failed after %s', cmdlet);
    }
  };
  for (const e of cmdletEndpoints({ sql: opts.sql, domain: opts.domain, cmdlets: opts.cmdlets ?? CMDLETS, now: opts.now ?? Date.now, onChanged })) table.add(e);
  for (const e of opts.endpoints ?? []) table.add(e);
  let requests = 0;

  return {
    register: (endpoint) => table.add(endpoint),
    handle(req, res, url) {
      if (url.pathname !== ADMIN_PATH && !url.pathname.startsWith(`${ADMIN_PATH}/`)) return false;
      const logger = opts.logger.child({ adminRequest: ++requests });
      serve(req, res, url, logger).catch((err: unknown) => {
        if (req.destroyed && (err as NodeJS.ErrnoException).code !== undefined) {
          logger.info({ err }, 'admin API client went away before the request was read');
          return;
        }
        logger.error({ err }, 'admin API request failed');
        if (!res.headersSent) answer(req, res, INTERNAL_PROBLEM.status, INTERNAL_PROBLEM, {}, 'application/problem+json');
        else res.destroy();
      });
      return true;
    },
  };

  async function serve(req: http.IncomingMessage, res: http.ServerResponse, url: URL, logger: Logger): Promise<void> {
    const method = req.method ?? 'GET';
    try {
      if (opts.allowPlainHttp !== true && !isSecureOrLocal(req)) {
        throw new AdminApiError('INSECURE_TRANSPORT', 'the admin token must not travel in clear: use HTTPS (plain HTTP is accepted on loopback only)');
      }
      checkToken(req.headers.authorization);
      const { endpoint, params } = table.find(method, url.pathname.slice(ADMIN_PATH.length));
      const body = METHODS_WITH_BODY.has(method) ? await readJsonBody(req, maxBodyBytes) : undefined;
      const result: unknown = await endpoint.handle({ params, query: url.searchParams, body, actor, logger });
      if (result === undefined) answer(req, res, 204, undefined);
      else answer(req, res, 200, result);
    } catch (error) {
      const problem = problemOf(error, extensionsOf(error));
      if (problem === undefined) throw error;
      logger.info({ method, path: url.pathname, status: problem.status, code: problem.code }, 'admin API %s %s: %s', method, url.pathname, problem.detail);
      answer(req, res, problem.status, problem, error instanceof AdminApiError ? error.headers : {}, 'application/problem+json');
    }
  }

  /**
   * Answers. A body not read to its end (a refusal before reading it, a body too large) is read
   * and dropped up to a limit, and the connection closed after the answer.
   */
  function answer(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown | Problem, extra: Readonly<Record<string, string>> = {}, type = 'application/json'): void {
    const headers: Record<string, string | number> = { server: opts.product, 'cache-control': 'no-store', ...extra };
    if (!req.readableEnded) {
      const bodyExpected = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
      if (!req.complete && bodyExpected) headers.connection = 'close';
      discardBody(req);
    }
    if (body === undefined) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const text = `${JSON.stringify(body) ?? 'null'}\n`;
    res.writeHead(status, { ...headers, 'content-type': `${type}; charset=utf-8`, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}

function extensionsOf(error: unknown): Record<string, unknown> {
  const extensions = (error as { extensions?: unknown } | null)?.extensions;
  return extensions !== null && typeof extensions === 'object' && !Array.isArray(extensions) ? (extensions as Record<string, unknown>) : {};
}

// GET /metrics on the HTTP port: the Prometheus text (src/observability/metrics.ts). Open to the
// host itself (loopback, the usual place of a scraper or its agent); from anywhere else only with
// the admin token (`Authorization: Bearer <token>`, DATA-DIR/secrets/admin.token), checked as the
// admin API checks it, and never over plain HTTP from another host, where the token would travel
// in clear. A trusted reverse proxy (auth.trustedProxies) on loopback does not open the door: the
// client it names in X-Forwarded-For is the one that counts.

import type http from 'node:http';
import { AdminApiError, createTokenCheck, problemOf } from '../admin/index.ts';
import { httpSource, isLoopbackAddress, isSecureOrLocal, plainAddress } from '../auth/index.ts';
import type { Logger } from '../observability/logger.ts';
import { METRICS_CONTENT_TYPE } from '../observability/metrics.ts';
import type { HttpRoute } from './http.ts';

export const METRICS_PATH = '/metrics';

export interface MetricsRouteOptions {
  /** the Prometheus text, made per scrape */
  render(): Promise<string>;
  /** the admin token (loadAdminToken) */
  token: string;
  /** auth.trustedProxies: peers whose X-Forwarded-For names the client */
  trustedProxies: readonly string[];
  product: string;
  logger: Logger;
}

/** The part of a request the access rule reads (a unit test builds one without a socket). */
export type MetricsRequest = Pick<http.IncomingMessage, 'headers' | 'socket'>;

/** Throws the admin API's error (401 UNAUTHORIZED, 403 INSECURE_TRANSPORT) when the request may not read the metrics. */
export function createMetricsAccess(token: string, trustedProxies: readonly string[]): (req: MetricsRequest) => void {
  const checkToken = createTokenCheck(token, '/metrics from another host than this one');
  const trusted = new Set(trustedProxies.map(plainAddress));
  return (req) => {
    const client = httpSource(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], trusted);
    if (isLoopbackAddress(client)) return;
    if (!isSecureOrLocal(req as http.IncomingMessage)) {
      throw new AdminApiError('INSECURE_TRANSPORT', 'the admin token must not travel in clear: read /metrics over HTTPS (a TLS proxy) or from this host');
    }
    checkToken(req.headers.authorization);
  };
}

export function createMetricsRoute(opts: MetricsRouteOptions): HttpRoute {
  const access = createMetricsAccess(opts.token, opts.trustedProxies);
  return {
    handle(req, res, url) {
      if (url.pathname !== METRICS_PATH) return false;
      req.resume();
      const base = { server: opts.product, 'cache-control': 'no-store' };
      try {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new AdminApiError('METHOD_NOT_ALLOWED', '/metrics is read with GET', { allow: 'GET, HEAD' });
        access(req);
      } catch (error) {
        const problem = problemOf(error);
        if (problem === undefined || !(error instanceof AdminApiError)) throw error;
        opts.logger.info({ path: METRICS_PATH, status: problem.status, code: problem.code, peer: req.socket.remoteAddress }, '/metrics refused: %s', problem.detail);
        res.writeHead(problem.status, { ...base, ...error.headers, 'content-type': 'application/problem+json; charset=utf-8' });
        res.end(`${JSON.stringify(problem)}\n`);
        return true;
      }
      opts.render().then(
        (text) => {
          res.writeHead(200, { ...base, 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => {
          opts.logger.error({ err }, 'collecting the metrics failed');
          if (!res.headersSent) {
            res.writeHead(500, { ...base, 'content-type': 'application/problem+json; charset=utf-8' });
            res.end(`${JSON.stringify({ type: 'about:blank', title: 'Internal Server Error', status: 500, detail: 'collecting the metrics failed; see the server log', code: 'INTERNAL' })}\n`);
          } else res.destroy();
        },
      );
      return true;
    },
  };
}

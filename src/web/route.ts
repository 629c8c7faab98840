// The web client on the HTTP port: `/` is the page (never cached: it names the current files),
// `/assets/<name>-<hash>.<ext>` the script, stylesheet and icon (cached for a year: a new build has
// new names). Every answer carries a strict Content-Security-Policy: the page runs only its own
// script, loads only its own style, and talks only to its own origin (HTTP and the SIP WebSocket).

import type http from 'node:http';
import { answerProblem, HttpProblem } from '../http-json.ts';
import type { Logger } from '../observability/logger.ts';
import type { HttpRoute } from '../server/http.ts';
import type { WebAsset, WebBundle } from './build.ts';

export const ASSETS_PATH = '/assets/';

export interface WebRouteOptions {
  /** the bundle, built on the first call (lazyWebBundle) */
  bundle: () => Promise<WebBundle>;
  logger: Logger;
  /** the Server header */
  product: string;
  /**
   * host[:port]s of this server the page may open its SIP WebSocket to: the one the browser named
   * when it is one of the server's own names, and publicUrl's, which the session's webSocketUrl
   * names (OwnNames). 'self' alone would do for the page's own host with a browser with CSP
   * Level 3, which also matches ws: and wss: of the page's own host.
   */
  ownAuthorities?: (req: http.IncomingMessage) => string[];
}

/** CSP (W3C Content Security Policy Level 3) for the page and its files. */
export function contentSecurityPolicy(wsAuthorities: readonly string[] = []): string {
  const connect = ["'self'", ...new Set(wsAuthorities.flatMap((a) => [`ws://${a}`, `wss://${a}`]))];
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${connect.join(' ')}`,
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function createWebRoute(opts: WebRouteOptions): HttpRoute {
  return {
    handle(req, res, url) {
      const isIndex = url.pathname === '/' || url.pathname === '/index.html';
      if (!isIndex && !url.pathname.startsWith(ASSETS_PATH)) return false;
      const csp = contentSecurityPolicy(opts.ownAuthorities?.(req));
      const base = securityHeaders(csp, opts.product);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendProblem(res, 405, 'METHOD_NOT_ALLOWED', `${url.pathname} answers GET and HEAD only`, { ...base, allow: 'GET, HEAD' });
        return true;
      }
      opts.bundle().then(
        (bundle) => {
          if (isIndex) {
            send(req, res, bundle.index, { ...base, 'cache-control': 'no-cache' });
            return;
          }
          const asset = bundle.assets.get(url.pathname.slice(ASSETS_PATH.length));
          if (asset === undefined) {
            sendProblem(res, 404, 'NOT_FOUND', `no file ${url.pathname} in the web client (an older page? reload it)`, base);
            return;
          }
          send(req, res, asset, { ...base, 'cache-control': 'public, max-age=31536000, immutable' });
        },
        (error: unknown) => {
          opts.logger.error({ err: error }, 'the web client could not be built');
          sendProblem(res, 500, 'WEB_BUILD_FAILED', `the web client could not be built: ${describeBuildError(error)}; see the server log`, base);
        },
      );
      return true;
    },
  };
}

function securityHeaders(csp: string, product: string): Record<string, string> {
  return {
    server: product,
    'content-security-policy': csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'x-frame-options': 'DENY',
  };
}

/** The file, gzipped when the client accepts it (RFC 9110 §12.5.3), 304 when its ETag matches. */
function send(req: http.IncomingMessage, res: http.ServerResponse, asset: WebAsset, headers: Record<string, string>): void {
  const common = { ...headers, etag: asset.etag, vary: 'Accept-Encoding' };
  if (etagMatches(req.headers['if-none-match'], asset.etag)) {
    res.writeHead(304, common);
    res.end();
    return;
  }
  const gzip = acceptsGzip(req.headers['accept-encoding']);
  const body = gzip ? asset.gzip : asset.body;
  res.writeHead(200, { ...common, 'content-type': asset.contentType, 'content-length': String(body.length), ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** gzip unless the client gave it q=0 (or named only other codings). */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  let star: number | undefined;
  for (const part of header.split(',')) {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    if (coding.trim() === 'gzip' || coding.trim() === 'x-gzip') return weight > 0;
    if (coding.trim() === '*') star = weight;
  }
  return star !== undefined && star > 0;
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag || tag.trim() === '*');
}

/** The problem JSON every user-facing route answers (src/http-json.ts), with the page's security headers. */
function sendProblem(res: http.ServerResponse, status: number, code: string, detail: string, headers: Record<string, string>): void {
  const { server, ...security } = headers;
  answerProblem(res, server ?? '', new HttpProblem(status, code, detail), security);
}

/** esbuild's first error with its place (a BuildFailure has `errors`), else the message's first line. */
export function describeBuildError(error: unknown): string {
  const first = (error as { errors?: Array<{ text?: string; location?: { file?: string; line?: number } | null }> }).errors?.[0];
  if (first?.text !== undefined) return first.location?.file ? `${first.location.file}:${first.location.line ?? 0}: ${first.text}` : first.text;
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}

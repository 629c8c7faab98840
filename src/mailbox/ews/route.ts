// EWS on the HTTP port: POST /EWS/Exchange.asmx, SOAP 1.1, HTTP Basic with the user's Parley
// password. The body is read through the XML reader as it arrives, so the size, depth and element
// limits apply before the request is held whole.
import type http from 'node:http';
import type { BasicSignIn } from '../../auth/http-basic.ts';
import { answerSignInRefusal, basicChallenge as challenge, isSecureOrLocal } from '../../auth/http-basic.ts';
import { send } from '../http-auth.ts';
import type { Logger } from '../../observability/logger.ts';
import type { HttpRoute } from '../../server/http.ts';
import type { Sql } from '../../storage/index.ts';
import { DEFAULT_XML_LIMITS, XmlError, XmlReader } from '../../xml/index.ts';
import type { XmlLimits } from '../../xml/index.ts';
import { lastChange } from '../changes.ts';
import { MailboxQuota } from '../quota.ts';
import { routeFor } from '../smtp/outbound.ts';
import type { SmtpRoutes } from '../smtp/outbound.ts';
import type { ServerAuthority } from '../autodiscover.ts';
import { EWS_OPERATIONS, answerEws, faultForUnreadable } from './service.ts';
import { servicesWsdl } from './wsdl.ts';

export const EWS_PATH = '/ews/exchange.asmx';
/** Exchange serves its service description here too (clients such as DavMail accept either URL) */
const WSDL_PATH = '/ews/services.wsdl';

export interface EwsRouteOptions {
  sql: Sql;
  logger: Logger;
  /** whether a local user exists (the recipients of mail sent, the target of impersonation) */
  userExists: (address: string) => Promise<boolean>;
  /** the organisation's domain: `alice` logs in as alice@domain */
  domain: string;
  /** the Server header, e.g. Parley/0.1.0 */
  product: string;
  /** the host the WSDL's service address names (never the Host header as sent); default 127.0.0.1 and the local port */
  names?: ServerAuthority;
  limits?: XmlLimits;
  /** accept Basic credentials over plain HTTP from other hosts than loopback (default false: TLS or a local proxy) */
  allowPlainHttp?: boolean;
  /** SMTP routes for mail sent to other organisations; a domain with none goes to its MX hosts, or is refused when `mx` is false */
  smtpRoutes?: SmtpRoutes;
  /** the mailbox quotas (config mailboxQuota); default: DEFAULT_MAILBOX_QUOTA */
  quota?: MailboxQuota;
  now?: () => number;
  /** the server's HTTP sign-in (lockouts, fair hashing queue) */
  signIn: BasicSignIn;
  /** after a request changed items of a mailbox (created, updated, read, moved, deleted): the mailbox's address; must not throw */
  onMailboxChanged?: (address: string) => void;
  /** counts each answered request for /metrics: a supported operation's name or `unsupported`, and whether it was a fault; must not throw */
  onRequest?: (operation: string, fault: boolean) => void;
}

const SUPPORTED: ReadonlySet<string> = new Set(EWS_OPERATIONS.map((o) => o.name));

/** The HttpRoute (src/server/http.ts) that serves EWS. */
export function createEwsRoute(opts: EwsRouteOptions): HttpRoute {
  const routes = opts.smtpRoutes ?? {};
  const canSendOutside = (address: string) => routeFor(routes, address.slice(address.lastIndexOf('@') + 1)) !== undefined;
  const service = { sql: opts.sql, domain: opts.domain, userExists: opts.userExists, canSendOutside, now: opts.now ?? Date.now, quota: opts.quota ?? new MailboxQuota() };
  const limits = opts.limits ?? DEFAULT_XML_LIMITS;
  const signIn = opts.signIn;
  return {
    handle(req, res, url) {
      // IIS, and so Exchange, matches paths case-insensitively; clients write /EWS/Exchange.asmx or /ews/exchange.asmx
      const path = url.pathname.toLowerCase();
      if (path !== EWS_PATH && path !== WSDL_PATH) return false;
      const probe = req.method === 'GET' || req.method === 'HEAD';
      if (!probe && (req.method !== 'POST' || path === WSDL_PATH)) {
        const allow = path === WSDL_PATH ? 'GET, HEAD' : 'GET, HEAD, POST';
        send(res, opts.product, 405, 'text/plain; charset=utf-8', `${url.pathname} accepts ${allow}\n`, { allow });
        req.resume();
        return true;
      }
      (probe ? describe(req, res) : serve(req, res)).catch((err: unknown) => {
        if (req.destroyed && !res.headersSent && (err as NodeJS.ErrnoException).code !== undefined) {
          opts.logger.info({ err }, 'EWS client went away before the request was read');
          return;
        }
        opts.logger.error({ err }, 'EWS request failed');
        if (!res.headersSent) send(res, opts.product, 500, 'text/xml; charset=utf-8', faultForUnreadable('ErrorInternalServerError', 'internal error; see the server log'));
        else res.destroy();
      });
      return true;
    },
  };

  /** The signed-in user's address, or undefined after answering 403, 401 (with the Basic challenge), 429 or 503. */
  async function signedIn(req: http.IncomingMessage, res: http.ServerResponse): Promise<string | undefined> {
    if (!opts.allowPlainHttp && !isSecureOrLocal(req)) {
      req.resume();
      send(res, opts.product, 403, 'text/plain; charset=utf-8', 'EWS sends passwords: use HTTPS (plain HTTP is accepted on loopback only)\n');
      return undefined;
    }
    const outcome = await signIn.authenticate(req);
    if (outcome.ok) return outcome.address;
    req.resume();
    if (outcome.status !== 401) answerSignInRefusal(res, opts.product, outcome);
    else send(res, opts.product, 401, 'text/plain; charset=utf-8', 'EWS needs HTTP Basic authentication with your Parley address and password\n', challenge(opts.domain));
    return undefined;
  }

  /**
   * GET or HEAD of the EWS URL (with or without ?wsdl) or of Services.wsdl: the probe clients such
   * as Evolution and DavMail send before they POST. Exchange answers it as it answers a POST
   * without credentials (401 and the challenge), and with them 200 and its Services.wsdl.
   */
  async function describe(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const address = await signedIn(req, res);
    if (address === undefined) return;
    req.resume();
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true;
    const base = opts.names?.baseFor({ host: req.headers.host, localAddress: req.socket.localAddress, secure }).base ?? `${secure ? 'https' : 'http'}://127.0.0.1:${req.socket.localPort ?? 80}`;
    const body = servicesWsdl([...SUPPORTED], `${base}/EWS/Exchange.asmx`);
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(body), server: opts.product });
      res.end();
      return;
    }
    send(res, opts.product, 200, 'text/xml; charset=utf-8', body);
  }

  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const address = await signedIn(req, res);
    if (address === undefined) return;
    const type = req.headers['content-type'] ?? 'text/xml';
    if (!/^(text\/xml|application\/soap\+xml|application\/xml)\b/i.test(type)) {
      req.resume();
      send(res, opts.product, 415, 'text/plain; charset=utf-8', 'EWS requests are SOAP 1.1: Content-Type text/xml\n');
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limits.maxBytes) return tooLarge(req, res, address);

    const reader = new XmlReader(limits);
    try {
      for await (const chunk of req) reader.write(chunk as Buffer);
      const root = reader.end();
      const before = await lastChange(opts.sql);
      const answer = await answerEws(service, address, root);
      opts.logger.info({ user: address, mailbox: answer.mailbox, operation: answer.operation, status: answer.status, fault: answer.fault }, 'EWS %s for %s', answer.operation ?? '?', address);
      send(res, opts.product, answer.status, 'text/xml; charset=utf-8', answer.xml);
      // the element name is the client's: only the operations served become labels
      opts.onRequest?.(answer.operation !== undefined && SUPPORTED.has(answer.operation) ? answer.operation : 'unsupported', answer.fault !== undefined);
      if (answer.mailbox !== undefined && opts.onMailboxChanged !== undefined && (await lastChange(opts.sql)) !== before) opts.onMailboxChanged(answer.mailbox);
    } catch (error) {
      if (!(error instanceof XmlError)) throw error;
      if (error.code === 'XML_TOO_LARGE') return tooLarge(req, res, address);
      opts.logger.warn({ user: address, code: error.code }, 'EWS request from %s refused: %s', address, error.message);
      req.resume();
      send(res, opts.product, 500, 'text/xml; charset=utf-8', faultForUnreadable('ErrorSchemaValidation', `the request is not acceptable XML (${error.code}): ${error.message}`));
    }
  }

  function tooLarge(req: http.IncomingMessage, res: http.ServerResponse, address: string): void {
    opts.logger.warn({ user: address }, 'EWS request from %s exceeds %d bytes', address, limits.maxBytes);
    // answer first, then drop the connection: the rest of the body is never read
    res.once('finish', () => req.destroy());
    send(res, opts.product, 413, 'text/xml; charset=utf-8', faultForUnreadable('ErrorInvalidRequest', `the request exceeds the limit of ${limits.maxBytes} bytes`), { connection: 'close' });
  }
}

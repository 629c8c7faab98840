// Autodiscover, POX flavour (and the SOAP flavour's route, see autodiscover-soap.ts) (MS-OXDSCLI; "Autodiscover for Exchange"): POST
// /autodiscover/autodiscover.xml with an Outlook request naming an EMailAddress; the answer gives
// the EWS URL (Protocol Type EXCH and EXPR, element EwsUrl). Authenticated like EWS, and a user
// learns only about their own address (anything else is error 500 "address cannot be found").
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Logger } from '../observability/logger.ts';
import type { HttpRoute } from '../server/http.ts';
import { XmlError, XmlReader, childElement, childText, escapeXmlText } from '../xml/index.ts';
import { answerGetUserSettings } from './autodiscover-soap.ts';
import type { BasicSignIn } from '../auth/http-basic.ts';
import { answerSignInRefusal, basicChallenge as challenge, isSecureOrLocal } from '../auth/http-basic.ts';
import { send } from './http-auth.ts';

const REQUEST_NS = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006';
const RESPONSE_NS = 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006';
const OUTLOOK_NS = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';
const POX_PATH = '/autodiscover/autodiscover.xml';
const SOAP_PATH = '/autodiscover/autodiscover.svc';
const LIMITS = { maxBytes: 16 * 1024, maxDepth: 8, maxElements: 32 };

/**
 * Which host a URL given to a client may name (the server implements it: src/server/own-names.ts).
 * Never the request's Host as sent: `Host: evil.example` would send the client's password there.
 */
export interface ServerAuthority {
  /**
   * The base URL (`scheme://host[:port]`) for a client that asked with this Host header on a
   * connection to `localAddress`: the header's host when it names this server, else the server's
   * own (its publicUrl, or the connection's local address); `foreign` is the refused header
   */
  baseFor(place: { host?: string | undefined; localAddress?: string | undefined; secure?: boolean }): { base: string; foreign: string | null };
}

export interface AutodiscoverRouteOptions {
  logger: Logger;
  /** the directory's display name of a user, if it has one */
  displayName: (address: string) => Promise<string | null>;
  domain: string;
  product: string;
  /** the host the announced EWS URL names */
  names: ServerAuthority;
  /** the EWS URL to announce; default: the base URL `names` gives, /EWS/Exchange.asmx */
  ewsUrl?: string;
  /** accept Basic credentials over plain HTTP from other hosts than loopback (default false) */
  allowPlainHttp?: boolean;
  /** the server's HTTP sign-in (lockouts, fair hashing queue) */
  signIn: BasicSignIn;
}

export function createAutodiscoverRoute(opts: AutodiscoverRouteOptions): HttpRoute {
  const signIn = opts.signIn;
  return {
    handle(req, res, url) {
      const path = url.pathname.toLowerCase();
      if (path !== POX_PATH && path !== SOAP_PATH) return false;
      if (req.method !== 'POST') {
        req.resume();
        send(res, opts.product, 405, 'text/plain; charset=utf-8', 'autodiscover accepts POST only\n', { allow: 'POST' });
        return true;
      }
      if (!opts.allowPlainHttp && !isSecureOrLocal(req)) {
        req.resume();
        send(res, opts.product, 403, 'text/plain; charset=utf-8', 'autodiscover sends passwords: use HTTPS (plain HTTP is accepted on loopback only)\n');
        return true;
      }
      (path === SOAP_PATH ? serveSoap(req, res) : serve(req, res)).catch((err: unknown) => {
        opts.logger.error({ err }, 'autodiscover request failed');
        if (!res.headersSent) send(res, opts.product, 500, 'text/xml; charset=utf-8', errorXml(500, 'internal error; see the server log'));
        else res.destroy();
      });
      return true;
    },
  };

  /** The user's address, or undefined after answering 401 (or 429/503 for a refused sign-in). */
  async function signedIn(req: http.IncomingMessage, res: http.ServerResponse): Promise<string | undefined> {
    const outcome = await signIn.authenticate(req);
    if (outcome.ok) return outcome.address;
    req.resume();
    if (outcome.status !== 401) answerSignInRefusal(res, opts.product, outcome);
    else send(res, opts.product, 401, 'text/plain; charset=utf-8', 'autodiscover needs HTTP Basic authentication\n', challenge(opts.domain));
    return undefined;
  }

  /** The server's base URL as this request may be told it; a foreign Host is logged, not echoed. */
  function baseFor(req: http.IncomingMessage, user: string): string {
    const secure = (req.socket as { encrypted?: boolean }).encrypted === true;
    const { base, foreign } = opts.names.baseFor({ host: req.headers.host, localAddress: req.socket.localAddress, secure });
    if (foreign !== null) opts.logger.warn({ user, host: foreign, answered: base }, 'autodiscover: Host %s is not a name of this server; answering with %s', foreign, base);
    return base;
  }

  /** The EWS URL to announce: configured, or under the allowed base URL. */
  function ewsUrlFor(base: string): string {
    return opts.ewsUrl ?? `${base}/EWS/Exchange.asmx`;
  }

  async function serveSoap(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const user = await signedIn(req, res);
    if (user === undefined) return;
    let answer: string | undefined;
    try {
      const reader = new XmlReader({ ...LIMITS, maxElements: 256 });
      for await (const chunk of req) reader.write(chunk as Buffer);
      const request = reader.end();
      answer = answerGetUserSettings(request, { user, displayName: (await opts.displayName(user)) ?? user, ewsUrl: ewsUrlFor(baseFor(req, user)) });
    } catch (error) {
      if (!(error instanceof XmlError)) throw error;
      req.destroy();
      return void send(res, opts.product, error.code === 'XML_TOO_LARGE' ? 413 : 400, 'text/plain; charset=utf-8', `not an acceptable request: ${error.message}\n`, { connection: 'close' });
    }
    if (answer === undefined) return void send(res, opts.product, 400, 'text/plain; charset=utf-8', 'Parley answers GetUserSettings requests only\n');
    send(res, opts.product, 200, 'text/xml; charset=utf-8', answer);
  }

  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const user = await signedIn(req, res);
    if (user === undefined) return;
    let asked: string | undefined;
    try {
      const reader = new XmlReader(LIMITS);
      for await (const chunk of req) reader.write(chunk as Buffer);
      const root = reader.end();
      const request = root.ns === REQUEST_NS && root.name === 'Autodiscover' ? childElement(root, REQUEST_NS, 'Request') : undefined;
      asked = request && childText(request, REQUEST_NS, 'EMailAddress')?.trim().toLowerCase();
      const schema = request && childText(request, REQUEST_NS, 'AcceptableResponseSchema')?.trim();
      if (asked === undefined) return void send(res, opts.product, 200, 'text/xml; charset=utf-8', errorXml(600, 'Invalid Request'));
      if (schema !== undefined && schema !== OUTLOOK_NS) return void send(res, opts.product, 200, 'text/xml; charset=utf-8', errorXml(601, 'The requested schema version is not supported'));
    } catch (error) {
      if (!(error instanceof XmlError)) throw error;
      req.destroy();
      return void send(res, opts.product, error.code === 'XML_TOO_LARGE' ? 413 : 400, 'text/xml; charset=utf-8', errorXml(600, `Invalid Request (${error.code})`), { connection: 'close' });
    }
    if (asked.replace(/^(smtp|sip):/, '') !== user) {
      opts.logger.info({ user, asked }, 'autodiscover: %s asked about %s', user, asked);
      return void send(res, opts.product, 200, 'text/xml; charset=utf-8', errorXml(500, 'The e-mail address cannot be found.'));
    }
    const displayName = (await opts.displayName(user)) ?? user;
    const base = baseFor(req, user);
    const host = new URL(base).host;
    const ewsUrl = ewsUrlFor(base);
    const protocol = (type: string) => `<Protocol><Type>${type}</Type><Server>${escapeXmlText(host)}</Server><ASUrl>${escapeXmlText(ewsUrl)}</ASUrl><EwsUrl>${escapeXmlText(ewsUrl)}</EwsUrl><EmwsUrl>${escapeXmlText(ewsUrl)}</EmwsUrl></Protocol>`;
    send(
      res,
      opts.product,
      200,
      'text/xml; charset=utf-8',
      `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="${RESPONSE_NS}"><Response xmlns="${OUTLOOK_NS}">` +
        `<User><DisplayName>${escapeXmlText(displayName)}</DisplayName><AutoDiscoverSMTPAddress>${escapeXmlText(user)}</AutoDiscoverSMTPAddress></User>` +
        `<Account><AccountType>email</AccountType><Action>settings</Action>${protocol('EXCH')}${protocol('EXPR')}</Account></Response></Autodiscover>`,
    );
  }
}

/** The POX error answer (HTTP 200, as Exchange sends it): 500 unknown address, 600 invalid request, 601 schema not supported. */
function errorXml(code: number, message: string): string {
  const time = new Date().toISOString().slice(11, 23);
  return `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="${RESPONSE_NS}"><Response><Error Time="${time}" Id="${randomUUID()}"><ErrorCode>${code}</ErrorCode><Message>${escapeXmlText(message)}</Message><DebugData/></Error></Response></Autodiscover>`;
}

// A stand-in for Microsoft Graph and the Microsoft identity platform's token endpoint, over HTTPS
// with a test CA: no live tenant can be reached from the tests, so this serves the requests Parley
// makes exactly as Microsoft's documentation specifies them, and REJECTS anything that deviates
// (a path, a parameter, a body field, a missing or invalid bearer token) with Graph's documented
// error shape. Every request is recorded: tests assert on what Parley sent, and that nothing was
// rejected. It follows the published contract, not a live service; the pages it follows:
//   https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
//   https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials
//   https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc (OpenID configuration document)
//   https://learn.microsoft.com/en-us/graph/api/mailfolder-get
//   https://learn.microsoft.com/en-us/graph/api/resources/mailfolder (well-known folder names)
//   https://learn.microsoft.com/en-us/graph/api/mailfolder-post-messages
//   https://learn.microsoft.com/en-us/graph/api/mailfolder-list-messages
//   https://learn.microsoft.com/en-us/graph/api/message-permanentdelete
//   https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties
//   https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-get
//   https://learn.microsoft.com/en-us/graph/query-parameters ($filter, $select, $top, $count)
//   https://learn.microsoft.com/en-us/graph/errors
//   https://learn.microsoft.com/en-us/graph/throttling
//   https://learn.microsoft.com/en-us/graph/auth-limit-mailbox-access (application access policies)
import { execFileSync } from 'node:child_process';
import { X509Certificate, constants, createHash, randomBytes, randomUUID, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface StandInApp {
  clientId: string;
  /** the client secret registered for the app */
  secret?: string;
  /** a certificate (PEM) registered for the app: the client assertion must be signed by its key */
  certificate?: string;
}

export interface RecordedRequest {
  method: string;
  /** the path without the query, decoded per segment */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  /** the parsed JSON (Graph) or form (token endpoint) body, if any */
  body: unknown;
  status: number;
  /** why the stand-in rejected it as deviating from the documented contract (400 with Graph's error shape), if it did */
  rejected?: string;
}

/** A message as the stand-in's store holds it. */
export interface StoredMessage {
  id: string;
  mailbox: string;
  folder: string;
  json: Record<string, unknown>;
  extended: Map<string, string>;
  isRead: boolean;
  isDraft: boolean;
}

/** A fault the next matching requests get instead of their answer. */
export interface Fault {
  /** which requests: a create (POST …/messages), a list (GET …/messages), or any Graph request */
  match: 'create' | 'list' | 'any';
  /** how many requests it takes (default 1) */
  times?: number;
  /** the HTTP status and Graph error code (e.g. 503 ServiceUnavailable, 429 TooManyRequests) */
  status?: number;
  code?: string;
  retryAfter?: string;
  /** create the message, then lose the answer: drop the connection, or hold it unanswered until the client times out */
  loseAnswer?: 'drop' | 'hold';
}

export interface GraphStandIn {
  /** the graphUrl to configure: https://127.0.0.1:PORT/v1.0 */
  graphUrl: string;
  /** the authorityHost to configure: https://127.0.0.1:PORT */
  authorityHost: string;
  tenantId: string;
  /** the test CA's certificate (PEM file): give it to NODE_EXTRA_CA_CERTS or tls.setDefaultCACertificates */
  caFile: string;
  caPem: string;
  requests: RecordedRequest[];
  /** requests rejected for deviating from the documented contract */
  rejected(): RecordedRequest[];
  messages(mailbox: string, folder?: string): StoredMessage[];
  /** mailboxes that exist (anything else is 404 ErrorInvalidUser) */
  addMailbox(address: string): void;
  /** the application access policy: the app may not open this mailbox (403 ErrorAccessDenied) */
  deny(address: string, denied?: boolean): void;
  fault(f: Fault): void;
  /** every token issued so far is expired (Graph answers 401 InvalidAuthenticationToken) */
  expireTokens(): void;
  /** tokens issued by the token endpoint */
  tokensIssued(): number;
  close(): Promise<void>;
}

const WELL_KNOWN = new Set(['archive', 'clutter', 'conflicts', 'conversationhistory', 'deleteditems', 'drafts', 'inbox', 'junkemail', 'localfailures', 'msgfolderroot', 'outbox', 'recoverableitemsdeletions', 'scheduled', 'searchfolders', 'sentitems', 'serverfailures', 'syncissues']);
/** the message properties Parley may write (writable properties of the message resource) */
const WRITABLE = new Set(['subject', 'body', 'from', 'toRecipients', 'ccRecipients', 'bccRecipients', 'replyTo', 'isRead', 'internetMessageId', 'importance', 'categories', 'singleValueExtendedProperties']);
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** what msal-node adds to a client credentials request besides the documented parameters (telemetry, client info) */
const MSAL_EXTRAS = /^(x-client-|x-ms-|x-app-|client_info$|client-request-id$|claims$)/;
const MSGFLAG_UNSENT = 0x8;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A test CA and a server certificate for 127.0.0.1 and localhost from it, in `dir`. */
function makeTls(dir: string): { ca: string; cert: string; key: string } {
  const ca = path.join(dir, 'ca.pem');
  const caKey = path.join(dir, 'ca.key');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=Parley Graph stand-in test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', caKey, '-out', ca]);
  const cert = path.join(dir, 'leaf.pem');
  const key = path.join(dir, 'leaf.key');
  const csr = path.join(dir, 'leaf.csr');
  const ext = path.join(dir, 'leaf.ext');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-keyout', key, '-out', csr]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-set_serial', '7', '-days', '2', '-extfile', ext, '-out', cert]);
  return { ca, cert, key };
}

/** An RSA key and self-signed certificate for an app registration's certificate credential (PS256 needs RSA). */
export function makeAppCertificate(dir: string): { certificate: string; privateKey: string; certificateFile: string; privateKeyFile: string } {
  const certificateFile = path.join(dir, `app-${randomBytes(4).toString('hex')}.pem`);
  const privateKeyFile = certificateFile.replace(/\.pem$/, '.key');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Parley Graph app', '-keyout', privateKeyFile, '-out', certificateFile]);
  return { certificate: readFileSync(certificateFile, 'utf8'), privateKey: readFileSync(privateKeyFile, 'utf8'), certificateFile, privateKeyFile };
}

const b64url = (b: Buffer) => b.toString('base64url');

export async function startGraphStandIn(opts: { app: StandInApp; tenantId?: string; mailboxes?: string[] }): Promise<GraphStandIn> {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-graph-standin-'));
  const tls = makeTls(dir);
  const tenantId = opts.tenantId ?? randomUUID();
  const requests: RecordedRequest[] = [];
  const mailboxes = new Set((opts.mailboxes ?? []).map((m) => m.toLowerCase()));
  const denied = new Set<string>();
  const store: StoredMessage[] = [];
  const faults: Fault[] = [];
  const tokens = new Map<string, { expired: boolean }>();
  let origin = '';

  const server = https.createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });

  function handle(req: IncomingMessage, res: ServerResponse, text: string): void {
    const url = new URL(req.url ?? '/', origin);
    const segments = url.pathname.split('/').slice(1).map((s) => decodeURIComponent(s));
    const record: RecordedRequest = { method: req.method ?? '', path: `/${segments.join('/')}`, query: Object.fromEntries(url.searchParams), headers: { ...req.headers }, body: undefined, status: 0 };
    requests.push(record);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json' }), 'request-id': randomUUID(), ...headers });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    /** Graph's error response (https://learn.microsoft.com/en-us/graph/errors) */
    const graphError = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
      send(status, { error: { code, message, innerError: { date: new Date().toISOString().slice(0, 19), 'request-id': randomUUID(), 'client-request-id': randomUUID() } } }, headers);
    const reject = (why: string) => {
      record.rejected = why;
      graphError(400, 'BadRequest', `stand-in: not as documented: ${why}`);
    };
    // the identity platform: /{tenant}/v2.0/.well-known/openid-configuration and /{tenant}/oauth2/v2.0/token
    if (segments[0] === tenantId) return identity(req, segments.slice(1).join('/'), text, record, send, reject);
    if (segments[0] !== 'v1.0') return reject(`no such path ${record.path} (Graph is at /v1.0, the tenant at /${tenantId})`);
    // Graph: a bearer token the token endpoint issued, not expired
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ')) return graphError(401, 'InvalidAuthenticationToken', 'Access token is empty.');
    const token = tokens.get(auth.slice('Bearer '.length));
    if (token === undefined) return graphError(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.');
    if (token.expired) return graphError(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.');
    graph(req, res, segments.slice(1), url.searchParams, text, record, send, graphError, reject);
  }

  function identity(req: IncomingMessage, rest: string, text: string, record: RecordedRequest, send: (s: number, b: unknown) => void, reject: (why: string) => void): void {
    const base = `${origin}/${tenantId}`;
    if (req.method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') {
      return send(200, {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        jwks_uri: `${origin}/${tenantId}/discovery/v2.0/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        issuer: `${base}/v2.0`,
        request_uri_parameter_supported: false,
        userinfo_endpoint: `${origin}/oidc/userinfo`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce'],
        tenant_region_scope: 'EU',
        cloud_instance_name: 'microsoftonline.com',
      });
    }
    if (req.method !== 'POST' || rest !== 'oauth2/v2.0/token') return reject(`no such identity platform endpoint ${req.method} ${record.path}`);
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return reject('the token request must be application/x-www-form-urlencoded');
    const form = Object.fromEntries(new URLSearchParams(text));
    record.body = form;
    const tokenError = (status: number, error: string, aadsts: number, description: string) => {
      record.status = status;
      send(status, { error, error_description: `AADSTS${aadsts}: ${description} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`, error_codes: [aadsts], timestamp: new Date().toISOString(), trace_id: randomUUID(), correlation_id: randomUUID() });
    };
    const allowed = new Set(['grant_type', 'client_id', 'scope', 'client_secret', 'client_assertion_type', 'client_assertion']);
    const unknown = Object.keys(form).filter((k) => !allowed.has(k) && !MSAL_EXTRAS.test(k));
    if (unknown.length > 0) return reject(`unknown token request parameters ${unknown.join(', ')}`);
    if (form.grant_type !== 'client_credentials') return tokenError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${form.grant_type ?? ''}'.`);
    if (form.scope !== `${origin}/.default`) return tokenError(400, 'invalid_scope', 1002012, `The provided value for scope ${form.scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    if (form.client_id !== opts.app.clientId) return tokenError(400, 'unauthorized_client', 700016, `Application with identifier '${form.client_id ?? ''}' was not found in the directory '${tenantId}'.`);
    if (form.client_secret !== undefined) {
      if (form.client_assertion !== undefined) return reject('both client_secret and client_assertion');
      if (opts.app.secret === undefined || form.client_secret !== opts.app.secret) return tokenError(401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
    } else {
      if (form.client_assertion_type !== ASSERTION_TYPE || form.client_assertion === undefined) return tokenError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
      const why = assertionError(form.client_assertion, `${origin}/${tenantId}/oauth2/v2.0/token`);
      if (why !== undefined) return tokenError(401, 'invalid_client', 700027, `Client assertion failed signature validation: ${why}`);
    }
    const accessToken = b64url(randomBytes(32));
    tokens.set(accessToken, { expired: false });
    send(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: accessToken });
  }

  /** The client assertion of certificate-credentials: PS256 (or RS256), x5t#S256 the registered certificate's thumbprint, aud the token endpoint, iss = sub = the client id. */
  function assertionError(jwt: string, audience: string): string | undefined {
    if (opts.app.certificate === undefined) return 'no certificate is registered for the app';
    const [h, p, s] = jwt.split('.');
    if (h === undefined || p === undefined || s === undefined) return 'not a JWT';
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const cert = new X509Certificate(opts.app.certificate);
    if (header['x5t#S256'] !== b64url(createHash('sha256').update(cert.raw).digest()) && header.x5t !== b64url(createHash('sha1').update(cert.raw).digest())) return 'x5t#S256 is not the thumbprint of a registered certificate';
    const now = Date.now() / 1000;
    if (claims.aud !== audience) return `aud ${String(claims.aud)} is not ${audience}`;
    if (claims.iss !== opts.app.clientId || claims.sub !== opts.app.clientId) return 'iss and sub must be the client id';
    if (typeof claims.exp !== 'number' || claims.exp < now) return 'expired';
    if (typeof claims.nbf === 'number' && claims.nbf > now + 300) return 'not yet valid';
    if (typeof claims.jti !== 'string') return 'no jti';
    const signed = Buffer.from(`${h}.${p}`);
    const signature = Buffer.from(s, 'base64url');
    const ok =
      header.alg === 'PS256'
        ? verify('sha256', signed, { key: cert.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature)
        : header.alg === 'RS256' && verify('sha256', signed, cert.publicKey, signature);
    return ok ? undefined : `the signature (${String(header.alg)}) does not verify with the registered certificate`;
  }

  function graph(
    req: IncomingMessage,
    res: ServerResponse,
    segments: string[],
    query: URLSearchParams,
    text: string,
    record: RecordedRequest,
    send: (s: number, b: unknown, h?: Record<string, string>) => void,
    graphError: (s: number, c: string, m: string, h?: Record<string, string>) => void,
    reject: (why: string) => void,
  ): void {
    const [users, upn, collection, folder, messages, ...more] = segments;
    if (users !== 'users' || upn === undefined || collection === undefined) return reject(`no such resource ${record.path}`);
    const mailbox = upn.toLowerCase();
    const kind = req.method === 'POST' && messages === 'messages' && more.length === 0 ? 'create' : req.method === 'GET' && messages === 'messages' ? 'list' : 'other';
    const fault = faults.find((f) => f.match === 'any' || f.match === kind);
    if (fault !== undefined && fault.loseAnswer === undefined) {
      fault.times = (fault.times ?? 1) - 1;
      if (fault.times <= 0) faults.splice(faults.indexOf(fault), 1);
      const status = fault.status ?? 503;
      return graphError(status, fault.code ?? (status === 429 ? 'TooManyRequests' : 'ServiceUnavailable'), status === 429 ? 'Application is over its MailboxConcurrency limit.' : 'The service is temporarily unavailable.', fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {});
    }
    if (!mailboxes.has(mailbox)) return graphError(404, 'ErrorInvalidUser', `The requested user '${upn}' is invalid.`);
    if (denied.has(mailbox)) return graphError(403, 'ErrorAccessDenied', 'Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.');
    // POST /users/{id}/messages/{id}/permanentDelete
    if (collection === 'messages') {
      if (req.method !== 'POST' || messages !== 'permanentDelete' || more.length > 0 || folder === undefined) return reject(`no such message operation ${req.method} ${record.path}`);
      if (text !== '') return reject('permanentDelete takes no request body');
      const i = store.findIndex((m) => m.id === folder && m.mailbox === mailbox);
      if (i < 0) return graphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
      store.splice(i, 1);
      return send(204, undefined);
    }
    if (collection !== 'mailFolders' || folder === undefined) return reject(`no such resource ${record.path}`);
    if (!WELL_KNOWN.has(folder)) return graphError(404, 'ErrorInvalidIdMalformed', 'Id is malformed.');
    // GET /users/{id}/mailFolders/{name}
    if (messages === undefined) {
      if (req.method !== 'GET') return reject(`${req.method} on a mailFolder`);
      const unknown = [...query.keys()].filter((k) => k !== '$select');
      if (unknown.length > 0) return reject(`query options ${unknown.join(', ')} on a mailFolder get`);
      const items = store.filter((m) => m.mailbox === mailbox && m.folder === folder);
      return send(200, { '@odata.context': `${origin}/v1.0/$metadata#users('${upn}')/mailFolders/$entity`, id: `folder-${folder}`, displayName: folder === 'conversationhistory' ? 'Conversation History' : folder, parentFolderId: 'folder-msgfolderroot', childFolderCount: 0, unreadItemCount: items.filter((m) => !m.isRead).length, totalItemCount: items.length, sizeInBytes: 0, isHidden: false });
    }
    if (messages !== 'messages' || more.length > 0) return reject(`no such resource ${record.path}`);
    if (req.method === 'GET') return list(mailbox, upn, folder, query, record, send, reject);
    if (req.method !== 'POST') return reject(`${req.method} on a messages collection`);
    if (req.headers['content-type']?.split(';')[0]?.trim() !== 'application/json') return reject('Create message needs Content-Type: application/json');
    if (query.size > 0) return reject('Create message takes no query options');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return reject('the body is not JSON');
    }
    record.body = body;
    const why = messageError(body);
    if (why !== undefined) {
      record.rejected = why;
      return graphError(400, 'RequestBodyRead', why);
    }
    const extended = new Map((body.singleValueExtendedProperties as Array<{ id: string; value: string }> | undefined ?? []).map((p) => [p.id.toLowerCase(), p.value]));
    const flags = extended.get('integer 0x0e07');
    const id = `AAMkAG${b64url(randomBytes(24))}=`;
    const stored: StoredMessage = {
      id,
      mailbox,
      folder,
      json: body,
      extended,
      isRead: body.isRead === true,
      // a message created through Graph is a draft unless PR_MESSAGE_FLAGS is given without MSGFLAG_UNSENT
      isDraft: flags === undefined || (Number(flags) & MSGFLAG_UNSENT) !== 0,
    };
    store.push(stored);
    const lose = faults.find((f) => f.loseAnswer !== undefined && (f.match === 'create' || f.match === 'any'));
    if (lose !== undefined) {
      lose.times = (lose.times ?? 1) - 1;
      if (lose.times <= 0) faults.splice(faults.indexOf(lose), 1);
      record.status = -1;
      // held: no answer ever (close() ends the connection)
      if (lose.loseAnswer === 'drop') res.socket?.destroy();
      return;
    }
    send(201, { '@odata.context': `${origin}/v1.0/$metadata#users('${upn}')/mailFolders('${folder}')/messages/$entity`, '@odata.etag': `W/"${b64url(randomBytes(8))}"`, id, createdDateTime: new Date().toISOString(), isDraft: stored.isDraft, isRead: stored.isRead, parentFolderId: `folder-${folder}`, ...body, singleValueExtendedProperties: undefined });
  }

  /** The two $filter forms of List messages Parley may send: by internetMessageId, and Missed items (unread) by the class property with $count. */
  function list(mailbox: string, upn: string, folder: string, query: URLSearchParams, record: RecordedRequest, send: (s: number, b: unknown) => void, reject: (why: string) => void): void {
    const filter = query.get('$filter');
    const unknown = [...query.keys()].filter((k) => !['$filter', '$select', '$top', '$count'].includes(k));
    if (unknown.length > 0 || filter === null) return reject(`List messages with ${unknown.length > 0 ? `unknown options ${unknown.join(', ')}` : 'no $filter'}`);
    const inFolder = store.filter((m) => m.mailbox === mailbox && m.folder === folder);
    let found: StoredMessage[];
    const byId = /^internetMessageId eq '((?:[^']|'')*)'$/.exec(filter);
    const byClass = /^singleValueExtendedProperties\/Any\(ep: ep\/id eq 'String 0x001A' and ep\/value eq '((?:[^']|'')*)'\)( and isRead eq false)?$/.exec(filter);
    if (byId !== null) found = inFolder.filter((m) => m.json.internetMessageId === byId[1]?.replaceAll("''", "'"));
    else if (byClass !== null) found = inFolder.filter((m) => m.extended.get('string 0x001a')?.toLowerCase() === byClass[1]?.replaceAll("''", "'").toLowerCase() && (byClass[2] === undefined || !m.isRead));
    else return reject(`a $filter Parley does not send: ${filter}`);
    const top = Number(query.get('$top') ?? '10');
    record.status = 200;
    send(200, {
      '@odata.context': `${origin}/v1.0/$metadata#users('${upn}')/mailFolders('${folder}')/messages(id)`,
      ...(query.get('$count') === 'true' ? { '@odata.count': found.length } : {}),
      value: found.slice(0, top).map((m) => ({ '@odata.etag': `W/"${m.id.slice(-8)}"`, id: m.id })),
    });
  }

  /** Why a Create message body deviates from the message resource (unknown or read-only property, wrong type), or undefined. */
  function messageError(body: Record<string, unknown>): string | undefined {
    for (const key of Object.keys(body)) if (!WRITABLE.has(key)) return `The property '${key}' does not exist on type 'microsoft.graph.message' or is read-only.`;
    if (body.subject !== undefined && typeof body.subject !== 'string') return 'subject must be a string';
    const b = body.body as { contentType?: unknown; content?: unknown } | undefined;
    if (b !== undefined && (typeof b.content !== 'string' || (typeof b.contentType !== 'string' || !['text', 'html'].includes(b.contentType.toLowerCase())))) return 'body must be an itemBody { contentType: text|html, content }';
    const recipientOk = (r: unknown) => {
      const e = (r as { emailAddress?: { address?: unknown; name?: unknown } } | null)?.emailAddress;
      return typeof e?.address === 'string' && (e.name === undefined || typeof e.name === 'string') && Object.keys(r as object).length === 1;
    };
    if (body.from !== undefined && !recipientOk(body.from)) return 'from must be a recipient { emailAddress: { name, address } }';
    if (body.toRecipients !== undefined && (!Array.isArray(body.toRecipients) || !body.toRecipients.every(recipientOk))) return 'toRecipients must be a collection of recipients';
    if (body.isRead !== undefined && typeof body.isRead !== 'boolean') return 'isRead must be a boolean';
    if (body.internetMessageId !== undefined && (typeof body.internetMessageId !== 'string' || !/^<[^<>\s]+@[^<>\s]+>$/.test(body.internetMessageId))) return 'internetMessageId must be a message ID in the RFC 2822 format (<…@…>)';
    const props = body.singleValueExtendedProperties;
    if (props !== undefined) {
      if (!Array.isArray(props)) return 'singleValueExtendedProperties must be a collection';
      for (const p of props as Array<Record<string, unknown>>) {
        if (typeof p.id !== 'string' || typeof p.value !== 'string' || Object.keys(p).length !== 2) return 'each singleValueLegacyExtendedProperty is { id, value } with string values';
        const m = /^(Integer|String|SystemTime|Boolean|Binary) 0x[0-9A-Fa-f]{4}$/.exec(p.id);
        if (m === null) return `extended property id ${p.id} is not "{type} {proptag}"`;
        if (m[1] === 'Integer' && !/^-?\d+$/.test(p.value)) return `${p.id} needs an integer value`;
        if (m[1] === 'SystemTime' && Number.isNaN(Date.parse(p.value))) return `${p.id} needs an ISO 8601 date-time`;
      }
    }
    return undefined;
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    graphUrl: `${origin}/v1.0`,
    authorityHost: origin,
    tenantId,
    caFile: tls.ca,
    caPem: readFileSync(tls.ca, 'utf8'),
    requests,
    rejected: () => requests.filter((r) => r.rejected !== undefined),
    messages: (mailbox, folder) => store.filter((m) => m.mailbox === mailbox.toLowerCase() && (folder === undefined || m.folder === folder)),
    addMailbox: (address) => void mailboxes.add(address.toLowerCase()),
    deny: (address, yes = true) => void (yes ? denied.add(address.toLowerCase()) : denied.delete(address.toLowerCase())),
    fault: (f) => void faults.push({ ...f }),
    expireTokens: () => {
      for (const t of tokens.values()) t.expired = true;
    },
    tokensIssued: () => tokens.size,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

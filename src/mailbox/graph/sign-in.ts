// App-only sign-in to Microsoft Entra ID for Graph: the OAuth 2.0 client credentials flow through
// msal-node, with a client secret or a certificate. One ConfidentialClientApplication per
// connector: its in-memory cache keeps the token until it expires, so a delivery costs no sign-in.
// msal's HTTP goes through the connector's own fetch (one way out, with its timeout and CAs). The
// authority's host is a known authority, so msal asks no instance discovery of the internet; it
// reads the tenant's OpenID configuration from that host, as the Microsoft identity platform
// documents it (and the test stand-in serves it).
import { X509Certificate } from 'node:crypto';
import type { ConfidentialClientApplication, Configuration, INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { MailboxError } from '../errors.ts';

export type GraphCredential = { clientSecret: string } | { certificate: string; privateKey: string };

export interface SignInOptions {
  tenantId: string;
  clientId: string;
  credential: GraphCredential;
  /** https://login.microsoftonline.com (or a national cloud's) */
  authorityHost: string;
  /** the scope asked for: the Graph resource's /.default */
  scope: string;
  fetch: typeof fetch;
  timeoutMs: number;
}

/** OAuth error codes (RFC 6749 5.2) that a retry will not change: the app's registration or credential is wrong. */
const REFUSED_OAUTH = new Set(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'invalid_resource', 'access_denied']);

export class GraphSignIn {
  readonly #config: Configuration;
  /** made at the first sign-in: msal (~30 MB of RSS) is loaded only by a server with a Graph mailbox that delivers */
  #app: ConfidentialClientApplication | undefined;
  readonly #o: SignInOptions;
  /** the sign-in under way: deliveries that start together share it (msal would ask once per caller until one is cached) */
  #pending: Promise<string> | undefined;

  constructor(opts: SignInOptions) {
    this.#o = opts;
    const host = new URL(opts.authorityHost);
    const config: Configuration = {
      auth: {
        clientId: opts.clientId,
        authority: `${host.origin}/${encodeURIComponent(opts.tenantId)}`,
        knownAuthorities: [host.host],
        ...('clientSecret' in opts.credential ? { clientSecret: opts.credential.clientSecret } : { clientCertificate: certificateCredential(opts.credential) }),
      },
      system: { networkClient: fetchNetworkClient(opts.fetch, opts.timeoutMs) },
    };
    this.#config = config;
  }

  /** An access token for Graph: the cached one while it lasts, a new one when `fresh` (Graph said it expired). */
  token(fresh = false): Promise<string> {
    // a fresh token is asked for on its own: one under way may be the cached token Graph refused
    if (this.#pending !== undefined && !fresh) return this.#pending;
    const pending = this.#acquire(fresh).finally(() => {
      if (this.#pending === pending) this.#pending = undefined;
    });
    this.#pending = pending;
    return pending;
  }

  async #acquire(fresh: boolean): Promise<string> {
    const msal = await import('@azure/msal-node');
    let result;
    try {
      this.#app ??= new msal.ConfidentialClientApplication(this.#config);
      result = await this.#app.acquireTokenByClientCredential({ scopes: [this.#o.scope], ...(fresh ? { skipCache: true } : {}) });
    } catch (cause) {
      throw signInFailure(cause, this.#o, msal);
    }
    if (result === null || result.accessToken === '') throw new MailboxError('REMOTE_UNAVAILABLE', `Microsoft Entra ID at ${this.#o.authorityHost} answered the sign-in of ${this.#o.clientId} without an access token`);
    return result.accessToken;
  }
}

/** msal's certificate credential: the SHA-256 thumbprint (hex) of the certificate, its key, and the certificate itself (x5c). */
function certificateCredential(c: { certificate: string; privateKey: string }): { thumbprintSha256: string; privateKey: string; x5c: string } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(c.certificate);
  } catch (cause) {
    throw new MailboxError('INVALID_REQUEST', `the Graph app's certificate cannot be read: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  return { thumbprintSha256: cert.fingerprint256.replaceAll(':', '').toLowerCase(), privateKey: c.privateKey, x5c: c.certificate };
}

function signInFailure(cause: unknown, o: SignInOptions, { AuthError, ServerError }: typeof import('@azure/msal-node')): MailboxError {
  const where = `Microsoft Entra ID (${o.authorityHost}, tenant ${o.tenantId})`;
  if (cause instanceof ServerError) {
    const said = `${cause.errorCode}${cause.errorMessage !== '' ? `: ${cause.errorMessage.split('\n')[0] ?? ''}` : ''}`;
    const temporary = (cause.status !== undefined && (cause.status >= 500 || cause.status === 429)) || !REFUSED_OAUTH.has(cause.errorCode);
    if (temporary) return new MailboxError('REMOTE_UNAVAILABLE', `${where} could not sign in the app ${o.clientId} (${said}); retried`, { cause });
    return new MailboxError(
      'REMOTE_REFUSED',
      `${where} refused the sign-in of the app ${o.clientId} (${said}): check tenantId and clientId, that the client secret or certificate is the one registered for the app and has not expired, and that the app has the Mail.ReadWrite application permission with admin consent`,
      { cause },
    );
  }
  const said = cause instanceof AuthError ? `${cause.errorCode}: ${cause.errorMessage}` : cause instanceof Error ? cause.message : String(cause);
  return new MailboxError('REMOTE_UNAVAILABLE', `cannot sign in at ${where}: ${said}`, { cause });
}

/** msal's INetworkModule over fetch. */
export function fetchNetworkClient(fetchFn: typeof fetch, timeoutMs: number): INetworkModule {
  const send = async <T>(method: 'GET' | 'POST', url: string, options: NetworkRequestOptions | undefined, timeout?: number): Promise<NetworkResponse<T>> => {
    const res = await fetchFn(url, { method, ...(options?.headers !== undefined ? { headers: options.headers } : {}), ...(options?.body !== undefined ? { body: options.body } : {}), signal: AbortSignal.timeout(timeout ?? timeoutMs) });
    const text = await res.text();
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      // msal reads error/error_description from the body: say what came instead of JSON
      body = { error: 'invalid_response', error_description: `HTTP ${res.status} from ${url} was not JSON` };
    }
    return { headers: Object.fromEntries(res.headers), body: body as T, status: res.status };
  };
  return {
    sendGetRequestAsync: (url, options, timeout) => send('GET', url, options, timeout),
    sendPostRequestAsync: (url, options) => send('POST', url, options),
  };
}

// Which web origins are this server's own (RFC 6454): the pages allowed to drive a signed-in user's
// session (CSRF, src/session) and to open SIP over WebSocket with the user's credentials (a page on
// another site must not, RFC 6455 §10.2). Own: scheme http or https, a host that is one of the
// server's own names (own-names.ts), and the HTTP port (or, for https, the HTTPS port); plus the origins the operator lists in
// `web.allowedOrigins` (a reverse proxy's https://chat.example.com, on port 443).

import { parseHostHeader } from './own-names.ts';

export interface WebOrigin {
  scheme: 'http' | 'https';
  host: string;
  /** the port, the scheme's default filled in */
  port: number;
}

const DEFAULT_PORT = { http: 80, https: 443 } as const;

/**
 * An Origin header's value taken apart (RFC 6454 §7.1: scheme "://" host [ ":" port ]), or
 * undefined for "null", another scheme, a path, user info or anything else that is not one.
 */
export function parseOrigin(value: string): WebOrigin | undefined {
  const m = /^(https?):\/\/([^/?#@\s]+)$/i.exec(value.trim());
  if (m === null) return undefined;
  const scheme = (m[1] as string).toLowerCase() as 'http' | 'https';
  const authority = parseHostHeader(m[2] as string);
  if (authority === undefined) return undefined;
  return { scheme, host: authority.host, port: authority.port ?? DEFAULT_PORT[scheme] };
}

/** The origin written back in its canonical form: lower case, the default port left out, IPv6 in brackets. */
export function formatOrigin(o: WebOrigin): string {
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return o.port === DEFAULT_PORT[o.scheme] ? `${o.scheme}://${host}` : `${o.scheme}://${host}:${o.port}`;
}

export interface OwnOriginsOptions {
  /** the server's own names (OwnNames) */
  names: { isOwn(host: string): boolean };
  /** the HTTP port: a function, as it is known only once listening */
  httpPort: () => number;
  /** the HTTPS port (config httpsPort), null when off */
  httpsPort?: () => number | null;
  /** more origins (config web.allowedOrigins), e.g. https://chat.example.com */
  allowed?: readonly string[];
}

export class OwnOrigins {
  readonly #o: OwnOriginsOptions;
  readonly #allowed: ReadonlySet<string>;

  constructor(options: OwnOriginsOptions) {
    this.#o = options;
    const allowed = new Set<string>();
    for (const text of options.allowed ?? []) {
      const origin = parseOrigin(text);
      if (origin === undefined) throw new Error(`${JSON.stringify(text)} is not an origin such as https://chat.example.com`);
      allowed.add(formatOrigin(origin));
    }
    this.#allowed = allowed;
  }

  /** True when the Origin header's value names this server (or an allowed origin). */
  isOwn(value: string): boolean {
    const origin = parseOrigin(value);
    if (origin === undefined) return false;
    if (this.#allowed.has(formatOrigin(origin))) return true;
    const port = origin.scheme === 'https' && origin.port === this.#o.httpsPort?.() ? origin.port : this.#o.httpPort();
    return origin.port === port && this.#o.names.isOwn(origin.host);
  }
}

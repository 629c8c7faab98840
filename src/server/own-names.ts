// Which host names are this server's: the one rule for every URL Parley gives a client (the EWS
// URL of autodiscover and of in-band provisioning). A URL built from a request's Host header as
// sent would name whatever host the sender wrote (`Host: evil.example` → `http://evil.example/EWS/…`),
// and a client that trusts the answer then sends its password there. So a Host is used only when
// its host part is one of ours; otherwise the URL names the server's own default.
//
// Ours: the listen address, the SIP domain and its subdomains (the organisation's own DNS, where
// autodiscover.<domain> and mail.<domain> live), `localhost` and loopback addresses, this
// machine's host name and interface addresses, and the names listed in the `publicHosts` setting
// (the name a reverse proxy is reached at, say). Interface addresses can change while the server
// runs (DHCP, a VPN): an unknown name makes the list be read again, at most once a minute.

import os from 'node:os';
import net from 'node:net';
import { isLoopbackAddress } from '../auth/index.ts';

export interface OwnNamesOptions {
  /** the configured listen address (`127.0.0.1`, `0.0.0.0`, `::`, `localhost`) */
  listen: string;
  /** the SIP domain */
  domain: string;
  /** more names of this server (`publicHosts`), host names or IP addresses */
  publicHosts?: readonly string[];
  /** the HTTP port the server listens on: a function, as it is known only once listening */
  httpPort: () => number;
  /** where the machine's own names come from (tests give fixed ones) */
  system?: { hostname(): string; addresses(): string[] };
  now?: () => number;
}

/** How often, at most, an unknown name makes the interface addresses be read again. */
const RELOAD_MS = 60_000;
const WILDCARD = new Set(['', '0.0.0.0', '::', '[::]']);
const HOST_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

const osNames = {
  hostname: () => os.hostname(),
  addresses: () =>
    Object.values(os.networkInterfaces())
      .flat()
      .flatMap((i) => (i === undefined ? [] : [i.address])),
};

/** A Host header value taken apart (RFC 9110 §7.2: uri-host [":" port]); undefined when it is not one. */
export function parseHostHeader(value: string): { host: string; port: number | null } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(value.trim());
  if (m === null) return undefined;
  const port = m[3] === undefined ? null : Number(m[3]);
  if (port !== null && (port < 1 || port > 65535)) return undefined;
  if (m[1] !== undefined) return net.isIPv6(m[1]) ? { host: m[1].toLowerCase(), port } : undefined;
  const host = (m[2] as string).toLowerCase().replace(/\.$/, '');
  return net.isIPv4(host) || HOST_NAME.test(host) ? { host, port } : undefined;
}

/** The host (and port) part of a URL for this host: IPv6 in brackets (RFC 3986 §3.2.2). */
export function formatAuthority(host: string, port: number | null): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === null ? h : `${h}:${port}`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || isLoopbackAddress(host);
}

export class OwnNames {
  readonly #o: OwnNamesOptions;
  readonly #fixed: Set<string>;
  readonly #domain: string;
  #machine = new Set<string>();
  #loadedAt = Number.NEGATIVE_INFINITY;

  constructor(options: OwnNamesOptions) {
    this.#o = options;
    this.#domain = options.domain.toLowerCase();
    this.#fixed = new Set([this.#domain, ...(options.publicHosts ?? []).map((h) => h.toLowerCase().replace(/^\[|\]$/g, ''))]);
    if (!WILDCARD.has(options.listen)) this.#fixed.add(options.listen.toLowerCase());
    this.#loadMachine();
  }

  /** True when `host` (a host name or IP address, no port) names this server. */
  isOwn(host: string): boolean {
    const h = host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
    if (this.#fixed.has(h) || h.endsWith(`.${this.#domain}`) || isLoopback(h) || this.#machine.has(h)) return true;
    if ((this.#o.now ?? Date.now)() - this.#loadedAt < RELOAD_MS) return false;
    this.#loadMachine();
    return this.#machine.has(h);
  }

  /**
   * The host[:port] to put in a URL for a client that asked with this Host header: the header's,
   * rebuilt from its parts, when its host is ours; otherwise the default, with `foreign` naming the
   * refused value (for a warning in the log).
   */
  authorityFor(hostHeader: string | undefined): { authority: string; foreign: string | null } {
    if (hostHeader === undefined || hostHeader === '') return { authority: this.defaultAuthority(), foreign: null };
    const parsed = parseHostHeader(hostHeader);
    if (parsed !== undefined && this.isOwn(parsed.host)) return { authority: formatAuthority(parsed.host, parsed.port), foreign: null };
    return { authority: this.defaultAuthority(), foreign: hostHeader.slice(0, 200) };
  }

  /** host:port when nothing better is known: the listen address, or the domain when listening on every address. */
  defaultAuthority(): string {
    const host = WILDCARD.has(this.#o.listen) ? this.#domain : this.#o.listen;
    return formatAuthority(host, this.#o.httpPort());
  }

  #loadMachine(): void {
    this.#loadedAt = (this.#o.now ?? Date.now)();
    const system = this.#o.system ?? osNames;
    const names = new Set<string>();
    try {
      names.add(system.hostname().toLowerCase());
      for (const address of system.addresses()) names.add(address.toLowerCase().replace(/%.*$/, ''));
    } catch {
      // a machine that cannot list its interfaces still has the fixed names and loopback
    }
    this.#machine = names;
  }
}

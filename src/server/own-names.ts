// Which host names are this server's: the one rule for every URL Parley gives a client (the EWS
// URL of autodiscover and of in-band provisioning). A URL built from a request's Host header as
// sent would name whatever host the sender wrote (`Host: evil.example` → `http://evil.example/EWS/…`),
// and a client that trusts the answer then sends its password there. So a Host is used only when
// its host part is one of ours; otherwise the URL names the server's own default.
//
// Ours: the listen address, the SIP domain and its subdomains (the organisation's own DNS, where
// autodiscover.<domain> and mail.<domain> live), `localhost` and loopback addresses, this
// machine's host name and interface addresses, the host of `publicUrl`, and the names listed in
// the `publicHosts` setting (the name a reverse proxy is reached at, say). Interface addresses can
// change while the server runs (DHCP, a VPN): an unknown name makes the list be read again, at
// most once a minute.
//
// Which URL a client is given (README "URLs given to clients"):
//   1. `publicUrl` when it is set: the operator says that is where clients reach the server (a
//      reverse proxy in front of it, a NAT), whatever name this request came under;
//   2. else the request's Host when it is one of ours: the client reached us that way;
//   3. else the local address of the connection the request came on: on a server listening on
//      every interface (0.0.0.0, ::) that is the interface address the client reached, never the
//      wildcard itself;
//   4. else (a request with no connection, a start-up line) the listen address, or the machine's
//      first routable address, or at last the domain.

import os from 'node:os';
import net from 'node:net';
import { isLoopbackAddress } from '../auth/index.ts';
import { isRoutable, isWildcardAddress, plainAddress } from '../sip/index.ts';

export interface OwnNamesOptions {
  /** the configured listen address (`127.0.0.1`, `0.0.0.0`, `::`, `localhost`) */
  listen: string;
  /** the SIP domain */
  domain: string;
  /** more names of this server (`publicHosts`), host names or IP addresses */
  publicHosts?: readonly string[];
  /** `publicUrl`: the base URL clients use (`https://chat.example.com`), as config.ts normalised it; null: none */
  publicUrl?: string | null;
  /** the HTTP port the server listens on: a function, as it is known only once listening */
  httpPort: () => number;
  /** where the machine's own names come from (tests give fixed ones) */
  system?: { hostname(): string; addresses(): string[] };
  now?: () => number;
}

/** Where a request came in: its Host header, the local address of its connection, TLS or not. */
export interface RequestPlace {
  host?: string | undefined;
  localAddress?: string | undefined;
  secure?: boolean;
}

/** How often, at most, an unknown name makes the interface addresses be read again. */
const RELOAD_MS = 60_000;
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

/** `http://host:port` → `ws://host:port`, https → wss: the WebSocket URL beside an HTTP base URL. */
export function webSocketBase(base: string): string {
  return base.replace(/^http/, 'ws');
}

export class OwnNames {
  readonly #o: OwnNamesOptions;
  readonly #fixed: Set<string>;
  readonly #domain: string;
  readonly #public: URL | null;
  #machine = new Set<string>();
  #machineList: string[] = [];
  #loadedAt = Number.NEGATIVE_INFINITY;

  constructor(options: OwnNamesOptions) {
    this.#o = options;
    this.#domain = options.domain.toLowerCase();
    this.#public = options.publicUrl ? new URL(options.publicUrl) : null;
    this.#fixed = new Set([this.#domain, ...(options.publicHosts ?? []).map((h) => h.toLowerCase().replace(/^\[|\]$/g, ''))]);
    if (this.#public !== null) this.#fixed.add(this.#public.hostname.toLowerCase().replace(/^\[|\]$/g, ''));
    if (!isWildcardAddress(options.listen)) this.#fixed.add(options.listen.toLowerCase());
    this.#loadMachine();
  }

  /** `publicUrl` as configured (`https://chat.example.com`), or null. */
  get publicUrl(): string | null {
    return this.#public === null ? null : this.#public.origin;
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
   * The base URL (`scheme://host[:port]`, no trailing slash) for a client that asked this way (the
   * rules at the top), with `foreign` naming a refused Host header (for a warning in the log).
   */
  baseFor(place: RequestPlace): { base: string; foreign: string | null } {
    if (this.#public !== null) return { base: this.#public.origin, foreign: null };
    const { authority, foreign } = this.authorityFor(place.host, place.localAddress);
    return { base: `${place.secure === true ? 'https' : 'http'}://${authority}`, foreign };
  }

  /**
   * The host[:port] to put in a URL for a client that asked with this Host header on a connection
   * to `localAddress`: publicUrl's, or the header's (rebuilt from its parts) when its host is ours;
   * otherwise the default, with `foreign` naming the refused value.
   */
  authorityFor(hostHeader: string | undefined, localAddress?: string): { authority: string; foreign: string | null } {
    if (this.#public !== null) return { authority: this.#public.host, foreign: null };
    if (hostHeader === undefined || hostHeader === '') return { authority: this.defaultAuthority(localAddress), foreign: null };
    const parsed = parseHostHeader(hostHeader);
    if (parsed !== undefined && this.isOwn(parsed.host)) return { authority: formatAuthority(parsed.host, parsed.port), foreign: null };
    return { authority: this.defaultAuthority(localAddress), foreign: hostHeader.slice(0, 200) };
  }

  /** The base URL for a client that has no Host to offer (SIP provisioning), reached at `localAddress`. */
  clientBase(localAddress?: string): string {
    return this.#public?.origin ?? `http://${this.defaultAuthority(localAddress)}`;
  }

  /** host:port when the request names nothing usable: the rules 3 and 4 at the top. */
  defaultAuthority(localAddress?: string): string {
    return formatAuthority(this.usableHost(localAddress) ?? this.#domain, this.#o.httpPort());
  }

  /**
   * An address of this server a client can reach, never a wildcard: the connection's local
   * address, the listen address, or the machine's first routable address (IPv4 first);
   * undefined when none is known.
   */
  usableHost(localAddress?: string): string | undefined {
    const local = localAddress === undefined ? '' : plainAddress(localAddress);
    if (!isWildcardAddress(local)) return local;
    if (!isWildcardAddress(this.#o.listen)) return this.#o.listen;
    return this.machineAddress();
  }

  /** The machine's first routable interface address (not loopback, not link-local), IPv4 first. */
  machineAddress(): string | undefined {
    const routable = this.#machineList.filter((a) => net.isIP(a) !== 0 && isRoutable(a));
    return routable.find((a) => net.isIPv4(a)) ?? routable[0];
  }

  /**
   * What to tell the operator at start-up when a client that names no host of ours would be given
   * a URL it cannot use: listening on every interface, no publicUrl, and no routable address on
   * the machine. Null when all is well.
   */
  startupWarning(advertise: string | null): string | null {
    if (!isWildcardAddress(this.#o.listen) || this.#public !== null || this.machineAddress() !== undefined) return null;
    const fallback = this.defaultAuthority();
    return (
      `listening on ${this.#o.listen}, but this machine has no address other hosts can reach (only loopback), and publicUrl is not set: ` +
      `URLs given to clients that do not name this server themselves will say ${fallback}. ` +
      `Set publicUrl to the URL clients use (such as "https://chat.example.com" or "http://192.0.2.10:${this.#o.httpPort()}")` +
      (advertise === null ? ' and sip.advertise to the host (and port) SIP clients reach (such as "sip.example.com")' : '')
    );
  }

  #loadMachine(): void {
    this.#loadedAt = (this.#o.now ?? Date.now)();
    const system = this.#o.system ?? osNames;
    const names = new Set<string>();
    const list: string[] = [];
    try {
      names.add(system.hostname().toLowerCase());
      for (const address of system.addresses()) {
        const plain = plainAddress(address);
        names.add(plain);
        list.push(plain);
      }
    } catch {
      // a machine that cannot list its interfaces still has the fixed names and loopback
    }
    this.#machine = names;
    this.#machineList = list;
  }
}

// Where a sign-in comes from, as the sign-in guard counts it. An IPv4 address counts as itself; an
// IPv6 address as its /64 prefix, because one host (one subscriber line, one cloud instance) is
// handed a whole /64 and would otherwise get 2^64 fresh failure budgets; an IPv4-mapped IPv6
// address (`::ffff:192.0.2.7`, what a dual-stack socket reports) as the IPv4 address.
//
// Over HTTP the peer may be a reverse proxy (a local TLS terminator): only for peers the operator
// names in `auth.trustedProxies` is X-Forwarded-For read, from its right end (the entry the
// trusted proxy itself appended), skipping further trusted proxies. Any other peer counts as
// itself, whatever it writes in X-Forwarded-For.

import { isIP } from 'node:net';
import { plainAddress, sourceOf } from '../sip/index.ts';

/**
 * The key a source address is counted under: `192.0.2.7`, or `2001:db8:1:2::/64` — the same rule
 * the SIP connection limits count sources by, so a lockout and a connection limit name one source
 * alike.
 */
export const sourceKey: (address: string) => string = sourceOf;

/**
 * The source of an HTTP request: the peer, or for a trusted proxy the client it names in
 * X-Forwarded-For (the rightmost entry that is not itself a trusted proxy).
 */
export function httpSource(peer: string, forwardedFor: string | string[] | undefined, trustedProxies: ReadonlySet<string>): string {
  const direct = plainAddress(peer);
  if (!trustedProxies.has(direct) || forwardedFor === undefined) return direct;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((h) => plainAddress(h.trim()))
    .filter((h) => isIP(h) !== 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (!trustedProxies.has(hop)) return hop;
  }
  return direct;
}

/** `127.0.0.0/8`, `::1`, or an IPv4-mapped `::ffff:127.x.y.z`: this host itself. */
export function isLoopbackAddress(address: string): boolean {
  if (address === '::1') return true;
  const v4 = /^::ffff:/i.test(address) ? address.slice(7) : address;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** `::ffff:127.0.0.1` → `127.0.0.1`, `[::1]` → `::1`: the form trusted proxies are written in (one rule with the transports). */
export { plainAddress };

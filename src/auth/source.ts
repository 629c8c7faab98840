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

/** The key a source address is counted under: `192.0.2.7`, or `2001:db8:1:2::/64`. */
export function sourceKey(address: string): string {
  if (!address.includes(':')) return address;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  const head = ipv6Head(address.replace(/%.*$/, ''));
  return head === undefined ? address : `${head}::/64`;
}

/** The first four groups of an IPv6 address, shortest hex, `2001:db8:0:1`; undefined when not IPv6. */
function ipv6Head(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const [left = '', right] = address.split('::');
  const leftGroups = left === '' ? [] : left.split(':');
  // an embedded IPv4 tail (`::1.2.3.4`) stands for two groups; only the head is needed here
  const rightGroups = right === undefined || right === '' ? [] : right.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const missing = 8 - leftGroups.length - rightGroups.length;
  const groups = right === undefined ? leftGroups : [...leftGroups, ...Array<string>(missing).fill('0'), ...rightGroups];
  return groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':');
}

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

/** `::ffff:127.0.0.1` → `127.0.0.1`, `[::1]` → `::1`: the form trusted proxies are written in. */
export function plainAddress(address: string): string {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(bare);
  return mapped?.[1] ?? bare.toLowerCase();
}

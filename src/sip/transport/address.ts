// Addresses as the server names them. A dual-stack socket (listening on `::`) reports an IPv4
// peer as `::ffff:192.0.2.7`; everything above the sockets (Via received, URLs, logs, limits)
// sees the plain `192.0.2.7`. A socket bound to a wildcard reports `0.0.0.0` or `::` as its own
// address, which no client can reach: a UDP flow then names the interface address the kernel
// would send from to that peer's network instead.

import os from 'node:os';
import { isIP } from 'node:net';

/** The addresses that mean "every interface" when listened on. */
export function isWildcardAddress(address: string): boolean {
  return address === '' || address === '0.0.0.0' || address === '::' || address === '[::]' || address === '::ffff:0.0.0.0';
}

/** `::ffff:127.0.0.1` → `127.0.0.1`, `[::1]` → `::1`, `FE80::1%eth0` → `fe80::1`: one spelling of one address. */
export function plainAddress(address: string): string {
  // an IPv4 address (every peer of a socket bound to one): no brackets, mapping or zone to take off
  if (!address.includes(':') && !address.includes('[') && !address.includes('%')) return address.toLowerCase();
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(bare);
  return mapped?.[1] ?? bare.replace(/%.*$/, '').toLowerCase();
}

export interface InterfaceAddress {
  address: string;
  /** `192.0.2.10/24` */
  cidr: string | null;
  internal: boolean;
}

const machineInterfaces = (): InterfaceAddress[] =>
  Object.values(os.networkInterfaces())
    .flat()
    .flatMap((i) => (i === undefined ? [] : [{ address: plainAddress(i.address), cidr: i.cidr, internal: i.internal }]));

/**
 * The address of this machine a peer at `remote` most likely reached it at: loopback for a
 * loopback peer, the address of the interface whose subnet holds the peer, else the first
 * routable address of the peer's family (the way out through the default route is usually the
 * way in). Undefined when the machine has none.
 */
export function localAddressFor(remote: string, interfaces: () => InterfaceAddress[] = machineInterfaces): string | undefined {
  const peer = plainAddress(remote);
  const family = isIP(peer);
  if (family === 0) return undefined;
  if (family === 4 && peer.startsWith('127.')) return '127.0.0.1';
  if (peer === '::1') return '::1';
  const candidates = interfaces().filter((i) => isIP(i.address) === family);
  const onLink = candidates.find((i) => i.cidr !== null && inSubnet(peer, i.cidr));
  if (onLink !== undefined) return onLink.address;
  return candidates.find((i) => !i.internal && isRoutable(i.address))?.address;
}

/** Not loopback, not IPv6 link-local (which needs a zone no URL carries), not unspecified. */
export function isRoutable(address: string): boolean {
  const a = plainAddress(address);
  if (isWildcardAddress(a) || a === '::1' || a.startsWith('127.')) return false;
  return !/^fe[89ab][0-9a-f]:/i.test(a);
}

function inSubnet(address: string, cidr: string): boolean {
  const slash = cidr.lastIndexOf('/');
  const net = bits(cidr.slice(0, slash));
  const mine = bits(address);
  const length = Number(cidr.slice(slash + 1));
  if (net === undefined || mine === undefined || net.length !== mine.length || !(length >= 0)) return false;
  return net.slice(0, length) === mine.slice(0, length);
}

/** An address as a string of bits, for prefix comparison (IPv4: 32, IPv6: 128). */
function bits(address: string): string | undefined {
  const a = plainAddress(address);
  if (isIP(a) === 4) return a.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
  if (isIP(a) !== 6) return undefined;
  const [head = '', tail] = a.split('::');
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? v4Groups(g) : [g])));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.map((g) => Number.parseInt(g, 16).toString(2).padStart(16, '0')).join('');
}

function v4Groups(v4: string): string[] {
  const [a = 0, b = 0, c = 0, d = 0] = v4.split('.').map(Number);
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}

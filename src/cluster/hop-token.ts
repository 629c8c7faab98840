// The token a node puts in the Route of a request it relays to another node (src/router/hop.ts):
// which flow of which node the request is for, and an HMAC-SHA256 over that with the cluster key
// (the same on every node, kept in PostgreSQL: secrets.ts), so that only a node of the cluster can
// make a node send something over a client's connection. The MAC also covers the request itself
// (method, Request-URI, Call-ID, CSeq, From, To and a SHA-256 of the body): a token seen on the
// wire is good for that one request only, and cannot carry another body or sender to the client.
// It is good for HOP_TOKEN_LIFETIME_S after it was made, so a captured request cannot be replayed
// later (node clocks may differ by up to that much; keep them synchronised).
//
// Form: `<payload>.<mac>`, both base64url (characters a SIP URI parameter takes as they are).
// The payload is JSON: { n: node, i: flow id, p: protocol, l: [local address, port], r: [remote address, port], t: made at, seconds }.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FlowRef } from '../registrar/location.ts';
import type { SipRequest, TransportProtocol } from '../sip/index.ts';

/** bytes of the HMAC kept: 128 bits, plenty for a MAC checked online */
const MAC_BYTES = 16;
const PROTOCOLS: ReadonlySet<string> = new Set<TransportProtocol>(['udp', 'tcp', 'tls', 'ws', 'wss']);

/** How long a token is good for after it was made, seconds: a non-INVITE transaction's life (Timer F, 32 s) with room for clock differences between nodes. */
export const HOP_TOKEN_LIFETIME_S = 120;

/** What of a request the MAC covers besides the flow. */
export type HopRequest = Pick<SipRequest, 'method' | 'uri' | 'headers' | 'body'>;

export function signHopToken(key: Uint8Array, flow: FlowRef, request: HopRequest, now = Date.now()): string {
  if (flow.node === undefined) throw new TypeError('a hop token names the node that holds the flow');
  const payload = Buffer.from(JSON.stringify({ n: flow.node, i: flow.id, p: flow.protocol, l: [flow.local.address, flow.local.port], r: [flow.remote.address, flow.remote.port], t: Math.floor(now / 1000) })).toString('base64url');
  return `${payload}.${hopMac(key, payload, request).toString('base64url')}`;
}

/** The flow a token names, when `key` made it for this request within its lifetime; null otherwise (never throws). */
export function verifyHopToken(key: Uint8Array, token: string, request: HopRequest, now = Date.now()): FlowRef | null {
  const dot = token.indexOf('.');
  if (dot <= 0) return null;
  const payload = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = hopMac(key, payload, request);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  let o: { n?: unknown; i?: unknown; p?: unknown; l?: unknown; r?: unknown; t?: unknown };
  try {
    o = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof o;
  } catch {
    return null;
  }
  // signed by a node, so well formed unless the nodes run different versions: checked all the same
  const local = endpoint(o.l);
  const remote = endpoint(o.r);
  if (typeof o.n !== 'string' || typeof o.i !== 'string' || typeof o.p !== 'string' || !PROTOCOLS.has(o.p) || local === null || remote === null) return null;
  // too old (a replay) or from a clock too far ahead
  if (typeof o.t !== 'number' || Math.abs(now / 1000 - o.t) > HOP_TOKEN_LIFETIME_S) return null;
  return { node: o.n, id: o.i, protocol: o.p as TransportProtocol, local, remote };
}

/** The MAC of a token: over its payload and the request it was made for (exported for tests that sign payloads of their own). */
export function hopMac(key: Uint8Array, payload: string, request: HopRequest): Buffer {
  const h = createHmac('sha256', key);
  const header = (name: string) => request.headers.get(name) ?? '';
  const body = createHash('sha256').update(request.body).digest('base64url');
  h.update([payload, request.method, request.uri, header('call-id'), header('cseq'), header('from'), header('to'), body].join('\n'));
  return h.digest().subarray(0, MAC_BYTES);
}

function endpoint(v: unknown): { address: string; port: number } | null {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || !Number.isInteger(v[1])) return null;
  return { address: v[0], port: v[1] as number };
}

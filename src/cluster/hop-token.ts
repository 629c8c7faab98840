// The token a node puts in the Route of a request it relays to another node (src/router/hop.ts):
// which flow of which node the request is for, and an HMAC-SHA256 over that with the cluster key
// (the same on every node, kept in PostgreSQL: secrets.ts), so that only a node of the cluster can
// make a node send something over a client's connection. The MAC also covers the request's
// Call-ID, CSeq and method: a token seen on the wire is good for that one transaction only.
//
// Form: `<payload>.<mac>`, both base64url (characters a SIP URI parameter takes as they are).
// The payload is JSON: { n: node, i: flow id, p: protocol, l: [local address, port], r: [remote address, port] }.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FlowRef } from '../registrar/location.ts';
import type { SipRequest, TransportProtocol } from '../sip/index.ts';

/** bytes of the HMAC kept: 128 bits, plenty for a MAC checked online */
const MAC_BYTES = 16;
const PROTOCOLS: ReadonlySet<string> = new Set<TransportProtocol>(['udp', 'tcp', 'tls', 'ws', 'wss']);

/** What of a request the MAC covers besides the flow. */
export type HopRequest = Pick<SipRequest, 'method' | 'headers'>;

export function signHopToken(key: Uint8Array, flow: FlowRef, request: HopRequest): string {
  if (flow.node === undefined) throw new TypeError('a hop token names the node that holds the flow');
  const payload = Buffer.from(JSON.stringify({ n: flow.node, i: flow.id, p: flow.protocol, l: [flow.local.address, flow.local.port], r: [flow.remote.address, flow.remote.port] })).toString('base64url');
  return `${payload}.${mac(key, payload, request).toString('base64url')}`;
}

/** The flow a token names, when `key` made it for this request; null otherwise (never throws). */
export function verifyHopToken(key: Uint8Array, token: string, request: HopRequest): FlowRef | null {
  const dot = token.indexOf('.');
  if (dot <= 0) return null;
  const payload = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = mac(key, payload, request);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  let o: { n?: unknown; i?: unknown; p?: unknown; l?: unknown; r?: unknown };
  try {
    o = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof o;
  } catch {
    return null;
  }
  // signed by a node, so well formed unless the nodes run different versions: checked all the same
  const local = endpoint(o.l);
  const remote = endpoint(o.r);
  if (typeof o.n !== 'string' || typeof o.i !== 'string' || typeof o.p !== 'string' || !PROTOCOLS.has(o.p) || local === null || remote === null) return null;
  return { node: o.n, id: o.i, protocol: o.p as TransportProtocol, local, remote };
}

function mac(key: Uint8Array, payload: string, request: HopRequest): Buffer {
  const h = createHmac('sha256', key);
  h.update(`${payload}\n${request.method}\n${request.headers.get('call-id') ?? ''}\n${request.headers.get('cseq') ?? ''}`);
  return h.digest().subarray(0, MAC_BYTES);
}

function endpoint(v: unknown): { address: string; port: number } | null {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || !Number.isInteger(v[1])) return null;
  return { address: v[0], port: v[1] as number };
}

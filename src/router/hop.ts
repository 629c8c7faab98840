// Relaying between the nodes of a cluster (issue 16), as Kamailio clusters do with Path (RFC 3327)
// and flow tokens (RFC 5626): a request for a binding whose flow another node holds goes to that
// node, never to the client (a node opens no connection to clients). It carries a top Route
// naming that node, whose `parley-hop` parameter is the flow reference signed with the cluster
// key (ClusterHops.sign). The receiving node checks the signature before anything else (no
// challenge, no routing by domain: the sending node did both), takes its Route off, adds its Via
// and sends the request over the client's flow in a transaction of its own; the answer goes back
// the way it came, Via by Via.
//
//   node A ──MESSAGE sip:alice@client; Route: <sip:nodeB:5060;transport=tcp;lr;parley-hop=TOKEN>──▶ node B ──▶ alice's flow

import type { Binding, FlowRef } from '../registrar/location.ts';
import type { ClusterHops, Incoming, SipContext } from './context.ts';
import { reply, send } from './reply.ts';
import { type Flow, newBranch, parseNameAddr, parseUri, sentBy, type SipRequest, type SipResponse, viaTransport } from '../sip/index.ts';

/** The Route parameter carrying the signed flow reference. */
export const HOP_PARAM = 'parley-hop';

/** The node holding a binding's flow when it is another node of the cluster; undefined: this node (or no cluster). */
export function remoteNode(ctx: SipContext, binding: Binding): string | undefined {
  const node = binding.flow.node;
  return ctx.cluster === undefined || node === undefined || node === ctx.cluster.node ? undefined : node;
}

/**
 * Routes `request` (a branch already made for the binding, its Via ours) to node `address` with
 * the token for `flow`: the receiving node finds the flow from it.
 */
export function routeOverHop(cluster: ClusterHops, request: SipRequest, flow: FlowRef, address: string): void {
  request.headers.prepend('route', `<sip:${address};transport=tcp;lr;${HOP_PARAM}=${cluster.sign(flow, request)}>`);
}

/**
 * The token of a relayed request: the `parley-hop` parameter of its top Route, '' when the
 * parameter has no value; undefined when the request is no hop (most requests: one string search).
 */
export function hopToken(request: SipRequest): string | undefined {
  const route = request.headers.get('route');
  if (route === undefined || !route.includes(HOP_PARAM)) return undefined;
  let params;
  try {
    params = parseUri(parseNameAddr(route).uri).params;
  } catch {
    return undefined;
  }
  if (!params.has(HOP_PARAM)) return undefined;
  return params.get(HOP_PARAM) ?? '';
}

/**
 * A request another node relayed here (its top Route carries `token`): checked, then sent over the
 * client's flow; resolves once it is answered. 403 when the token does not verify, 480 when the
 * flow it names is gone (the sending node then counts that binding as unreachable).
 */
export function relayHop(ctx: SipContext, incoming: Incoming, token: string): Promise<void> | void {
  const { request } = incoming;
  const cluster = ctx.cluster;
  if (cluster === undefined) {
    reply(ctx, incoming, 403, { warning: `this server is not a node of a cluster: a request relayed between nodes (Route with ${HOP_PARAM}) is refused` });
    return;
  }
  const ref = token === '' ? null : cluster.verify(token, request);
  if (ref === null) {
    incoming.log.warn({ remote: `${incoming.flow.remote.address}:${incoming.flow.remote.port}` }, 'relayed %s refused: its cluster hop token does not verify', request.method);
    reply(ctx, incoming, 403, { warning: `the cluster hop token of this request does not verify (missing, forged, altered, or signed with another cluster key)` });
    return;
  }
  if (ref.node !== cluster.node) {
    reply(ctx, incoming, 403, { warning: `the cluster hop names the flow of node ${ref.node}, not of this node (${cluster.node})` });
    return;
  }
  // the token authenticated the connection: another node of the cluster
  incoming.flow.markTrusted?.();
  const flow = ctx.resolveFlow(ref);
  if (flow === undefined || flow.closed) {
    reply(ctx, incoming, 480, { warning: `the connection of that registration is closed on node ${cluster.node}` });
    return;
  }
  const maxForwards = Number.parseInt(request.headers.get('max-forwards') ?? '70', 10);
  if (Number.isFinite(maxForwards) && maxForwards <= 0) {
    reply(ctx, incoming, 483, { warning: 'Max-Forwards reached 0 between the nodes of the cluster' });
    return;
  }
  return new Promise((resolve) => relayOver(ctx, incoming, flow, Number.isFinite(maxForwards) ? maxForwards : 70, resolve));
}

function relayOver(ctx: SipContext, incoming: Incoming, flow: Flow, maxForwards: number, done: () => void): void {
  const { request } = incoming;
  const headers = request.headers.clone();
  // our Route is used up (RFC 3261 §16.4); the client gets the request as the sending node made it
  headers.shift('route');
  headers.set('max-forwards', String(maxForwards - 1));
  headers.prepend('via', `SIP/2.0/${viaTransport(flow.protocol)} ${sentBy(flow)};branch=${newBranch()}`);
  const relayed: SipRequest = { kind: 'request', method: request.method, uri: request.uri, headers, body: request.body };
  ctx.transactions.sendRequest(relayed, flow, {
    onFinal(response: SipResponse) {
      response.headers.shift('via');
      send(incoming, response);
      done();
    },
    onTimeout() {
      reply(ctx, incoming, 408, { warning: 'the device did not answer in time' });
      done();
    },
    onTransportError() {
      reply(ctx, incoming, 480, { warning: 'the connection of that registration failed' });
      done();
    },
  });
}

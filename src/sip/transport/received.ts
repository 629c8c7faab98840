import { formatVia, parseVia } from '../grammar.ts';
import type { SipRequest, Via } from '../message.ts';
import type { Endpoint } from './flow.ts';

/**
 * RFC 3261 §18.2.1 and RFC 3581 §4: the top Via of a received request learns where the request
 * really came from — `received` when the sent-by host is not the source address, and the source
 * port in `rport` when the client asked for it. Responses copy the Via, so the client sees its
 * public address; Parley itself always answers to the source (symmetric response routing).
 * Returns the top Via as parsed (and stamped), so that the transaction layer need not parse it again.
 */
export function stampReceived(request: SipRequest, source: Endpoint): Via | undefined {
  const top = request.headers.get('via');
  if (top === undefined) return undefined;
  const via = parseVia(top);
  const host = via.host.startsWith('[') ? via.host.slice(1, -1) : via.host;
  let changed = false;
  if (host.toLowerCase() !== source.address.toLowerCase()) {
    via.params.set('received', source.address);
    changed = true;
  }
  if (via.params.has('rport')) {
    via.params.set('rport', String(source.port));
    changed = true;
  }
  if (changed) {
    request.headers.shift('via');
    request.headers.prepend('via', formatVia(via));
  }
  return via;
}

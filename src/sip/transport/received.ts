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
  const received = host.toLowerCase() === source.address.toLowerCase() ? undefined : source.address;
  const rport = via.params.has('rport') ? String(source.port) : undefined;
  if (received === undefined && rport === undefined) return via;
  const hadReceived = via.params.has('received');
  if (received !== undefined) via.params.set('received', received);
  if (rport !== undefined) via.params.set('rport', rport);
  request.headers.replaceFirst('via', stampedText(top, hadReceived, received, rport) ?? formatVia(via));
  return via;
}

/** `;rport`, `;rport=` or `;rport=1234` with the spacing §7.3.1 allows, ending where the parameter ends. */
const RPORT_PARAM = /;[ \t]*rport(?:[ \t]*=[ \t]*[0-9]*)?[ \t]*(?=;|$)/i;

/**
 * The Via as received with the two parameters written into it (rport's value in place, received
 * appended, as formatVia would place them), everything else as the client wrote it: a text edit
 * instead of writing the whole Via again from its parts, for every request. undefined when the
 * edit cannot be sure of the text (a quoted value could hide a ";", a received to replace), for
 * formatVia to write it. `top` has been parsed: its parameters are well-formed.
 */
function stampedText(top: string, hadReceived: boolean, received: string | undefined, rport: string | undefined): string | undefined {
  if (hadReceived || top.includes('"')) return undefined;
  let text = top;
  if (rport !== undefined) {
    const m = RPORT_PARAM.exec(text);
    if (m === null) return undefined;
    text = `${text.slice(0, m.index)};rport=${rport}${text.slice(m.index + m[0].length)}`;
  }
  return received === undefined ? text : `${text};received=${received}`;
}

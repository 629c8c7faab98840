import { parseVia } from '../grammar.ts';
import { detach } from '../chars.ts';
import { randomToken } from '../random.ts';
import type { SipMessage, Via } from '../message.ts';
import { parseCSeq } from '../grammar.ts';

/** RFC 3261 §8.1.1.7: branches that begin with the magic cookie are unique per transaction. */
export const MAGIC_COOKIE = 'z9hG4bK';

/** A branch for a request Parley sends: the magic cookie and 72 random bits. */
export function newBranch(): string {
  return MAGIC_COOKIE + randomToken(9);
}

/**
 * The key matching a request to its server transaction (§17.2.3): the top Via's branch and sent-by,
 * and the method (CANCEL has its own transaction with the same branch). For pre-RFC 3261 peers that
 * send no magic cookie, the RFC 2543 identity of the request stands in. `parsedVia` is the top Via
 * when the caller has parsed it already.
 */
export function serverTransactionKey(message: SipMessage, method: string, parsedVia?: Via): string {
  const topVia = message.headers.get('via');
  if (topVia === undefined) throw new Error('message without Via reached the transaction layer');
  const via = parsedVia ?? parseVia(topVia);
  const branch = via.params.get('branch');
  const sentBy = `${via.host.toLowerCase()}:${via.port ?? ''}`;
  // the key lives as long as the transaction (32 s after the answer over UDP): detached from the message text
  if (branch && branch.startsWith(MAGIC_COOKIE)) return detach(`${branch}|${sentBy}|${method}`);
  const cseq = parseCSeq(message.headers.get('cseq') ?? '');
  return detach(`2543|${message.headers.get('call-id')}|${cseq.seq}|${message.headers.get('from')}|${topVia}|${method}`);
}

/**
 * The key matching a response to its client transaction (§17.1.3): top Via branch and CSeq method.
 * Only these two are read: the top Via of a response is the one this server wrote, echoed, and a
 * fan-out reads 10,000 of them in a burst (the 200s to its NOTIFYs), where parsing the whole Via
 * and CSeq cost about as much as the rest of matching. A Via or CSeq the quick reading cannot be
 * sure of (quoted parameter values, a malformed CSeq) is parsed in full.
 */
export function clientTransactionKey(message: SipMessage): string {
  const topVia = message.headers.get('via');
  if (topVia === undefined) throw new Error('message without Via reached the transaction layer');
  const cseq = message.headers.get('cseq') ?? '';
  return `${viaBranch(topVia)}|${cseqMethod(cseq)}`;
}

/** `;branch=value` with the spacing and letter case §7.3.1 and §20.42 allow; the value a gen-value (§25.1), as the parameter parser reads it */
const BRANCH_PARAM = /;[ \t]*branch[ \t]*=[ \t]*([^\x00-\x20;,"<>\x7f]*)/i;

/** The first branch parameter of a Via's value, as written ('' when it has none); the full parse when quoting could hide a ";". */
function viaBranch(via: string): string {
  if (via.includes('"')) return parseVia(via).params.get('branch') ?? '';
  return BRANCH_PARAM.exec(via)?.[1] ?? '';
}

/** `1*DIGIT SP Method`, the usual writing, read by a slice; anything else through the full parse. */
const PLAIN_CSEQ = /^[0-9]{1,9} [A-Za-z]+$/;

function cseqMethod(cseq: string): string {
  return PLAIN_CSEQ.test(cseq) ? cseq.slice(cseq.indexOf(' ') + 1) : parseCSeq(cseq).method;
}

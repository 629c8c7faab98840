// Warming the SIP layer's hot code before the sockets open. V8 runs a function interpreted until it
// has been called often, and compiles it then; a server that starts under load spends its first
// seconds that way (the first 3,000 REGISTERs cost twice the CPU of the next 3,000), the requests queue, and
// the first second's answers come hundreds of milliseconds late. Here the parser, the digest check,
// the response writer and the grammar they use run on made-up requests for a moment at start (no
// I/O, no state outside this file), so that the first real requests find them compiled.

import { computeHa1, computeResponse, formatNonceCount, NonceIssuer, verifyCredentials } from './digest.ts';
import type { DigestAlgorithm } from './digest.ts';
import { formatAuthField, parseAuthField } from './auth-field.ts';
import { formatVia, parseNameAddr, parseVia } from './grammar.ts';
import { SipParseError } from './errors.ts';
import { DEFAULT_SIP_LIMITS } from './limits.ts';
import type { SipLimits } from './limits.ts';
import type { SipRequest } from './message.ts';
import { parseMessage } from './parser.ts';
import { createResponse } from './response.ts';
import { serialize } from './serializer.ts';
import { parseUri } from './uri.ts';
import { checkRequest } from './validate.ts';
import { stampReceived } from './transport/received.ts';

const REALM = 'warm.invalid';
const SOURCE = { address: '192.0.2.1', port: 5060 };

/**
 * Runs the request path's pure code `rounds` times over a REGISTER and a MESSAGE with digest
 * credentials (200 rounds: the functions are optimized by then, for ~0.1 s of CPU). Returns whether
 * it ran through: with limits configured tighter than these requests (a parse error), it stops
 * early, which only leaves the rest cold.
 */
export function warmSipPaths(limits: SipLimits = DEFAULT_SIP_LIMITS, rounds = 200): boolean {
  try {
    warmRounds(limits, rounds);
    return true;
  } catch (err) {
    if (err instanceof SipParseError) return false;
    throw err;
  }
}

function warmRounds(limits: SipLimits, rounds: number): void {
  const nonces = new NonceIssuer({ secret: Buffer.alloc(32, 7) });
  const algorithms: DigestAlgorithm[] = ['MD5', 'SHA-256'];
  const ha1 = { MD5: computeHa1('MD5', 'warm', REALM, 'warm'), 'SHA-256': computeHa1('SHA-256', 'warm', REALM, 'warm') };
  for (let i = 0; i < rounds; i++) {
    const algorithm = algorithms[i % 2] as DigestAlgorithm;
    const nonce = nonces.issue(SOURCE.address);
    for (const [method, uri, header] of [['REGISTER', `sip:${REALM}`, 'Authorization'], ['MESSAGE', `sip:bob@${REALM}`, 'Proxy-Authorization']] as const) {
      const nc = formatNonceCount(1);
      const cnonce = `c${i}`;
      const response = computeResponse({ algorithm, ha1: ha1[algorithm], method, uri, nonce, qop: 'auth', nc, cnonce });
      const credentials = formatAuthField({
        scheme: 'Digest',
        params: new Map([['username', 'warm'], ['realm', REALM], ['nonce', nonce], ['uri', uri], ['response', response], ['algorithm', algorithm], ['qop', 'auth'], ['nc', nc], ['cnonce', cnonce]]),
      });
      const text =
        `${method} ${uri} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP ${SOURCE.address}:${SOURCE.port};branch=z9hG4bK-warm-${i};rport\r\n` +
        `From: <sip:warm@${REALM}>;tag=w${i}\r\n` +
        `To: <sip:${method === 'REGISTER' ? 'warm' : 'bob'}@${REALM}>\r\n` +
        `Call-ID: ${i}-warm@${SOURCE.address}\r\n` +
        `CSeq: 2 ${method}\r\n` +
        (method === 'REGISTER' ? `Contact: <sip:warm@${SOURCE.address}:${SOURCE.port};transport=udp>\r\nExpires: 600\r\n` : 'Content-Type: text/plain;charset=UTF-8\r\n') +
        `${header}: ${credentials}\r\n` +
        'Max-Forwards: 70\r\n' +
        `Content-Length: ${method === 'MESSAGE' ? 5 : 0}\r\n\r\n` +
        (method === 'MESSAGE' ? 'hello' : '');
      const request = parseMessage(Buffer.from(text, 'latin1'), limits) as SipRequest;
      const via = stampReceived(request, SOURCE);
      if (via !== undefined) checkRequest(request, via);
      parseUri(parseNameAddr(request.headers.get('to') ?? '').uri);
      const field = parseAuthField(request.headers.get(header.toLowerCase()) ?? '');
      verifyCredentials(field, { method, requestUri: uri, expectedRealm: REALM, nonces, source: SOURCE.address, ha1For: (a) => ha1[a] });
      const challenge = createResponse(request, method === 'REGISTER' ? 401 : 407);
      challenge.headers.append(method === 'REGISTER' ? 'WWW-Authenticate' : 'Proxy-Authenticate', `Digest realm="${REALM}", nonce="${nonce}", algorithm=MD5, qop="auth"`);
      serialize(challenge);
      const ok = createResponse(request, 200);
      ok.headers.append('Date', 'Mon, 07 Dec 2026 09:00:00 GMT');
      // a relayed request: the answer comes back as a response to parse
      const relayed = serialize(ok);
      const answer = parseMessage(relayed, limits);
      formatVia(parseVia(answer.headers.get('via') ?? ''));
    }
  }
}

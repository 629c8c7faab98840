// Network-asserted identity (RFC 3325, and RFC 5876 for requests other than INVITE): what the
// recipient of a request Parley forwards may believe about its sender. Pure: header values in,
// header values out.
//
// Parley authenticates every sender (digest, RFC 3261 §22.3) and is the only element that can
// vouch for them, so the identity headers a client sends are never passed on:
//   - P-Asserted-Identity: RFC 3325 §5: "If the proxy received the message from an element that
//     it does not trust and there is a P-Asserted-Identity header present which contains a SIP or
//     SIPS URI, the proxy MUST replace that SIP or SIPS URI with a single SIP or SIPS URI or remove
//     this header field." A client is such an element: Parley removes it and asserts its own.
//   - P-Preferred-Identity: §6, the user's hint "which of multiple valid identities … should be
//     asserted"; "The proxy MUST remove the user-provided P-Preferred-Identity header from any
//     message it forwards." A Parley user has one identity (see preferredIdentityRefusal).
//   - Identity (RFC 8224, compact form "y") and Identity-Info (RFC 4474, obsoleted by 8224): a
//     STIR signature Parley does not verify; passed on unverified it would lend the sender's claim
//     a credibility nobody checked (RFC 8224 §6.2.2 leaves verification to the verifier, and a
//     recipient behind Parley has no way to know Parley skipped it).

import { cpimHeader, type Headers, parseCpim, parseNameAddr, parseUri, SipParseError, splitHeaderList, unescapeUriPart } from '../sip/index.ts';

/** The headers a client may not set on what Parley forwards (canonical names; `y` is read as `identity`). */
export const CLIENT_IDENTITY_HEADERS: ReadonlySet<string> = new Set(['p-asserted-identity', 'p-preferred-identity', 'identity', 'identity-info']);

/** Who Parley vouches for: the authenticated user and their display name from the directory. */
export interface AssertedIdentity {
  /** `alice@parley.local` */
  address: string;
  /** the directory's display name; null or '' when the user has none */
  displayName: string | null;
}

/**
 * The P-Asserted-Identity value for a user (RFC 3325 §9.1: name-addr with a SIP URI):
 * `"Alice Liddell" <sip:alice@parley.local>`. The display name is a quoted-string (RFC 3261
 * §25.1: `\` and `"` escaped). The directory refuses control characters in display names; one
 * that is there anyway (a database edited by hand) costs the name, not the header. Written by hand
 * rather than with formatNameAddr: this runs for every relayed message and its answer, and the
 * address is the directory's own, with nothing to escape.
 */
export function assertedIdentityValue(identity: AssertedIdentity): string {
  const name = identity.displayName;
  if (name === null || name === '' || UNQUOTABLE.test(name)) return `<sip:${identity.address}>`;
  return `"${QUOTED_SPECIALS.test(name) ? name.replace(QUOTED_SPECIALS_ALL, '\\$&') : name}" <sip:${identity.address}>`;
}

const UNQUOTABLE = /[\r\n\0]/;
const QUOTED_SPECIALS = /[\\"]/;
const QUOTED_SPECIALS_ALL = /[\\"]/g;

/**
 * Replaces whatever identity the client claimed with the one Parley asserts: removes every
 * CLIENT_IDENTITY_HEADERS field and appends one P-Asserted-Identity. Changes `headers` in place.
 *
 * Privacy (RFC 3323, RFC 3325 §9.3): a request with `Privacy: id` asks that the asserted identity
 * not leave the trust domain. Every recipient this is used for is a user of the same organisation,
 * inside its trust domain, so the assertion stays (and the From address, which must be the
 * signed-in user's, names them anyway); the Privacy header itself is passed on. The trust domain
 * ends at the federation link (issue 15): what goes to a partner carries no identity headers at
 * all (partner.ts, toPartner; message-partner.ts for answers), and what comes from a partner has
 * its own removed and the From asserted at domain level (message-partner.ts).
 */
export function assertIdentity(headers: Headers, identity: AssertedIdentity): void {
  // Most clients send none of these: look once, and delete (four scans) only when there is one.
  for (const field of headers) {
    if (CLIENT_IDENTITY_HEADERS.has(field.name)) {
      for (const name of CLIENT_IDENTITY_HEADERS) headers.delete(name);
      break;
    }
  }
  headers.append('p-asserted-identity', assertedIdentityValue(identity));
}

/**
 * RFC 3325 §6: a P-Preferred-Identity that names no valid identity of the authenticated user lets
 * the proxy "add a P-Asserted-Identity header of its own construction, or … reject the request
 * (for example, with a 403 Forbidden)". Parley rejects: a client that asks to be seen as someone
 * else is told no, as when its From names someone else, instead of having a message delivered
 * under an identity other than the one it asked for without knowing it. A preference for the
 * user's own address (sip: or sips:, any display name) is harmless and accepted.
 *
 * Returns why the request must be refused, or undefined when every P-Preferred-Identity (if any)
 * names `address` (`alice@parley.local`).
 */
export function preferredIdentityRefusal(headers: Headers, address: string): string | undefined {
  const values = headers.getAll('p-preferred-identity');
  for (const value of values) {
    let entries: string[];
    try {
      entries = splitHeaderList(value);
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
      return `P-Preferred-Identity: ${err.message}`;
    }
    for (const entry of entries) {
      let named: string;
      try {
        const uri = parseUri(parseNameAddr(entry).uri);
        named = `${uri.user ?? ''}@${uri.host}`;
      } catch (err) {
        if (!(err instanceof SipParseError)) throw err;
        // a tel: URI lands here too: Parley users have no telephone numbers to prefer
        return `P-Preferred-Identity ${entry.slice(0, 120)} is not an identity of ${address}: ${err.message}`;
      }
      if (named !== address) return `P-Preferred-Identity ${named} is not an identity of ${address}; a Parley user has one identity, their sign-in address`;
    }
  }
  return undefined;
}

/**
 * A message/cpim body (RFC 3862) carries a From of its own (§3.1), which a client may show as the
 * sender instead of the SIP one: it must name the sender Parley established (the authenticated
 * user, or a partner's user its certificate vouched for), as the SIP From must.
 * Returns why the request must be refused, or undefined when the body is CPIM whose From (if any)
 * is `address`. The URI may be `im:`, `pres:`, `sip:` or `sips:` (§3.1 and RFC 3860).
 */
export function cpimSenderRefusal(body: Uint8Array, address: string): string | undefined {
  const cpim = parseCpim(body);
  if (cpim === undefined) return 'the message/cpim body is not RFC 3862 CPIM (header blocks, blank lines, a Content-Type)';
  const from = cpimHeader(cpim.headers, 'From');
  if (from === undefined) return undefined;
  const uri = /<([^>]*)>/.exec(from)?.[1] ?? from.trim();
  const m = /^(?:im|pres|sips?):([^@;?>\s]+)@([^;?>\s]+)/i.exec(uri);
  let named: string | undefined;
  if (m !== null) {
    try {
      named = `${unescapeUriPart(m[1] as string)}@${(m[2] as string).toLowerCase()}`;
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
    }
  }
  if (named === address) return undefined;
  return `the CPIM From ${from.slice(0, 120)} is not ${address}: a message/cpim body must name its sender, the From of the SIP request`;
}

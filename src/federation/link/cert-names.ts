// Who a partner's certificate names, and whether it names a host (RFC 6125). Pure: no I/O.
//
// RFC 6125 §6.4: the reference identifier (the host we expect: an SRV target, a ProxyFqdn) is
// compared with the certificate's subject alternative DNS names; the subject CN only when the
// certificate has no DNS name at all (§6.4.4, as older CAs issued them). §6.4.3 wildcards: we take
// only the whole left-most label `*` (`*.example.com`), matching exactly one label, never a partial
// one (`f*.example.com`), never one above a registrable name (`*.com`), never an IP address.

import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';

/** The certificate's DNS names, lower case, without a trailing dot: its SAN dNSNames, else its subject CN. */
export function certificateNames(cert: Pick<PeerCertificate, 'subjectaltname' | 'subject'> | undefined): string[] {
  if (cert === undefined || cert === null) return [];
  const names = sanEntries(cert.subjectaltname ?? '', 'DNS').map(normalise).filter((n) => n !== '');
  if (names.length > 0) return [...new Set(names)];
  const cn = cert.subject?.CN;
  const first = Array.isArray(cn) ? cn[0] : cn;
  return typeof first === 'string' && first !== '' ? [normalise(first)] : [];
}

/** The certificate's SAN iPAddress entries, as node prints them. */
export function certificateAddresses(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): string[] {
  return cert === undefined || cert === null ? [] : sanEntries(cert.subjectaltname ?? '', 'IP Address').map((a) => a.toLowerCase());
}

/** Whether a name presented in a certificate (`sip.example.com`, `*.example.com`) names `host`. */
export function nameMatches(presented: string, host: string): boolean {
  const p = normalise(presented);
  const h = normalise(host);
  if (p === '' || h === '' || isIP(h) !== 0) return false;
  if (!p.includes('*')) return p === h;
  // only `*` as the whole left-most label, over at least two more labels
  if (!p.startsWith('*.') || p.indexOf('*', 1) >= 0) return false;
  const base = p.slice(2);
  if (base.split('.').length < 2) return false;
  const dot = h.indexOf('.');
  return dot > 0 && h.slice(dot + 1) === base;
}

/** The first of `names` that names one of `hosts`, or undefined. */
export function matchingName(names: readonly string[], hosts: readonly string[]): string | undefined {
  return names.find((n) => hosts.some((h) => nameMatches(n, h)));
}

/**
 * tls.connect's checkServerIdentity for a partner's server: its certificate must name the host we
 * connected for (the SRV target or ProxyFqdn; for an IP address, one of its SAN IP addresses).
 * Returns the error that fails the handshake, undefined when it names the host.
 */
export function checkPartnerIdentity(host: string, cert: PeerCertificate): Error | undefined {
  const h = normalise(host);
  if (isIP(h) !== 0) {
    if (certificateAddresses(cert).includes(h)) return undefined;
    return identityError(`the certificate of ${host} names no IP address ${host} (it has ${describe(certificateAddresses(cert))})`);
  }
  const names = certificateNames(cert);
  if (names.some((n) => nameMatches(n, h))) return undefined;
  return identityError(`the certificate of ${host} does not name it: it names ${describe(names)}`);
}

function identityError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
}

function describe(list: readonly string[]): string {
  return list.length === 0 ? 'nothing' : list.join(', ');
}

function normalise(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

/**
 * Entries of one kind in node's subjectaltname text: `DNS:a.example, DNS:*.b.example, IP Address:192.0.2.1`.
 * A value with a comma or a quote is written as a JSON string (node's escaping).
 */
function sanEntries(text: string, kind: string): string[] {
  const out: string[] = [];
  const re = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[1] !== kind) continue;
    const raw = m[2] ?? '';
    if (raw.startsWith('"')) {
      try {
        out.push(JSON.parse(raw) as string);
      } catch {
        // not a name we could read: it names nothing
      }
    } else out.push(raw);
  }
  return out;
}

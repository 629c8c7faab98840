// The SIP address of a user, `alice@parley.local`: what we accept and how we normalise it.
//
// RFC 3261 §25.1 (the subset we accept):
//   user        = 1*( unreserved / escaped )         (no user-unreserved "&=+$,;?/": they make
//                                                      addresses and digest usernames ambiguous)
//   unreserved  = alphanum / mark
//   mark        = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
//   escaped     = "%" HEXDIG HEXDIG
//   hostname    = *( domainlabel "." ) toplabel      (no trailing dot, no IP address)
//   domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
//   toplabel    = ALPHA / ALPHA *( alphanum / "-" ) alphanum
//
// Normalisation: an escape of an unreserved character stands for that character (§19.1.4), so
// `%61lice` is `alice`; escapes of anything else are refused, which keeps user parts plain ASCII
// and equal to the digest username. The whole address is lower-cased: §19.1.4 compares user parts
// case-sensitively, but an organisation's accounts are one per person whatever the case typed.

import { DirectoryError } from './errors.ts';

export interface SipAddress {
  /** `alice@parley.local` */
  address: string;
  /** `alice` */
  user: string;
  /** `parley.local` */
  domain: string;
}

export const MAX_USER_LENGTH = 64;
const MAX_DOMAIN_LENGTH = 253;
const UNRESERVED = /^[a-z0-9\-_.!~*'()]$/i;
const EXAMPLE = 'write it as alice@parley.local';

/**
 * Parses `alice@parley.local`, `sip:alice@parley.local` (or `sips:`), or, when `defaultDomain` is
 * given, a bare `alice`. Throws DirectoryError BAD_ADDRESS saying what is wrong.
 */
export function parseAddress(input: string, defaultDomain?: string): SipAddress {
  const text = input.trim();
  if (text === '') throw bad(`the address is empty; ${EXAMPLE}`);
  const rest = text.replace(/^sips?:/i, '');
  if (/[<>"\s]/.test(rest)) throw bad(`"${text}" is not a bare address; ${EXAMPLE}, without a display name or angle brackets`);
  const extra = /[;?]/.exec(rest);
  if (extra) throw bad(`"${text}" carries URI ${extra[0] === ';' ? 'parameters' : 'headers'} ("${rest.slice(extra.index)}"); give the address alone, ${EXAMPLE}`);

  const parts = rest.split('@');
  if (parts.length > 2) throw bad(`"${text}" has more than one @; ${EXAMPLE}`);
  const [rawUser = '', rawDomain] = parts;
  let domainText = rawDomain;
  if (domainText === undefined) {
    if (defaultDomain === undefined) throw bad(`"${text}" has no domain; ${EXAMPLE}`);
    domainText = defaultDomain;
  }
  const user = parseUser(rawUser, text);
  const domain = parseDomain(domainText, text);
  return { address: `${user}@${domain}`, user, domain };
}

function parseUser(raw: string, text: string): string {
  if (raw === '') throw bad(`"${text}" has an empty user part before the @; ${EXAMPLE}`);
  if (raw.includes(':')) throw bad(`"${text}" contains ":" in its user part (a password?); give the address alone, ${EXAMPLE}`);
  let user = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] ?? '';
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/i.test(hex)) throw bad(`"${text}" has a broken escape "%${hex}" in its user part; an escape is % and two hex digits`);
      const decoded = String.fromCharCode(Number.parseInt(hex, 16));
      if (!UNRESERVED.test(decoded)) {
        throw bad(`"${text}": the escape %${hex} stands for ${JSON.stringify(decoded)}, which is not allowed in a user part; use letters, digits and - _ . ! ~ * ' ( )`);
      }
      user += decoded;
      i += 2;
    } else if (UNRESERVED.test(ch)) {
      user += ch;
    } else {
      throw bad(`"${text}" contains ${JSON.stringify(ch)} in its user part; use letters, digits and - _ . ! ~ * ' ( )`);
    }
  }
  if (user.length > MAX_USER_LENGTH) throw bad(`the user part of "${text}" has ${user.length} characters; at most ${MAX_USER_LENGTH} are allowed`);
  return user.toLowerCase();
}

function parseDomain(raw: string, text: string): string {
  const domain = raw.toLowerCase();
  if (domain === '') throw bad(`"${text}" has an empty domain after the @; ${EXAMPLE}`);
  if (/^\d+(\.\d+){3}$/.test(domain) || domain.startsWith('[')) {
    throw bad(`"${text}" has the IP address ${domain} as its domain; users belong to a domain name such as parley.local`);
  }
  if (domain.includes(':')) throw bad(`"${text}" carries a port; give the domain alone, ${EXAMPLE}`);
  if (domain.endsWith('.')) throw bad(`"${text}" ends its domain with a dot; remove it`);
  if (domain.length > MAX_DOMAIN_LENGTH) throw bad(`the domain of "${text}" has ${domain.length} characters; at most ${MAX_DOMAIN_LENGTH} are allowed`);
  const labels = domain.split('.');
  for (const label of labels) {
    if (label === '') throw bad(`the domain of "${text}" has an empty label (two dots in a row, or a leading dot)`);
    if (label.length > 63) throw bad(`the domain label "${label}" of "${text}" is longer than 63 characters`);
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(label)) {
      throw bad(`the domain label "${label}" of "${text}" is not valid; use letters, digits and inner hyphens`);
    }
  }
  const top = labels[labels.length - 1] ?? '';
  if (!/^[a-z]/.test(top)) throw bad(`the last label "${top}" of the domain of "${text}" must start with a letter`);
  return domain;
}

function bad(message: string): DirectoryError {
  return new DirectoryError('BAD_ADDRESS', message);
}

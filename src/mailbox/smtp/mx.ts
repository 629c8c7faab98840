// Where mail for a domain goes when no route is configured for it: the domain's mail exchangers,
// as RFC 5321 §5.1 says an SMTP client finds them. Pure but for the lookups, which are passed in
// (src/dns's CachingResolver in the server, a table in tests); the random numbers too.
//
// RFC 5321 §5.1: "the SMTP client first looks up the MX RRs for the domain"; "If an empty list of
// MXs is returned, the address is treated as if it was associated with an implicit MX RR, with a
// preference of 0, pointing to that host"; the MX records are tried lowest preference first, and
// "if there are multiple destinations with the same preference … the sender-SMTP MUST randomize
// them to spread the load". RFC 7505: a domain whose only MX names "." (a null MX) accepts no mail,
// and the client fails the message at once rather than retry it.
import { isIP } from 'node:net';
import type { AddressLookup, MxLookup, MxRecord } from '../../dns/index.ts';

/** The lookups MX routing makes. */
export type MailDns = MxLookup & AddressLookup;

/** RFC 5321 §4.5.4 / §2.3.5: the SMTP port of mail exchangers. */
export const SMTP_PORT = 25;

export interface MailExchanger {
  /** the MX record's exchange (the domain itself for an implicit MX): the name its certificate would carry */
  readonly host: string;
  readonly preference: number;
  /** IPv4 then IPv6 */
  readonly addresses: readonly string[];
}

export type Exchangers =
  | { readonly ok: true; readonly exchangers: readonly MailExchanger[]; readonly implicit: boolean }
  /** permanent: the DNS said the domain takes no mail (retrying will not change it); else it could not be asked */
  | { readonly ok: false; readonly permanent: boolean; readonly reason: string };

/** Lowest preference first; records of one preference in a random order (Fisher–Yates with `random`, in [0, 1)). */
export function orderMx(records: readonly MxRecord[], random: () => number = Math.random): MxRecord[] {
  const preferences = [...new Set(records.map((r) => r.preference))].sort((a, b) => a - b);
  return preferences.flatMap((preference) => {
    const same = records.filter((r) => r.preference === preference);
    for (let i = same.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [same[i], same[j]] = [same[j] as MxRecord, same[i] as MxRecord];
    }
    return same;
  });
}

/** Whether an MX answer is RFC 7505's null MX: "." and nothing else. */
export function nullMx(records: readonly MxRecord[]): boolean {
  return records.length > 0 && records.every((r) => r.exchange === '');
}

/** The mail exchangers of `domain` in the order to try them, each with its addresses; or why there are none. */
export async function mailExchangers(dns: MailDns, domain: string, random: () => number = Math.random): Promise<Exchangers> {
  let answer;
  try {
    answer = await dns.mx(domain);
  } catch (err) {
    return { ok: false, permanent: false, reason: `the MX records of ${domain} cannot be looked up: ${(err as Error).message}` };
  }
  if (nullMx(answer.records)) return { ok: false, permanent: true, reason: `${domain} accepts no mail: its MX record is "." (a null MX, RFC 7505)` };
  // a null MX should stand alone (RFC 7505 §3); beside other records it is no host to try
  let records = answer.records.filter((r) => r.exchange !== '');
  const implicit = records.length === 0;
  if (implicit) {
    if (answer.noSuchName === true) return { ok: false, permanent: true, reason: `${domain} does not exist (the DNS answered NXDOMAIN to its MX query)` };
    records = [{ preference: 0, exchange: domain }];
  }
  const looked = await Promise.all(orderMx(records, random).map(async (r) => {
    if (isIP(r.exchange) !== 0) return { record: r, addresses: [r.exchange] };
    try {
      return { record: r, addresses: (await dns.addresses(r.exchange)).records };
    } catch (err) {
      return { record: r, addresses: [], problem: `${r.exchange}: ${(err as Error).message}` };
    }
  }));
  const exchangers = looked.filter((x) => x.addresses.length > 0).map((x) => ({ host: x.record.exchange, preference: x.record.preference, addresses: x.addresses }));
  if (exchangers.length > 0) return { ok: true, exchangers, implicit };
  const problems = looked.flatMap((x) => ('problem' in x && x.problem !== undefined ? [x.problem] : []));
  if (problems.length > 0) return { ok: false, permanent: false, reason: `the mail exchangers of ${domain} cannot be looked up: ${problems.join('; ')}` };
  if (implicit) return { ok: false, permanent: true, reason: `${domain} has no MX, A or AAAA record: it receives no mail` };
  return { ok: false, permanent: true, reason: `no mail exchanger of ${domain} has an address: ${records.map((r) => r.exchange).join(', ')} ha${records.length === 1 ? 's' : 've'} no A or AAAA record` };
}

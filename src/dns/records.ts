// What the DNS answers, as the rest of the server reads it: the records of the types we ask for
// (SRV for the federation link, MX for outbound mail, A and AAAA for both) with the time they may
// be kept, and the lookups each user needs — an interface per lookup, so a caller names only what
// it asks and a test fakes only that.

export type DnsType = 'SRV' | 'MX' | 'A' | 'AAAA';

/** RFC 2782. */
export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  /** lower case, no trailing dot; `.` (RFC 2782: "the service is decidedly not available") as '' */
  readonly target: string;
}

/** RFC 1035 §3.3.9. */
export interface MxRecord {
  /** lower is preferred */
  readonly preference: number;
  /** lower case, no trailing dot; `.` (RFC 7505's null MX: "accepts no mail") as '' */
  readonly exchange: string;
}

/** What one question got: its records (none: the name or the type does not exist) and how long it holds. */
export interface DnsAnswer<T> {
  readonly records: readonly T[];
  /** seconds the answer may be cached (the smallest TTL of the records, or the negative TTL) */
  readonly ttl: number;
  /**
   * true when the server said the name itself does not exist (NXDOMAIN, RFC 1035 §4.1.1 RCODE 3);
   * absent when it exists (a name without records of the type asked is NODATA, RFC 2308 §2.2)
   */
  readonly noSuchName?: true;
}

export interface SrvLookup {
  /** SRV records of `name` (`_sipfederationtls._tcp.partner.example`), in the order they came */
  srv(name: string): Promise<DnsAnswer<SrvRecord>>;
}

export interface MxLookup {
  /** MX records of `domain`, in the order they came */
  mx(domain: string): Promise<DnsAnswer<MxRecord>>;
}

export interface AddressLookup {
  /** IPv4 then IPv6 addresses of a host */
  addresses(host: string): Promise<DnsAnswer<string>>;
}

/** Every lookup: what CachingResolver offers. */
export type Dns = SrvLookup & MxLookup & AddressLookup;

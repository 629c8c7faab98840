// DNS as the server asks it (src/federation's link: SRV and A/AAAA; src/mailbox's outbound SMTP:
// MX and A/AAAA): a caching stub resolver over dns-packet that keeps answers for their TTLs, asks
// the configured servers (config `dnsServers`) or the system's, over UDP then TCP.
export type { AddressLookup, Dns, DnsAnswer, DnsType, MxLookup, MxRecord, SrvLookup, SrvRecord } from './records.ts';
export { DNS_CODES, DnsError } from './errors.ts';
export { CachingResolver, readAnswer } from './resolver.ts';
export type { ResolverOptions } from './resolver.ts';
export { formatServer, parseServer, udpThenTcp } from './wire.ts';
export type { DnsServer, DnsWire } from './wire.ts';

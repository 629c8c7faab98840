// Partner domain names and proxy addresses as administrators write them. Pure: no I/O.

import { SettingsError } from '../settings/index.ts';

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** `Partner.Example.` → `partner.example`; throws SettingsError BAD_IDENTITY naming what is wrong. */
export function parseDomain(text: string, ownDomain?: string): string {
  const domain = text.trim().toLowerCase().replace(/\.$/, '');
  const problem = dnsNameProblem(domain, true);
  if (problem !== undefined) throw new SettingsError('BAD_IDENTITY', `"${text}" is not a partner domain: ${problem} (write a DNS name such as partner.example)`);
  if (ownDomain !== undefined && domain === ownDomain.toLowerCase()) {
    throw new SettingsError('BAD_IDENTITY', `${domain} is this server's own domain; a partner is another organisation's domain`);
  }
  return domain;
}

export interface HostPort {
  readonly host: string;
  /** undefined: the default for the transport (5061 for federation over TLS) */
  readonly port?: number;
}

/** `sip.partner.example` or `sip.partner.example:5061` (an IPv4 address works as host too); throws SettingsError BAD_VALUE. */
export function parseHostPort(text: string, parameter: string): HostPort {
  const trimmed = text.trim().toLowerCase();
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(trimmed);
  const fail = (why: string) => new SettingsError('BAD_VALUE', `-${parameter} "${text}": ${why}; write host or host:port, e.g. sip.partner.example:5061`);
  if (m === null) throw fail('not host or host:port (IPv6 addresses are not supported here)');
  const host = (m[1] ?? '').replace(/\.$/, '');
  const problem = /^\d+(\.\d+){3}$/.test(host) ? ipv4Problem(host) : dnsNameProblem(host, false);
  if (problem !== undefined) throw fail(problem);
  if (m[2] === undefined) return { host };
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw fail(`the port ${port} is not between 1 and 65535`);
  return { host, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.port === undefined ? hp.host : `${hp.host}:${hp.port}`;
}

function dnsNameProblem(name: string, needsDot: boolean): string | undefined {
  if (name === '') return 'it is empty';
  if (name.length > 253) return 'it is longer than 253 characters';
  const labels = name.split('.');
  if (needsDot && labels.length < 2) return 'it has a single label';
  const bad = labels.find((l) => !LABEL.test(l));
  if (bad !== undefined) return `the label "${bad}" is not 1 to 63 letters, digits or "-" (not at either end)`;
  if (/^\d+$/.test(labels[labels.length - 1] ?? '')) return 'it looks like an IP address, not a DNS name';
  return undefined;
}

function ipv4Problem(host: string): string | undefined {
  return host.split('.').every((part) => Number(part) <= 255 && !/^0\d/.test(part)) ? undefined : 'it is not an IPv4 address';
}

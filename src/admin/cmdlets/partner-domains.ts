// New-/Set-/Get-/Remove-CsAllowedDomain and -CsBlockedDomain (the partner domains, issue 15), and
// Test-CsFederationAccess, Parley's own: what the federation link would decide for a user and a
// domain. Both lists are declared by one function, so they cannot drift apart.
import { describeRoute, federationDecision, listDomains, parseDomain, addDomain, removeDomain, requireDomain, updateDomain, formatHostPort } from '../../federation/index.ts';
import type { DomainChanges, DomainList, PartnerDomain } from '../../federation/index.ts';
import { parseAddress } from '../../directory/index.ts';
import { wildcard } from '../parse.ts';
import type { BoundArgs, CmdletContext, CmdletSpec, OutputObject, ParameterSpec } from '../types.ts';
import { argString } from '../types.ts';
import { change } from './settings-nouns.ts';

const IDENTITY_HELP = 'the partner domain, e.g. partner.example';

function domainCmdlets(list: DomainList): CmdletSpec[] {
  const noun = list === 'allowed' ? 'CsAllowedDomain' : 'CsBlockedDomain';
  const what = list === 'allowed' ? 'an allowed partner domain' : 'a blocked domain (its users are refused, even with partner discovery)';
  const properties: ParameterSpec[] = [
    ...(list === 'allowed' ? [{ name: 'ProxyFqdn', type: 'string', nullable: true, help: "host[:port] of the partner's federation proxy; without it, its DNS SRV record" } as const] : []),
    { name: 'Comment', type: 'string', nullable: true, help: 'free text, e.g. who asked for it' },
  ];
  const identity = { name: 'Identity', type: 'string', position: 0, required: true, help: IDENTITY_HELP } as const;
  return [
    {
      name: `Get-${noun}`,
      synopsis: `shows the ${list} domains (all, one -Identity, or those matching -Filter)`,
      parameters: [{ ...identity, required: false }, { name: 'Filter', type: 'string', help: 'wildcard on Identity, e.g. "*.example"' }],
      async run(ctx, args) {
        const id = argString(args, 'Identity');
        const filter = argString(args, 'Filter');
        const domains = id !== undefined ? [await requireDomain(ctx.sql, list, domainOf(ctx, id))] : await listDomains(ctx.sql, list);
        const pattern = filter === undefined ? undefined : wildcard(filter);
        return domains.filter((d) => pattern === undefined || pattern.test(d.domain)).map((d) => outputOf(d));
      },
    },
    {
      name: `New-${noun}`,
      synopsis: `adds ${what}; a domain is on one list at most`,
      parameters: [identity, ...properties],
      async run(ctx, args) {
        return [outputOf(await addDomain(ctx.sql, list, domainOf(ctx, argString(args, 'Identity') ?? ''), changesOf(args), change(ctx, `New-${noun}`)))];
      },
    },
    {
      name: `Set-${noun}`,
      synopsis: `changes ${list === 'allowed' ? 'the ProxyFqdn or Comment' : 'the Comment'} of ${what.replace(/ \(.*$/, '')}`,
      parameters: [identity, ...properties],
      async run(ctx, args) {
        await updateDomain(ctx.sql, list, domainOf(ctx, argString(args, 'Identity') ?? ''), changesOf(args), change(ctx, `Set-${noun}`));
        return [];
      },
    },
    {
      name: `Remove-${noun}`,
      synopsis: `removes ${what.replace(/ \(.*$/, '')}`,
      parameters: [identity],
      async run(ctx, args) {
        await removeDomain(ctx.sql, list, domainOf(ctx, argString(args, 'Identity') ?? ''), change(ctx, `Remove-${noun}`));
        return [];
      },
    },
  ];
}

const TEST: CmdletSpec = {
  name: 'Test-CsFederationAccess',
  synopsis: "shows whether a user may talk to a partner domain, and if not which setting refuses it; Parley's own cmdlet",
  parameters: [
    { name: 'Identity', type: 'string', position: 0, required: true, help: 'the local user, e.g. alice@parley.local' },
    { name: 'Domain', type: 'string', position: 1, required: true, help: IDENTITY_HELP },
  ],
  async run(ctx, args) {
    const user = parseAddress(argString(args, 'Identity') ?? '', ctx.domain).address;
    const d = await federationDecision(ctx.sql, { localUser: user, partnerDomain: argString(args, 'Domain') ?? '', ownDomain: ctx.domain });
    return [[
      ['Identity', user],
      ['Domain', d.allowed ? d.domain : (argString(args, 'Domain') ?? '').trim().toLowerCase()],
      ['Allowed', d.allowed],
      ['Code', d.allowed ? null : d.code],
      ['Reason', d.allowed ? null : d.reason],
      ['Route', d.allowed ? describeRoute(d.route) : null],
    ]];
  },
};

export const PARTNER_DOMAIN_CMDLETS: readonly CmdletSpec[] = [...domainCmdlets('allowed'), ...domainCmdlets('blocked'), TEST];

function domainOf(ctx: CmdletContext, text: string): string {
  return parseDomain(text, ctx.domain);
}

function changesOf(args: BoundArgs): DomainChanges {
  const out: { ProxyFqdn?: string | null; Comment?: string | null } = {};
  for (const name of ['ProxyFqdn', 'Comment'] as const) {
    const v = args[name];
    if (typeof v === 'string' || v === null) out[name] = v;
  }
  return out;
}

function outputOf(d: PartnerDomain): OutputObject {
  return [
    ['Identity', d.domain],
    ['Domain', d.domain],
    ...(d.list === 'allowed' ? [['ProxyFqdn', d.proxyFqdn === null ? null : formatHostPort(d.proxyFqdn)] as const] : []),
    ['Comment', d.comment],
    ['WhenCreated', d.createdAt],
  ];
}

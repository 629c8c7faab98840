// Get-/Set-CsAccessEdgeConfiguration (Global only): whether this organisation federates at all,
// whether domains not on the allowed list are reachable (partner discovery), and how partners are
// reached (-UseDnsSrvRouting, or -UseDefaultRouting -DefaultRouteFqdn host[:port]). Issue 15.
import { ACCESS_EDGE_IDENTITY, accessEdgeValues, getAccessEdge, updateAccessEdge } from '../../federation/index.ts';
import type { AccessEdgeConfiguration } from '../../federation/index.ts';
import { SettingsError } from '../../settings/index.ts';
import type { BoundArgs, CmdletSpec, OutputObject } from '../types.ts';
import { argString } from '../types.ts';
import { change } from './settings-nouns.ts';

const NOUN = 'CsAccessEdgeConfiguration';
const IDENTITY = { name: 'Identity', type: 'string', position: 0, help: 'Global (the only instance)' } as const;

export const ACCESS_EDGE_CMDLETS: readonly CmdletSpec[] = [
  {
    name: `Get-${NOUN}`,
    synopsis: 'shows whether federation with partner domains is allowed, partner discovery, and how partners are reached',
    parameters: [IDENTITY],
    async run(ctx, args) {
      checkIdentity(args);
      return [outputOf(await getAccessEdge(ctx.sql))];
    },
  },
  {
    name: `Set-${NOUN}`,
    synopsis: 'turns federation on or off (-AllowFederatedUsers), partner discovery, and the routing to partners',
    parameters: [
      IDENTITY,
      { name: 'AllowFederatedUsers', type: 'bool', help: 'users may talk to partner domains (with an CsExternalAccessPolicy that enables it); default $False' },
      { name: 'EnablePartnerDiscovery', type: 'bool', help: 'domains not on the allowed list (and not blocked) are reachable through DNS; default $False' },
      { name: 'UseDnsSrvRouting', type: 'switch', help: "reach each partner through its DNS SRV record (_sipfederationtls._tcp.<domain>); the default" },
      { name: 'UseDefaultRouting', type: 'switch', help: 'reach every partner through -DefaultRouteFqdn' },
      { name: 'DefaultRouteFqdn', type: 'string', help: 'host[:port] of the default route, with -UseDefaultRouting' },
    ],
    async run(ctx, args) {
      checkIdentity(args);
      const dns = args.UseDnsSrvRouting;
      const dflt = args.UseDefaultRouting;
      if (dns === false || dflt === false) throw new SettingsError('BAD_VALUE', 'choose the routing with -UseDnsSrvRouting or -UseDefaultRouting (a switch set to $False chooses nothing)');
      if (dns === true && dflt === true) throw new SettingsError('BAD_VALUE', '-UseDnsSrvRouting and -UseDefaultRouting exclude each other; give one');
      const routeFqdn = argString(args, 'DefaultRouteFqdn');
      await updateAccessEdge(ctx.sql, {
        ...(typeof args.AllowFederatedUsers === 'boolean' ? { AllowFederatedUsers: args.AllowFederatedUsers } : {}),
        ...(typeof args.EnablePartnerDiscovery === 'boolean' ? { EnablePartnerDiscovery: args.EnablePartnerDiscovery } : {}),
        ...(dns === true ? { UseDefaultRouting: false } : dflt === true ? { UseDefaultRouting: true } : {}),
        ...(routeFqdn === undefined ? {} : { DefaultRouteFqdn: routeFqdn }),
      }, change(ctx, `Set-${NOUN}`));
      return [];
    },
  },
];

function checkIdentity(args: BoundArgs): void {
  const identity = argString(args, 'Identity');
  if (identity !== undefined && !/^\s*global\s*$/i.test(identity)) {
    throw new SettingsError('BAD_IDENTITY', `"${identity}" is not an Identity of ${NOUN}; it has only Global`);
  }
}

function outputOf(c: AccessEdgeConfiguration): OutputObject {
  const v = accessEdgeValues(c);
  return [
    ['Identity', ACCESS_EDGE_IDENTITY],
    ['AllowFederatedUsers', c.AllowFederatedUsers],
    ['EnablePartnerDiscovery', c.EnablePartnerDiscovery],
    ['UseDnsSrvRouting', c.DefaultRouteFqdn === null],
    ['UseDefaultRouting', c.DefaultRouteFqdn !== null],
    ['DefaultRouteFqdn', v.DefaultRouteFqdn ?? null],
  ];
}

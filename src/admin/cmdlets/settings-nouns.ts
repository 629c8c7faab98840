// Get-/Set-/New-/Remove- for a settings noun (CsImConfiguration, CsClientPolicy,
// CsExternalAccessPolicy), and Grant- for the per-user policies: the cmdlets are declared from the
// noun's properties, so the nouns cannot drift apart.

import type { SettingsInstance, SettingsKind, SettingValue } from '../../settings/index.ts';
import { parseAddress } from '../../directory/index.ts';
import { GLOBAL, createInstance, grantPolicy, formatIdentity, listInstances, parseIdentity, removeInstance, requireInstance, updateInstance } from '../../settings/index.ts';
import { AdminError } from '../errors.ts';
import { wildcard } from '../parse.ts';
import type { BoundArgs, CmdletContext, CmdletSpec, OutputObject, ParameterSpec } from '../types.ts';
import { argString, timeSpan } from '../types.ts';

export function settingsCmdlets(kind: SettingsKind): CmdletSpec[] {
  const properties: ParameterSpec[] = kind.properties.map((p) => ({ name: p.name, type: p.type, help: p.description }));
  const identityHelp = kind.scopes.includes('tag') ? 'Global, Site:<name> or Tag:<name>' : 'Global or Site:<name>';
  const grant: CmdletSpec[] = kind.grants === undefined ? [] : [grantCmdlet(kind)];
  return [
    {
      name: `Get-${kind.noun}`,
      synopsis: `shows ${kind.noun} instances (all, one -Identity, or those matching -Filter "site:*")`,
      parameters: [
        { name: 'Identity', type: 'string', position: 0, help: identityHelp },
        { name: 'Filter', type: 'string', help: 'wildcard on Identity' },
      ],
      async run(ctx, args) {
        const identity = argString(args, 'Identity');
        const filter = argString(args, 'Filter');
        if (identity !== undefined && filter !== undefined) throw new AdminError('BAD_SYNTAX', `Get-${kind.noun}: give -Identity or -Filter, not both`);
        if (identity !== undefined) return [outputOf(kind, await requireInstance(ctx.sql, kind, parseIdentity(kind, identity)))];
        const pattern = filter === undefined ? undefined : wildcard(filter);
        return (await listInstances(ctx.sql, kind))
          .filter((i) => pattern === undefined || pattern.test(formatIdentity(i.identity)))
          .map((i) => outputOf(kind, i));
      },
    },
    {
      name: `Set-${kind.noun}`,
      synopsis: `changes properties of a ${kind.noun} (Global when -Identity is not given)`,
      parameters: [{ name: 'Identity', type: 'string', position: 0, help: identityHelp }, ...properties],
      async run(ctx, args) {
        const identity = identityOf(kind, args) ?? GLOBAL;
        await updateInstance(ctx.sql, kind, identity, valuesOf(kind, args), change(ctx, `Set-${kind.noun}`));
        return [];
      },
    },
    {
      name: `New-${kind.noun}`,
      synopsis: `creates a ${kind.noun} at a site or tag, with every property (defaults for those not given)`,
      parameters: [{ name: 'Identity', type: 'string', position: 0, required: true, help: identityHelp }, ...properties],
      async run(ctx, args) {
        const identity = identityOf(kind, args) ?? GLOBAL;
        return [outputOf(kind, await createInstance(ctx.sql, kind, identity, valuesOf(kind, args), change(ctx, `New-${kind.noun}`)))];
      },
    },
    {
      name: `Remove-${kind.noun}`,
      synopsis: `removes a site or tag ${kind.noun}; on Global, resets it to the defaults`,
      parameters: [{ name: 'Identity', type: 'string', position: 0, required: true, help: identityHelp }],
      async run(ctx, args) {
        await removeInstance(ctx.sql, kind, identityOf(kind, args) ?? GLOBAL, change(ctx, `Remove-${kind.noun}`));
        return [];
      },
    },
    ...grant,
  ];
}

/** Grant-<noun> -Identity <user> -PolicyName <tag name>|$Null. */
function grantCmdlet(kind: SettingsKind): CmdletSpec {
  const name = `Grant-${kind.noun}`;
  return {
    name,
    synopsis: `gives a user a per-user (Tag) ${kind.noun.replace(/^Cs/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()}; -PolicyName $Null removes the grant`,
    parameters: [
      { name: 'Identity', type: 'string', position: 0, required: true, help: 'the SIP address of the user' },
      { name: 'PolicyName', type: 'string', position: 1, required: true, nullable: true, help: 'the name of a Tag policy, or $Null' },
    ],
    async run(ctx, args) {
      const address = parseAddress(argString(args, 'Identity') ?? '', ctx.domain).address;
      const policy = argString(args, 'PolicyName') ?? null;
      await grantPolicy(ctx.sql, kind, address, policy === null ? null : policy.replace(/^tag:/i, ''), change(ctx, name));
      return [];
    },
  };
}

export function change(ctx: CmdletContext, cmdlet: string) {
  return { actor: ctx.actor, cmdlet, now: ctx.now };
}

function identityOf(kind: SettingsKind, args: BoundArgs) {
  const text = argString(args, 'Identity');
  return text === undefined ? undefined : parseIdentity(kind, text);
}

function valuesOf(kind: SettingsKind, args: BoundArgs): Record<string, SettingValue> {
  const values: Record<string, SettingValue> = {};
  for (const p of kind.properties) {
    const v = args[p.name];
    if (typeof v === 'boolean' || typeof v === 'number') values[p.name] = v;
  }
  return values;
}

function outputOf(kind: SettingsKind, instance: SettingsInstance): OutputObject {
  return [
    ['Identity', formatIdentity(instance.identity)],
    ...kind.properties.map((p): readonly [string, boolean | ReturnType<typeof timeSpan>] => {
      const v = instance.values[p.name] ?? p.defaultValue;
      return [p.name, p.type === 'timespan' ? timeSpan(Number(v)) : v === true];
    }),
  ];
}

// Get-/Enable-/Set-/Disable-CsUser. Identity: a SIP address (`alice@parley.local`, `sip:…`, or
// `alice` in the default domain). Passwords are never shown nor written to the audit log.
import { DirectoryError, addUser, findUser, listUsers, parseAddress, removeUser, requireSite, setDisplayName, setPassword, setUserSite, userSite } from '../../directory/index.ts';
import type { UserSummary } from '../../directory/index.ts';
import { SETTINGS_KINDS, grantedPolicy, recordAudit } from '../../settings/index.ts';
import type { Sql } from '../../storage/index.ts';
import { wildcard } from '../parse.ts';
import type { CmdletContext, CmdletSpec, OutputObject } from '../types.ts';
import { argString } from '../types.ts';
import { change } from './settings-nouns.ts';

const IDENTITY_HELP = 'the SIP address, e.g. alice@parley.local';

export const USER_CMDLETS: readonly CmdletSpec[] = [
  {
    name: 'Get-CsUser',
    synopsis: 'shows users (all, one -Identity, or those matching -Filter on the address)',
    parameters: [
      { name: 'Identity', type: 'string', position: 0, help: IDENTITY_HELP },
      { name: 'Filter', type: 'string', help: 'wildcard on the address, e.g. "*@parley.local"' },
    ],
    async run(ctx, args) {
      const identity = argString(args, 'Identity');
      const filter = argString(args, 'Filter');
      const users = identity !== undefined ? [await requireUser(ctx.sql, addressOf(ctx, identity))] : await listUsers(ctx.sql);
      const pattern = filter === undefined ? undefined : wildcard(filter);
      const output: OutputObject[] = [];
      for (const u of users) if (pattern === undefined || pattern.test(u.address)) output.push(await outputOf(ctx, u));
      return output;
    },
  },
  {
    name: 'Enable-CsUser',
    synopsis: 'creates a user',
    parameters: [
      { name: 'Identity', type: 'string', position: 0, required: true, help: IDENTITY_HELP },
      { name: 'Password', type: 'string', required: true, secret: true },
      { name: 'DisplayName', type: 'string', nullable: true },
      { name: 'Site', type: 'string', nullable: true, help: 'Site:<name> or <name>' },
    ],
    async run(ctx, args) {
      const address = addressOf(ctx, argString(args, 'Identity') ?? '');
      const site = argString(args, 'Site');
      if (site !== undefined) await requireSite(ctx.sql, stripSite(site));
      const displayName = argString(args, 'DisplayName') ?? null;
      const user = await addUser(ctx.sql, { address, password: argString(args, 'Password') ?? '', displayName }, ctx.now);
      const c = change(ctx, 'Enable-CsUser');
      await ctx.sql.transaction(async (tx) => {
        if (site !== undefined) await setUserSite(tx, address, stripSite(site), ctx.now);
        await recordAudit(tx, c, address, null, null, 'created');
        if (user.displayName !== null) await recordAudit(tx, c, address, 'DisplayName', null, user.displayName);
        if (site !== undefined) await recordAudit(tx, c, address, 'Site', null, await userSite(tx, address));
      });
      return [await outputOf(ctx, await requireUser(ctx.sql, address))];
    },
  },
  {
    name: 'Set-CsUser',
    synopsis: 'changes the display name, site (or $Null for none) or password of a user',
    parameters: [
      { name: 'Identity', type: 'string', position: 0, required: true, help: IDENTITY_HELP },
      { name: 'DisplayName', type: 'string', nullable: true },
      { name: 'Site', type: 'string', nullable: true, help: 'Site:<name>, <name> or $Null' },
      { name: 'Password', type: 'string', secret: true },
    ],
    async run(ctx, args) {
      const address = addressOf(ctx, argString(args, 'Identity') ?? '');
      const before = await requireUser(ctx.sql, address);
      const c = change(ctx, 'Set-CsUser');
      const password = argString(args, 'Password');
      if (password !== undefined) {
        await setPassword(ctx.sql, address, password, ctx.now);
        await recordAudit(ctx.sql, c, address, 'Password', '***', '***');
      }
      await ctx.sql.transaction(async (tx) => {
        if (args.DisplayName !== undefined) {
          await setDisplayName(tx, address, argString(args, 'DisplayName') ?? null, ctx.now);
          const after = (await requireUser(tx, address)).displayName;
          if (after !== before.displayName) await recordAudit(tx, c, address, 'DisplayName', before.displayName, after);
        }
        if (args.Site !== undefined) {
          const oldSite = await userSite(tx, address);
          const site = argString(args, 'Site');
          await setUserSite(tx, address, site === undefined ? null : stripSite(site), ctx.now);
          const newSite = await userSite(tx, address);
          if (newSite !== oldSite) await recordAudit(tx, c, address, 'Site', oldSite, newSite);
        }
      });
      return [];
    },
  },
  {
    name: 'Disable-CsUser',
    synopsis: 'removes a user (and the policy granted to them)',
    parameters: [{ name: 'Identity', type: 'string', position: 0, required: true, help: IDENTITY_HELP }],
    async run(ctx, args) {
      const address = addressOf(ctx, argString(args, 'Identity') ?? '');
      await ctx.sql.transaction(async (tx) => {
        await removeUser(tx, address);
        await recordAudit(tx, change(ctx, 'Disable-CsUser'), address, null, 'existed', 'removed');
      });
      return [];
    },
  },
];

function addressOf(ctx: CmdletContext, text: string): string {
  return parseAddress(text, ctx.domain).address;
}

function stripSite(text: string): string {
  return text.trim().replace(/^site:/i, '');
}

async function requireUser(sql: Sql, address: string): Promise<UserSummary> {
  const user = await findUser(sql, address);
  if (user === undefined) throw new DirectoryError('USER_NOT_FOUND', `user ${address} does not exist; see the users with Get-CsUser`);
  return user;
}

async function outputOf(ctx: CmdletContext, user: UserSummary): Promise<OutputObject> {
  const site = await userSite(ctx.sql, user.address);
  // one line per per-user policy (CsClientPolicy, CsExternalAccessPolicy), named as the audit log names its grants
  const grants: Array<readonly [string, string | null]> = [];
  for (const kind of SETTINGS_KINDS) {
    if (kind.grants === undefined) continue;
    const policy = await grantedPolicy(ctx.sql, user.address, kind);
    grants.push([kind.grants.property, policy === null ? null : `Tag:${policy}`]);
  }
  return [
    ['Identity', user.address],
    ['SipAddress', `sip:${user.address}`],
    ['DisplayName', user.displayName],
    ['Site', site === null ? null : `Site:${site}`],
    ...grants,
    ['WhenCreated', user.createdAt],
    ['Demo', user.demo],
  ];
}

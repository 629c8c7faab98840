// Sign-in lockouts for administrators. Parley's own cmdlets, named in the Skype for Business manner
// (Skype for Business leaves lockouts to Active Directory, whose Unlock-ADAccount these follow):
//
//   Get-CsAuthLockout [-Identity user] [-Source address] [-Locked]   what the sign-in guard counts
//   Clear-CsAuthLockout [-Identity user] [-Source address]           forgets it: the lockout ends
//
// Both act on the database. The running server picks a clear made with --data-dir up within a
// second (it polls the clear log); through the admin API (`--url`) the server is told at once
// (`live`), and Get first writes the server's latest counts.

import { isIP } from 'node:net';
import { AuthError, clearLockout, listLockouts, lockoutIdentity, sourceKey } from '../../auth/index.ts';
import type { LockoutKind, LockoutState } from '../../auth/index.ts';
import { parseAddress } from '../../directory/index.ts';
import { recordAudit } from '../../settings/index.ts';
import type { Sql } from '../../storage/index.ts';
import type { CmdletContext, CmdletSpec, OutputObject } from '../types.ts';
import { argString } from '../types.ts';
import { change } from './settings-nouns.ts';

/** What the running server lends these cmdlets (LockoutKeeper). */
export interface LiveLockouts {
  /** writes the latest counts before Get reads them */
  flush(): Promise<void>;
  /** a clear was made in this process: the guard forgets at once */
  cleared(kind: LockoutKind, key: string): void;
}

const OWN = "Parley's own cmdlet";
const IDENTITY_HELP = 'the account, e.g. alice@parley.local (also one that does not exist: unknown names are counted too)';
const SOURCE_HELP = 'the source address, e.g. 192.0.2.7 (an IPv6 address counts as its /64: 2001:db8:1:2::/64)';

export function authLockoutCmdlets(live?: LiveLockouts): CmdletSpec[] {
  return [
    {
      name: 'Get-CsAuthLockout',
      synopsis: `shows the sources and accounts with failed sign-ins (Failures in the current window), and until when each is locked out; ${OWN}`,
      parameters: [
        { name: 'Identity', type: 'string', position: 0, help: `${IDENTITY_HELP}; all when neither -Identity nor -Source is given` },
        { name: 'Source', type: 'string', help: SOURCE_HELP },
        { name: 'Locked', type: 'switch', help: 'only those locked out now' },
      ],
      async run(ctx, args) {
        await live?.flush();
        const targets = targetsOf(ctx, argString(args, 'Identity'), argString(args, 'Source'));
        const now = ctx.now();
        return (await listLockouts(ctx.sql))
          .filter((s) => targets.length === 0 || targets.some((t) => t.kind === s.kind && t.key === s.key))
          .filter((s) => args.Locked !== true || s.lockedUntil > now)
          .map((s) => outputOf(s, now));
      },
    },
    {
      name: 'Clear-CsAuthLockout',
      synopsis: `ends the lockout of an account or a source and forgets its failed sign-ins; ${OWN}`,
      parameters: [
        { name: 'Identity', type: 'string', position: 0, help: IDENTITY_HELP },
        { name: 'Source', type: 'string', help: SOURCE_HELP },
      ],
      async run(ctx, args) {
        const targets = targetsOf(ctx, argString(args, 'Identity'), argString(args, 'Source'));
        if (targets.length === 0) throw new AuthError('MISSING_TARGET', 'Clear-CsAuthLockout needs -Identity (an account) or -Source (an address); see them with Get-CsAuthLockout');
        const now = ctx.now();
        const cleared = await ctx.sql.transaction(async (tx) => {
          const found: Array<LockoutState | undefined> = [];
          for (const t of targets) {
            const before = await clearLockout(tx, t.kind, t.key, now);
            if (before !== undefined) await audit(tx, ctx, before, now);
            found.push(before);
          }
          return found;
        });
        for (const t of targets) live?.cleared(t.kind, t.key);
        if (cleared.every((c) => c === undefined)) {
          throw new AuthError('NOT_LOCKED', `no failed sign-ins are recorded for ${targets.map((t) => t.key).join(' or ')}; see Get-CsAuthLockout`);
        }
        return [];
      },
    },
  ];
}

/** One audit row per property the clear set back: LockedUntil (when locked), Failures, Lockouts. */
async function audit(tx: Sql, ctx: CmdletContext, before: LockoutState, now: number): Promise<void> {
  const who = change(ctx, 'Clear-CsAuthLockout');
  const identity = lockoutIdentity(before.kind, before.key);
  if (before.lockedUntil > now) await recordAudit(tx, who, identity, 'LockedUntil', new Date(before.lockedUntil).toISOString(), null);
  if (before.failures > 0) await recordAudit(tx, who, identity, 'Failures', String(before.failures), '0');
  if (before.lockouts > 0) await recordAudit(tx, who, identity, 'Lockouts', String(before.lockouts), '0');
}

function targetsOf(ctx: CmdletContext, identity: string | undefined, source: string | undefined): Array<{ kind: LockoutKind; key: string }> {
  const targets: Array<{ kind: LockoutKind; key: string }> = [];
  if (identity !== undefined) targets.push({ kind: 'account', key: parseAddress(identity, ctx.domain).address });
  if (source !== undefined) targets.push({ kind: 'source', key: sourceOf(source) });
  return targets;
}

/** `192.0.2.7`, `2001:db8:1:2::9`, or the `2001:db8:1:2::/64` that Get-CsAuthLockout shows. */
function sourceOf(text: string): string {
  const address = text.trim().replace(/\/64$/, '');
  if (isIP(address) === 0) throw new AuthError('BAD_SOURCE', `-Source ${JSON.stringify(text)} is not an IP address such as 192.0.2.7 or 2001:db8::7`);
  return sourceKey(address);
}

function outputOf(s: LockoutState, now: number): OutputObject {
  return [
    ['Identity', s.kind === 'account' ? s.key : null],
    ['Source', s.kind === 'source' ? s.key : null],
    ['Failures', s.failures],
    ['LockedUntil', s.lockedUntil > now ? new Date(s.lockedUntil) : null],
    ['LastFailure', s.lastFailure > 0 ? new Date(s.lastFailure) : null],
    ['Lockouts', s.lockouts],
  ];
}

// Presence for administrators. These are Parley's own cmdlets, named in the Skype for Business
// manner (Skype for Business has no cmdlet for a user's blocked watchers nor for live presence):
//
//   Get-CsPresenceBlock [-Identity user] [-Watcher address]   the blocked watchers (of one user)
//   Add-CsPresenceBlock -Identity user -Watcher address        the watcher sees the user Offline
//                                                              (at most MAX_BLOCKS per user)
//   Remove-CsPresenceBlock -Identity user -Watcher address
//   Get-CsUserPresence -Identity user                          live: state, note, registrations,
//                                                              publications, watchers
//
// Get-CsUserPresence reads the running server's memory (registrations and publications live
// there), so it runs only through the admin API (`parley admin --url …`): the server serves it
// with `live` (serverCmdlets in registry.ts); in local mode it says so.

import { DirectoryError, findUser, parseAddress } from '../../directory/index.ts';
import { blockWatcher, listBlocks, MAX_BLOCKS, unblockWatcher, watcherAddress } from '../../presence/index.ts';
import type { PresenceBlock, PresenceInspection } from '../../presence/index.ts';
import { PresenceError } from '../../presence/index.ts';
import { recordAudit } from '../../settings/index.ts';
import type { CmdletContext, CmdletSpec, OutputObject } from '../types.ts';
import { argString } from '../types.ts';
import { change } from './settings-nouns.ts';

/** What the running server lends the presence cmdlets. */
export interface LivePresence {
  inspect(aor: string): Promise<PresenceInspection>;
  /** a block was added or removed: the watcher's open subscriptions hear of it now */
  blocksChanged(): void;
}

const OWN = "Parley's own cmdlet (Skype for Business has none)";
const IDENTITY_HELP = 'the user, e.g. alice@parley.local';
const WATCHER_HELP = 'the watcher, e.g. bob@parley.local (any address, also one that is not a user)';
/** the property the audit log shows for a block */
const AUDIT_PROPERTY = 'BlockedWatcher';

/** The presence cmdlets; `live` is given by the running server (see serverCmdlets in registry.ts). */
export function presenceCmdlets(live?: LivePresence): CmdletSpec[] {
  return [
    {
      name: 'Get-CsPresenceBlock',
      synopsis: `shows the watchers users have blocked (they see the user Offline); ${OWN}`,
      parameters: [
        { name: 'Identity', type: 'string', position: 0, help: `${IDENTITY_HELP}; all users when left out` },
        { name: 'Watcher', type: 'string', help: 'only blocks of this watcher' },
      ],
      async run(ctx, args) {
        const identity = argString(args, 'Identity');
        const owner = identity === undefined ? undefined : await requireUser(ctx, userAddress(ctx, identity));
        const watcherText = argString(args, 'Watcher');
        const watcher = watcherText === undefined ? undefined : watcherAddress(watcherText, ctx.domain);
        return (await listBlocks(ctx.sql, owner)).filter((b) => watcher === undefined || b.watcher === watcher).map(outputOf);
      },
    },
    {
      name: 'Add-CsPresenceBlock',
      synopsis: `blocks a watcher: they see the user Offline, with no hint of the block, at once; at most ${MAX_BLOCKS} per user; ${OWN}`,
      parameters: [
        { name: 'Identity', type: 'string', position: 0, required: true, help: IDENTITY_HELP },
        { name: 'Watcher', type: 'string', required: true, help: WATCHER_HELP },
      ],
      async run(ctx, args) {
        const owner = await requireUser(ctx, userAddress(ctx, argString(args, 'Identity') ?? ''));
        const watcher = watcherAddress(argString(args, 'Watcher') ?? '', ctx.domain);
        const block = await ctx.sql.transaction(async (tx) => {
          const { block, created } = await blockWatcher(tx, owner, watcher, ctx.now());
          // in the transaction: the audit row commits with the block
          if (created) await recordAudit(tx, change(ctx, 'Add-CsPresenceBlock'), owner, AUDIT_PROPERTY, null, watcher);
          return block;
        });
        live?.blocksChanged();
        return [outputOf(block)];
      },
    },
    {
      name: 'Remove-CsPresenceBlock',
      synopsis: `unblocks a watcher: they see the user's real presence again, at once; ${OWN}`,
      parameters: [
        { name: 'Identity', type: 'string', position: 0, required: true, help: IDENTITY_HELP },
        { name: 'Watcher', type: 'string', required: true, help: WATCHER_HELP },
      ],
      async run(ctx, args) {
        const owner = await requireUser(ctx, userAddress(ctx, argString(args, 'Identity') ?? ''));
        const watcher = watcherAddress(argString(args, 'Watcher') ?? '', ctx.domain);
        await ctx.sql.transaction(async (tx) => {
          await unblockWatcher(tx, owner, watcher, ctx.now());
          await recordAudit(tx, change(ctx, 'Remove-CsPresenceBlock'), owner, AUDIT_PROPERTY, watcher, null);
        });
        live?.blocksChanged();
        return [];
      },
    },
    {
      name: 'Get-CsUserPresence',
      synopsis: `shows a user's live presence: state, note, registrations, publications (devices) and watchers; needs the running server (--url); ${OWN}`,
      parameters: [{ name: 'Identity', type: 'string', position: 0, required: true, help: IDENTITY_HELP }],
      async run(ctx, args) {
        if (live === undefined) {
          throw new PresenceError(
            'NEEDS_SERVER',
            'Get-CsUserPresence needs the running server (registrations and publications live in its memory): use --url http://HOST:HTTP-PORT --token-file DATA-DIR/secrets/admin.token',
          );
        }
        const owner = await requireUser(ctx, userAddress(ctx, argString(args, 'Identity') ?? ''));
        return [inspectionOutput(await live.inspect(owner), ctx.now())];
      },
    },
  ];
}

function userAddress(ctx: CmdletContext, text: string): string {
  return parseAddress(text, ctx.domain).address;
}

async function requireUser(ctx: CmdletContext, address: string): Promise<string> {
  if ((await findUser(ctx.sql, address)) === undefined) throw new DirectoryError('USER_NOT_FOUND', `user ${address} does not exist; see the users with Get-CsUser`);
  return address;
}

function outputOf(block: PresenceBlock): OutputObject {
  return [
    ['Identity', block.owner],
    ['Watcher', block.watcher],
    ['Since', block.since],
  ];
}

/** PowerShell shows a collection as `{a, b}`. */
function list(items: readonly string[]): string {
  return `{${items.join(', ')}}`;
}

function inSeconds(at: number, now: number): string {
  return `expires in ${Math.max(0, Math.round((at - now) / 1000))} s`;
}

export function inspectionOutput(p: PresenceInspection, now: number): OutputObject {
  return [
    ['Identity', p.aor],
    ['State', p.state],
    ['Note', p.note === '' ? null : p.note],
    ['Registrations', list(p.registrations.map((r) => `${r.contact} (${[r.transport, r.userAgent, inSeconds(r.expiresAt, now)].filter((x) => x !== null && x !== '').join(', ')})`))],
    ['Publications', list(p.publications.map((d) => `${d.state}${d.note === '' ? '' : ` ${JSON.stringify(d.note)}`} (${inSeconds(d.expiresAt, now)})`))],
    ['Watchers', list(p.watchers.map((w) => `${w.watcher}${w.viaList ? ' (through their contact list)' : ''}${w.blocked ? ' (blocked: sees Offline)' : ''}`))],
  ];
}

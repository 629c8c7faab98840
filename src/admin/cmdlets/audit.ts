// Get-CsAdminAudit: the changes administrators made, oldest first.
import { listAudit } from '../../settings/index.ts';
import { wildcard } from '../parse.ts';
import type { CmdletSpec } from '../types.ts';
import { argString } from '../types.ts';

export const AUDIT_CMDLETS: readonly CmdletSpec[] = [
  {
    name: 'Get-CsAdminAudit',
    synopsis: 'shows the audit log of changes (who, when, cmdlet, identity, property, old and new value)',
    parameters: [
      { name: 'Identity', type: 'string', position: 0, help: 'wildcard on the changed Identity, e.g. "site:*"' },
      { name: 'Last', type: 'int', help: 'only the newest N entries' },
    ],
    async run(ctx, args) {
      const last = args.Last;
      const identity = argString(args, 'Identity');
      const pattern = identity === undefined ? undefined : wildcard(identity);
      const newest = typeof last === 'number' ? last : undefined;
      // without a filter the database keeps only the newest N; with one, they are the newest N that match
      const entries = (await listAudit(ctx.sql, pattern === undefined ? newest : undefined)).filter((e) => pattern === undefined || pattern.test(e.identity));
      return (newest === undefined ? entries : entries.slice(Math.max(0, entries.length - newest)))
        .map((e) => [
          ['Identity', e.identity],
          ['When', e.at],
          ['Who', e.actor],
          ['Cmdlet', e.cmdlet],
          ['Property', e.property],
          ['OldValue', e.oldValue],
          ['NewValue', e.newValue],
        ]);
    },
  },
];

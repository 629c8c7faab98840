// The History Spooler in the admin HTTP API (under /admin): the same operations as
// `parley spooler …`, for scripts and remote administration.
//   GET    /admin/spool?user=&state=&limit=     the entries, newest first
//   GET    /admin/spool/:id                     one entry with its messages as text
//   POST   /admin/spool/:id/retry               deliver a failed (or waiting) entry now
//   POST   /admin/spool/retry-failed            the same for every failed entry
//   DELETE /admin/spool/:id[?force=true]        purge one entry (a waiting one only with force)
//   POST   /admin/spool/purge {"deliveredBefore": "2026-11-01"}   purge delivered entries
//   GET    /admin/spool/quota?user=             what each user has waiting, their mailbox, the
//                                               refusals, the limits, and the refusals since start
import type { AdminEndpoint } from '../admin/index.ts';
import type { MailboxQuota } from '../mailbox/index.ts';
import type { Sql } from '../storage/index.ts';
import { listSpool, parseState, purgeDeliveredBefore, purgeSpoolEntry, retryFailed, retrySpoolEntry, showSpoolEntry } from './admin.ts';
import { OfflineError } from './errors.ts';
import type { SpoolQuota } from './quota.ts';
import { quotaReport } from './quota-report.ts';

/** The live quotas of the running server: the spool's tallies and both sets of limits. */
export interface LiveQuotas {
  spool: SpoolQuota;
  mailbox: MailboxQuota;
}

export function spoolerEndpoints(sql: Sql, quotas: LiveQuotas, now: () => number = Date.now): AdminEndpoint[] {
  const address = (user: string | null) => (user === null || user === '' ? undefined : user.replace(/^sips?:/i, '').toLowerCase());
  return [
    {
      method: 'GET',
      path: '/spool/quota',
      handle: async ({ query }) =>
        quotaReport(sql, {
          spoolLimits: quotas.spool.limits,
          mailboxQuota: quotas.mailbox,
          waiting: quotas.spool.tallies(),
          user: address(query.get('user')),
          sinceStart: { spool: { ...quotas.spool.refusals }, mailbox: { ...quotas.mailbox.refusals } },
        }),
    },
    {
      method: 'GET',
      path: '/spool',
      async handle({ query }) {
        const user = query.get('user') ?? undefined;
        const state = parseState(query.get('state') ?? undefined);
        const limitText = query.get('limit');
        const limit = limitText === null ? undefined : Number(limitText);
        if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new OfflineError('BAD_REQUEST', `limit must be a positive whole number, not ${limitText}`);
        const who = address(user ?? null);
        return { entries: await listSpool(sql, { ...(who ? { user: who } : {}), ...(state ? { state } : {}), ...(limit ? { limit } : {}) }) };
      },
    },
    { method: 'GET', path: '/spool/:id', handle: ({ params }) => showSpoolEntry(sql, params.id ?? '') },
    { method: 'POST', path: '/spool/:id/retry', handle: ({ params, actor }) => retrySpoolEntry(sql, params.id ?? '', now(), actor) },
    { method: 'POST', path: '/spool/retry-failed', handle: async ({ actor }) => ({ retried: await retryFailed(sql, now(), actor) }) },
    {
      method: 'DELETE',
      path: '/spool/:id',
      async handle({ params, query }) {
        await purgeSpoolEntry(sql, params.id ?? '', now(), query.get('force') === 'true');
        return undefined;
      },
    },
    {
      method: 'POST',
      path: '/spool/purge',
      async handle({ body }) {
        const before = (body as { deliveredBefore?: unknown } | undefined)?.deliveredBefore;
        if (typeof before !== 'string') throw new OfflineError('BAD_REQUEST', 'the body must be {"deliveredBefore": "<date>"}, e.g. {"deliveredBefore": "2026-11-01"}');
        return { purged: await purgeDeliveredBefore(sql, new Date(before)) };
      },
    },
  ];
}

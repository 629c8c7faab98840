// The History Spooler in the admin HTTP API (under /admin): the same operations as
// `parley spooler …`, for scripts and remote administration.
//   GET    /admin/spool?user=&state=&limit=     the entries, newest first
//   GET    /admin/spool/:id                     one entry with its messages as text
//   POST   /admin/spool/:id/retry               deliver a failed (or waiting) entry now
//   POST   /admin/spool/retry-failed            the same for every failed entry
//   DELETE /admin/spool/:id[?force=true]        purge one entry (a waiting one only with force)
//   POST   /admin/spool/purge {"deliveredBefore": "2026-11-01"}   purge delivered entries
import type { AdminEndpoint } from '../admin/index.ts';
import type { Database } from '../storage/index.ts';
import { listSpool, parseState, purgeDeliveredBefore, purgeSpoolEntry, retryFailed, retrySpoolEntry, showSpoolEntry } from './admin.ts';
import { OfflineError } from './errors.ts';

export function spoolerEndpoints(db: Database, now: () => number = Date.now): AdminEndpoint[] {
  return [
    {
      method: 'GET',
      path: '/spool',
      handle({ query }) {
        const user = query.get('user') ?? undefined;
        const state = parseState(query.get('state') ?? undefined);
        const limitText = query.get('limit');
        const limit = limitText === null ? undefined : Number(limitText);
        if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new OfflineError('BAD_REQUEST', `limit must be a positive whole number, not ${limitText}`);
        return { entries: listSpool(db, { ...(user ? { user: user.replace(/^sips?:/i, '').toLowerCase() } : {}), ...(state ? { state } : {}), ...(limit ? { limit } : {}) }) };
      },
    },
    { method: 'GET', path: '/spool/:id', handle: ({ params }) => showSpoolEntry(db, params.id ?? '') },
    { method: 'POST', path: '/spool/:id/retry', handle: ({ params, actor }) => retrySpoolEntry(db, params.id ?? '', now(), actor) },
    { method: 'POST', path: '/spool/retry-failed', handle: ({ actor }) => ({ retried: retryFailed(db, now(), actor) }) },
    {
      method: 'DELETE',
      path: '/spool/:id',
      handle({ params, query }) {
        purgeSpoolEntry(db, params.id ?? '', now(), query.get('force') === 'true');
        return undefined;
      },
    },
    {
      method: 'POST',
      path: '/spool/purge',
      handle({ body }) {
        const before = (body as { deliveredBefore?: unknown } | undefined)?.deliveredBefore;
        if (typeof before !== 'string') throw new OfflineError('BAD_REQUEST', 'the body must be {"deliveredBefore": "<date>"}, e.g. {"deliveredBefore": "2026-11-01"}');
        return { purged: purgeDeliveredBefore(db, new Date(before)) };
      },
    },
  ];
}

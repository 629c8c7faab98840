// The trace in the admin API (kept apart from trace.ts, so recording a step never loads the admin engine).
import type { AdminEndpoint } from '../admin/index.ts';
import { AdminApiError } from '../admin/index.ts';
import type { Sql } from '../storage/index.ts';
import { readTrace } from './trace.ts';

/** `GET /admin/trace/:id` in the admin API: what `parley trace ID` shows. */
export function traceEndpoint(sql: Sql): AdminEndpoint {
  return {
    method: 'GET',
    path: '/trace/:id',
    async handle({ params }) {
      const events = await readTrace(sql, params.id ?? '');
      if (events.length === 0) throw new AdminApiError('NOT_FOUND', `nothing is recorded under ${params.id ?? ''}; give a spool entry id or the Call-ID of a message to an offline user`);
      return { events: events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) };
    },
  };
}

// `parley trace ID`: every recorded step of an offline message or a conversation, by spool entry
// id, conversation id (cv-…: its rows and those of the entries it made) or SIP Call-ID, from
// --data-dir DIR (SQLite there) or --database postgres://… (a cluster's PostgreSQL).
// Exit codes: 0 shown, 1 nothing recorded under that id, 2 usage error.
import { parseArgs } from 'node:util';
import { ParleyError } from '../errors.ts';
import { chooseStorage, migrate, openStorage } from '../storage/index.ts';
import type { SqlDatabase } from '../storage/index.ts';
import { stripControls } from '../terminal.ts';
import { readTrace, TRACE_MIGRATIONS } from './trace.ts';

const USAGE = 'usage: parley trace ID [--json] [--data-dir DIR | --database postgres://…]   (ID: a spool entry id, a conversation id cv-… or a SIP Call-ID)';

export async function runTraceCommand(args: string[], io: { out(line: string): void; err(line: string): void }, defaults: { dataDir: string }): Promise<number> {
  let values: { 'data-dir'?: string; database?: string; json?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options: { 'data-dir': { type: 'string' }, database: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true }));
  } catch (error) {
    io.err(`parley trace: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  const [id] = positionals;
  if (id === undefined || positionals.length > 1) {
    io.err(USAGE);
    return 2;
  }
  const where = chooseStorage({ dataDir: values['data-dir'], database: values.database }, { dataDir: defaults.dataDir, database: null });
  if (typeof where === 'string') {
    io.err(`parley trace: ${where}\n${USAGE}`);
    return 2;
  }
  let sql: SqlDatabase | undefined;
  try {
    sql = (await openStorage(where, { applicationName: 'parley-trace', max: 2, ensureDataDir: false })).sql;
    await migrate(sql, [TRACE_MIGRATIONS]);
    const events = await readTrace(sql, id);
    if (events.length === 0) {
      io.err(`parley trace: nothing is recorded under ${id}; give a spool entry id (parley spooler list), a conversation id (parley history list) or the Call-ID of a message to an offline user`);
      return 1;
    }
    if (values.json) {
      io.out(JSON.stringify(events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })), null, 2));
      return 0;
    }
    for (const e of events) {
      const detail = Object.entries(e.detail).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
      io.out(stripControls(`${new Date(e.at).toISOString()}  ${(e.traceId ?? '-').padEnd(19)}  ${e.step.padEnd(15)}  ${e.callId ? `call-id=${e.callId} ` : ''}${detail}`));
    }
    return 0;
  } catch (error) {
    if (!(error instanceof ParleyError)) throw error;
    io.err(`parley trace: ${error.message}`);
    return 1;
  } finally {
    await sql?.close();
  }
}

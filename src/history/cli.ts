// `parley history list --user ADDRESS [--json]`: a user's open conversations and those written to
// their Conversation History lately (HISTORY_KEEP_CLOSED_MS), with the spool entries each made
// (`parley trace cv-…` / `parley spooler show sp-…` follow them), from --data-dir DIR or --database
// postgres://…. Safe while servers run (SQLite's WAL; PostgreSQL).
// Exit codes: 0 shown, 1 the operation failed, 2 usage error.
import { parseArgs } from 'node:util';
import { DIRECTORY_MIGRATIONS, parseAddress } from '../directory/index.ts';
import { ParleyError } from '../errors.ts';
import type { SqlDatabase } from '../storage/index.ts';
import { chooseStorage, migrate, openStorage } from '../storage/index.ts';
import { stripControls, table } from '../terminal.ts';
import { listConversations } from './repository.ts';
import { HISTORY_MIGRATIONS } from './schema.ts';
import { HISTORY_KEEP_CLOSED_MS } from './worker.ts';

const USAGE = 'usage: parley history list --user SIP-ADDRESS [--json] [--data-dir DIR | --database postgres://…]';

export async function runHistoryCommand(args: string[], io: { out(line: string): void; err(line: string): void }, defaults: { dataDir: string; domain: string }, now: () => number = Date.now): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    (name === undefined ? io.err : io.out)(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name !== 'list') return usage(io, `unknown command "${name}"; the command is list`);
  let values: { user?: string; json?: boolean; 'data-dir'?: string; database?: string };
  try {
    ({ values } = parseArgs({ args: rest, options: { user: { type: 'string' }, json: { type: 'boolean' }, 'data-dir': { type: 'string' }, database: { type: 'string' } }, allowPositionals: false, strict: true }));
  } catch (error) {
    return usage(io, error instanceof Error ? error.message : String(error));
  }
  if (values.user === undefined) return usage(io, '--user is required: whose conversations to list');
  const where = chooseStorage({ dataDir: values['data-dir'], database: values.database }, { dataDir: defaults.dataDir, database: null });
  if (typeof where === 'string') return usage(io, where);
  let sql: SqlDatabase | undefined;
  try {
    const user = parseAddress(values.user, defaults.domain).address;
    sql = (await openStorage(where, { applicationName: 'parley-history', max: 2, ensureDataDir: false })).sql;
    await migrate(sql, [DIRECTORY_MIGRATIONS, HISTORY_MIGRATIONS]);
    const rows = (await listConversations(sql, user, now() - HISTORY_KEEP_CLOSED_MS)).map((c) => ({
      id: c.id,
      peer: c.userA === user ? c.userB : c.userA,
      state: c.state,
      startedAt: new Date(c.startedAt).toISOString(),
      lastMessageAt: new Date(c.lastAt).toISOString(),
      endsAt: new Date(c.endsAt).toISOString(),
      closedAt: c.closedAt === null ? null : new Date(c.closedAt).toISOString(),
      closeReason: c.closeReason,
      messages: c.messageCount,
      entries: c.entries,
    }));
    if (values.json) io.out(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) io.out(`${user} has no open or recently written conversation`);
    else {
      const time = (iso: string | null) => (iso === null ? '-' : iso.slice(0, 19).replace('T', ' '));
      const table_ = [['ID', 'PEER', 'STATE', 'STARTED (UTC)', 'LAST MESSAGE', 'ENDS / ENDED', 'MSGS', 'SPOOL ENTRIES']];
      for (const r of rows) table_.push([r.id, stripControls(r.peer), r.closeReason === null ? r.state : `${r.state} (${r.closeReason})`, time(r.startedAt), time(r.lastMessageAt), time(r.closedAt ?? r.endsAt), String(r.messages), r.entries.map((e) => `${e.entry} (${stripControls(e.owner)})`).join(', ') || '-']);
      table(io.out, table_);
    }
    return 0;
  } catch (error) {
    if (!(error instanceof ParleyError)) throw error;
    io.err(`parley history list: ${error.message}`);
    return 1;
  } finally {
    await sql?.close();
  }
}

function usage(io: { err(line: string): void }, why: string): number {
  io.err(`parley history: ${why}`);
  io.err(USAGE);
  return 2;
}

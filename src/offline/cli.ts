// `parley spooler …`: the History Spooler (the seed's per-user "History Spooler" folder, kept in
// the server). Safe while servers run (SQLite's WAL; transactions on PostgreSQL): a retried entry is
// picked up by a running server's worker within a second. Each command acts on --data-dir DIR (SQLite
// there), --database postgres://… (a cluster's PostgreSQL), or what --config FILE names.
// Exit codes: 0 done, 1 the operation failed, 2 usage error.
//   parley spooler list [--user SIP-ADDRESS] [--state waiting|delivering|delivered|failed] [--limit N]
//   parley spooler show ID
//   parley spooler retry ID | --failed
//   parley spooler purge ID [--force] | --delivered-before DATE
//   parley spooler quota [--user SIP-ADDRESS] [--config FILE]   what each user has waiting, their
//                                          mailbox, the refusals, and the limits (of FILE, or the defaults)
import { parseArgs } from 'node:util';
import { DIRECTORY_MIGRATIONS, parseAddress } from '../directory/index.ts';
import { ParleyError } from '../errors.ts';
import type { MailboxQuotaLimits } from '../mailbox/index.ts';
import { DEFAULT_MAILBOX_QUOTA, MAILBOX_MIGRATIONS, MailboxQuota } from '../mailbox/index.ts';
import { formatBytes } from '../bytes.ts';
import { TRACE_MIGRATIONS } from '../observability/trace.ts';
import { SETTINGS_MIGRATIONS } from '../settings/index.ts';
import type { SqlDatabase } from '../storage/index.ts';
import { chooseStorage, migrate, openStorage } from '../storage/index.ts';
import { oneLine, stripControls, table } from '../terminal.ts';
import { listSpool, parseState, purgeDeliveredBefore, purgeSpoolEntry, retryFailed, retrySpoolEntry, showSpoolEntry } from './admin.ts';
import { OFFLINE_MIGRATIONS } from './schema.ts';
import { DEFAULT_SPOOL_QUOTA } from './quota.ts';
import type { SpoolQuotaLimits } from './quota.ts';
import { limitLines, quotaReport, quotaRows, waitingFromDatabase } from './quota-report.ts';

export interface SpoolerCommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** What `--config FILE` gives `parley spooler quota` (the caller reads the file: the server's configuration is above this folder). */
export interface SpoolerSettings {
  dataDir: string;
  /** the PostgreSQL address the server uses, or null for SQLite in dataDir */
  database: string | null;
  domain: string;
  spool: SpoolQuotaLimits;
  mailbox: MailboxQuotaLimits;
}

export interface SpoolerDefaults {
  dataDir: string;
  domain: string;
  /** reads a server config file; throws a ParleyError when it is not valid */
  readConfig?: (file: string) => SpoolerSettings;
}

const WHERE = '[--data-dir DIR | --database postgres://… | --config FILE]';
const USAGE = [
  `parley spooler list [--user SIP-ADDRESS] [--state waiting|delivering|delivered|failed] [--limit N] [--json] ${WHERE}`,
  `parley spooler show ID [--json] ${WHERE}`,
  `parley spooler retry ID | --failed ${WHERE}`,
  `parley spooler purge ID [--force] | --delivered-before DATE ${WHERE}`,
  `parley spooler quota [--user SIP-ADDRESS] [--json] ${WHERE}   (the limits of --config FILE, or the defaults)`,
];

const OPTIONS = {
  'data-dir': { type: 'string' },
  database: { type: 'string' },
  user: { type: 'string' },
  state: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  failed: { type: 'boolean' },
  force: { type: 'boolean' },
  'delivered-before': { type: 'string' },
  config: { type: 'string' },
} as const;

export async function runSpoolerCommand(args: string[], io: SpoolerCommandIo, defaults: SpoolerDefaults, now: () => number = Date.now): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    for (const u of USAGE) (name === undefined ? io.err : io.out)(`usage: ${u}`);
    return name === undefined ? 2 : 0;
  }
  let values: { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (error) {
    return usage(io, name, error instanceof Error ? error.message : String(error));
  }
  const id = positionals[0];
  const where: ReadonlyArray<keyof typeof OPTIONS> = ['data-dir', 'database', 'config'];
  const allowed: Record<string, ReadonlyArray<keyof typeof OPTIONS>> = {
    list: [...where, 'user', 'state', 'limit', 'json'],
    show: [...where, 'json'],
    retry: [...where, 'failed'],
    purge: [...where, 'force', 'delivered-before'],
    quota: [...where, 'user', 'json'],
  };
  const known = allowed[name];
  if (known === undefined) return usage(io, name, `unknown command "${name}"; the commands are list, show, retry, purge, quota`);
  const stray = Object.keys(values).find((k) => !known.includes(k as keyof typeof OPTIONS));
  if (stray !== undefined) return usage(io, name, `--${stray} does not apply to ${name}`);
  if ((name === 'list' || name === 'quota') && positionals.length > 0) return usage(io, name, `${name} takes no positional argument; filter with --user`);
  if (name === 'show' && positionals.length !== 1) return usage(io, name, 'expected one spool entry ID');
  if (name === 'retry' && (positionals.length === 1) === (values.failed === true)) return usage(io, name, 'expected one spool entry ID or --failed');
  if (name === 'purge' && (positionals.length === 1) === (values['delivered-before'] !== undefined)) return usage(io, name, 'expected one spool entry ID or --delivered-before DATE');
  let limit: number | undefined;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) return usage(io, name, `--limit must be a positive whole number, not ${values.limit}`);
  }

  let sql: SqlDatabase | undefined;
  try {
    const settings = values.config === undefined ? undefined : defaults.readConfig?.(values.config);
    if (values.config !== undefined && settings === undefined) return usage(io, name, '--config is not available here');
    const domain = settings?.domain ?? defaults.domain;
    // --data-dir and --database name the storage themselves, before the config file's choice
    const storage = chooseStorage({ dataDir: values['data-dir'], database: values.database }, { dataDir: settings?.dataDir ?? defaults.dataDir, database: settings?.database ?? null });
    if (typeof storage === 'string') return usage(io, name, storage);
    sql = (await openStorage(storage, { applicationName: 'parley-spooler', max: 2, ensureDataDir: false })).sql;
    await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, MAILBOX_MIGRATIONS, OFFLINE_MIGRATIONS, TRACE_MIGRATIONS]);
    const actor = `cli:${process.env.USER ?? 'unknown'}`;
    if (name === 'quota') {
      const user = values.user === undefined ? undefined : parseAddress(values.user, domain).address;
      const report = await quotaReport(sql, {
        spoolLimits: settings?.spool ?? DEFAULT_SPOOL_QUOTA,
        mailboxQuota: new MailboxQuota(settings?.mailbox ?? DEFAULT_MAILBOX_QUOTA),
        waiting: await waitingFromDatabase(sql),
        user,
      });
      if (values.json) io.out(JSON.stringify(report, null, 2));
      else {
        for (const line of limitLines(report, values.config === undefined ? 'the defaults; --config FILE reads the server\'s' : `from ${values.config}`)) io.out(line);
        io.out('');
        if (report.users.length === 0) io.out('nothing waits, nothing was refused, no mailbox is near its quota');
        else table(io.out, quotaRows(report).map((row) => row.map((cell) => stripControls(cell))));
        if (report.users.some((u) => u.refusals.length > 0)) io.out('');
        for (const u of report.users) {
          for (const r of u.refusals) io.out(`${u.address} ${r.reason}: ${r.count} refused, the last at ${r.lastAt} (with ${stripControls(r.lastPeer)}): ${oneLine(r.lastWarning, 300)}`);
        }
      }
      return 0;
    }
    if (name === 'list') {
      const user = values.user === undefined ? undefined : parseAddress(values.user, domain).address;
      const state = parseState(values.state);
      const entries = await listSpool(sql, { ...(user ? { user } : {}), ...(state ? { state } : {}), ...(limit ? { limit } : {}) });
      if (values.json) io.out(JSON.stringify(entries, null, 2));
      else if (entries.length === 0) io.out('the spool has no such entries');
      else {
        const rows = [['ID', 'KIND', 'STATE', 'FROM', 'TO', 'MSGS', 'BYTES', 'TRIES', 'CREATED (UTC)', 'LAST ERROR']];
        for (const e of entries) rows.push([e.id, e.kind, e.state, e.sender, e.recipient, String(e.messages), formatBytes(e.bytes), String(e.attempts), e.createdAt.slice(0, 19).replace('T', ' '), oneLine(e.lastError ?? '-', 80)]);
        table(io.out, rows);
      }
    } else if (name === 'show') {
      const detail = await showSpoolEntry(sql, id ?? '');
      if (values.json) io.out(JSON.stringify(detail, null, 2));
      else {
        const { transcript, notes, ...fields } = detail;
        const width = Math.max(...Object.keys(fields).map((k) => k.length)) + 1;
        for (const [key, value] of Object.entries(fields)) io.out(`${`${key}:`.padEnd(width)} ${stripControls(String(value ?? '-'))}`);
        io.out('');
        for (const m of transcript) io.out(`[${m.receivedAt}] #${m.seq} ${stripControls(m.sender)} (${m.contentType}, Call-ID ${stripControls(m.callId)}): ${oneLine(m.text, 500)}`);
        for (const note of notes) io.out(`(${oneLine(note, 500)})`);
      }
    } else if (name === 'retry') {
      if (values.failed) {
        const ids = await retryFailed(sql, now(), actor);
        io.out(ids.length === 0 ? 'no failed entries' : `${ids.length} failed entries will be delivered again: ${ids.join(', ')}`);
      } else {
        const entry = await retrySpoolEntry(sql, id ?? '', now(), actor);
        io.out(`${entry.id} will be delivered again now (it expires at ${entry.expiresAt})`);
      }
    } else if (values['delivered-before'] !== undefined) {
      const count = await purgeDeliveredBefore(sql, new Date(values['delivered-before']));
      io.out(`${count} delivered entries purged`);
    } else {
      await purgeSpoolEntry(sql, id ?? '', now(), values.force === true);
      io.out(`${id} purged`);
    }
    return 0;
  } catch (error) {
    if (!(error instanceof ParleyError)) throw error;
    io.err(`parley spooler ${name}: ${error.message}`);
    return 1;
  } finally {
    await sql?.close();
  }
}

function usage(io: SpoolerCommandIo, name: string, why: string): number {
  io.err(`parley spooler ${name}: ${why}`);
  for (const u of USAGE) io.err(`usage: ${u}`);
  return 2;
}

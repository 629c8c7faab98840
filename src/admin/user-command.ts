// `parley user …`: the short form of the user cmdlets, kept for habit and scripts. add, passwd and
// remove run Enable-CsUser, Set-CsUser -Password and Disable-CsUser themselves, so they are
// checked and audited exactly as the cmdlets are; only the argument syntax and the output differ.
// Safe while servers run (SQLite's WAL, or a transaction on PostgreSQL with --database; a server
// reads users on every authentication).
// Exit codes: 0 done, 1 the operation failed (the message says why), 2 usage error.

import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { DIRECTORY_MIGRATIONS, findUser, listUsers, parseAddress } from '../directory/index.ts';
import { ParleyError } from '../errors.ts';
import { SETTINGS_MIGRATIONS } from '../settings/index.ts';
import type { Sql, SqlDatabase } from '../storage/index.ts';
import { chooseStorage, describeStorage, migrate, openStorage } from '../storage/index.ts';
import { USER_CMDLETS } from './cmdlets/user.ts';
import type { BoundArgs, CmdletContext } from './types.ts';

export interface CommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

export interface UserCommandDefaults {
  dataDir: string;
  /** the domain of an address written without one (`alice`) */
  domain: string;
}

const WHERE = '[--data-dir DIR | --database postgres://…]';
const USAGE: Readonly<Record<string, string>> = {
  add: `parley user add SIP-ADDRESS --password PW [--display-name NAME] ${WHERE}`,
  list: `parley user list ${WHERE}`,
  remove: `parley user remove SIP-ADDRESS ${WHERE}`,
  passwd: `parley user passwd SIP-ADDRESS --password PW ${WHERE}`,
};

const STORAGE = { 'data-dir': { type: 'string' }, database: { type: 'string' } } as const;
const OPTIONS = {
  add: { password: { type: 'string' }, 'display-name': { type: 'string' }, ...STORAGE },
  list: { ...STORAGE },
  remove: { ...STORAGE },
  passwd: { password: { type: 'string' }, ...STORAGE },
} as const;

type Subcommand = keyof typeof OPTIONS;

interface Parsed {
  positionals: string[];
  password: string | undefined;
  displayName: string | undefined;
  dataDir: string | undefined;
  database: string | undefined;
}

export async function runUserCommand(args: string[], io: CommandIo, defaults: UserCommandDefaults): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined) {
    io.err('parley user: missing command');
    usage(io.err, defaults);
    return 2;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    usage(io.out, defaults);
    return 0;
  }
  if (!isSubcommand(name)) {
    io.err(`parley user: unknown command "${name}"`);
    usage(io.err, defaults);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`usage: ${USAGE[name]}`);
    return 0;
  }

  let parsed: Parsed;
  try {
    parsed = parse(name, rest);
  } catch (error) {
    // parseArgs messages quote options, not values; scrub anyway so a password never reaches a log
    io.err(`parley user ${name}: ${scrub(error instanceof Error ? error.message : String(error), rest)}`);
    io.err(`usage: ${USAGE[name]}`);
    return 2;
  }
  const wantsAddress = name !== 'list';
  const usageError = wantsAddress && parsed.positionals.length !== 1
    ? `expected one SIP-ADDRESS, got ${parsed.positionals.length} arguments`
    : !wantsAddress && parsed.positionals.length > 0
      ? `takes no arguments, got ${parsed.positionals.length}`
      : (name === 'add' || name === 'passwd') && parsed.password === undefined
        ? 'missing --password PW'
        : undefined;
  const where = chooseStorage(parsed, { dataDir: defaults.dataDir, database: null });
  if (usageError !== undefined || typeof where === 'string') {
    io.err(`parley user ${name}: ${usageError ?? where}`);
    io.err(`usage: ${USAGE[name]}`);
    return 2;
  }

  let sql: SqlDatabase | undefined;
  try {
    const address = wantsAddress ? parseAddress(parsed.positionals[0] ?? '', defaults.domain).address : '';
    sql = (await openStorage(where, { applicationName: 'parley-user', max: 2, ensureDataDir: false })).sql;
    await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
    const ctx: CmdletContext = { sql, domain: defaults.domain, actor: `cli:${userInfo().username}`, now: Date.now };
    switch (name) {
      case 'add': {
        await cmdlet('Enable-CsUser', ctx, { Identity: address, Password: parsed.password ?? '', ...(parsed.displayName !== undefined ? { DisplayName: parsed.displayName } : {}) });
        const user = await findUser(sql, address);
        io.out(`added ${address}; SIP clients sign in with digest username "${user?.user ?? ''}" in realm "${user?.domain ?? ''}"`);
        break;
      }
      case 'passwd':
        await cmdlet('Set-CsUser', ctx, { Identity: address, Password: parsed.password ?? '' });
        io.out(`changed the password of ${address}`);
        break;
      case 'remove':
        await cmdlet('Disable-CsUser', ctx, { Identity: address });
        io.out(`removed ${address}`);
        break;
      case 'list':
        await printTable(io.out, sql, describeStorage(where));
        break;
    }
    return 0;
  } catch (error) {
    if (!(error instanceof ParleyError)) throw error;
    io.err(`parley user ${name}: ${scrub(error.message, rest)}`);
    return 1;
  } finally {
    await sql?.close();
  }
}

async function cmdlet(name: string, ctx: CmdletContext, args: BoundArgs): Promise<void> {
  const spec = USER_CMDLETS.find((c) => c.name === name);
  if (spec === undefined) throw new Error(`no cmdlet ${name}`);
  await spec.run(ctx, args);
}

function parse(name: Subcommand, args: string[]): Parsed {
  const { values, positionals } = parseArgs({ args, options: OPTIONS[name], allowPositionals: true, strict: true });
  const v = values as { password?: string; 'display-name'?: string; 'data-dir'?: string; database?: string };
  return { positionals, password: v.password, displayName: v['display-name'], dataDir: v['data-dir'], database: v.database };
}

async function printTable(out: (line: string) => void, sql: Sql, where: string): Promise<void> {
  const users = await listUsers(sql);
  if (users.length === 0) {
    out(`no users in ${where}; add one with: ${USAGE.add}`);
    return;
  }
  // the DEMO column only where there are demo users (`parley serve --demo`): remove them when done
  const demo = users.some((u) => u.demo);
  const rows = [
    ['ADDRESS', 'DISPLAY NAME', 'CREATED', ...(demo ? ['DEMO'] : [])],
    ...users.map((u) => [u.address, u.displayName ?? '-', `${u.createdAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`, ...(demo ? [u.demo ? 'yes' : '-'] : [])]),
  ];
  const widths = [0, 1, 2].map((col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  for (const r of rows) out(r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col] ?? 0))).join('  '));
}

function usage(write: (line: string) => void, defaults: UserCommandDefaults): void {
  write('usage:');
  for (const line of Object.values(USAGE)) write(`  ${line}`);
  write(`SIP-ADDRESS is alice@${defaults.domain}, sip:alice@${defaults.domain}, or alice (in the default domain ${defaults.domain}).`);
  write(`DIR defaults to ${defaults.dataDir}; --database acts on a PostgreSQL database (a cluster's) instead.`);
}

function isSubcommand(name: string): name is Subcommand {
  return Object.hasOwn(OPTIONS, name);
}

/** Replaces every value given to --password in `args` by *** in `text`. */
function scrub(text: string, args: readonly string[]): string {
  const secrets: string[] = [];
  args.forEach((arg, i) => {
    if (arg === '--password' && args[i + 1] !== undefined) secrets.push(args[i + 1] ?? '');
    else if (arg.startsWith('--password=')) secrets.push(arg.slice('--password='.length));
  });
  let result = text;
  for (const secret of secrets) if (secret.length > 0) result = result.split(secret).join('***');
  return result;
}

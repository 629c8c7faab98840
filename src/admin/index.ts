// `parley admin [--data-dir DIR] [--json] <Cmdlet> [-Param Value]...`: the cmdlet-style
// administration of Parley, after Skype for Business's PowerShell cmdlets.
//
// Local mode (today): acts on the SQLite database in the data directory, which is safe while the
// server runs (WAL; the server reads settings through effectiveSettings on every use).
// Remote mode (`--url URL --token TOKEN`, through the admin HTTP API) is not built yet: the
// cmdlet handlers take a CmdletContext, so a remote runner can bind arguments here and send them.
//
// Exit codes: 0 done; 2 usage (unknown cmdlet or parameter, missing or bad value); 1 the
// operation failed (unknown identity, a site in use…).

import { userInfo } from 'node:os';
import { DIRECTORY_MIGRATIONS } from '../directory/index.ts';
import { ParleyError } from '../errors.ts';
import { SETTINGS_MIGRATIONS } from '../settings/index.ts';
import type { Database } from '../storage/index.ts';
import { openDatabase, runMigrations } from '../storage/index.ts';
import { AdminError } from './errors.ts';
import { formatJson, formatList } from './format.ts';
import { bindArguments, findCmdlet, syntaxOf } from './parse.ts';
import { CMDLETS } from './registry.ts';

export interface AdminIo {
  out(line: string): void;
  err(line: string): void;
}

export interface AdminDefaults {
  dataDir: string;
  /** the domain of a user address written without one */
  domain: string;
}

export { AdminError } from './errors.ts';
export type { AdminErrorCode } from './errors.ts';
export { CMDLETS } from './registry.ts';

export async function runAdminCommand(args: string[], io: AdminIo, defaults: AdminDefaults): Promise<number> {
  let dataDir = defaults.dataDir;
  let json = false;
  let help = false;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--json') json = true;
    else if (arg === '--help' || arg === '-h' || arg === '-?') help = true;
    else if (arg === '--data-dir' || arg.startsWith('--data-dir=')) {
      const value = arg === '--data-dir' ? args[++i] : arg.slice('--data-dir='.length);
      if (value === undefined || value === '') return usageError(io, '--data-dir needs a directory');
      dataDir = value;
    } else if (arg === '--url' || arg === '--token' || arg.startsWith('--url=') || arg.startsWith('--token=')) {
      return usageError(io, 'remote administration (--url, --token) is not available yet; run parley admin on the server with --data-dir');
    } else if (arg.startsWith('--')) return usageError(io, `unknown option ${arg}; the options are --data-dir DIR and --json`);
    else rest.push(arg);
  }
  const [name, ...params] = rest;
  if (name === undefined) {
    if (help) {
      usage(io.out, defaults);
      return 0;
    }
    io.err('parley admin: missing cmdlet');
    usage(io.err, defaults);
    return 2;
  }

  let db: Database | undefined;
  try {
    const cmdlet = findCmdlet(CMDLETS, name);
    if (help) {
      io.out(syntaxOf(cmdlet));
      io.out(`  ${cmdlet.synopsis}`);
      for (const p of cmdlet.parameters) if (p.help !== undefined) io.out(`  -${p.name}: ${p.help}`);
      return 0;
    }
    const bound = bindArguments(cmdlet, params);
    db = openDatabase(dataDir);
    runMigrations(db, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS]);
    const output = await cmdlet.run({ db, domain: defaults.domain, actor: currentActor(), now: Date.now }, bound);
    if (json) io.out(formatJson(output));
    else for (const line of formatList(output)) io.out(line);
    return 0;
  } catch (error) {
    if (!(error instanceof ParleyError)) throw error;
    io.err(`parley admin: ${error.message}`);
    return isUsageError(error) ? 2 : 1;
  } finally {
    db?.close();
  }
}

/** Usage errors (exit 2): our own, and any error the edge would answer 400 Bad Request. */
function isUsageError(error: ParleyError): boolean {
  return error instanceof AdminError || (error as { httpStatus?: unknown }).httpStatus === 400;
}

function usageError(io: AdminIo, message: string): number {
  io.err(`parley admin: ${message}`);
  return 2;
}

/** The OS user running the command, for the audit log; `local` when it cannot be told. */
function currentActor(): string {
  try {
    const name = userInfo().username;
    return name === '' ? 'local' : name;
  } catch {
    return 'local';
  }
}

function usage(write: (line: string) => void, defaults: AdminDefaults): void {
  write('usage: parley admin [--data-dir DIR] [--json] <Cmdlet> [-Parameter Value]...');
  write('cmdlets:');
  for (const cmdlet of CMDLETS) write(`  ${syntaxOf(cmdlet)}`);
  write('Names are case-insensitive. Values: $True, $False, $Null (quote them in a Unix shell: \'$False\'), TimeSpans as 00:02:00.');
  write(`DIR defaults to ${defaults.dataDir}; user addresses without a domain are in ${defaults.domain}.`);
}

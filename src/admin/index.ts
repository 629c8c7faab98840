// `parley admin [--data-dir DIR | --database URL | --url URL --token-file FILE] [--json] <Cmdlet> [-Param Value]...`:
// the cmdlet-style administration of Parley, after Skype for Business's PowerShell cmdlets.
//
// Local mode (--data-dir, or --database postgres://… for a cluster's PostgreSQL): acts on the
// database itself, which is safe while servers run (SQLite's WAL; a transaction on PostgreSQL); the
// servers see a change of settings from their next request on, through the settings version that
// effectiveSettings' cache watches.
// Remote mode (--url): binds the arguments here, with the same parser, and runs the cmdlet on the
// server through the admin HTTP API (http/), which runs the same handlers; see remote.ts.
//
// Exit codes: 0 done; 2 usage (unknown cmdlet or parameter, missing or bad value); 1 the
// operation failed (unknown identity, a site in use, the server or database cannot be reached…).

import { userInfo } from 'node:os';
import { AUTH_MIGRATIONS } from '../auth/index.ts';
import { DIRECTORY_MIGRATIONS } from '../directory/index.ts';
import { ParleyError } from '../errors.ts';
import { FEDERATION_MIGRATIONS } from '../federation/index.ts';
import { SETTINGS_MIGRATIONS } from '../settings/index.ts';
import { PRESENCE_MIGRATIONS } from '../presence/index.ts';
import type { Storage } from '../storage/index.ts';
import { chooseStorage, migrate, openStorage } from '../storage/index.ts';
import { AdminError } from './errors.ts';
import { formatJson, formatList } from './format.ts';
import { bindArguments, findCmdlet, syntaxOf } from './parse.ts';
import { CMDLETS } from './registry.ts';
import { RemoteAdminFailure, TOKEN_ENV, parseServerUrl, resolveToken, runRemote } from './remote.ts';
import type { OutputObject } from './types.ts';

export interface AdminIo {
  out(line: string): void;
  err(line: string): void;
}

export interface AdminDefaults {
  dataDir: string;
  /** the domain of a user address written without one */
  domain: string;
  /** where PARLEY_ADMIN_TOKEN is read (default process.env) */
  env?: NodeJS.ProcessEnv;
}

export { AdminError } from './errors.ts';
export type { AdminErrorCode } from './errors.ts';
export { CMDLETS, serverCmdlets } from './registry.ts';
export type { LivePresence } from './cmdlets/presence.ts';
export type { LiveLockouts } from './cmdlets/auth-lockout.ts';
export { ADMIN_PATH, AdminApiError, createAdminRoute, createTokenCheck, makeProblem, problemOf } from './http/index.ts';
export type { AdminApiErrorCode, AdminEndpoint, AdminEndpointRequest, AdminMethod, AdminRoute, AdminRouteOptions } from './http/index.ts';

export async function runAdminCommand(args: string[], io: AdminIo, defaults: AdminDefaults): Promise<number> {
  let dataDir: string | undefined;
  let database: string | undefined;
  let url: string | undefined;
  let token: string | undefined;
  let tokenFile: string | undefined;
  let json = false;
  let help = false;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const option = /^(--data-dir|--database|--url|--token|--token-file)(?:=(.*))?$/s.exec(arg);
    if (arg === '--json') json = true;
    else if (arg === '--help' || arg === '-h' || arg === '-?') help = true;
    else if (option !== null) {
      const value = option[2] ?? args[++i];
      if (value === undefined || value === '') return usageError(io, `${option[1]} needs a value`);
      if (option[1] === '--data-dir') dataDir = value;
      else if (option[1] === '--database') database = value;
      else if (option[1] === '--url') url = value;
      else if (option[1] === '--token') token = value;
      else tokenFile = value;
    } else if (arg.startsWith('--')) return usageError(io, `unknown option ${arg}; the options are --data-dir DIR, --database URL, --url URL, --token-file FILE, --token TOKEN and --json`);
    else rest.push(arg);
  }
  if (url !== undefined && (dataDir !== undefined || database !== undefined)) return usageError(io, `give ${dataDir !== undefined ? '--data-dir (act on the data directory)' : '--database (act on the database)'} or --url (through the server), not both`);
  const where = chooseStorage({ dataDir, database }, { dataDir: defaults.dataDir, database: null });
  if (typeof where === 'string') return usageError(io, where);
  if (url === undefined && (token !== undefined || tokenFile !== undefined)) return usageError(io, '--token and --token-file go with --url');
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

  let storage: Storage | undefined;
  try {
    const cmdlet = findCmdlet(CMDLETS, name);
    if (help) {
      io.out(syntaxOf(cmdlet));
      io.out(`  ${cmdlet.synopsis}`);
      for (const p of cmdlet.parameters) if (p.help !== undefined) io.out(`  -${p.name}: ${p.help}`);
      return 0;
    }
    const bound = bindArguments(cmdlet, params);
    let output: OutputObject[];
    if (url !== undefined) {
      const target = { url: parseServerUrl(url), token: resolveToken(token, tokenFile, defaults.env ?? process.env) };
      output = await runRemote(target, cmdlet, bound);
    } else {
      storage = await openStorage(where, { applicationName: 'parley-admin', max: 2, ensureDataDir: false });
      const { sql } = storage;
      await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, PRESENCE_MIGRATIONS, AUTH_MIGRATIONS, FEDERATION_MIGRATIONS]);
      output = await cmdlet.run({ sql, domain: defaults.domain, actor: currentActor(), now: Date.now }, bound);
    }
    if (json) io.out(formatJson(output));
    else for (const line of formatList(output)) io.out(line);
    return 0;
  } catch (error) {
    if (error instanceof RemoteAdminFailure) {
      io.err(`parley admin: ${error.message}`);
      return error.exitCode;
    }
    if (!(error instanceof ParleyError)) throw error;
    io.err(`parley admin: ${error.message}`);
    return isUsageError(error) ? 2 : 1;
  } finally {
    await storage?.sql.close();
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
  write('usage: parley admin [--data-dir DIR | --database postgres://…] [--json] <Cmdlet> [-Parameter Value]...');
  write('       parley admin --url URL --token-file FILE [--json] <Cmdlet> [-Parameter Value]...');
  write('cmdlets:');
  for (const cmdlet of CMDLETS) write(`  ${syntaxOf(cmdlet)}`);
  write('Names are case-insensitive. Values: $True, $False, $Null (quote them in a Unix shell: \'$False\'), TimeSpans as 00:02:00.');
  write(`DIR defaults to ${defaults.dataDir}; --database acts on a PostgreSQL database (a cluster's) instead;`);
  write(`user addresses without a domain are in ${defaults.domain}.`);
  write('--url runs the cmdlet on a running server through its admin API (its HTTP port, e.g. http://127.0.0.1:8080),');
  write('with the admin token the server made in DIR/secrets/admin.token: pass the file with --token-file FILE');
  write(`(recommended), or the token in ${TOKEN_ENV}; --token TOKEN works too but shows it to other local users.`);
}
export type { CommandIo, UserCommandDefaults } from './user-command.ts';
export { runUserCommand } from './user-command.ts';

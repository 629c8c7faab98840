// Remote mode of `parley admin`: the arguments are bound here, by the same parser as local mode,
// sent to the server's admin API, and the answer is printed by the same formatter. A problem
// answer becomes the same message and exit code local mode gives (2 usage, 1 failure).

import { readFileSync } from 'node:fs';
import { AdminError } from './errors.ts';
import { fromJsonObjects } from './format.ts';
import { readProblem } from './http/problem.ts';
import type { Problem } from './http/problem.ts';
import { toWireParameters } from './http/validate.ts';
import type { BoundArgs, CmdletSpec, OutputObject } from './types.ts';

export const TOKEN_ENV = 'PARLEY_ADMIN_TOKEN';
const TIMEOUT_MS = 60_000;

/** A failure to report: the message, and the exit code (2 usage, 1 anything else). */
export class RemoteAdminFailure extends Error {
  readonly exitCode: 1 | 2;

  constructor(message: string, exitCode: 1 | 2) {
    super(message);
    this.name = 'RemoteAdminFailure';
    this.exitCode = exitCode;
  }
}

export interface RemoteTarget {
  /** the server's HTTP base, e.g. http://127.0.0.1:8080 (a path prefix is kept) */
  readonly url: URL;
  readonly token: string;
}

/** `--url` checked: http or https, no credentials, query or fragment. */
export function parseServerUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AdminError('BAD_VALUE', `--url ${JSON.stringify(text)} is not a URL; write e.g. http://127.0.0.1:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AdminError('BAD_VALUE', `--url ${text}: only http:// and https:// are spoken`);
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new AdminError('BAD_VALUE', `--url ${text}: give the server's address only (the token goes in --token-file)`);
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/** The token: --token, else --token-file, else $PARLEY_ADMIN_TOKEN. */
export function resolveToken(token: string | undefined, tokenFile: string | undefined, env: NodeJS.ProcessEnv): string {
  if (token !== undefined && tokenFile !== undefined) throw new AdminError('BAD_SYNTAX', 'give --token or --token-file, not both');
  if (token !== undefined) return checkToken(token, '--token');
  if (tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(tokenFile, 'utf8');
    } catch (error) {
      throw new RemoteAdminFailure(`cannot read the token file ${tokenFile}: ${(error as Error).message}`, 1);
    }
    return checkToken(text.trim(), `the token file ${tokenFile}`);
  }
  const fromEnv = env[TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return checkToken(fromEnv.trim(), TOKEN_ENV);
  throw new AdminError(
    'MISSING_PARAMETER',
    `--url needs the admin token: --token-file DATA-DIR/secrets/admin.token (the file the server made in its data directory), or ${TOKEN_ENV}, or --token TOKEN`,
  );
}

function checkToken(token: string, from: string): string {
  if (token === '' || /\s/.test(token)) throw new AdminError('BAD_VALUE', `${from} holds no token (one line, no spaces)`);
  return token;
}

/** Runs a cmdlet on the server; the objects it answered, ready for formatList/formatJson. */
export async function runRemote(target: RemoteTarget, cmdlet: CmdletSpec, bound: BoundArgs): Promise<OutputObject[]> {
  const endpoint = new URL(`admin/cmdlets/${encodeURIComponent(cmdlet.name)}`, target.url);
  let response: Response;
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/json', accept: 'application/json, application/problem+json' },
      body: JSON.stringify({ parameters: toWireParameters(cmdlet, bound) }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
  } catch (error) {
    throw new RemoteAdminFailure(connectionMessage(target.url, error), 1);
  }
  const text = await response.text().catch(() => '');
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (response.ok) {
    const results = (body as { results?: unknown } | undefined)?.results;
    if (!Array.isArray(results) || !results.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r))) {
      throw new RemoteAdminFailure(`${endpoint.origin} answered ${response.status} without results: is it a Parley server's HTTP port?`, 1);
    }
    return fromJsonObjects(results as Record<string, unknown>[]);
  }
  const problem = readProblem(body);
  if (problem === undefined) {
    throw new RemoteAdminFailure(`${endpoint.origin} answered ${response.status} ${response.statusText}${response.status === 404 ? ': is it a Parley server\'s HTTP port?' : ''}`, 1);
  }
  throw new RemoteAdminFailure(messageOf(problem), exitCodeOf(problem));
}

/** What local mode would print for the same error. */
function messageOf(problem: Problem): string {
  if (problem.status === 401) return `the server refused the admin token: ${problem.detail}`;
  return problem.detail;
}

/**
 * Local mode exits 2 on usage errors (every AdminError, and errors the API answers 400) and 1 on
 * the rest. Over HTTP, UNKNOWN_CMDLET is a 404, but still a usage error.
 */
export function exitCodeOf(problem: Problem): 1 | 2 {
  if (problem.status === 400) return 2;
  if (problem.code === 'UNKNOWN_CMDLET') return 2;
  return 1;
}

function connectionMessage(url: URL, error: unknown): string {
  const server = url.href.replace(/\/$/, '');
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  if ((error as Error).name === 'TimeoutError') return `${server} did not answer within ${TIMEOUT_MS / 1000} s`;
  if (code === 'ECONNREFUSED') return `cannot connect to ${server}: connection refused; is parley serve running, and is this its HTTP port (--http-port)?`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot connect to ${server}: the host ${url.hostname} is not known`;
  const detail = typeof cause?.message === 'string' ? cause.message : (error as Error).message;
  return `cannot connect to ${server}: ${detail}`;
}

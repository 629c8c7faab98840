// One load step: sipp (pinned to the load core) offers `rate` calls per second for `calls` calls
// against a server, and we read its own accounting back:
//  - -trace_stat (-stf): the final SuccessfulCall(C) / FailedCall(C) / TotalCallCreated counters;
//  - -trace_rtt with -rtt_freq 1: one line per measured response time (whole milliseconds), `<scenario>_<pid>_rtt.csv`
//    in sipp's working directory, "Date_ms;response_time_ms;rtd_no"; the scenarios mark the
//    authenticated transaction as rtd 1.
// A call counts as failed when sipp says so or when it did not succeed by the end (never created,
// or still running at the -timeout).

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findFreePort, injectionCsv, parseStatCsv } from '../test/harness/sipp.ts';
import { LOAD_CORE } from './servers.ts';

export interface StepOptions {
  scenario: string;
  target: string;
  domain: string;
  rate: number;
  calls: number;
  injection: ReadonlyArray<readonly string[]>;
  keys?: Readonly<Record<string, string>>;
  /** sipp's digest uri, the same for every request (default: the domain, REGISTER's Request-URI) */
  authUri?: string;
  /**
   * TCP, one connection per call, closed when the call ends (sipp -t tn), at most `connections`
   * open at once (-max_socket: past it sipp shares sockets between calls, which fails with broken
   * pipes); the default is UDP, one socket
   */
  stream?: { connections: number };
  /**
   * Long-lived connections (with `stream`; bench/sipp/*-loop.xml): one call per injection row, each
   * its own connection, open for the whole step and sending `times` requests (two transactions
   * each, challenge and authenticated request), one every `periodMs`; the first due times are
   * staggered over one period, from `startInMs` after sipp starts (the connections are opened
   * meanwhile, at `openRate` a second). The step's calls, successes and failures then count
   * requests (authenticated transactions), not connections.
   */
  loop?: { times: number; periodMs: number; startInMs: number; openRate: number };
  /** return every measured response time (StepResult.times), to merge steps run side by side (bench/cluster.ts) */
  keepTimes?: boolean;
}

export interface StepResult {
  rate: number;
  calls: number;
  successful: number;
  failed: number;
  /** successful calls per second of sipp's elapsed time */
  achieved: number;
  failureRatio: number;
  p50Ms: number;
  p99Ms: number;
  /** the mean response time: sipp measures whole milliseconds, and the mean resolves what p50 cannot */
  meanMs?: number;
  /** every measured response time, sorted (with keepTimes) */
  times?: readonly number[];
  samples: number;
  elapsedSec: number;
  exitCode: number | null;
  /** the start of sipp's -trace_err file when calls failed */
  errors?: string;
}

/**
 * Seconds from sipp's StartTime to the CurrentTime of its last statistics line. Both are
 * "YYYY-MM-DD<tab>HH:MM:SS.uuuuuu<tab>epoch.uuuuuu"; ElapsedTime(C) has whole seconds only.
 */
function elapsedSeconds(raw: Record<string, string>): number {
  const epoch = (v: string | undefined) => Number((v ?? '').trim().split(/\s+/).pop());
  return epoch(raw['CurrentTime']) - epoch(raw['StartTime']);
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((sum, v) => sum + v, 0) / values.length;
}

/**
 * The port in REGISTER's Contact (register.xml's [contact_port]), the same on every transport and
 * in every step: over TCP and TLS a call's own connection has a local port of its own, and over UDP
 * each step's sipp has one; a Contact that changed with it would add a binding per call or per step
 * (Kamailio refuses the 17th of an address with 503, max_contacts 16: after 16 steps its held step
 * failed every call) where a client registering again keeps its Contact and refreshes its binding.
 * Nothing is sent to these Contacts: the MESSAGE receivers register on their own.
 */
const CONTACT_PORT = 5060;

function transportArgs(stream: StepOptions['stream'], looping: boolean): string[] {
  if (!stream) return ['-t', 'u1'];
  // sipp counts sockets of its own against -max_socket: with exactly one per call, the last calls
  // of a looping step (all open at once) found no socket of their own and failed (broken pipe)
  return ['-t', 'tn', '-max_socket', String(stream.connections + (looping ? 16 : 0))];
}

export async function runStep(opts: StepOptions): Promise<StepResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-sipp-'));
  try {
    const csv = path.join(dir, 'users.csv');
    const loop = opts.loop;
    // the first request of connection i is due at start + i·period/connections (Unix ms)
    const start = Date.now() + (loop?.startInMs ?? 0);
    const rows = loop ? opts.injection.map((row, i) => [...row, (start + (i * loop.periodMs) / opts.injection.length).toFixed(0), String(loop.periodMs), String(loop.times)]) : opts.injection;
    await writeFile(csv, injectionCsv(rows));
    const stat = path.join(dir, 'stat.csv');
    const errFile = path.join(dir, 'errors.log');
    const localPort = await findFreePort();
    // the requests of a looping step, or its calls
    const requests = loop ? opts.injection.length * loop.times : opts.calls;
    const sendSec = loop ? (loop.startInMs + loop.times * loop.periodMs) / 1000 : opts.calls / opts.rate;
    const timeoutSec = Math.ceil(sendSec + 15);
    const pace = loop ? ['-m', String(opts.injection.length), '-l', String(opts.injection.length), '-r', String(loop.openRate)] : ['-m', String(opts.calls), '-r', String(opts.rate)];
    const args = [
      '-c', LOAD_CORE, 'sipp', opts.target, '-sf', opts.scenario, ...transportArgs(opts.stream, loop !== undefined), '-i', '127.0.0.1', '-p', String(localPort),
      ...pace, '-rp', '1000', '-nostdin', '-timeout', `${timeoutSec}s`,
      // a call with no answer for 5 s fails instead of retransmitting for ever
      '-recv_timeout', '5000', '-default_behaviors', 'all,-bye', '-inf', csv,
      '-key', 'domain', opts.domain, '-auth_uri', opts.authUri ?? opts.domain, '-key', 'contact_port', String(CONTACT_PORT),
      '-trace_stat', '-stf', stat, '-fd', '1', '-trace_rtt', '-rtt_freq', '1',
      '-trace_err', '-error_file', errFile,
      // [dynamic_id] (the looping scenarios' CSeq and branches) grows by 1 per use and does not wrap back within a step (the default wraps at 12,000)
      '-dynamicStep', '1', '-dynamicMax', '2000000000',
    ];
    for (const [k, v] of Object.entries(opts.keys ?? {})) args.push('-key', k, v);
    const child = spawn('taskset', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 10_000)));
    const kill = setTimeout(() => child.kill('SIGKILL'), (timeoutSec + 10) * 1000);
    const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    clearTimeout(kill);
    const stats = parseStatCsv(await readFile(stat, 'utf8').catch(() => ''));
    if (!stats) throw new Error(`sipp wrote no statistics (exit ${exitCode}): ${stderr.slice(0, 2000)}`);
    const rttFile = (await readdir(dir)).find((f) => f.endsWith('_rtt.csv'));
    const times: number[] = [];
    // the last measured answer, ms after sipp's start (the file's Date_ms)
    let lastAt = 0;
    if (rttFile) {
      for (const line of (await readFile(path.join(dir, rttFile), 'utf8')).split('\n')) {
        const [at, ms, rtd] = line.split(';');
        if (rtd?.trim() === '1' && ms !== undefined && ms !== '' && !Number.isNaN(Number(ms))) {
          times.push(Number(ms));
          lastAt = Math.max(lastAt, Number(at));
        }
      }
    }
    times.sort((a, b) => a - b);
    const elapsedSec = elapsedSeconds(stats.raw) || sendSec;
    // a looping step counts requests: those answered (measured) of those due; a late server
    // stretches the time they took beyond the nominal one, and the rate carried falls with it
    const successful = loop ? times.length : Number.isFinite(stats.successfulCalls) ? stats.successfulCalls : 0;
    const loadSec = loop ? Math.max((loop.times * loop.periodMs) / 1000, (lastAt - loop.startInMs) / 1000) : Math.max(elapsedSec, sendSec);
    return {
      rate: opts.rate,
      calls: requests,
      successful,
      failed: requests - successful,
      achieved: successful / loadSec,
      failureRatio: (requests - successful) / requests,
      p50Ms: percentile(times, 50),
      p99Ms: percentile(times, 99),
      meanMs: mean(times),
      ...(opts.keepTimes ? { times } : {}),
      samples: times.length,
      elapsedSec,
      exitCode,
      errors: successful < requests ? (await readFile(errFile, 'utf8').catch(() => '')).slice(0, 1500) : undefined,
    };
  } finally {
    // BENCH_KEEP_SIPP=1: each step's sipp files (its response times with their send times, `*_rtt.csv`) stay, to look at when the slow answers came
    if (process.env.BENCH_KEEP_SIPP === '1') process.stderr.write(`bench: sipp files kept in ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  }
}

/** Starts a long-lived registered receiver (sipp UAS) for scenario 2; resolves once registered. */
export async function startReceiver(opts: { scenario: string; ooc: string; target: string; domain: string; user: string; password: string; holdMs: number; deadCallWaitMs?: number }): Promise<{ stop(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-uas-'));
  const csv = path.join(dir, 'bob.csv');
  await writeFile(csv, injectionCsv([[opts.user, opts.password]]));
  const log = path.join(dir, 'log.txt');
  const port = await findFreePort();
  const args = ['-c', LOAD_CORE, 'sipp', opts.target, '-sf', opts.scenario, '-oocsf', opts.ooc, '-t', 'u1', '-i', '127.0.0.1', '-p', String(port), '-m', '1', '-nostdin',
    '-d', String(opts.holdMs), '-inf', csv, '-key', 'domain', opts.domain, '-auth_uri', opts.domain, '-trace_logs', '-log_file', log, '-default_behaviors', 'all,-bye'];
  // how long sipp keeps an ended call's Call-ID and takes later messages with it as that call's (default 33 s)
  if (opts.deadCallWaitMs !== undefined) args.push('-deadcall_wait', String(opts.deadCallWaitMs));
  const child = spawn('taskset', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 10_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.once('exit', () => child.kill('SIGKILL'));
  const until = Date.now() + 10_000;
  while (!(await readFile(log, 'utf8').catch(() => '')).includes('bench-registered')) {
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`receiver did not register: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async stop() {
      child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

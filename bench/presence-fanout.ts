// Presence fan-out (issue 6, "Performance"): one user with N watchers (1,000 by default) changes
// state; how many NOTIFYs per second does Parley send, and how long until the last watcher has its
// NOTIFY?
//
//   node bench/presence-fanout.ts [--watchers 1000] [--rounds 5] [--json]
//
// Parley runs as bench/servers.ts starts it (its own process pinned to core 0, `--log-level warn`,
// MD5 digest, users seeded with one scrypt hash). This process is pinned to core 1 and runs the
// SDK (src/client SipClient over TCP): N watchers, each on its own TCP connection as real clients
// are, each with one presence subscription to the boss, answering every NOTIFY with 200. The boss
// (registered over TCP) then PUBLISHes a new state per round — Busy, Away, Do Not Disturb, Be Right
// Back, Available, each with a note naming the round — and the round ends when every watcher has
// received the NOTIFY showing it. One warm-up round is not counted.
//
// Per round: lastNotifyMs = from sending the PUBLISH to the last watcher's NOTIFY (as the SDK hands
// it over, parsed); notifiesPerSecond = N / lastNotifyMs. The result gives the median round, and
// the best and the worst.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SipClient } from '../src/client/index.ts';
import type { SipRequest } from '../src/sip/index.ts';
import { LOAD_CORE, startParley } from './servers.ts';

export interface PresenceFanoutOptions {
  /** default 1000 */
  watchers?: number;
  /** measured rounds after one warm-up; default 5 */
  rounds?: number;
  /** progress lines (default: none) */
  log?: (line: string) => void;
  /** give up on a round after this long; default 60 s */
  roundTimeoutMs?: number;
}

export interface FanoutRound {
  state: string;
  /** PUBLISH sent → its 200 */
  publishMs: number;
  /** PUBLISH sent → the first watcher's NOTIFY */
  firstNotifyMs: number;
  /** PUBLISH sent → half of the watchers have theirs */
  medianNotifyMs: number;
  /** PUBLISH sent → the last watcher's NOTIFY */
  lastNotifyMs: number;
  notifiesPerSecond: number;
}

export interface PresenceFanoutResult {
  watchers: number;
  rounds: number;
  /** of the median round (by lastNotifyMs) */
  notifiesPerSecond: number;
  lastNotifyMs: number;
  firstNotifyMs: number;
  medianNotifyMs: number;
  best: FanoutRound;
  worst: FanoutRound;
  perRound: FanoutRound[];
  /** connecting and subscribing every watcher (each gets its first NOTIFY) */
  setupMs: number;
  /** CPU seconds of the server process during the measured rounds, from /proc */
  serverCpuSeconds: number | null;
  /** CPU seconds of this process (the N watchers' SDK clients) during the measured rounds */
  loadCpuSeconds: number;
  /** resident memory of the server with every subscription, MiB */
  serverRssMiB: number | null;
}

const DOMAIN = 'bench.parley';
const PASSWORD = 'bench-pw';
const BOSS = 'boss';
const PIDF = 'application/pidf+xml';
const STATES: ReadonlyArray<{ name: string; activities: string }> = [
  { name: 'Busy', activities: '<rpid:busy/>' },
  { name: 'Away', activities: '<rpid:away/>' },
  { name: 'Do Not Disturb', activities: '<rpid:busy/><rpid:other>do-not-disturb</rpid:other>' },
  { name: 'Be Right Back', activities: '<rpid:away/><rpid:other>be-right-back</rpid:other>' },
  { name: 'Available', activities: '' },
];
/** subscriptions set up at once */
const SETUP_CONCURRENCY = 50;

function pidf(note: string, activities: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:${BOSS}@${DOMAIN}">
  <tuple id="desk"><status><basic>open</basic></status></tuple>
  <dm:person id="p">${activities === '' ? '' : `<rpid:activities>${activities}</rpid:activities>`}<dm:note>${note}</dm:note></dm:person>
</presence>`;
}

/** Pins this process (the load) to the load core, as the other benchmarks do; silently not when taskset is missing. */
function pinSelf(): void {
  try {
    execFileSync('taskset', ['-pc', LOAD_CORE, String(process.pid)], { stdio: 'ignore' });
  } catch {
    // not pinned: the numbers are then noisier, not wrong
  }
}

/** utime + stime of a process, seconds (/proc/PID/stat fields 14 and 15). */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

function rssMiB(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? null : Math.round(Number(kb) / 102.4) / 10;
  } catch {
    return null;
  }
}

/** Runs `task` over `items`, `limit` at a time. */
async function inBatches<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await task(items[next++] as T);
  }));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

export async function runPresenceFanout(opts: PresenceFanoutOptions = {}): Promise<PresenceFanoutResult> {
  const n = opts.watchers ?? 1000;
  const rounds = opts.rounds ?? 5;
  const log = opts.log ?? (() => {});
  const roundTimeoutMs = opts.roundTimeoutMs ?? 60_000;
  pinSelf();
  const watcherNames = Array.from({ length: n }, (_, i) => `w${String(i + 1).padStart(5, '0')}`);
  log(`starting Parley with ${n + 1} users`);
  const server = await startParley(DOMAIN, [BOSS, ...watcherNames], PASSWORD);
  const clients: SipClient[] = [];
  // source addresses rotate over 127.0.0.1-127.0.0.8, as in ws-load.ts: 10,000 watchers from one
  // address would pass Parley's connections-per-source limit (sip.connections.maxPerSource, 3,000)
  const client = (user: string) => {
    const localAddress = `127.0.0.${1 + (clients.length % 8)}`;
    const c = new SipClient({ server: `tcp://127.0.0.1:${server.port}`, localAddress, aor: `sip:${user}@${DOMAIN}`, password: PASSWORD, requestTimeoutMs: 32_000, keepAliveIntervalMs: 0 });
    clients.push(c);
    return c;
  };
  try {
    const boss = client(BOSS);
    await boss.connect();
    await boss.register({ expires: 3600 });

    // What each watcher waits for in the current round: the note of the round in a NOTIFY.
    let expected = '';
    let onArrival: ((index: number, at: number) => void) | undefined;
    const setupStart = performance.now();
    const firstNotify: Array<Promise<void>> = [];
    await inBatches(watcherNames.map((name, index) => ({ name, index })), SETUP_CONCURRENCY, async ({ name, index }) => {
      const c = client(name);
      let first: (() => void) | undefined;
      firstNotify[index] = new Promise<void>((resolve) => (first = resolve));
      c.on('request', (request: SipRequest) => {
        if (request.method !== 'NOTIFY') {
          c.respond(request, 405);
          return;
        }
        const at = performance.now();
        c.respond(request, 200);
        if (first !== undefined) {
          first();
          first = undefined;
        }
        if (expected !== '' && request.body.includes(expected)) onArrival?.(index, at);
      });
      await c.connect();
      const res = await c.request('SUBSCRIBE', `sip:${BOSS}@${DOMAIN}`, { contact: true, headers: { Event: 'presence', Expires: '3600', Accept: PIDF } });
      if (res.status !== 200) throw new Error(`SUBSCRIBE of ${name} answered ${res.status} ${res.reason}`);
    });
    await Promise.all(firstNotify);
    const setupMs = performance.now() - setupStart;
    log(`${n} watchers subscribed in ${Math.round(setupMs)} ms`);
    const serverRssMiB = rssMiB(server.pid);

    const perRound: FanoutRound[] = [];
    let cpuBefore: number | null = null;
    let loadBefore = process.cpuUsage();
    let etag: string | undefined;
    for (let r = 0; r <= rounds; r++) {
      if (r === 1) {
        cpuBefore = cpuSeconds(server.pid);
        loadBefore = process.cpuUsage();
      }
      const state = STATES[r % STATES.length]!;
      const note = `round ${r} ${state.name}`;
      const times = new Array<number>(n).fill(0);
      let got = 0;
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`round ${r}: only ${got} of ${n} watchers had their NOTIFY after ${roundTimeoutMs} ms`)), roundTimeoutMs);
        onArrival = (index, at) => {
          if (times[index] !== 0) return;
          times[index] = at;
          if (++got === n) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
      expected = `<note>${note}</note>`;
      const sent = performance.now();
      // one publication, modified each round (RFC 3903 §4.4: SIP-If-Match with the last entity-tag)
      const headers: Record<string, string> = { Event: 'presence', Expires: '3600', ...(etag === undefined ? {} : { 'SIP-If-Match': etag }) };
      const published = boss.request('PUBLISH', `sip:${BOSS}@${DOMAIN}`, { headers, body: pidf(note, state.activities), contentType: PIDF })
        .then((res) => {
          if (res.status !== 200) throw new Error(`PUBLISH answered ${res.status} ${res.reason}`);
          etag = res.headers.get('sip-etag');
          return performance.now() - sent;
        });
      const [publishMs] = await Promise.all([published, done]);
      const offsets = times.map((t) => t - sent).sort((a, b) => a - b);
      const lastNotifyMs = offsets[offsets.length - 1] ?? 0;
      const round: FanoutRound = {
        state: state.name,
        publishMs: round1(publishMs),
        firstNotifyMs: round1(offsets[0] ?? 0),
        medianNotifyMs: round1(median(offsets)),
        lastNotifyMs: round1(lastNotifyMs),
        notifiesPerSecond: Math.round(n / (lastNotifyMs / 1000)),
      };
      log(`${r === 0 ? 'warm-up' : `round ${r}`}: ${state.name}: last NOTIFY after ${round.lastNotifyMs} ms (first ${round.firstNotifyMs}, median ${round.medianNotifyMs}), ${round.notifiesPerSecond} NOTIFY/s`);
      if (r > 0) perRound.push(round);
      // let the 200s to the last NOTIFYs reach the server before the next change
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const cpuAfter = cpuSeconds(server.pid);
    const load = process.cpuUsage(loadBefore);
    const byLast = [...perRound].sort((a, b) => a.lastNotifyMs - b.lastNotifyMs);
    const mid = byLast[Math.floor((byLast.length - 1) / 2)]!;
    return {
      watchers: n,
      rounds,
      notifiesPerSecond: mid.notifiesPerSecond,
      lastNotifyMs: mid.lastNotifyMs,
      firstNotifyMs: mid.firstNotifyMs,
      medianNotifyMs: mid.medianNotifyMs,
      best: byLast[0]!,
      worst: byLast[byLast.length - 1]!,
      perRound,
      setupMs: Math.round(setupMs),
      serverCpuSeconds: cpuBefore === null || cpuAfter === null ? null : round1(cpuAfter - cpuBefore),
      loadCpuSeconds: round1((load.user + load.system) / 1e6),
      serverRssMiB,
    };
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await server.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { watchers: { type: 'string' }, rounds: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
  });
  const result = await runPresenceFanout({
    watchers: values.watchers === undefined ? undefined : Number(values.watchers),
    rounds: values.rounds === undefined ? undefined : Number(values.rounds),
    log: values.json ? undefined : (line) => process.stderr.write(`${line}\n`),
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `Presence fan-out: ${result.watchers} watchers, median of ${result.rounds} rounds\n` +
      `  NOTIFYs per second:       ${result.notifiesPerSecond}\n` +
      `  last watcher's NOTIFY:    ${result.lastNotifyMs} ms after the PUBLISH (best ${result.best.lastNotifyMs}, worst ${result.worst.lastNotifyMs})\n` +
      `  first / median watcher:   ${result.firstNotifyMs} / ${result.medianNotifyMs} ms\n` +
      `  setup (subscribe all):    ${result.setupMs} ms; server RSS ${result.serverRssMiB ?? '?'} MiB, CPU ${result.serverCpuSeconds ?? '?'} s over the rounds (watchers' process: ${result.loadCpuSeconds} s)\n`,
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`presence-fanout: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

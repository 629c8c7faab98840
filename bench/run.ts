// `npm run bench` / `npm run bench -- --quick`: Parley and Kamailio side by side on this machine
// (issue 7). Each server runs alone, pinned to core 0; sipp runs on core 1. For each scenario
// the offered rate steps up until a step fails the criteria; results go to bench/RESULTS.md and
// bench/throughput.svg. Needs scripts/install-bench-deps.sh.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeReport } from './report.ts';
import type { BenchReport, ScenarioReport, ServerRun, StepRecord, WsReport } from './report.ts';
import { BENCH_DIR, LOAD_CORE, SERVER_CORE, cpuSeconds, fdLimit, memoryKb, rssKb, startKamailio, startParley } from './servers.ts';
import type { BenchServer } from './servers.ts';
import { runStep, startReceiver } from './sipp-step.ts';
import { openIdleRegistrations } from './ws-load.ts';

const quick = process.argv.includes('--quick');
// `--out DIR` writes the report elsewhere (the test command's smoke run keeps bench/RESULTS.md as committed).
const outIndex = process.argv.indexOf('--out');
const OUT_DIR = outIndex > 0 && process.argv[outIndex + 1] ? path.resolve(process.argv[outIndex + 1] as string) : BENCH_DIR;
const DOMAIN = 'bench.test';
const PASSWORD = 'bench-secret';
const MAX_FAILURE_RATIO = 0.01;
const MAX_P99_MS = 50;
const RATES = quick ? [250, 500, 1000, 2000, 4000, 8000] : [100, 200, 400, 800, 1600, 3200, 6400, 12800];
const STEP_SEC = quick ? 3 : 10;
const WS_COUNTS = quick ? [2_000] : [10_000, 50_000];
const SIPP_USERS = Array.from({ length: 200 }, (_, i) => `user${String(i).padStart(3, '0')}`);
const RECEIVER = 'bob';
const SCENARIO = (f: string) => path.join(BENCH_DIR, 'sipp', f);
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

function requireTools(): void {
  for (const tool of ['sipp', 'kamailio', 'taskset']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is missing: run scripts/install-bench-deps.sh`);
    }
  }
}

/** Samples the server's memory every 200 ms until stopped; returns the maximum seen. */
function sampleMemory(pid: number): { stop(): number } {
  let peak = memoryKb(pid);
  const t = setInterval(() => (peak = Math.max(peak, memoryKb(pid))), 200);
  return {
    stop() {
      clearInterval(t);
      return Math.max(peak, memoryKb(pid));
    },
  };
}

/** UDP datagrams the kernel dropped for full socket buffers, machine-wide (/proc/net/snmp). */
function udpRcvbufErrors(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  return Number(values[names.indexOf('RcvbufErrors')] ?? 0);
}

type StepFn = (rate: number) => ReturnType<typeof runStep>;

async function stepUp(server: BenchServer, name: string, run: StepFn): Promise<ServerRun> {
  const mem = sampleMemory(server.pid);
  const steps: StepRecord[] = [];
  let failedBefore = false;
  for (const rate of RATES) {
    const cpu0 = cpuSeconds(server.pid);
    const drops0 = udpRcvbufErrors();
    const t0 = performance.now();
    const r = await run(rate);
    const wall = (performance.now() - t0) / 1000;
    const cpu = (cpuSeconds(server.pid) - cpu0) / wall;
    const passed = r.failureRatio < MAX_FAILURE_RATIO && r.p99Ms < MAX_P99_MS;
    const udpDrops = udpRcvbufErrors() - drops0;
    steps.push({ ...r, cpu, passed, udpDrops });
    log(`${server.name} ${name} offered ${rate}/s: ${r.successful}/${r.calls} ok, ${r.achieved.toFixed(0)} ok/s, p50 ${r.p50Ms} ms p99 ${r.p99Ms} ms, cpu ${(cpu * 100).toFixed(0)}%, ${udpDrops} UDP drops ${passed ? 'pass' : 'FAIL'}`);
    if (r.errors) log(`sipp errors (start):\n${r.errors}`);
    // A failed step that still carried the offered rate is likely a latency hiccup (GC, a noisy
    // neighbour): one more step decides. Two failures in a row, or a saturated step, end the run.
    const saturated = r.achieved < 0.9 * rate;
    if (!passed && (saturated || failedBefore)) break;
    failedBefore = !passed;
    // let retransmissions and transactions of the step drain
    await new Promise((res) => setTimeout(res, 500));
  }
  return { steps, peakMemoryKb: mem.stop() };
}

interface ServerResult {
  register: ServerRun;
  message: ServerRun;
  /** error lines the server logged (first few), to explain failures */
  errors: string[];
}

async function benchServer(start: typeof startParley): Promise<ServerResult> {
  const server = await start(DOMAIN, [...SIPP_USERS, RECEIVER], PASSWORD);
  try {
    const target = `127.0.0.1:${server.port}`;
    const injection = SIPP_USERS.map((u) => [u, PASSWORD]);
    const callsFor = (rate: number) => Math.max(100, Math.round(rate * STEP_SEC));
    const register = await stepUp(server, 'REGISTER', (rate) =>
      runStep({ scenario: SCENARIO('register.xml'), target, domain: DOMAIN, rate, calls: callsFor(rate), injection }),
    );
    const receiver = await startReceiver({
      scenario: SCENARIO('message-uas.xml'), ooc: SCENARIO('message-uas-ooc.xml'), target, domain: DOMAIN,
      user: RECEIVER, password: PASSWORD, holdMs: 3_600_000,
    });
    try {
      const message = await stepUp(server, 'MESSAGE', (rate) =>
        runStep({ scenario: SCENARIO('message-uac.xml'), target, domain: DOMAIN, rate, calls: callsFor(rate), injection, keys: { to: RECEIVER } }),
      );
      const errors = server.output().split('\n').filter((l) => /\b(ERROR|CRIT|"level":(50|60))\b/.test(l));
      return { register, message, errors: errors.slice(0, 1).map((l) => `${server.name} logged ${errors.length} error lines, e.g.: ${l.trim().slice(0, 300)}`) };
    } finally {
      await receiver.stop();
    }
  } finally {
    await server.stop();
  }
}

async function benchWebSocket(count: number): Promise<WsReport> {
  const limit = fdLimit();
  // the server and this client each hold one descriptor per connection
  if (count + 1_000 > limit) return { count, skipped: `open-files limit is ${limit} (ulimit -n); raise it to at least ${count + 1_000}` };
  const wsUsers = Array.from({ length: Math.ceil(count / 10) }, (_, i) => `ws${String(i).padStart(5, '0')}`);
  const server = await startParley(DOMAIN, wsUsers, PASSWORD);
  try {
    if (!server.wsUrl) throw new Error('Parley printed no ws= URL');
    await new Promise((r) => setTimeout(r, 1_000));
    const rssBeforeKb = rssKb(server.pid);
    const res = await openIdleRegistrations({ url: server.wsUrl, domain: DOMAIN, users: wsUsers, password: PASSWORD, count });
    await new Promise((r) => setTimeout(r, 2_000));
    const rssAfterKb = rssKb(server.pid);
    log(`Parley WS: ${res.registered} registered, ${res.failed} failed, RSS ${rssBeforeKb} -> ${rssAfterKb} KiB`);
    await res.close();
    return { count, registered: res.registered, failed: res.failed, firstError: res.firstError, rssBeforeKb, rssAfterKb };
  } finally {
    await server.stop();
  }
}

function machine(): string[] {
  const cpus = os.cpus();
  let kamailio = 'unknown';
  let sipp = 'unknown';
  try {
    kamailio = execFileSync('kamailio', ['-v'], { encoding: 'utf8' }).split('\n')[0]!.replace(/^version:\s*/, '').trim();
    sipp = /v\d[\d.]*/.exec(execFileSync('sh', ['-c', 'sipp -v 2>&1 || true'], { encoding: 'utf8' }))?.[0] ?? sipp;
  } catch {
    // reported as unknown
  }
  const distro = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.platform();
  return [
    `${cpus.length} cores (${cpus[0]?.model ?? 'unknown CPU'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${distro}, kernel ${os.release()}`,
    `Node ${process.version} (Parley), ${kamailio}, sipp ${sipp}`,
    `servers pinned to core ${SERVER_CORE} (taskset), sipp and the bench process to core ${LOAD_CORE}; everything on 127.0.0.1 over UDP; open-files limit ${fdLimit()}`,
  ];
}

async function main(): Promise<void> {
  requireTools();
  // keep this process (memory sampling, the WebSocket client) off the servers' core
  execFileSync('taskset', ['-a', '-p', '-c', LOAD_CORE, String(process.pid)], { stdio: 'ignore' });
  const t0 = Date.now();
  const parley = await benchServer(startParley);
  const kamailio = await benchServer(startKamailio);
  const ws: WsReport[] = [];
  for (const n of WS_COUNTS) ws.push(await benchWebSocket(n));
  const scenarios: ScenarioReport[] = [
    { title: '1. REGISTER + digest', parley: parley.register, kamailio: kamailio.register },
    { title: '2. MESSAGE relayed', parley: parley.message, kamailio: kamailio.message },
    { title: '3. MESSAGE to offline user', pending: 'pending offline IM (issue 5)' },
  ];
  const report: BenchReport = {
    quick,
    date: new Date().toISOString(),
    machine: machine(),
    criteria: [
      `Each step offers a fixed rate for ${STEP_SEC} s (at least 100 calls) with sipp over UDP; rates ${RATES.join(', ')} calls/s, stopping after two failed steps in a row or one that fell below 90 % of the offered rate.`,
      `A step passes with under ${MAX_FAILURE_RATIO * 100}% failed calls (failed, timed out, or not finished) and p99 under ${MAX_P99_MS} ms.`,
      'Latency is the authenticated transaction (REGISTER + Authorization → 200; MESSAGE + Proxy-Authorization → 200 from the receiver), from sipp -trace_rtt, whole milliseconds.',
      `A call is two transactions (challenge, then authenticated request). ${SIPP_USERS.length} users in both servers, one sipp receiver (bob) for MESSAGE.`,
      'UDP drops: the kernel\'s Udp RcvbufErrors counter over the step (datagrams lost to full socket buffers, any process); each one costs a 500 ms retransmission.',
      'CPU: utime+stime from /proc of the server (all Kamailio processes) over the step wall time; 100 % = one core.',
      'Peak memory: over the whole scenario, overloaded last steps included. Parley VmHWM (one process); Kamailio the sum of PSS over its processes (shared memory counted once, only touched pages of its 1024 MB shm pool), highest sample every 200 ms.',
      'Idle WebSocket registrations: a fresh Parley; RSS (VmRSS) 1 s after start, then 2 s after the last of N connections registered (REGISTER, 401, REGISTER with MD5 digest, 200), divided by N.',
    ].join('\n'),
    topRate: RATES[RATES.length - 1]!,
    scenarios,
    ws,
    notes: [
      'Durability: Parley keeps users in SQLite (WAL, synchronous=FULL), written only by `user add`; registrations are in memory, nothing is fsynced per request. Kamailio: usrloc db_mode 0 (memory only); auth_db reads SQLite; msilo would INSERT (fsync) per stored message, and REGISTER runs m_dump (a SELECT). See bench/kamailio.cfg.',
      'Kamailio runs 2 UDP worker processes (children=2) plus its helpers, all on core 0; Parley is one Node process on core 0 (no cluster yet).',
      'sipp (the sender and the receiver) shares core 1; when both servers saturate at the same offered rate, the load generator may be the limit.',
      ...(quick ? ['Quick steps last 3 s: one GC pause or scheduler hiccup moves a p99, so the max rates can move by one step between runs; use the full run for numbers to quote.'] : []),
      'Scenario 2 counts a MESSAGE as successful when the receiver\'s 200 comes back; the single sipp receiver answers every MESSAGE on core 1 next to the sender.',
      ...parley.errors,
      ...kamailio.errors,
      `Run took ${((Date.now() - t0) / 1000).toFixed(0)} s.`,
    ],
  };
  await writeReport(OUT_DIR, report);
  log(`wrote ${path.join(OUT_DIR, 'RESULTS.md')} and throughput.svg`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

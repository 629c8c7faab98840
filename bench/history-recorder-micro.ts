// Microbenchmark of Conversation History as the server runs it on a SQLite file: the router's
// record() calls (200 senders to one recipient, scenario 2's traffic), the recorder's group commit
// on the database file's writer thread. Prints the CPU per message of the main thread (record(),
// the recorder's batching and hand-off: what SIP shares its thread with) and of the rest of the
// process (the writer thread, mostly, and V8's helpers), from process.threadCpuUsage and
// process.cpuUsage. Bodies are views of a larger buffer, as a datagram's are.
//   node bench/history-recorder-micro.ts [--rate 4800] [--seconds 4]
//   node bench/history-recorder-micro.ts --batch 16 [--batches 300] [--rounds 9] [--off] [--prefill 200000]
// With --rate, record() is called at that rate from a 1 ms loop and the window makes the batches:
// what the server does, but the batch sizes (so the cost per message) move with the machine's load.
// With --batch, each batch is exactly that many messages, written at once (recorder.settled()),
// one after the other, with no timers: the same work every run, so runs compare (16 is what the
// 10 ms window gathers at 1,600/s); least and median of the rounds. --off sets
// EnableIMAutoArchiving False for everyone (Global CsClientPolicy): what history costs is the
// difference between the two runs. Run pinned to one core (taskset -c 0) as the server is in the bench.
// --prefill N records N messages first (batches of 240), as a bench run leaves the database:
// scenario 2 ends with ~200,000 messages in ~400 conversations (a conversation holds at most
// MAX_CONVERSATION_MESSAGES, then the pair goes on in a new one).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HistoryRecorder } from '../src/history/recorder.ts';
import { CLIENT_POLICY, GLOBAL, updateInstance } from '../src/settings/index.ts';
import { openDatabase, sqliteSql } from '../src/storage/index.ts';
import { change, logger, prepareHistoryDatabase } from '../test/unit/history-fixture.ts';
import { addUserRow } from '../test/unit/presence-database.ts';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}
const BATCH = option('batch', 0);
const RATE = option('rate', 4800);
const SECONDS = option('seconds', 4);
const OFF = process.argv.includes('--off');
const SENDERS = 200;
/** record() calls per tick of 1 ms */
const PER_MS = RATE / 1000;

const dir = mkdtempSync(join(tmpdir(), 'history-recorder-micro-'));
const sql = sqliteSql(openDatabase(dir));
await prepareHistoryDatabase(sql);
for (let i = 0; i < SENDERS; i++) await addUserRow(sql, { address: `user${String(i).padStart(3, '0')}@parley.test`, displayName: null });
if (OFF) await updateInstance(sql, CLIENT_POLICY, GLOBAL, { EnableIMAutoArchiving: false }, change);
const recorder = new HistoryRecorder({ sql, logger, commitWindowMs: 10 });
const datagram = Buffer.from(`MESSAGE sip:bob@parley.test SIP/2.0\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\nHello Bob, this is a bench message of some sixty bytes or so.`);
const body = datagram.subarray(datagram.indexOf('\r\n\r\n') + 4);
let n = 0;
const record = (count: number): void => {
  for (let k = 0; k < count; k++) {
    const i = n++;
    recorder.record({ sender: `user${String(i % SENDERS).padStart(3, '0')}@parley.test`, recipient: 'bob@parley.test', callId: `${i}-bench@10.0.0.2`, contentType: 'text/plain;charset=UTF-8', body, at: Date.now(), outcome: 'relayed' });
  }
};
const round1 = (x: number): number => Math.round(x * 10) / 10;
const PREFILL = option('prefill', 0);
for (let done = 0; done < PREFILL; done += 240) {
  record(240);
  await recorder.settled();
}

if (BATCH > 0) {
  const BATCHES = option('batches', 300);
  const ROUNDS = option('rounds', 9);
  const batch = async (): Promise<void> => {
    record(BATCH);
    await recorder.settled();
  };
  // warm up: conversations opened, statements prepared, the thread started
  for (let i = 0; i < 200; i++) await batch();
  /** One round: the CPU per message of the main thread and of the whole process, µs. */
  const round = async (): Promise<{ main: number; all: number }> => {
    const cpu = (): { main: number; all: number } => {
      const m = process.threadCpuUsage();
      const a = process.cpuUsage();
      return { main: m.user + m.system, all: a.user + a.system };
    };
    const start = cpu();
    for (let i = 0; i < BATCHES; i++) await batch();
    const end = cpu();
    return { main: (end.main - start.main) / (BATCHES * BATCH), all: (end.all - start.all) / (BATCHES * BATCH) };
  };
  const rounds: Array<{ main: number; all: number }> = [];
  for (let r = 0; r < ROUNDS; r++) rounds.push(await round());
  const main = rounds.map((r) => r.main);
  const all = rounds.map((r) => r.all);
  const sorted = (xs: number[]): number[] => [...xs].sort((x, y) => x - y);
  const least = (xs: number[]): number => round1(sorted(xs)[0] as number);
  const median = (xs: number[]): number => round1(sorted(xs)[Math.floor(xs.length / 2)] as number);
  const others = all.map((a, i) => a - (main[i] as number));
  console.log(JSON.stringify({ history: OFF ? 'off' : 'on', batch: BATCH, messages: ROUNDS * BATCHES * BATCH, committed: recorder.stats.recorded, usPerMessage: { least: least(all), median: median(all) }, mainUsPerMessage: { least: least(main), median: median(main) }, otherThreadsUsPerMessage: { least: least(others), median: median(others) } }));
} else {
  // warm up: conversations opened, statements prepared, the thread started
  for (let t = 0; t < 500; t++) {
    record(PER_MS);
    await sleep(1);
  }
  await recorder.settled();
  /** The same loop with (rate > 0) or without record() calls: the CPU of the main thread and of the process. */
  const phase = async (rate: number): Promise<{ main: number; all: number; messages: number; batches: number }> => {
    const main0 = process.threadCpuUsage();
    const all0 = process.cpuUsage();
    const first = n;
    const batches = recorder.stats.batches;
    const start = performance.now();
    let due = 0;
    while (performance.now() - start < SECONDS * 1000) {
      const target = Math.floor(((performance.now() - start) / 1000) * rate);
      record(target - due);
      due = target;
      await sleep(1);
    }
    await recorder.settled();
    const main = process.threadCpuUsage(main0);
    const all = process.cpuUsage(all0);
    return { main: main.user + main.system, all: all.user + all.system, messages: n - first, batches: recorder.stats.batches - batches };
  };
  const idle = await phase(0);
  const busy = await phase(RATE);
  const perMessage = (us: number): number => round1(us / busy.messages);
  // the loop's own cost (timers) left out: the idle phase's
  const main = busy.main - idle.main;
  console.log(JSON.stringify({ history: OFF ? 'off' : 'on', messages: busy.messages, batches: busy.batches, mainUsPerMessage: perMessage(main), otherThreadsUsPerMessage: perMessage(busy.all - idle.all - main) }));
}
await recorder.close();
await sql.close();
rmSync(dir, { recursive: true, force: true });

// Scenario 3's call in one process, without sockets: MESSAGE to a user who never registered -> 407
// -> MESSAGE with Proxy-Authorization -> the offline pipeline admits it (gate, quotas, the
// mailboxes' sizes), the group commit writes it durably on the spool writer's thread (a SQLite
// file, synchronous=FULL as the server opens it) -> 202; Conversation History's recorder told of
// it after the answer, as the server wires it. The transaction layer, the dispatcher, digest, the
// router, OfflineService and the recorder are the server's own; the quotas are lifted as the bench
// lifts them (their checks still run). `concurrency` calls are in flight at once, so that the
// group commit gathers batches as it does under load (scenario 3 at 5,000/s: about 10 a batch).
// Prints the CPU per call of the main thread (process.threadCpuUsage) and of the other threads
// (the spool writer, the history writer, V8's helpers), least and median of the rounds, and the
// messages spooled. On a shared machine pin it (`taskset -c 0`) and compare runs taken
// one after the other, several times; the figures are not the bench's (no UDP system calls).
// With RATE=<calls/s> in the environment the calls start at that rate instead (open loop, as sipp
// offers them: the group commit's batches are then what that rate gathers, not `concurrency`).
// With FAKE_WRITER=1 the spool's batches are answered at once with made-up receipts, nothing
// written (the main thread's share of the offline path, without the writer thread's turns on the
// core), and WINDOW_MS=<ms> sets offlineIm.commitWindowMs (default 2, the server's; 0 with a fake
// writer leaves out the loop's idle waits for the window, which a closed loop pays per batch).
//   node bench/offline-accept-inproc.ts [calls per round, 10000] [rounds, 5] [concurrency, 12] [history on|off, on]
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Authenticator } from '../src/auth/authenticator.ts';
import { cachedUserLookup } from '../src/directory/index.ts';
import { HistoryRecorder } from '../src/history/recorder.ts';
import { EmbeddedMailboxConnector, MAILBOX_MIGRATIONS } from '../src/mailbox/index.ts';
import { OfflineService, createMailboxRouting } from '../src/offline/index.ts';
import { createRegistrationEvents, DEFAULT_REGISTRAR_SETTINGS, MemoryLocationService, registerHandler } from '../src/registrar/index.ts';
import type { SipContext } from '../src/router/context.ts';
import { createDispatcher } from '../src/router/dispatch.ts';
import { messageHandler } from '../src/router/message.ts';
import { GLOBAL, IM_CONFIGURATION, updateInstance } from '../src/settings/index.ts';
import { computeHa1, NonceIssuer } from '../src/sip/digest.ts';
import type { Flow } from '../src/sip/index.ts';
import { parseMessage } from '../src/sip/index.ts';
import { TransactionLayer } from '../src/sip/transaction/layer.ts';
import { stampReceived } from '../src/sip/transport/received.ts';
import { migrate, openDatabase, sqliteSql, ThreadBatchWriter } from '../src/storage/index.ts';
import { UNLIMITED } from '../src/bytes.ts';
import { prepareHistoryDatabase } from '../test/unit/history-fixture.ts';
import { threadTicks, TICK_US } from './offline-thread-ticks.ts';
import { addUserRow } from '../test/unit/presence-database.ts';

const CALLS = Number(process.argv[2] ?? 10_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const CONCURRENCY = Number(process.argv[4] ?? 12);
const history = (process.argv[5] ?? 'on') === 'on';
const D = 'bench.test';
const PASSWORD = 'bench-secret';
const logger = pino({ level: 'warn' });
const senders = Array.from({ length: 200 }, (_, i) => `user${String(i).padStart(3, '0')}`);
const offline = Array.from({ length: 100 }, (_, i) => `off${String(i).padStart(3, '0')}`);
const ha1 = new Map([...senders, ...offline].map((u) => [u, computeHa1('MD5', u, D, PASSWORD)]));
const dir = mkdtempSync(path.join(tmpdir(), 'offline-accept-'));
const sql = sqliteSql(openDatabase(dir));
await prepareHistoryDatabase(sql);
await migrate(sql, [MAILBOX_MIGRATIONS]);
const change = { actor: 'bench', cmdlet: 'bench', now: () => 1 };
// as the bench's scenario 3: nothing is picked up while the calls run
await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { OfflineImPickupDelay: 3600 }, change);
for (const u of [...senders, ...offline]) {
  await addUserRow(sql, { address: `${u}@${D}`, displayName: null });
  await sql.run('UPDATE users SET ha1_md5 = ? WHERE address = ?', [ha1.get(u) as string, `${u}@${D}`]);
}
// as the server wires them (src/server/start.ts)
const user = cachedUserLookup(sql);
const userExists = async (address: string) => (await user(address)) !== undefined;
const findAccount = async (username: string) => {
  const found = await user(`${username}@${D}`);
  return found === undefined || found.realm !== D ? undefined : { address: found.address, ha1: found.ha1 };
};
// the batches the writer threads are sent (the spool's and the history's), and their items
const sent = { spool: { batches: 0, items: 0 }, history: { batches: 0, items: 0 } };
const threadWrite = ThreadBatchWriter.prototype.write;
ThreadBatchWriter.prototype.write = function (this: ThreadBatchWriter<unknown, unknown>, jobs: readonly unknown[]) {
  const count = (jobs[0] as { kind?: unknown } | undefined)?.kind === undefined ? sent.history : sent.spool;
  count.batches++;
  count.items += jobs.length;
  if (process.env.FAKE_WRITER === '1' && count === sent.spool) return Promise.resolve(jobs.map(() => ({ entryId: 'sp-2222222222222222', seq: 1, joined: false, pickupAt: Date.now() + 3_600_000 })));
  return threadWrite.call(this, jobs);
};
const routing = createMailboxRouting({ servers: {}, users: {} }, new EmbeddedMailboxConnector({ sql, userExists }));
const service = new OfflineService({
  sql, logger, domain: D, routing, node: 'bench',
  displayName: async () => null,
  retry: { baseMs: 5_000, maxMs: 300_000 }, deliveryBatch: 64, leaseMs: 120_000,
  commitWindowMs: Number(process.env.WINDOW_MS ?? 2), commitMaxBatch: 512, timeZone: 'UTC',
  quota: { sender: { maxBytes: UNLIMITED, maxMessages: UNLIMITED, perMinute: UNLIMITED }, recipient: { maxBytes: UNLIMITED, maxMessages: UNLIMITED } },
});
await service.start();
const recorder = history ? new HistoryRecorder({ sql, logger, commitWindowMs: 10 }) : undefined;

/** answers waited for, by Call-ID */
const waiting = new Map<string, (text: string) => void>();
const senderFlow = {
  id: 'udp:127.0.0.1:40000', protocol: 'udp', reliable: false, closed: false, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 },
  send: (b: Buffer) => {
    const text = b.toString('latin1');
    const callId = /\r\nCall-ID: ([^\r]+)/i.exec(text)?.[1] ?? '';
    const resolve = waiting.get(callId);
    waiting.delete(callId);
    resolve?.(text);
    return true;
  },
} as unknown as Flow;
const ctx = {
  domain: D, product: 'Parley/bench', allow: ['REGISTER', 'MESSAGE'], logger, now: Date.now,
  auth: new Authenticator({ realm: D, nonces: new NonceIssuer({ secret: Buffer.alloc(32, 3) }), algorithms: ['MD5'], checkDigestUri: false, findAccount }),
  location: new MemoryLocationService(), registrations: createRegistrationEvents(), registrar: DEFAULT_REGISTRAR_SETTINGS,
  isOwnHost: (host: string) => host === D || host === '127.0.0.1',
  resolveFlow: () => senderFlow,
  userExists,
  user,
  messaging: { maxBody: 65_536, deviceTimeout: 30 },
  events: { changed: () => undefined },
  offline: service,
  history: recorder,
} as unknown as SipContext;
const layer = new TransactionLayer({ t1: 500, t2: 4000, t4: 5000 }, { onRequest: createDispatcher(ctx, [registerHandler, messageHandler]) });
ctx.transactions = layer;

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
function receive(text: string): void {
  const m = parseMessage(Buffer.from(text, 'latin1'));
  layer.receive(m, senderFlow, m.kind === 'request' ? stampReceived(m, senderFlow.remote) : undefined);
}
const answer = (callId: string): Promise<string> => new Promise((resolve) => waiting.set(callId, resolve));
const digest = (u: string, nonce: string, uri: string): string =>
  `Digest username="${u}", realm="${D}", uri="${uri}", nonce="${nonce}", response="${md5(`${ha1.get(u)}:${nonce}:00000001:abcdef:auth:${md5(`MESSAGE:${uri}`)}`)}", algorithm=MD5, cnonce="abcdef", qop=auth, nc=00000001`;

const body = 'Hello from the bench 12345';
// the bench's pairs: every sender with every recipient, in its order
const message = (i: number, cseq: number, authz?: string): string => {
  const from = senders[i % 200] as string;
  const to = offline[(i % 200 + Math.floor(i / 200)) % 100] as string;
  return `MESSAGE sip:${to}@${D} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-${i}-${cseq};rport\r\nFrom: <sip:${from}@${D}>;tag=${i}off\r\nTo: <sip:${to}@${D}>\r\nCall-ID: ${i}-o@127.0.0.1\r\nCSeq: ${cseq} MESSAGE\r\n${authz ? `Proxy-Authorization: ${authz}\r\n` : ''}Max-Forwards: 70\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
};
let calls = 0;
async function call(): Promise<void> {
  const i = calls++;
  const callId = `${i}-o@127.0.0.1`;
  let got = answer(callId);
  receive(message(i, 1));
  const challenge = await got;
  const nonce = /nonce="([^"]+)"/.exec(challenge)?.[1];
  if (!challenge.startsWith('SIP/2.0 407') || nonce === undefined) throw new Error(`no challenge: ${challenge.slice(0, 300)}`);
  got = answer(callId);
  const to = /^MESSAGE (\S+)/.exec(message(i, 2))?.[1] as string;
  receive(message(i, 2, digest(senders[i % 200] as string, nonce, to)));
  const final = await got;
  if (!final.startsWith('SIP/2.0 202')) throw new Error(`not accepted: ${final.slice(0, 300)}`);
}
const RATE = Number(process.env.RATE ?? 0);
async function run(n: number): Promise<void> {
  if (RATE > 0) return runAtRate(n);
  let left = n;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (left > 0) {
      left--;
      await call();
    }
  }));
}

/** Starts `n` calls at RATE a second (a tick each millisecond starts those due), and waits for them all. */
async function runAtRate(n: number): Promise<void> {
  const started = performance.now();
  const calls: Array<Promise<void>> = [];
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(n, Math.floor(((performance.now() - started) * RATE) / 1000));
      while (calls.length < due) calls.push(call());
      if (calls.length >= n) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await Promise.all(calls);
}

await run(3000);
await recorder?.settled();
sent.spool = { batches: 0, items: 0 };
sent.history = { batches: 0, items: 0 };
const main: number[] = [];
const others: number[] = [];
const byThread = new Map<string, number>();
for (let r = 0; r < ROUNDS; r++) {
  const t0 = threadTicks();
  const m0 = process.threadCpuUsage();
  const a0 = process.cpuUsage();
  await run(CALLS);
  await recorder?.settled();
  const m = process.threadCpuUsage(m0);
  const a = process.cpuUsage(a0);
  for (const [name, ticks] of threadTicks()) byThread.set(name, (byThread.get(name) ?? 0) + ticks - (t0.get(name) ?? 0));
  main.push((m.user + m.system) / CALLS);
  others.push((a.user + a.system - m.user - m.system) / CALLS);
}
const sorted = (xs: number[]): number[] => [...xs].sort((x, y) => x - y);
const summary = (xs: number[]): string => `least ${sorted(xs)[0]?.toFixed(1)}, median ${sorted(xs)[Math.floor(xs.length / 2)]?.toFixed(1)} us/call`;
const total = main.map((m, i) => m + (others[i] as number));
const spooled = (await sql.get<{ n: number }>('SELECT count(*) AS n FROM spool_messages'))?.n;
console.log(`offline accept (history ${history ? 'on' : 'off'}, ${CONCURRENCY} in flight): main thread ${summary(main)}; other threads ${summary(others)}; all ${summary(total)}; ${spooled} messages spooled`);
// clock ticks are 10 ms (USER_HZ 100): the split is coarse, over all the rounds
const mean = (c: { batches: number; items: number }): string => `${c.batches} batches of ${(c.items / Math.max(c.batches, 1)).toFixed(1)}`;
console.log(`spool: ${mean(sent.spool)}; history: ${mean(sent.history)}`);
console.log(`by thread (µs/call over all rounds): ${[...byThread].filter(([, t]) => t > 0).map(([name, t]) => `${name} ${((t * TICK_US) / (CALLS * ROUNDS)).toFixed(1)}`).join(', ')}`);
await recorder?.close();
await service.close();
layer.close();
await sql.close();
rmSync(dir, { recursive: true, force: true });

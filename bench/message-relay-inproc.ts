// Scenario 2's call in one process, without sockets: MESSAGE -> 407 -> MESSAGE with
// Proxy-Authorization -> forwarded to bob's UDP binding -> bob's 200 -> the 200 relayed back,
// through the transaction layer, the dispatcher, digest and the router, one call at a time, with
// Conversation History's recorder on a SQLite file (its writer thread, as the server runs it) or
// off; or scenario 1's: REGISTER -> 401 -> REGISTER with Authorization -> 200 (`register`, a
// refresh of one of 200 users' binding). Users are looked up as the server does (cachedUserLookup
// on the SQLite file: its users_version check every millisecond included), and handlings tracked by
// the server's RequestDrain. Prints the CPU per call
// of the main thread (process.threadCpuUsage) and of the other threads (the writer, and V8's
// helpers), least and median of the rounds. On a shared machine compare runs taken one after the
// other, several times; the figures are not the bench's (no UDP system calls, no metrics).
//   node bench/message-relay-inproc.ts on|off|register [calls per round, 10000] [rounds, 3]
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Authenticator } from '../src/auth/authenticator.ts';
import { HistoryRecorder } from '../src/history/recorder.ts';
import { createRegistrationEvents, DEFAULT_REGISTRAR_SETTINGS, MemoryLocationService, registerHandler } from '../src/registrar/index.ts';
import type { SipContext } from '../src/router/context.ts';
import { createDispatcher } from '../src/router/dispatch.ts';
import { RequestDrain } from '../src/router/drain.ts';
import { messageHandler } from '../src/router/message.ts';
import { computeHa1, NonceIssuer } from '../src/sip/digest.ts';
import type { Flow } from '../src/sip/index.ts';
import { parseMessage } from '../src/sip/index.ts';
import { TransactionLayer } from '../src/sip/transaction/layer.ts';
import { stampReceived } from '../src/sip/transport/received.ts';
import { openDatabase, sqliteSql } from '../src/storage/index.ts';
import { cachedUserLookup } from '../src/directory/index.ts';
import { prepareHistoryDatabase } from '../test/unit/history-fixture.ts';
import { addUserRow } from '../test/unit/presence-database.ts';

const mode = process.argv[2] ?? 'on';
const history = mode === 'on';
const CALLS = Number(process.argv[3] ?? 10_000);
const ROUNDS = Number(process.argv[4] ?? 3);
const D = 'bench.test';
const PASSWORD = 'bench-secret';
const logger = pino({ level: 'warn' });
const users = Array.from({ length: 200 }, (_, i) => `user${String(i).padStart(3, '0')}`);
const accounts = new Map([...users, 'bob'].map((u) => [u, { address: `${u}@${D}`, ha1: { MD5: computeHa1('MD5', u, D, PASSWORD), 'SHA-256': computeHa1('SHA-256', u, D, PASSWORD) } }]));
const dir = mkdtempSync(path.join(tmpdir(), 'message-relay-'));
const sql = sqliteSql(openDatabase(dir));
await prepareHistoryDatabase(sql);
for (const [u, account] of accounts) {
  await addUserRow(sql, { address: account.address, displayName: u === 'bob' ? 'Bob Example' : null });
  await sql.run('UPDATE users SET ha1_md5 = ?, ha1_sha256 = ? WHERE address = ?', [account.ha1.MD5, account.ha1['SHA-256'], account.address]);
}
const recorder = history ? new HistoryRecorder({ sql, logger, commitWindowMs: 10 }) : undefined;
// as the server wires them (src/server/start.ts)
const user = cachedUserLookup(sql);
const findAccount = async (username: string) => {
  const found = await user(`${username}@${D}`);
  return found === undefined || found.realm !== D ? undefined : { address: found.address, ha1: found.ha1 };
};

let toSender = '';
let toBob = '';
const flowTo = (port: number, sink: (text: string) => void): Flow =>
  ({ id: `udp:127.0.0.1:${port}`, protocol: 'udp', reliable: false, closed: false, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port }, send: (b: Buffer) => (sink(b.toString('latin1')), true) }) as unknown as Flow;
const senderFlow = flowTo(40000, (s) => (toSender = s));
const bobFlow = flowTo(40001, (s) => (toBob = s));
const ctx = {
  domain: D, product: 'Parley/bench', allow: ['REGISTER', 'MESSAGE'], logger, now: Date.now,
  auth: new Authenticator({ realm: D, nonces: new NonceIssuer({ secret: Buffer.alloc(32, 3) }), algorithms: ['MD5'], checkDigestUri: false, findAccount }),
  location: new MemoryLocationService(), registrations: createRegistrationEvents(), registrar: DEFAULT_REGISTRAR_SETTINGS,
  isOwnHost: (host: string) => host === D || host === '127.0.0.1',
  resolveFlow: (ref: { remote: { port: number } }) => (ref.remote.port === 40001 ? bobFlow : senderFlow),
  userExists: async (address: string) => (await user(address)) !== undefined,
  user,
  messaging: { maxBody: 65_536, deviceTimeout: 30 },
  events: { changed: () => undefined },
  offline: { accept: () => Promise.reject(new Error('bob is online: nothing goes offline')) },
  history: recorder,
  // as the server has it: each handling that returns a promise is tracked until it settles
  drain: new RequestDrain(5),
} as unknown as SipContext;
const layer = new TransactionLayer({ t1: 500, t2: 4000, t4: 5000 }, { onRequest: createDispatcher(ctx, [registerHandler, messageHandler]) });
ctx.transactions = layer;

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
function receive(text: string, flow: Flow): void {
  const m = parseMessage(Buffer.from(text, 'latin1'));
  layer.receive(m, flow, m.kind === 'request' ? stampReceived(m, flow.remote) : undefined);
}
const digest = (u: string, nonce: string, method: string, uri: string): string =>
  `Digest username="${u}", realm="${D}", uri="${uri}", nonce="${nonce}", response="${md5(`${accounts.get(u)?.ha1.MD5}:${nonce}:00000001:abcdef:auth:${md5(`${method}:${uri}`)}`)}", algorithm=MD5, cnonce="abcdef", qop=auth, nc=00000001`;
const nonceIn = (text: string): string => /nonce="([^"]+)"/.exec(text)?.[1] ?? '';

// bob registers over his flow
const register = (cseq: number, authz?: string): string =>
  `REGISTER sip:${D} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40001;branch=z9hG4bK-bob-${cseq};rport\r\nFrom: <sip:bob@${D}>;tag=bobreg\r\nTo: <sip:bob@${D}>\r\nCall-ID: bob-reg@127.0.0.1\r\nCSeq: ${cseq} REGISTER\r\nContact: <sip:bob@127.0.0.1:40001;transport=UDP>\r\n${authz ? `Authorization: ${authz}\r\n` : ''}Expires: 3600\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`;
receive(register(1), bobFlow);
await turn();
receive(register(2, digest('bob', nonceIn(toBob), 'REGISTER', `sip:${D}`)), bobFlow);
await turn();
if (!toBob.startsWith('SIP/2.0 200')) throw new Error(`bob could not register: ${toBob}`);

const body = 'Hello from the bench 12345';
const message = (i: number, cseq: number, authz?: string): string =>
  `MESSAGE sip:bob@${D} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-${i}-${cseq};rport\r\nFrom: <sip:${users[i % 200]}@${D}>;tag=${i}msg\r\nTo: <sip:bob@${D}>\r\nCall-ID: ${i}-m@127.0.0.1\r\nCSeq: ${cseq} MESSAGE\r\n${authz ? `Proxy-Authorization: ${authz}\r\n` : ''}Max-Forwards: 70\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
let calls = 0;
// a user's refresh of their binding (scenario 1), each of the 200 users over a flow of their own
const userRegister = (i: number, cseq: number, authz?: string): string => {
  const u = users[i % 200] as string;
  return `REGISTER sip:${D} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-r${i}-${cseq};rport\r\nFrom: <sip:${u}@${D}>;tag=${i}reg\r\nTo: <sip:${u}@${D}>\r\nCall-ID: ${u}-reg@127.0.0.1\r\nCSeq: ${i * 2 + cseq} REGISTER\r\nContact: <sip:${u}@127.0.0.1:40000;transport=UDP>\r\n${authz ? `Authorization: ${authz}\r\n` : ''}Expires: 3600\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`;
};
async function registerCall(): Promise<void> {
  const i = calls++;
  receive(userRegister(i, 1), senderFlow);
  await turn();
  receive(userRegister(i, 2, digest(users[i % 200] as string, nonceIn(toSender), 'REGISTER', `sip:${D}`)), senderFlow);
  await turn();
  if (!toSender.startsWith('SIP/2.0 200')) throw new Error(`not registered: ${toSender.slice(0, 300)}`);
}
const call = mode === 'register' ? registerCall : messageCall;
async function messageCall(): Promise<void> {
  const i = calls++;
  receive(message(i, 1), senderFlow);
  await turn();
  receive(message(i, 2, digest(users[i % 200] as string, nonceIn(toSender), 'MESSAGE', `sip:bob@${D}`)), senderFlow);
  await turn();
  // bob answers the forwarded MESSAGE
  if (!toBob.startsWith('MESSAGE')) throw new Error(`not forwarded: ${toSender.slice(0, 200)}`);
  const lines = toBob.split('\r\n');
  const headers = (name: string): string[] => lines.filter((l) => l.toLowerCase().startsWith(`${name}:`));
  receive(`SIP/2.0 200 OK\r\n${headers('via').join('\r\n')}\r\n${headers('from')[0]}\r\n${headers('to')[0]};tag=bob${i}\r\n${headers('call-id')[0]}\r\n${headers('cseq')[0]}\r\nContent-Length: 0\r\n\r\n`, bobFlow);
  await turn();
  if (!toSender.startsWith('SIP/2.0 200')) throw new Error(`no 200 relayed: ${toSender.slice(0, 300)}`);
}

for (let i = 0; i < 3000; i++) await call();
await recorder?.settled();
const main: number[] = [];
const others: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const m0 = process.threadCpuUsage();
  const a0 = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) await call();
  await recorder?.settled();
  const m = process.threadCpuUsage(m0);
  const a = process.cpuUsage(a0);
  main.push((m.user + m.system) / CALLS);
  others.push((a.user + a.system - m.user - m.system) / CALLS);
}
const sorted = (xs: number[]): number[] => [...xs].sort((x, y) => x - y);
const summary = (xs: number[]): string => `least ${sorted(xs)[0]?.toFixed(1)}, median ${sorted(xs)[Math.floor(xs.length / 2)]?.toFixed(1)} us/call`;
console.log(`${mode === 'register' ? 'register' : `history ${history ? 'on' : 'off'}`}: main thread ${summary(main)}; other threads ${summary(others)}${recorder ? `; ${recorder.stats.batches} batches, ${recorder.stats.recorded} messages recorded` : ''}`);
await recorder?.close();
layer.close();
await sql.close();
rmSync(dir, { recursive: true, force: true });

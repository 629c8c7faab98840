// The SDK finding another node: clients given two real Parley servers (each with its own data
// directory and the same users; not a cluster, which is fine here: this tests the client) move to
// the second when the first goes away, register there, re-subscribe, and receive what a user of the
// second server sends them. Two ways to go away: SIGKILL (the kernel closes the sockets at once)
// and SIGSTOP (a dead machine: nothing closes, nothing answers), which only the keep-alives find,
// with their defaults (the first ping of a connection is a CRLFCRLF and an OPTIONS: no answer to
// either within 4 s, and the server is gone; Parley pongs on TCP, and answers OPTIONS on WebSocket).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { SipClient } from '../../src/client/index.ts';
import type { ConnectionEvent, IncomingMessage, MessageSummary } from '../../src/client/index.ts';
import { arrivals, sdkClients } from '../harness/clients.ts';
import type { Arrivals } from '../harness/clients.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const USERS = ['alice', 'bob', 'carol'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` }));
/** generous: the keep-alive defaults find a silent server within 9 s, and this machine is shared */
const WAIT_MS = 40_000;

const servers: RunningServer[] = [];
const clients: SipClient[] = [];

after(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  for (const s of servers) await s.kill('SIGKILL').catch(() => undefined);
  await Promise.all(servers.map((s) => s.stop()));
});

async function twoServers(): Promise<[RunningServer, RunningServer]> {
  const pair = await Promise.all([startServer({ domain: DOMAIN, users: USERS }), startServer({ domain: DOMAIN, users: USERS })]);
  servers.push(...pair);
  return pair;
}

const tcpUrl = (s: RunningServer) => `tcp://${s.tcp.host}:${s.tcp.port}`;

interface Watched {
  user: string;
  ua: SipClient;
  connection: Arrivals<ConnectionEvent>;
  messages: Arrivals<IncomingMessage>;
  summaries: Arrivals<MessageSummary>;
}

/** `user` on `urls` with autoReconnect and the default keep-alives, registered and watching message-summary. */
async function failoverClient(user: string, urls: string[], context: () => string): Promise<Watched> {
  const ua = new SipClient({
    server: urls,
    aor: `sip:${user}@${DOMAIN}`,
    password: `${user}-pw`,
    requestTimeoutMs: 5000,
    autoReconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
  });
  clients.push(ua);
  const options = { timeoutMs: WAIT_MS, context };
  const watched: Watched = {
    user,
    ua,
    connection: arrivals<ConnectionEvent>((push) => ua.on('connection', push), { what: `${user} connection event`, ...options }),
    messages: arrivals<IncomingMessage>((push) => ua.on('message', push), { what: `${user} message`, ...options }),
    summaries: arrivals<MessageSummary>((push) => ua.on('message-summary', push), { what: `${user} message-summary`, ...options }),
  };
  ua.on('error', () => undefined);
  await ua.connect();
  const first = await watched.connection.next();
  assert.deepEqual([first.state, first.server], ['connected', urls[0]], `${user} on the first server`);
  await ua.register({ expires: 300 });
  await ua.watchMessageSummary();
  await watched.summaries.next();
  return watched;
}

/** The client tells it is reconnecting to `url`, then connected there, registered and re-subscribed. */
async function movedTo(w: Watched, url: string, lost: RegExp): Promise<void> {
  const reconnecting = await w.connection.next();
  assert.equal(reconnecting.state, 'reconnecting', w.user);
  assert.equal(reconnecting.server, url, `${w.user}: the next server, not the lost one`);
  assert.match(reconnecting.error?.message ?? '', lost, w.user);
  let event = await w.connection.next();
  while (event.state === 'reconnecting') event = await w.connection.next();
  assert.deepEqual([event.state, event.server], ['connected', url], w.user);
  assert.equal(w.ua.registered, true, `${w.user} registered again`);
  assert.equal(typeof (await w.summaries.next()).waiting, 'boolean', `${w.user}: the re-subscription's first NOTIFY`);
}

/** bob, a user of `server`, writes to each; each receives it there. */
async function reachedOn(server: RunningServer, watched: Watched[]): Promise<void> {
  const people = sdkClients(() => server, DOMAIN, { register: true });
  try {
    const bob = await people.connect('bob');
    for (const w of watched) {
      const answer = await bob.sendMessage(`sip:${w.user}@${DOMAIN}`, `hello ${w.user} on the second node`);
      assert.equal(answer.status, 200, `${w.user}: ${answer.status} ${answer.warning ?? ''}`);
      assert.equal((await w.messages.next()).text, `hello ${w.user} on the second node`);
    }
  } finally {
    await people.closeAll();
  }
}

describe('SDK failover between servers', () => {
  it('SIGKILL of the first server: TCP and WebSocket clients move to the second, register, re-subscribe and get messages there', async () => {
    const [first, second] = await twoServers();
    const context = () => `--- first\n${first.logs().slice(-1500)}\n--- second\n${second.logs().slice(-1500)}`;
    const alice = await failoverClient('alice', [tcpUrl(first), tcpUrl(second)], context);
    const carol = await failoverClient('carol', [first.wsUrl, second.wsUrl], context);

    await first.kill('SIGKILL');
    await movedTo(alice, tcpUrl(second), /closed/);
    await movedTo(carol, second.wsUrl, /closed/);
    await reachedOn(second, [alice, carol]);
  });

  it('SIGSTOP of the first server (silent: nothing closes): the keep-alives find it, and the clients move to the second', async () => {
    const [first, second] = await twoServers();
    const context = () => `--- first\n${first.logs().slice(-1500)}\n--- second\n${second.logs().slice(-1500)}`;
    const alice = await failoverClient('alice', [tcpUrl(first), tcpUrl(second)], context);
    const carol = await failoverClient('carol', [first.wsUrl, second.wsUrl], context);

    process.kill(first.pid, 'SIGSTOP');
    try {
      await movedTo(alice, tcpUrl(second), /no answer from tcp:\/\/.* to a keep-alive/);
      await movedTo(carol, second.wsUrl, /no answer from ws:\/\/.* to a keep-alive/);
      await reachedOn(second, [alice, carol]);
    } finally {
      await first.kill('SIGKILL');
    }
  });
});

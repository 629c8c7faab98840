// autoReconnect against a real server that goes away: `parley serve` is killed (a crash: the
// kernel closes every client socket) and started again on the same data directory and ports. The
// SDK, over TCP and over WebSocket, tells `reconnecting` with its back-off, refuses messages sent
// meanwhile with DISCONNECTED, then reconnects, registers again (a message reaches it) and
// re-subscribes (a new message-summary NOTIFY), telling `connected`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientError, SipClient } from '../../src/client/index.ts';
import type { ConnectionEvent, IncomingMessage, MessageSummary } from '../../src/client/index.ts';
import { arrivals, sdkClients } from '../harness/clients.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let first: RunningServer;
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN, { register: true });
const reconnecting: SipClient[] = [];

before(async () => {
  first = await startServer({ domain: DOMAIN, users: ['alice', 'bob', 'carol'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })) });
  server = first;
});

after(async () => {
  for (const c of reconnecting) await c.close();
  await people.closeAll();
  if (server !== first) await server.stop();
  await first.stop();
});

describe('SDK autoReconnect', () => {
  it('over TCP and WebSocket: a killed and restarted server is reconnected to, registered with and re-subscribed', async () => {
    const tcpUrl = `tcp://${first.tcp.host}:${first.tcp.port}`;
    const clients = { alice: tcpUrl, carol: first.wsUrl };
    const watch = new Map<string, { ua: SipClient; connection: ReturnType<typeof arrivals<ConnectionEvent>>; messages: ReturnType<typeof arrivals<IncomingMessage>>; summaries: ReturnType<typeof arrivals<MessageSummary>> }>();
    for (const [user, url] of Object.entries(clients)) {
      const ua = new SipClient({ server: url, aor: `sip:${user}@${DOMAIN}`, password: `${user}-pw`, requestTimeoutMs: 5000, keepAliveIntervalMs: 0, autoReconnect: { initialDelayMs: 200, maxDelayMs: 1000 } });
      reconnecting.push(ua);
      const context = { timeoutMs: 20_000, context: () => server.logs().slice(-3000) };
      const entry = {
        ua,
        connection: arrivals<ConnectionEvent>((push) => ua.on('connection', push), { what: `${user} connection event`, ...context }),
        messages: arrivals<IncomingMessage>((push) => ua.on('message', push), { what: `${user} message`, ...context }),
        summaries: arrivals<MessageSummary>((push) => ua.on('message-summary', push), { what: `${user} message-summary`, ...context }),
      };
      ua.on('error', () => undefined);
      watch.set(user, entry);
      await ua.connect();
      assert.deepEqual(await entry.connection.next(), { state: 'connected', server: url });
      await ua.register({ expires: 300 });
      await ua.watchMessageSummary();
      await entry.summaries.next();
    }

    await first.kill();
    for (const [user, { ua, connection }] of watch) {
      const lost = await connection.next();
      assert.equal(lost.state, 'reconnecting', user);
      assert.equal(lost.attempt, 1);
      assert.ok(typeof lost.delayMs === 'number' && lost.delayMs >= 160 && lost.delayMs <= 240, `first delay ${lost.delayMs} is 200 ms ± 20 %`);
      await assert.rejects(ua.sendMessage(`sip:bob@${DOMAIN}`, 'while down'), (e: unknown) => e instanceof ClientError && e.code === 'DISCONNECTED', `${user}: never silently dropped`);
    }
    // let at least one attempt fail against the closed port: the delay grows
    for (const [, { connection }] of watch) {
      const retry = await connection.next();
      assert.equal(retry.state, 'reconnecting');
      assert.equal(retry.attempt, 2);
      assert.ok((retry.delayMs ?? 0) >= 320, `second delay ${retry.delayMs} doubled`);
    }

    server = await startServer({ domain: DOMAIN, dataDir: first.dataDir, extraArgs: ['--sip-port', String(first.tcp.port), '--http-port', String(first.http.port)] });
    assert.equal(server.tcp.port, first.tcp.port);
    for (const [user, { connection, summaries, ua }] of watch) {
      let event = await connection.next();
      while (event.state === 'reconnecting') event = await connection.next();
      assert.equal(event.state, 'connected', user);
      assert.equal(ua.registered, true);
      // the re-subscription's first NOTIFY
      assert.equal(typeof (await summaries.next()).waiting, 'boolean');
    }

    // registered again on the new server: a message reaches each
    const bob = await people.connect('bob');
    for (const [user, { messages }] of watch) {
      const answer = await bob.sendMessage(`sip:${user}@${DOMAIN}`, `welcome back ${user}`);
      assert.equal(answer.status, 200, `${user}: ${answer.status} ${answer.warning ?? ''}`);
      assert.equal((await messages.next()).text, `welcome back ${user}`);
    }
  });
});

// Finding another node: the server list and its rotation (servers.ts), reconnection in rounds
// (reconnect.ts), DNS names standing for several servers (transport-node.ts), and the user agent
// moving to the next server when a connection fails or a keep-alive goes unanswered (on TCP a CRLF
// pong, on WebSocket an OPTIONS or a CRLF pong). The servers are FakeSipServers (no sockets).

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { ClientError, nodeResolver, parseServerList, parseServerUrl, SipClient } from '../../src/client/index.ts';
import type { ConnectionEvent, ServerAddress } from '../../src/client/index.ts';
import { backoffDelayMs, DEFAULT_RECONNECT, Reconnector } from '../../src/client/reconnect.ts';
import { ServerRotation } from '../../src/client/servers.ts';
import { AOR, FakeSipServer } from './fake-sip-server.ts';
import type { Framing } from './fake-sip-server.ts';

const isClientError = (code: string, message?: RegExp) => (e: unknown) => e instanceof ClientError && e.code === code && (message === undefined || message.test(e.message));

describe('the server list', () => {
  it('takes one URL or several; an empty list or a bad URL is INVALID_ARGUMENT', () => {
    assert.deepEqual(parseServerList('tcp://10.0.0.1:5060').map((s) => s.url), ['tcp://10.0.0.1:5060']);
    assert.deepEqual(parseServerList(['tcp://a.test', 'ws://b.test/sip']).map((s) => [s.host, s.port]), [['a.test', 5060], ['b.test', 80]]);
    assert.throws(() => parseServerList([]), isClientError('INVALID_ARGUMENT', /at least one/));
    assert.throws(() => parseServerList(['tcp://a.test', 'udp://b.test']), isClientError('INVALID_ARGUMENT', /udp/));
    assert.throws(() => new SipClient({ server: [], aor: AOR, password: 'pw' }), isClientError('INVALID_ARGUMENT'));
  });

  it('rotates round robin: take() gives the server whose turn it is, advance() passes the turn on', async () => {
    const rotation = new ServerRotation(parseServerList(['tcp://a.test', 'tcp://b.test', 'tcp://c.test']));
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      seen.push((await rotation.take()).host);
      rotation.advance();
    }
    assert.deepEqual(seen, ['a.test', 'b.test', 'c.test', 'a.test', 'b.test']);
    assert.equal(rotation.upcoming.host, 'c.test');
    assert.equal(rotation.size, 3);
  });

  it('expands a name to its addresses, looked up anew at the start of each round; a failed or empty lookup keeps the name', async () => {
    let lookups = 0;
    const answers: Record<string, string[] | Error> = { 'pool.test': ['192.0.2.1', '192.0.2.2'], 'gone.test': new Error('ENOTFOUND'), 'empty.test': [] };
    const rotation = new ServerRotation(parseServerList(['tcp://pool.test:5070', 'tcp://gone.test', 'tcp://empty.test']), async (server) => {
      lookups++;
      const answer = answers[server.host];
      if (answer instanceof Error) throw answer;
      return (answer ?? []).map((address) => ({ ...server, address }));
    });
    const round = async (): Promise<Array<[string, string | undefined]>> => {
      const out: Array<[string, string | undefined]> = [];
      for (let i = 0; i < rotation.size; i++) {
        const s = await rotation.take();
        out.push([s.url, s.address]);
        rotation.advance();
      }
      return out;
    };
    assert.deepEqual(await round(), [['tcp://pool.test:5070', '192.0.2.1'], ['tcp://pool.test:5070', '192.0.2.2'], ['tcp://gone.test', undefined], ['tcp://empty.test', undefined]]);
    assert.equal(lookups, 3);
    answers['pool.test'] = ['192.0.2.3'];
    assert.deepEqual((await round())[0], ['tcp://pool.test:5070', '192.0.2.3']);
    assert.equal(lookups, 6, 'one lookup per name per round');
    assert.equal(rotation.size, 3);
  });

  it('in Node, a tcp:// name stands for its addresses (host kept for TLS), an IP literal and a WebSocket URL for themselves', async () => {
    const resolve = nodeResolver();
    const literal = parseServerUrl('tcp://127.0.0.1:5060');
    assert.deepEqual(await resolve(literal), [literal]);
    const ws = parseServerUrl('ws://localhost:8080/sip');
    assert.deepEqual(await resolve(ws), [ws]);
    const named = await resolve(parseServerUrl('tls://localhost:5061'));
    assert.ok(named.length >= 1);
    for (const s of named) {
      assert.equal(s.host, 'localhost');
      assert.equal(s.url, 'tls://localhost:5061');
      assert.match(s.address ?? '', /^(127\.|::1$)/);
    }
    await assert.rejects(resolve(parseServerUrl('tcp://no-such-host.invalid')));
  });

  it("puts a name's addresses in a random order (DNS round robin), so that clients spread over the nodes", async () => {
    const server = parseServerUrl('tcp://pool.test:5060');
    const lookupAll = async (host: string) => (host === 'pool.test' ? ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.1'].map((address) => ({ address })) : []);
    const order = async (random: () => number) => (await nodeResolver({ random, lookupAll })(server)).map((s) => s.address);
    assert.deepEqual(await order(() => 0.999), ['192.0.2.1', '192.0.2.2', '192.0.2.3'], 'each address once');
    assert.deepEqual(await order(() => 0), ['192.0.2.2', '192.0.2.3', '192.0.2.1']);
    const firsts = new Set<string | undefined>();
    for (let i = 0; i < 60; i++) firsts.add((await order(Math.random))[0]);
    assert.equal(firsts.size, 3, 'each node comes first for some clients');
  });

  it('a SipClient connects to an address of the name and says which one', async () => {
    const peer = new FakeSipServer();
    const seen: ServerAddress[] = [];
    const ua = new SipClient({
      server: 'tcp://localhost:5060', aor: AOR, password: 'pw', keepAliveIntervalMs: 0,
      connector: async (server) => {
        seen.push(server);
        return peer.transport;
      },
    });
    const events: ConnectionEvent[] = [];
    ua.on('connection', (e) => events.push(e));
    await ua.connect();
    await ua.close();
    assert.equal(seen[0]?.host, 'localhost');
    assert.deepEqual(events[0], { state: 'connected', server: 'tcp://localhost:5060', address: seen[0]?.address });
    assert.match(events[0]?.address ?? '', /^(127\.|::1$)/);
  });
});

describe('reconnection in rounds (reconnect.ts)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('backs off between rounds through every server, not between servers', async () => {
    const events: ConnectionEvent[] = [];
    let attempts = 0;
    const reconnector = new Reconnector({}, {
      attempt: async () => {
        attempts++;
        throw new Error(`attempt ${attempts} failed`);
      },
      roundSize: () => 3,
      event: (e) => events.push(e),
      random: () => 0.5,
    });
    reconnector.schedule(new Error('lost'));
    for (let i = 0; i < 7; i++) {
      mock.timers.tick(events.at(-1)?.delayMs ?? 0);
      for (let j = 0; j < 5; j++) await Promise.resolve(); // the attempt's rejection
    }
    reconnector.stop();
    const policy = DEFAULT_RECONNECT;
    const half = () => 0.5;
    assert.deepEqual(events.map((e) => [e.attempt, e.delayMs]), [
      [1, backoffDelayMs(1, policy, half)], [2, 0], [3, 0],
      [4, backoffDelayMs(2, policy, half)], [5, 0], [6, 0],
      [7, backoffDelayMs(3, policy, half)], [8, 0],
    ]);
    assert.equal(attempts, 7);
    assert.equal(events[1]?.error?.message, 'attempt 1 failed');
  });

  it('starts over at the first round once an attempt succeeded', async () => {
    const events: ConnectionEvent[] = [];
    let fail = true;
    const reconnector = new Reconnector({ initialDelayMs: 100 }, {
      attempt: async () => {
        if (fail) throw new Error('down');
      },
      roundSize: () => 1,
      event: (e) => events.push(e),
      random: () => 0.5,
    });
    reconnector.schedule();
    mock.timers.tick(100);
    for (let j = 0; j < 5; j++) await Promise.resolve();
    fail = false;
    mock.timers.tick(200);
    for (let j = 0; j < 5; j++) await Promise.resolve();
    assert.equal(reconnector.active, false);
    reconnector.schedule();
    reconnector.stop();
    assert.deepEqual(events.map((e) => [e.attempt, e.delayMs]), [[1, 100], [2, 200], [1, 100]]);
  });
});

/**
 * A SipClient over `urls`, each URL a FakeSipServer made anew for each connection, or refused
 * while listed in `down`; `connects` tells which URLs were tried, in order.
 */
function cluster(urls: string[], options: { framing?: Framing; down?: Set<string>; pongs?: boolean; answersOptions?: boolean } & Partial<ConstructorParameters<typeof SipClient>[0]> = {}) {
  const { framing = 'stream', down = new Set<string>(), pongs = false, answersOptions = false, ...clientOptions } = options;
  const connects: string[] = [];
  const peers: Array<{ url: string; peer: FakeSipServer }> = [];
  const waiting: Array<(entry: { url: string; peer: FakeSipServer }) => void> = [];
  const ua = new SipClient({
    server: urls, aor: AOR, password: 'pw', keepAliveIntervalMs: 0,
    autoReconnect: { initialDelayMs: 10, maxDelayMs: 40 },
    ...clientOptions,
    connector: async (server: ServerAddress) => {
      connects.push(server.url);
      if (down.has(server.url)) throw new ClientError('CONNECT_FAILED', `cannot connect to ${server.url}: refused`);
      const peer = new FakeSipServer({ framing });
      peer.pongs = pongs;
      peer.answersOptions = answersOptions;
      const entry = { url: server.url, peer };
      peers.push(entry);
      waiting.shift()?.(entry);
      return peer.transport;
    },
  });
  const events: ConnectionEvent[] = [];
  ua.on('connection', (e) => events.push(e));
  ua.on('error', () => undefined);
  const nextPeer = (): Promise<{ url: string; peer: FakeSipServer }> => new Promise((resolve) => waiting.push(resolve));
  const until = async (what: () => boolean): Promise<void> => {
    while (!what()) await new Promise((resolve) => setTimeout(resolve, 5));
  };
  return { ua, connects, peers, events, nextPeer, until, down };
}

async function serveRegister(peer: FakeSipServer, expires = 300): Promise<void> {
  const request = await peer.nextAuthenticated('REGISTER');
  peer.reply(request, 200, { contact: `${request.headers.get('contact')};expires=${expires}` });
}

const [A, B, C] = ['tcp://10.0.0.1:5060', 'tcp://10.0.0.2:5060', 'tcp://10.0.0.3:5060'];

describe('SipClient with several servers', () => {
  const clients: SipClient[] = [];
  afterEach(async () => {
    for (const ua of clients.splice(0)) await ua.close();
  });
  const make = (...args: Parameters<typeof cluster>) => {
    const c = cluster(...args);
    clients.push(c.ua);
    return c;
  };

  it('connect() tries the servers in order and tells which one it reached', async () => {
    const { ua, connects, events } = make([A, B, C], { down: new Set([A]) });
    await ua.connect();
    assert.deepEqual(connects, [A, B]);
    assert.deepEqual(events, [{ state: 'connected', server: B }]);
    assert.equal(ua.server, B);
  });

  it('connect() rejects with every failure when no server accepts', async () => {
    const { ua, connects } = make([A, B], { down: new Set([A, B]) });
    await assert.rejects(ua.connect(), isClientError('CONNECT_FAILED', /any of the 2 servers: .*10\.0\.0\.1.*; .*10\.0\.0\.2/));
    assert.deepEqual(connects, [A, B]);
    assert.equal(ua.server, null);
  });

  it('a lost connection moves to the next server, registers there again, and the rounds wrap around', async () => {
    const { ua, connects, events, peers, nextPeer, until, down } = make([A, B, C], { down: new Set([B]) });
    await ua.connect();
    const registered = ua.register({ expires: 300 });
    await serveRegister(peers[0]!.peer);
    await registered;

    const next = nextPeer();
    peers[0]!.peer.drop();
    const { url, peer } = await next;
    assert.equal(url, C, 'B refused: C at once');
    await serveRegister(peer);
    await until(() => events.at(-1)?.state === 'connected' && events.length > 1);
    assert.deepEqual(connects, [A, B, C]);
    assert.deepEqual(events.map((e) => [e.state, e.server, e.attempt]), [
      ['connected', A, undefined],
      ['reconnecting', B, 1],
      ['reconnecting', C, 2],
      ['connected', C, undefined],
    ]);
    assert.ok((events[1]?.delayMs ?? 0) > 0, 'the back-off starts the round');
    assert.equal(events[2]?.delayMs, 0, 'the next server at once within the round');
    assert.equal(ua.registered, true);

    // C goes too, and B is back: the rotation goes on from C to A
    down.delete(B);
    const again = nextPeer();
    peer.drop();
    assert.equal((await again).url, A);
    assert.deepEqual(connects, [A, B, C, A]);
  });

  it('a server that takes the connection but never answers REGISTER is left for the next one', async () => {
    const { ua, peers, nextPeer, events, until } = make([A, B], { requestTimeoutMs: 60 });
    await ua.connect();
    const registered = ua.register({ expires: 300 });
    await serveRegister(peers[0]!.peer);
    await registered;
    const silent = nextPeer();
    peers[0]!.peer.drop();
    const { url } = await silent; // B: answers nothing
    assert.equal(url, B);
    const { url: back, peer } = await nextPeer();
    assert.equal(back, A);
    await serveRegister(peer);
    await until(() => events.at(-1)?.state === 'connected' && events.length > 1);
    assert.equal(events.at(-1)?.server, A);
    assert.ok(events.some((e) => e.state === 'reconnecting' && e.server === A && e.error instanceof ClientError && e.error.code === 'TIMEOUT' && /REGISTER/.test(e.error.message)), JSON.stringify(events.map((e) => e.error?.message)));
  });

  it('a registration refresh nobody answers drops the connection: the next server, registered with', async () => {
    const { ua, peers, nextPeer, events, until } = make([A, B], { requestTimeoutMs: 60 });
    const unregistered: Array<string | undefined> = [];
    ua.on('unregistered', (e) => unregistered.push(e.error?.code));
    await ua.connect();
    const registered = ua.register({ expires: 1 });
    await serveRegister(peers[0]!.peer, 1);
    await registered;
    const next = nextPeer();
    await peers[0]!.peer.nextRequest('REGISTER', 2_000); // the refresh, half-way: unanswered
    const { url, peer } = await next;
    assert.equal(url, B);
    assert.deepEqual(unregistered, ['TIMEOUT']);
    await serveRegister(peer);
    await until(() => events.at(-1)?.state === 'connected' && events.length > 1);
    assert.equal(events.at(-1)?.server, B);
    assert.equal(ua.registered, true);
  });
});

describe('keep-alives that find a dead server', () => {
  const clients: SipClient[] = [];
  afterEach(async () => {
    for (const ua of clients.splice(0)) await ua.close();
  });

  it('on TCP: CRLF pings answered keep the connection; unanswered, it is dropped and the next server tried', async () => {
    const c = cluster([A, B], { pongs: true, keepAliveIntervalMs: 20, keepAlivePongTimeoutMs: 40 });
    clients.push(c.ua);
    await c.ua.connect();
    const first = c.peers[0]!.peer;
    await c.until(() => first.pings >= 2);
    assert.equal(c.events.length, 1, 'answered pings keep the connection');
    const next = c.nextPeer();
    first.pongs = false; // the node dies silently: nothing closes, nothing answers
    const { url } = await next;
    assert.equal(url, B);
    const lost = c.events.find((e) => e.state === 'reconnecting');
    assert.ok(lost?.error instanceof ClientError && /no answer from tcp:\/\/10\.0\.0\.1:5060 to a keep-alive within 40 ms/.test(lost.error.message), lost?.error?.message);
  });

  it('on TCP: a server that answers OPTIONS but never pongs is kept, on OPTIONS pings', async () => {
    const c = cluster([A, B], { answersOptions: true, keepAliveIntervalMs: 10, keepAlivePongTimeoutMs: 30 });
    clients.push(c.ua);
    await c.ua.connect();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const peer = c.peers[0]!.peer;
    assert.equal(peer.pings, 1, 'one CRLFCRLF, unanswered: OPTIONS from then on');
    assert.deepEqual(c.connects, [A]);
    assert.equal(c.ua.connected, true);
  });

  it('on TCP: a server that answers no keep-alive at all is left at the first ping', async () => {
    const c = cluster([A, B], { keepAliveIntervalMs: 20, keepAlivePongTimeoutMs: 40 });
    clients.push(c.ua);
    await c.ua.connect();
    const next = c.nextPeer();
    assert.equal((await c.peers[0]!.peer.nextRequest('OPTIONS')).uri, 'sip:parley.local');
    assert.equal((await next).url, B);
  });

  it('on WebSocket: OPTIONS pings answered keep it; unanswered, the next server is tried', async () => {
    const [W1, W2] = ['ws://10.0.0.1:8080/sip', 'ws://10.0.0.2:8080/sip'];
    const c = cluster([W1, W2], { framing: 'message', keepAliveIntervalMs: 20, keepAlivePongTimeoutMs: 60 });
    clients.push(c.ua);
    await c.ua.connect();
    const peer = c.peers[0]!.peer;
    for (let i = 0; i < 3; i++) {
      const options = await peer.nextRequest('OPTIONS');
      assert.equal(options.uri, 'sip:parley.local', 'to the registrar');
      assert.equal(options.headers.has('authorization'), false);
      peer.reply(options, 200);
    }
    assert.equal(peer.pings, 1, 'the first ping also asked whether the server pongs to CRLFCRLF');
    assert.deepEqual(c.connects, [W1]);
    const next = c.nextPeer();
    const { url } = await next; // OPTIONS no longer answered
    assert.equal(url, W2);
  });

  it('on WebSocket: a server that answers CRLFCRLF with a CRLF gets CRLF pings only', async () => {
    const c = cluster(['ws://10.0.0.1:8080/sip'], { framing: 'message', pongs: true, keepAliveIntervalMs: 20, keepAlivePongTimeoutMs: 60 });
    clients.push(c.ua);
    await c.ua.connect();
    const peer = c.peers[0]!.peer;
    peer.reply(await peer.nextRequest('OPTIONS'), 200); // the first ping: both
    await c.until(() => peer.pings >= 4);
    await peer.silent(30);
    assert.equal(c.ua.connected, true);
  });
});

// Production lifecycle (issue 19): /health and /ready for a load balancer's probes, and the drain
// on SIGTERM: every offline MESSAGE answered 202 is in the spool after a restart, WebSocket
// clients see 1001 Going Away, and the process exits 0 within shutdownTimeout.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { SipClient } from '../../src/client/index.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const USERS = [
  { address: `alice@${DOMAIN}`, password: 'alice-pw' },
  { address: `bob@${DOMAIN}`, password: 'bob-pw' },
];
/** offline MESSAGEs sent at most, and at once */
const MESSAGES = 400;
const PARALLEL = 32;
const SHUTDOWN_TIMEOUT = 10;
const CONFIG = { shutdownTimeout: SHUTDOWN_TIMEOUT, offlineIm: { senderQuota: { perMinute: 100_000 } } };

const servers: RunningServer[] = [];
const clients: SipClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  // the restarted servers first: the first one owns the data directory and removes it
  for (const s of servers.reverse()) await s.stop();
});

async function serve(dataDir?: string): Promise<RunningServer> {
  const s = await startServer({ domain: DOMAIN, users: dataDir === undefined ? USERS : [], config: CONFIG, ...(dataDir !== undefined ? { dataDir } : {}) });
  servers.push(s);
  return s;
}

const base = (s: RunningServer): string => `http://${s.http.host}:${s.http.port}`;

describe('health and readiness', () => {
  it('/health is alive and /ready lists every check, without credentials; POST /ready is 405', async () => {
    const s = await serve();
    const health = await fetch(`${base(s)}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });

    const ready = await fetch(`${base(s)}/ready`);
    assert.equal(ready.status, 200);
    assert.equal(ready.headers.get('cache-control'), 'no-store');
    const body = (await ready.json()) as { status: string; checks: Array<{ name: string; ok: boolean }> };
    assert.equal(body.status, 'ready');
    const names = body.checks.map((c) => c.name);
    assert.deepEqual(names, ['database', 'spool writer', `SIP udp ${s.udp.host}:${s.udp.port}`, `SIP tcp ${s.tcp.host}:${s.tcp.port}`, `HTTP ${s.http.host}:${s.http.port}`]);
    assert.ok(body.checks.every((c) => c.ok));

    const head = await fetch(`${base(s)}/ready`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    const post = await fetch(`${base(s)}/ready`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    assert.equal(((await post.json()) as { code: string }).code, 'METHOD_NOT_ALLOWED');
    await s.stop();
  });
});

describe('SIGTERM drains', () => {
  it('under offline-IM load: every MESSAGE answered 202 is in the spool after a restart, WebSockets see 1001, exit 0 in time', async (t) => {
    const s = await serve();
    const alice = new SipClient({ server: `tcp://${s.tcp.host}:${s.tcp.port}`, aor: `sip:alice@${DOMAIN}`, password: 'alice-pw', requestTimeoutMs: 15_000, keepAliveIntervalMs: 0 });
    clients.push(alice);
    await alice.connect();

    // a WebSocket client (RFC 7118) that only listens for how it is closed
    const ws = new WebSocket(s.wsUrl, 'sip');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const wsClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

    // bob is not signed in: each MESSAGE goes through the group commit to the spool. SIGTERM comes
    // once 50 are answered, while the others are on the wire or waiting for their commit.
    const accepted: string[] = [];
    const refused: string[] = [];
    const failed: string[] = [];
    let sent = 0;
    let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
    const sender = async (): Promise<void> => {
      while (sent < MESSAGES) {
        const n = sent++;
        try {
          const res = await alice.sendMessage(`sip:bob@${DOMAIN}`, `message ${n}`);
          if (res.status === 202) accepted.push(`message ${n}`);
          else {
            // new requests while draining: 503 with Retry-After, never silence
            assert.equal(res.status, 503, `${res.status} ${res.headers.get('warning')}`);
            assert.ok(Number(res.headers.get('retry-after')) >= 1);
            assert.match(res.headers.get('warning') ?? '', /stopping/);
            refused.push(`message ${n}`);
          }
        } catch (err) {
          // the connection closed under it: not answered, so not promised
          failed.push(`message ${n}: ${(err as Error).message}`);
          return;
        }
        if (accepted.length >= 50 && exit === undefined) exit = s.kill('SIGTERM');
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, () => sender()));
    assert.ok(exit !== undefined, `SIGTERM was sent (${accepted.length} accepted)`);
    const status = await exit;
    assert.deepEqual(status, { code: 0, signal: null }, s.logs().slice(-3000));
    assert.equal(await wsClosed, 1001);
    assert.match(s.logs(), /"msg":"stopped"/);
    assert.ok(accepted.length >= 50 && accepted.length < MESSAGES, `${accepted.length} accepted, ${refused.length} refused, ${failed.length} failed`);

    // the same data directory, restarted: every 202 is there (a message stored whose 202 was lost
    // with the connection may be there too: the spool may hold more, never less)
    const again = await serve(s.dataDir);
    const list = await runCli(['spooler', 'list', '--user', `alice@${DOMAIN}`, '--limit', '1000', '--json', ...s.storageArgs]);
    assert.equal(list.code, 0, list.stderr);
    const entries = (JSON.parse(list.stdout) as Array<{ id: string; sender: string; recipient: string }>).filter((e) => e.sender === `alice@${DOMAIN}` && e.recipient === `bob@${DOMAIN}`);
    const stored = new Set<string>();
    for (const e of entries) {
      const show = await runCli(['spooler', 'show', e.id, '--json', ...s.storageArgs]);
      assert.equal(show.code, 0, show.stderr);
      for (const m of (JSON.parse(show.stdout) as { transcript: Array<{ text: string }> }).transcript) stored.add(m.text);
    }
    const lost = accepted.filter((text) => !stored.has(text));
    assert.deepEqual(lost, [], `${lost.length} of ${accepted.length} messages answered 202 are not in the spool`);
    assert.ok(stored.size <= accepted.length + failed.length, `${stored.size} stored, at most ${accepted.length + failed.length} could be`);
    t.diagnostic(`${accepted.length} answered 202, ${refused.length} answered 503 while draining, ${failed.length} cut with the connection; ${stored.size} in the spool`);
    const ready = await fetch(`${base(again)}/ready`);
    assert.equal(ready.status, 200);
  });
});

describe('a request in flight holds the drain', () => {
  /** bob is signed in and holds each MESSAGE he gets until `release()`; alice is connected */
  async function held(s: RunningServer) {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let arrived!: () => void;
    const got = new Promise<void>((r) => (arrived = r));
    const bob = new SipClient({
      server: `tcp://${s.tcp.host}:${s.tcp.port}`, aor: `sip:bob@${DOMAIN}`, password: 'bob-pw', requestTimeoutMs: 15_000, keepAliveIntervalMs: 0,
      onMessage: async () => {
        arrived();
        await released;
        return 200;
      },
    });
    const alice = new SipClient({ server: `tcp://${s.tcp.host}:${s.tcp.port}`, aor: `sip:alice@${DOMAIN}`, password: 'alice-pw', requestTimeoutMs: 15_000, keepAliveIntervalMs: 0 });
    clients.push(bob, alice);
    await bob.connect();
    await bob.register({ expires: 300 });
    await alice.connect();
    const answer = alice.sendMessage(`sip:bob@${DOMAIN}`, 'are you there?');
    await got;
    return { alice, answer, release };
  }

  it('while it is answered: /ready says DRAINING, a new MESSAGE on an open connection gets 503 Retry-After; then it gets its 200 and the server exits 0', async () => {
    const s = await serve();
    const { alice, answer, release } = await held(s);
    const exit = s.kill('SIGTERM');
    const draining = await eventually('/ready 503', async () => {
      const r = await fetch(`${base(s)}/ready`);
      return r.status === 503 ? ((await r.json()) as { code: string; checks: unknown[] }) : undefined;
    }, 5_000);
    assert.equal(draining.code, 'DRAINING');
    const health = await fetch(`${base(s)}/health`);
    assert.equal(health.status, 200, 'still alive while draining');

    const late = await alice.sendMessage(`sip:bob@${DOMAIN}`, 'too late');
    assert.equal(late.status, 503);
    assert.equal(late.headers.get('retry-after'), String(SHUTDOWN_TIMEOUT));
    assert.match(late.headers.get('warning') ?? '', /the server is stopping/);
    assert.equal(s.exitStatus(), null, 'the held request keeps the server draining');

    release();
    assert.equal((await answer).status, 200);
    assert.deepEqual(await exit, { code: 0, signal: null });
  });

  it('a second SIGTERM exits at once, saying what was not finished', async () => {
    const s = await serve();
    const { answer, release } = await held(s);
    // the held MESSAGE is never answered: its connection closes with the process
    const cut = assert.rejects(answer, { code: 'DISCONNECTED' });
    void s.kill('SIGTERM');
    await s.waitForLog(/stopping: draining/);
    const exit = await s.kill('SIGTERM');
    release();
    assert.deepEqual(exit, { code: 1, signal: null });
    await cut;
    assert.match(s.logs(), /SIGTERM again: exiting at once while answering the SIP requests in flight \(1\)/);
  });
});

// A node of a three-node cluster killed (SIGKILL) under load (issue 16). One sipp per node sends
// MESSAGEs to users who are offline (message-offline-uac.xml: 407, then 202 once the message is in
// the shared spool); meanwhile two users are registered through SDK clients (one over TCP, one over
// WebSocket, each given every node's address) on the node that dies. After the kill:
// - every MESSAGE sipp saw answered 202 is in its recipient's mailbox exactly once, read back
//   through EWS (ews-javascript-api against a surviving node): one Missed Conversation per spool
//   entry (its InternetMessageId is `<entry id@domain>`), each message of the entry once in it;
//   a message whose answer was lost with the node may be there too, never twice;
// - the SDK clients of the dead node are registered again on another node within 10 s (the issue's
//   bound on failover), their binding in Redis names that node, and a message to them arrives at
//   once, while the dead node's stale bindings are still in Redis (until the others notice it gone).
// The pickup delay is 1 s and the delivery lease 5 s, so entries the dead node held are taken over
// soon (cluster-spool.test.ts kills a node in the middle of its deliveries on purpose).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { SipClient, type ConnectionEvent, type IncomingMessage, type RegisterResult } from '../../src/client/index.ts';
import { openPostgres, type PostgresSql } from '../../src/storage/index.ts';
import { arrivals, sdkClients, type Arrivals } from '../harness/clients.ts';
import { singleRedis, startCluster, type TestCluster } from '../harness/cluster.ts';
import { closeTestPostgres } from '../harness/engines.ts';
import { eventually } from '../harness/eventually.ts';
import { conversationHistory, MISSED_CLASS, spoolEntryOf } from '../harness/ews-read.ts';
import { runCli, type RunningServer } from '../harness/server.ts';
import { describeSippRun, runSipp, SCENARIOS, SIPP_SERVER_ARGS, type SippResult } from '../harness/sipp.ts';

const DOMAIN = 'parley.test';
const NODES = 3;
/** the node that dies */
const VICTIM = 2;
const SENDERS = ['s0', 's1', 's2', 's3', 's4', 's5'];
/**
 * the offline recipients of node i's sipp (one: sipp's digest uri, -auth_uri, is one for the whole
 * run and must be the Request-URI); a message is known by its recipient and sipp's call number
 */
const recipientsOf = (i: number) => [`rcpt${i}`];
const MOBILE = ['mia', 'max'];
const PEER = 'pat';
const USERS = [...SENDERS, ...[0, 1, 2].flatMap(recipientsOf), ...MOBILE, PEER];
/** per sipp: a modest rate (this proves correctness, not speed), ~10 s of load */
const CALLS = 90;
const RATE = 9;
/** the bound: a dead node's clients are registered again elsewhere within this */
const FAILOVER_BOUND_MS = 10_000;
/** how long the test waits for anything (generous: a shared 2-core machine) */
const WAIT_MS = 60_000;

let cluster: TestCluster;
let db: PostgresSql;
let redis: Redis;
const clients: SipClient[] = [];

before(async () => {
  cluster = await startCluster({
    nodes: NODES,
    domain: DOMAIN,
    users: USERS.map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })),
    config: { offlineIm: { deliveryLease: 5, retryBase: 1, retryMax: 2 } },
    extraArgs: SIPP_SERVER_ARGS,
  });
  const pickup = await runCli(['admin', '--database', cluster.database, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
  assert.equal(pickup.code, 0, pickup.stderr);
  db = await openPostgres(cluster.database, { max: 2, applicationName: 'cluster-failover-test', idleTimeoutSeconds: 2 });
  redis = new Redis({ path: singleRedis(cluster).socket, lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});

after(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  redis?.disconnect();
  await db?.close();
  await cluster?.stop();
  await closeTestPostgres();
});

const tcpUrl = (s: RunningServer) => `tcp://${s.tcp.host}:${s.tcp.port}`;
const udpTarget = (s: RunningServer) => `${s.udp.host}:${s.udp.port}`;

/** Logs of every node, the end of each, for failure messages. */
function clusterLogs(): string {
  return cluster.nodes.map((n, i) => `--- node-${i}\n${n.logs().slice(-2000)}`).join('\n');
}

interface Watched {
  user: string;
  ua: SipClient;
  connection: Arrivals<ConnectionEvent>;
  registrations: Arrivals<RegisterResult>;
  messages: Arrivals<IncomingMessage>;
}

/** `user` given the addresses `urls` (the dead node's first), with autoReconnect and the default keep-alives, registered. */
async function mobileClient(user: string, urls: string[]): Promise<Watched> {
  const ua = new SipClient({ server: urls, aor: `sip:${user}@${DOMAIN}`, password: `${user}-pw`, requestTimeoutMs: 5000, autoReconnect: { initialDelayMs: 200, maxDelayMs: 1000 } });
  clients.push(ua);
  ua.on('error', () => undefined);
  const options = { timeoutMs: WAIT_MS, context: clusterLogs };
  const w: Watched = {
    user,
    ua,
    connection: arrivals<ConnectionEvent>((push) => ua.on('connection', push), { what: `${user} connection event`, ...options }),
    registrations: arrivals<RegisterResult>((push) => ua.on('registered', push), { what: `${user} registration`, ...options }),
    messages: arrivals<IncomingMessage>((push) => ua.on('message', push), { what: `${user} message`, ...options }),
  };
  await ua.connect();
  assert.equal((await w.connection.next()).server, urls[0]);
  await ua.register({ expires: 300 });
  await w.registrations.next();
  return w;
}

/** The nodes holding `user`'s live bindings, as the location service in Redis has them. */
async function bindingNodes(user: string): Promise<string[]> {
  const keys = await redis.keys(`{parley}:loc:aor:*${user}@${DOMAIN}`);
  const nodes: string[] = [];
  for (const key of keys) {
    const raw = await redis.get(key);
    for (const text of JSON.parse(raw ?? '[]') as string[]) {
      const b = JSON.parse(text) as { expiresAt: number; flow: { node?: string } };
      if (b.expiresAt > Date.now()) nodes.push(b.flow.node ?? '?');
    }
  }
  return nodes.sort();
}

/** How many spool entries were picked up more than once (a lease of the dead node ended: another took them). */
async function takenAgain(): Promise<number> {
  const row = await db.get<{ n: number }>("SELECT count(*) AS n FROM (SELECT trace_id FROM trace_events WHERE step = 'picked-up' GROUP BY trace_id HAVING count(*) > 1) t");
  return Number(row?.n ?? 0);
}

/** A MESSAGE sipp saw answered 202: its recipient, sipp's call number (in the body), the spool entry. */
interface Accepted {
  node: number;
  recipient: string;
  call: number;
  entry: string;
}

/** The 202s in a sipp run's -trace_msg log. sipp's Call-ID is `<call number>-<pid>@<ip>`. */
function acceptedIn(node: number, run: SippResult): Accepted[] {
  const out: Accepted[] = [];
  for (const block of run.messages.split(/^-{10,}.*$/m)) {
    if (!/message received/.test(block) || !/^SIP\/2\.0 202 /m.test(block)) continue;
    const call = /^Call-ID:\s*(\d+)-/im.exec(block)?.[1];
    const recipient = /^To:\s*<sip:([^@]+)@/im.exec(block)?.[1];
    const entry = /spool entry (sp-[a-z2-7]+)/.exec(block)?.[1];
    assert.ok(call !== undefined && recipient !== undefined && entry !== undefined, `a 202 sipp logged lacks a Call-ID, To or spool entry:\n${block}`);
    out.push({ node, recipient, call: Number(call), entry });
  }
  return out;
}

/** One Missed Conversation as EWS returns it: the spool entry (InternetMessageId) and the call numbers of the messages in it. */
interface Missed {
  entry: string;
  calls: number[];
}

/** Every Missed Conversation of `user`, read through EWS at `node`. */
async function missedConversations(node: RunningServer, user: string): Promise<Missed[]> {
  const items = await conversationHistory(node, `${user}@${DOMAIN}`, `${user}-pw`, MISSED_CLASS);
  return items.map((item) => {
    const entry = spoolEntryOf(item);
    assert.ok(entry !== undefined, `a Missed Conversation of ${user} whose InternetMessageId is not a spool entry's: ${item.internetMessageId}`);
    return { entry, calls: [...item.text.matchAll(/Offline hello from sipp (\d+)/g)].map((x) => Number(x[1])) };
  });
}

describe('a node killed (SIGKILL) while sipp sends MESSAGEs to offline users through all three', () => {
  it('every MESSAGE answered 202 is delivered exactly once (EWS), the dead node\'s SDK clients register elsewhere within 10 s and get their next messages', async (t) => {
    const victim = cluster.nodes[VICTIM]!;
    const others = cluster.nodes.filter((_, i) => i !== VICTIM);
    // the dead node's address first, then the others (TCP for one, WebSocket for the other)
    const mia = await mobileClient('mia', [tcpUrl(victim), ...others.map(tcpUrl)]);
    const max = await mobileClient('max', [victim.wsUrl, ...others.map((s) => s.wsUrl).reverse()]);
    assert.deepEqual(await bindingNodes('mia'), [cluster.nodeId(VICTIM)]);
    assert.deepEqual(await bindingNodes('max'), [cluster.nodeId(VICTIM)]);

    // one sipp per node, each to its own recipients, from every sender in turn
    const runs = cluster.nodes.map((node, i) =>
      runSipp({
        scenario: SCENARIOS.messageOfflineUac,
        target: udpTarget(node),
        transport: 'u1',
        domain: DOMAIN,
        authUri: `${recipientsOf(i)[0]}@${DOMAIN}`,
        injection: recipientsOf(i).flatMap((r) => SENDERS.map((s) => [s, `${s}-pw`, r])),
        calls: CALLS,
        rate: RATE,
        timeoutSec: 60,
        // a call to the dead node ends when its answer does not come, not at the global timeout
        extra: ['-recv_timeout', '6000'],
      }),
    );
    // mid-load: once each node has accepted some messages
    await eventually('202s from every node', async () => {
      const row = await db.get<{ n: number }>("SELECT count(DISTINCT recipient) AS n FROM spool_entries WHERE kind = 'offline'");
      return Number(row?.n ?? 0) >= 3 * recipientsOf(0).length ? true : undefined;
    }, WAIT_MS);
    await new Promise((r) => setTimeout(r, 2_000));
    const killedAt = Date.now();
    await cluster.kill(VICTIM);

    // the clients of the dead node: registered again, on another node, within the bound
    for (const w of [mia, max]) {
      const registered = await w.registrations.next(WAIT_MS);
      const after = Date.now() - killedAt;
      assert.equal(registered.status, 200, w.user);
      assert.ok(after <= FAILOVER_BOUND_MS, `${w.user} registered again ${after} ms after the kill; the issue asks for 10 s`);
      t.diagnostic(`${w.user} registered again ${after} ms after the kill`);
      let event = await w.connection.next();
      while (event.state !== 'connected') event = await w.connection.next();
      assert.notEqual(event.server, tcpUrl(victim), w.user);
      assert.notEqual(event.server, victim.wsUrl, w.user);
      const nodes = await bindingNodes(w.user);
      assert.ok(nodes.some((n) => n !== cluster.nodeId(VICTIM)), `${w.user}'s bindings are on ${nodes.join(', ')}`);
      t.diagnostic(`${w.user} is then on ${event.server}; its bindings in Redis name ${nodes.join(', ')}`);
    }

    // their next messages, at once (the dead node's bindings are still in Redis until the others
    // notice it gone): pat, on a surviving node, writes to each
    const people = sdkClients(() => others[0]!, DOMAIN, { register: true });
    try {
      const pat = await people.connect(PEER);
      for (const w of [mia, max]) {
        const answer = await pat.sendMessage(`sip:${w.user}@${DOMAIN}`, `after the failover, ${w.user}`);
        assert.equal(answer.status, 200, `${w.user}: ${answer.status} ${answer.warning ?? ''}`);
        assert.equal((await w.messages.next()).text, `after the failover, ${w.user}`);
      }
    } finally {
      await people.closeAll();
    }

    const results = await Promise.all(runs);
    // the other nodes stop counting the dead one (its announcement expires), and drop its bindings
    await cluster.waitForNodeGone(0, cluster.nodeId(VICTIM), WAIT_MS);
    const left = cluster.nodes[0]!.logs().split('\n').find((l) => l.includes(`cluster node ${cluster.nodeId(VICTIM)} left`));
    const leftAt = Date.parse((JSON.parse(left ?? '{}') as { time?: string }).time ?? '');
    t.diagnostic(`node 0 counted ${cluster.nodeId(VICTIM)} gone ${leftAt - killedAt} ms after the kill; bindings of mia then: ${(await bindingNodes('mia')).join(', ')}`);
    results.forEach((r, i) => {
      if (i === VICTIM) return;
      // the surviving nodes answer every call: 202 after the digest challenge
      assert.equal(r.code, 0, `sipp of node ${i}\n${describeSippRun(r)}`);
    });
    const accepted = results.flatMap((r, i) => acceptedIn(i, r));
    for (let i = 0; i < NODES; i++) {
      const survivors = i === VICTIM ? 0 : CALLS;
      const got = accepted.filter((a) => a.node === i).length;
      if (i !== VICTIM) assert.equal(got, survivors, `node ${i}: 202s in sipp's log`);
      else assert.ok(got > 0, 'the dead node accepted messages before it died');
    }

    // every entry ends delivered; none waits, none is held, none failed
    await eventually('the spool delivered', async () => {
      const open = await db.get<{ n: number }>("SELECT count(*) AS n FROM spool_entries WHERE state <> 'delivered'");
      return Number(open?.n) === 0 ? true : undefined;
    }, WAIT_MS);

    const lost = results[VICTIM]!.stats;
    t.diagnostic(`202s: ${accepted.length} (${accepted.filter((a) => a.node === VICTIM).length} from the dead node, whose sipp had ${lost?.failedCalls ?? '?'} calls unanswered); entries taken again after a lease: ${await takenAgain()}`);

    // exactly once: per recipient, each message sipp saw accepted once in one Missed Conversation
    // (the one of its spool entry), and no message twice
    const reader = cluster.nodes[0]!;
    for (let i = 0; i < NODES; i++) {
      for (const recipient of recipientsOf(i)) {
        const missed = await missedConversations(reader, recipient);
        const entries = missed.map((m) => m.entry);
        assert.equal(new Set(entries).size, entries.length, `${recipient}: one Missed Conversation per spool entry, none twice`);
        const calls = missed.flatMap((m) => m.calls);
        assert.equal(new Set(calls).size, calls.length, `${recipient}: no message twice`);
        for (const a of accepted.filter((x) => x.recipient === recipient)) {
          const holder = missed.find((m) => m.calls.includes(a.call));
          assert.ok(holder !== undefined, `${recipient}: call ${a.call} (202, entry ${a.entry}) is missing`);
          assert.equal(holder.entry, a.entry, `${recipient}: call ${a.call} is in the Missed Conversation of its entry`);
        }
      }
    }

  });
});

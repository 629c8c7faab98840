// Cluster mode end to end (issue 16), the gaps between nodes.
//
// Dialogs across nodes: org-a.test is a cluster of two nodes federated with org-b.test (one Parley).
// alice, registered at node 1, subscribes to dave@org-b through node 1; org-b sends its NOTIFYs to
// org-a's federation name, which DNS gives as node 0's address. Node 0 reads the flow token of the
// Record-Route node 1 made (the cluster's key), sees the flow is node 1's, and relays the NOTIFY
// over the hop between nodes: alice gets it (on one process it would be 430 Flow Failed).
//
// A request relayed to the node that holds the recipient's binding, whose connection has closed
// there while the binding is still in Redis, is answered 480 with a Warning by that node, and the
// node that received the MESSAGE keeps it offline (202).
//
// The window between a connection closing and its binding leaving Redis is short (one script);
// here it is held open for real: Redis is paused for writes (CLIENT PAUSE … WRITE, as during a
// failover or a slow fsync), so the closing node's removeFlow waits while reads (the sending
// node's lookup) go on.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import { createServer } from 'node:net';
import { openRedis, type RedisConnection } from '../../src/cluster/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { notifications, sdkClients } from '../harness/clients.ts';
import { startCluster, type TestCluster } from '../harness/cluster.ts';
import { closeTestPostgres, freshPostgresDatabase } from '../harness/engines.ts';
import { eventually } from '../harness/eventually.ts';
import { startRedis, type TestRedis } from '../harness/redis.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';
import { adminOf, enableFederation, startFederationEnv, type FederationEnv, type ParleyOrg } from './federation-env.ts';

const DOMAIN = 'parley.test';
const USERS = ['alice', 'bob'];
let cluster: TestCluster;
let redis: RedisConnection;
let nodeOf = 0;
const people = sdkClients(() => cluster.nodes[nodeOf]!, DOMAIN);

async function registeredAt(node: number, user: string): Promise<SipClient> {
  nodeOf = node;
  return people.connect(user, { register: true });
}

before(async () => {
  cluster = await startCluster({ nodes: 2, domain: DOMAIN, users: USERS.map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })) });
  redis = await openRedis(cluster.redis.url);
});

after(async () => {
  await redis?.client.call('CLIENT', 'UNPAUSE').catch(() => undefined);
  await redis?.close();
  await people.closeAll();
  await cluster?.stop();
  await closeTestPostgres();
});

describe('a cluster of two nodes: relaying to a connection that is gone', () => {
  it('a MESSAGE relayed to a node whose connection for the binding has closed: that node answers 480 with a Warning, the sending node keeps the MESSAGE offline (202)', async () => {
    const alice = await registeredAt(0, 'alice');
    const bob = await registeredAt(1, 'bob');

    // Redis takes no writes for a while: bob's binding cannot be dropped when his connection
    // closes. A client whose write waits holds up its later reads too (one connection, in order):
    // the pause starts just after node 0 announced itself (its key's TTL is fresh), so node 0
    // writes nothing before its lookup of bob (its next announcement is 3 s away).
    await eventually('node 0 to announce itself', async () => ((await redis.client.pttl('{parley}:node:node-0')) > 9_700 ? true : undefined), 5_000);
    await redis.client.call('CLIENT', 'PAUSE', '2000', 'WRITE');
    // (nothing here may ask node 1 anything that reads Redis: its connection waits behind the write)
    await bob.close();

    const answer = await alice.request('MESSAGE', `sip:bob@${DOMAIN}`, { body: 'are you still there?', contentType: 'text/plain' });
    assert.equal(answer.status, 202, `${answer.status} ${answer.headers.get('warning') ?? ''}`);
    // node 0 relayed it to node 1 (the binding was still in Redis); node 1 answered 480 and why:
    // the connection is closed there (or, had node 1 not yet read the close, writing to it failed)
    const line = await cluster.nodes[0]!.waitForLog(/no registration of bob@parley\.test took the message/);
    assert.match(line, /480 .*the connection of that registration (is closed on node node-1|failed)/);
    await redis.client.call('CLIENT', 'UNPAUSE');
    // once Redis takes writes again, the binding over the closed connection is dropped
    await cluster.nodes[1]!.waitForLog(/binding of bob@parley\.test dropped: connection closed/, 10_000);
  });
});

// ---- dialogs across nodes: org-a as a cluster of two, federated with org-b ----

const NET = 21;
const A = 'org-a.test';
const B = 'org-b.test';
const PIDF = 'application/pidf+xml';

/** A TCP port free on every one of `addresses` (the nodes' federation listeners share one port). */
async function portFreeOn(addresses: string[]): Promise<number> {
  for (;;) {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, addresses[0], resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    const free = await Promise.all(addresses.slice(1).map((address) => new Promise<boolean>((resolve) => {
      const other = createServer();
      other.once('error', () => resolve(false));
      other.listen(port, address, () => other.close(() => resolve(true)));
    })));
    if (free.every(Boolean)) return port;
  }
}

/** One sample of a node's /metrics (from loopback: no credentials); 0 when absent. */
async function metric(node: RunningServer, sample: string): Promise<number> {
  const text = await (await fetch(`http://${node.http.host}:${node.http.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

describe('dialogs across nodes: a partner\'s NOTIFY reaching the node that does not hold the subscriber\'s connection', () => {
  let env: FederationEnv;
  let orgARedis: TestRedis;
  let orgADb: Awaited<ReturnType<typeof freshPostgresDatabase>>;
  const orgA: RunningServer[] = [];
  const atNode1 = sdkClients(() => orgA[1]!, A, { requestTimeoutMs: 20_000 });
  const atB = sdkClients(() => env.org(B).server, B, { requestTimeoutMs: 20_000 });
  const logs = () => orgA.map((n, i) => `--- org-a node ${i} ---\n${n.logs().slice(-5000)}`).join('\n') + `\n--- org-b ---\n${env?.org(B).server.logs().slice(-5000) ?? ''}`;

  before(async () => {
    env = await startFederationEnv({ net: NET, orgs: [{ domain: B, users: ['dave'] }] });
    orgADb = await freshPostgresDatabase();
    orgARedis = await startRedis();
    const added = await runCli(['user', 'add', `alice@${A}`, '--password', 'alice-pw', '--database', orgADb.url]);
    assert.equal(added.code, 0, added.stderr);
    // node i: SIP and HTTP on 127.NET.1.(2i+1), federation on 127.NET.1.(2i+2), one port for both
    const federationAddress = (i: number) => `127.${NET}.1.${2 * i + 2}`;
    const port = await portFreeOn([federationAddress(0), federationAddress(1)]);
    const { cert, key } = env.pki.leaf(`sip.${A}`);
    for (let i = 0; i < 2; i++) {
      orgA.push(await startServer({
        domain: A,
        // an idle connection closes after 2 s: the link's connection to org-b too, once the SUBSCRIBE is answered
        config: { dnsServers: [env.dns.server], federation: { fqdn: `sip.${A}`, listen: federationAddress(i), port, cert, key, ca: env.pki.ca, connectTimeout: 5 }, messaging: { deviceTimeout: 1 }, sip: { connections: { idleTimeout: 2 } } },
        extraArgs: ['--listen', `127.${NET}.1.${2 * i + 1}`, '--database', orgADb.url, '--cluster', `node-${i}`, '--redis', orgARedis.url],
      }));
    }
    await orgA[0]!.waitForLog(/"cluster node node-1 joined"/, 15_000);
    await orgA[1]!.waitForLog(/"cluster node node-0 joined"/, 15_000);
    // partners find org-a at node 0 only
    await env.publish({ srv: [{ name: `_sipfederationtls._tcp.${A}`, target: `sip.${A}`, port }], a: { [`sip.${A}`]: federationAddress(0) } });
    const node0: ParleyOrg = { domain: A, fqdn: `sip.${A}`, address: `127.${NET}.1.1`, federation: { host: federationAddress(0), port }, config: {}, server: orgA[0]!, admin: adminOf(orgA[0]!), stop: () => orgA[0]!.stop() };
    await enableFederation(node0, [B]);
    await enableFederation(env.org(B), [A]);
  });

  after(async () => {
    await atNode1.closeAll();
    await atB.closeAll();
    await Promise.all(orgA.map((n) => n.stop()));
    await orgARedis?.stop();
    await orgADb?.drop();
    await env?.stop();
  });

  it('alice subscribes to dave@org-b through node 1; once that link connection closed, org-b\'s NOTIFYs come in at node 0, which relays them to node 1 and alice', async () => {
    const alice = await atNode1.connect('alice', { register: true });
    const inbox = notifications(alice);
    // the federation settings were written through node 0: node 1 has them within a second
    const sub = await eventually('node 1 to let alice reach org-b', async () => {
      const r = await alice.request('SUBSCRIBE', `sip:dave@${B}`, { contact: true, headers: { Event: 'presence', Expires: '600', Accept: PIDF } });
      return r.status === 403 ? undefined : r;
    }, 10_000);
    assert.equal(sub.status, 200, `${sub.status} ${sub.headers.get('warning') ?? ''}\n${logs()}`);
    const basic = (n: SipRequest) => /<basic>(\w+)<\/basic>/.exec(n.body.toString('utf8'))?.[1];
    // the first NOTIFY comes back over the connection the SUBSCRIBE went on (node 1's)
    assert.equal((await inbox.next(15_000).catch((err: unknown) => assert.fail(`${String(err)}\n${logs()}`))).headers.get('event'), 'presence');
    // node 1 closes its idle connection to org-b: org-b's next NOTIFY opens one to org-a as DNS has it, node 0
    await eventually('node 1 to close its idle connection to org-b', async () => ((await metric(orgA[1]!, 'parley_sip_connections{transport="tls"}')) === 0 ? true : undefined), 15_000);
    const notifiesAtNode0 = await metric(orgA[0]!, 'parley_sip_requests_total{method="NOTIFY"}');
    await atB.connect('dave', { register: true });
    const next = () => inbox.next(15_000).catch((err: unknown) => assert.fail(`${String(err)}\n${logs()}`));
    let n = await next();
    while (basic(n) !== 'open') n = await next();
    assert.ok((await metric(orgA[0]!, 'parley_sip_requests_total{method="NOTIFY"}')) > notifiesAtNode0, `the NOTIFY came in at node 0\n${logs()}`);
  });
});

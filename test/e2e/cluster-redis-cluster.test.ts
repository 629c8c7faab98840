// Cluster mode on a Redis Cluster (issue 16: "Redis Sentinel/Cluster addresses accepted"): two
// `parley serve` nodes given `--redis redis-cluster://…` (three masters of the test's own, see
// test/harness/redis.ts). Users registered on different nodes chat both ways across a hop, which
// needs the location service's scripts (routed to the slot of the `{parley}:` hash tag), the
// registry and the bus (PUBLISH reaches every node of a Redis Cluster) to work there.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IncomingMessage, SipClient } from '../../src/client/index.ts';
import { KEY_PREFIX, openRedis, scanKeys } from '../../src/cluster/index.ts';
import { arrivals, sdkClients } from '../harness/clients.ts';
import { startCluster, type TestCluster } from '../harness/cluster.ts';
import { closeTestPostgres } from '../harness/engines.ts';

const DOMAIN = 'parley.test';
const USERS = ['alice', 'bob'];
let cluster: TestCluster;
let nodeOf = 0;
const people = sdkClients(() => cluster.nodes[nodeOf]!, DOMAIN);

async function registeredAt(node: number, user: string): Promise<SipClient> {
  nodeOf = node;
  return people.connect(user, { register: true });
}

function messagesTo(c: SipClient) {
  return arrivals<IncomingMessage>((push) => c.on('message', push), { what: 'MESSAGE', timeoutMs: 10_000 });
}

before(async () => {
  cluster = await startCluster({ nodes: 2, redisCluster: true, domain: DOMAIN, users: USERS.map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })) });
});

after(async () => {
  await people.closeAll();
  await cluster?.stop();
  await closeTestPostgres();
});

describe('a cluster of two nodes on a Redis Cluster', () => {
  it('users registered on different nodes chat both ways, and their bindings are in Redis under the {parley}: hash tag', async () => {
    const alice = await registeredAt(0, 'alice');
    const bob = await registeredAt(1, 'bob');
    const aliceInbox = messagesTo(alice);
    const bobInbox = messagesTo(bob);

    const there = await alice.request('MESSAGE', `sip:bob@${DOMAIN}`, { body: 'hello from node 0', contentType: 'text/plain' });
    assert.equal(there.status, 200, `${there.status} ${there.headers.get('warning') ?? ''}`);
    const got = await bobInbox.next();
    assert.equal(got.text, 'hello from node 0');
    assert.equal(got.assertedIdentity?.uri, `sip:alice@${DOMAIN}`);

    const back = await bob.request('MESSAGE', `sip:alice@${DOMAIN}`, { body: 'and back from node 1', contentType: 'text/plain' });
    assert.equal(back.status, 200, `${back.status} ${back.headers.get('warning') ?? ''}`);
    assert.equal((await aliceInbox.next()).text, 'and back from node 1');

    const redis = await openRedis(cluster.redis.url);
    try {
      const aors = (await scanKeys(redis, `${KEY_PREFIX}loc:aor:*`)).sort();
      assert.deepEqual(aors, [`${KEY_PREFIX}loc:aor:alice@${DOMAIN}`, `${KEY_PREFIX}loc:aor:bob@${DOMAIN}`]);
      const nodes = (await scanKeys(redis, `${KEY_PREFIX}node:*`)).sort();
      assert.deepEqual(nodes, [`${KEY_PREFIX}node:node-0`, `${KEY_PREFIX}node:node-1`], 'both nodes announce themselves');
    } finally {
      await redis.close();
    }
  });
});

// Cluster mode end to end (issue 16), the gaps between nodes: a request relayed to the node that
// holds the recipient's binding, whose connection has closed there while the binding is still in
// Redis, is answered 480 with a Warning by that node, and the node that received the MESSAGE
// keeps it offline (202).
//
// The window between a connection closing and its binding leaving Redis is short (one script);
// here it is held open for real: Redis is paused for writes (CLIENT PAUSE … WRITE, as during a
// failover or a slow fsync), so the closing node's removeFlow waits while reads (the sending
// node's lookup) go on.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import { openRedis, type RedisConnection } from '../../src/cluster/index.ts';
import { sdkClients } from '../harness/clients.ts';
import { startCluster, type TestCluster } from '../harness/cluster.ts';
import { closeTestPostgres } from '../harness/engines.ts';
import { eventually } from '../harness/eventually.ts';

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
    await eventually('node 0 to announce itself', async () => ((await redis.client.pttl('parley:node:node-0')) > 9_700 ? true : undefined), 5_000);
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

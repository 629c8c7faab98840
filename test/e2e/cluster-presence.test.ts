// Presence across the nodes of a cluster end to end (issue 16): three `parley serve` nodes on one
// PostgreSQL database and one Redis. A watcher on one node gets the NOTIFYs of a user publishing
// (RFC 3903) on another; a refresh or a modification with SIP-If-Match through a third node finds
// the publication (entity-tags are the cluster's); a killed node's publications outlive it, and its
// users are seen again once their clients are back on another node.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import { buildPidf, parsePidf, type PresenceState } from '../../src/presence/index.ts';
import { notifications, sdkClients } from '../harness/clients.ts';
import { startCluster, type TestCluster } from '../harness/cluster.ts';
import { closeTestPostgres } from '../harness/engines.ts';

const DOMAIN = 'parley.test';
const USERS = ['alice', 'bob', 'carol', 'dave'];
let cluster: TestCluster;
let nodeOf = 0;
const people = sdkClients(() => cluster.nodes[nodeOf]!, DOMAIN);

/** An SDK client over TCP of `user` at node `node`, registered unless told not to. */
async function at(node: number, user: string, register = true): Promise<SipClient> {
  nodeOf = node;
  return people.connect(user, { register });
}

before(async () => {
  cluster = await startCluster({ nodes: 3, domain: DOMAIN, users: USERS.map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })) });
});

after(async () => {
  await people.closeAll();
  await cluster?.stop();
  await closeTestPostgres();
});

/** `watcher` watches `user`'s presence; the states its NOTIFYs show, one by one. */
async function watch(watcher: SipClient, user: string) {
  const inbox = notifications(watcher);
  const sub = await watcher.request('SUBSCRIBE', `sip:${user}@${DOMAIN}`, { contact: true, headers: { Event: 'presence', Expires: '600', Accept: 'application/pidf+xml' } });
  assert.equal(sub.status, 200);
  return { next: async (timeoutMs = 10_000): Promise<PresenceState> => parsePidf((await inbox.next(timeoutMs)).body, `sip:${user}@${DOMAIN}`) };
}

/** A PUBLISH as a client that failed over sends it: by hand, with SIP-If-Match. */
function publish(c: SipClient, user: string, ifMatch: string, presence?: PresenceState) {
  return c.request('PUBLISH', `sip:${user}@${DOMAIN}`, {
    headers: { Event: 'presence', 'SIP-If-Match': ifMatch, Expires: '600' },
    ...(presence === undefined ? {} : { body: buildPidf(`sip:${user}@${DOMAIN}`, presence), contentType: 'application/pidf+xml' }),
  });
}

describe('presence in a cluster of three nodes', () => {
  it('a watcher on node 0 gets the NOTIFYs of a user publishing on node 1; SIP-If-Match works through node 2', async () => {
    const alice = await at(0, 'alice');
    const bobsPresence = await watch(alice, 'bob');
    assert.equal((await bobsPresence.next()).state, 'Offline');

    const bob = await at(1, 'bob');
    assert.equal((await bobsPresence.next()).state, 'Available');
    const published = await bob.publishPresence({ state: 'Busy', note: 'in a call' });
    assert.deepEqual(await bobsPresence.next(), { state: 'Busy', note: 'in a call' });

    // bob's other device, through node 2, carries on with the entity-tag node 1 gave
    const other = await at(2, 'bob', false);
    const refreshed = await publish(other, 'bob', published.etag);
    assert.equal(refreshed.status, 200, refreshed.headers.get('warning'));
    const etag = refreshed.headers.get('sip-etag');
    assert.ok(etag && etag !== published.etag);
    assert.equal((await publish(other, 'bob', published.etag)).status, 412, 'the replaced tag is gone everywhere');
    assert.equal((await publish(other, 'bob', etag, { state: 'Away', note: 'lunch' })).status, 200);
    assert.deepEqual(await bobsPresence.next(), { state: 'Away', note: 'lunch' });
  });

  it('a killed node\'s publications outlive it; its users are seen again once their clients are back on another node', async () => {
    const dave = await at(0, 'dave');
    const carolsPresence = await watch(dave, 'carol');
    assert.equal((await carolsPresence.next()).state, 'Offline');
    const carol = await at(2, 'carol');
    assert.equal((await carolsPresence.next()).state, 'Available');
    const published = await carol.publishPresence({ state: 'Do Not Disturb', note: 'focus' });
    assert.deepEqual(await carolsPresence.next(), { state: 'Do Not Disturb', note: 'focus' });

    await cluster.kill(2);
    // node 0 drops node 2's registrations once node 2 stops announcing itself (its key lives 10 s,
    // the registry looks every 3 s): carol is Offline meanwhile
    assert.equal((await carolsPresence.next(30_000)).state, 'Offline');

    // carol's client is back, on node 1: registered again, her publication (stored in Redis) counts again
    const back = await at(1, 'carol');
    assert.deepEqual(await carolsPresence.next(), { state: 'Do Not Disturb', note: 'focus' });
    // and it can refresh the publication node 2 took, through node 1
    const refreshed = await publish(back, 'carol', published.etag);
    assert.equal(refreshed.status, 200, refreshed.headers.get('warning'));
    assert.equal((await publish(back, 'carol', refreshed.headers.get('sip-etag')!, { state: 'Available', note: '' })).status, 200);
    assert.deepEqual(await carolsPresence.next(), { state: 'Available', note: '' });
  });
});

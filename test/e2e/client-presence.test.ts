// The SDK's presence against the real server: alice watches her contact list with one RFC 4662
// SUBSCRIBE (watchPresenceList) and bob with an RFC 3856 one (watchPresence); bob publishes his
// state with a note (RFC 3903), changes it, and unregisters, which removes the publication.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { listResource } from '../../src/client/index.ts';
import type { PresenceInfo, PresenceList } from '../../src/client/index.ts';
import { arrivals, sdkClients } from '../harness/clients.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Adams' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob Brown' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw' },
      { address: `dave@${DOMAIN}`, password: 'dave-pw' },
    ],
  });
});

after(async () => {
  await people.closeAll();
  await server?.stop();
});

async function addContact(owner: string, contact: string): Promise<void> {
  const res = await fetch(`http://${server.http.host}:${server.http.port}/presence/contacts/${contact}`, {
    method: 'PUT',
    headers: { authorization: `Basic ${Buffer.from(`${owner}:${owner}-pw`).toString('base64')}` },
  });
  assert.equal(res.status, 201, await res.text());
}

/** The `change` events of a view, with the server's logs when one does not come. */
function changes(view: PresenceList) {
  return arrivals<PresenceInfo>((push) => view.on('change', push), { what: 'presence change', context: () => server.logs().slice(-3000) });
}

/** Changes of `address` until it has `state`; on the way, only Available may show. */
async function untilState(queue: ReturnType<typeof changes>, address: string, state: string): Promise<PresenceInfo> {
  for (;;) {
    const change = await nextOf(queue, address);
    if (change.state === state) return change;
    assert.equal(change.state, 'Available', `${address} passes through ${change.state} on the way to ${state}`);
  }
}

/** The next change of `address`, skipping others'. */
async function nextOf(queue: ReturnType<typeof changes>, address: string): Promise<PresenceInfo> {
  for (;;) {
    const change = await queue.next();
    if (change.address === address) return change;
  }
}

describe('SDK presence (RFC 3903 publish, RFC 3856 and RFC 4662 watch)', () => {
  it("alice's contact list shows bob's published state and note, then Offline when he leaves", async () => {
    await addContact('alice', 'bob');
    await addContact('alice', 'carol');
    const alice = await people.connect('alice', { register: true });
    const list = await alice.watchPresenceList(`sip:${listResource(`alice@${DOMAIN}`)}`);
    const seen = changes(list);
    // the first NOTIFY may arrive just before or after the SUBSCRIBE's 200
    const first = list.snapshot().get(`bob@${DOMAIN}`) ?? (await nextOf(seen, `bob@${DOMAIN}`));
    assert.deepEqual(first, { address: `bob@${DOMAIN}`, displayName: 'Bob Brown', state: 'Offline' });

    const bob = await people.connect('bob', { register: true });
    assert.equal((await nextOf(seen, `bob@${DOMAIN}`)).state, 'Available');
    const published = await bob.publishPresence({ state: 'Busy', note: 'in a meeting' });
    assert.equal(published.status, 200);
    assert.ok(published.etag.length > 0 && published.expires > 0);
    assert.deepEqual(await nextOf(seen, `bob@${DOMAIN}`), { address: `bob@${DOMAIN}`, displayName: 'Bob Brown', state: 'Busy', note: 'in a meeting' });
    await bob.publishPresence({ state: 'Do Not Disturb' });
    assert.deepEqual(await nextOf(seen, `bob@${DOMAIN}`), { address: `bob@${DOMAIN}`, displayName: 'Bob Brown', state: 'Do Not Disturb' });
    assert.deepEqual([...list.snapshot().keys()].sort(), [`bob@${DOMAIN}`, `carol@${DOMAIN}`]);

    // one presentity: bob watches alice, who publishes Be Right Back
    const single = await bob.watchPresence(`alice@${DOMAIN}`);
    const aliceSeen = changes(single);
    const now = single.snapshot().get(`alice@${DOMAIN}`) ?? (await aliceSeen.next());
    assert.equal(now.state, 'Available');
    await alice.publishPresence({ state: 'Be Right Back', note: 'coffee' });
    assert.deepEqual(await nextOf(aliceSeen, `alice@${DOMAIN}`), { address: `alice@${DOMAIN}`, state: 'Be Right Back', note: 'coffee' });
    await single.close();

    // unregister removes bob's publication, then his binding: Available (registered, nothing
    // published) may show in between, never Do Not Disturb again, and Offline at the end
    await bob.unregister();
    assert.deepEqual(await untilState(seen, `bob@${DOMAIN}`, 'Offline'), { address: `bob@${DOMAIN}`, displayName: 'Bob Brown', state: 'Offline' });

    // the list itself changes: carol leaves it
    const removed = arrivals<{ address: string }>((push) => list.on('removed', push), { what: 'removal' });
    const res = await fetch(`http://${server.http.host}:${server.http.port}/presence/contacts/carol`, {
      method: 'DELETE',
      headers: { authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` },
    });
    assert.equal(res.status, 204);
    assert.deepEqual(await removed.next(), { address: `carol@${DOMAIN}` });
    assert.deepEqual([...list.snapshot().keys()], [`bob@${DOMAIN}`]);
    await list.close();
  });

  it('close() removes the publication and the connection\'s binding; publishing needs a connection', async () => {
    await addContact('carol', 'dave');
    const carol = await people.connect('carol', { register: true });
    const list = await carol.watchPresenceList(`sip:carol+contacts@${DOMAIN}`);
    const seen = changes(list);
    assert.equal((list.snapshot().get(`dave@${DOMAIN}`) ?? (await nextOf(seen, `dave@${DOMAIN}`))).state, 'Offline');
    const dave = await people.connect('dave', { register: true });
    await dave.publishPresence({ state: 'Away', note: 'back at 3' });
    assert.deepEqual(await untilState(seen, `dave@${DOMAIN}`, 'Away'), { address: `dave@${DOMAIN}`, state: 'Away', note: 'back at 3' });
    await dave.close();
    assert.deepEqual(await untilState(seen, `dave@${DOMAIN}`, 'Offline'), { address: `dave@${DOMAIN}`, state: 'Offline' });
    await assert.rejects(dave.publishPresence({ state: 'Available' }), { code: 'NOT_CONNECTED' });
    await list.close();
  });
});

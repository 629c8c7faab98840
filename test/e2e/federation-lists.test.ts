// A partner's user on a contact list end to end (issue 15): alice@org-a.test puts dave@org-b.test
// on her list (HTTP, as the web client does); while her client watches the list
// (sip:alice+contacts@org-a.test, RFC 4662), org-a's server subscribes to dave across the link as
// alice, and each RLMI NOTIFY of her list carries dave's presence as org-b shows it to alice:
// pending first, then his state, his changes, Offline once he blocks her. Removing him from the
// list ends that back-end subscription (org-b's Get-CsUserPresence stops listing alice as a watcher).
// In the web client, alice adds dave by typing his full address in the search and sees his state.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { notifications, type Arrivals } from '../harness/clients.ts';
import { contactEntry, launchBrowser, openClient, signIn } from '../harness/browser.ts';
import { eventually } from '../harness/eventually.ts';
import { federatedPair, pidf, outcome, type ParleyOrg } from './federation-env.ts';

const A = 'org-a.test';
const B = 'org-b.test';
const PIDF = 'application/pidf+xml';
const LIST_ACCEPT = 'multipart/related, application/rlmi+xml, application/pidf+xml';
const pair = federatedPair(16, { a: ['alice', 'bob'], b: ['dave'] });


/** A user's own HTTP API at their server (HTTP Basic, loopback). */
function api(org: ParleyOrg, user: string, method: string, path: string): Promise<Response> {
  return fetch(`http://${org.server.http.host}:${org.server.http.port}${path}`, {
    method,
    headers: { authorization: `Basic ${Buffer.from(`${user}:${user}-pw`).toString('base64')}` },
  });
}

interface Entry {
  /** RFC 4662 instance state */
  state: string;
  basic?: string;
  activities?: string;
}

/** dave's entry in a list NOTIFY: his instance state and, when it has one, his PIDF part's basic status and activities. */
function entryOf(notify: SipRequest, member: string): Entry | undefined {
  const body = notify.body.toString('utf8');
  const resource = new RegExp(`<resource uri="sip:${member.replace(/\./g, '\\.')}">([\\s\\S]*?)</resource>`).exec(body)?.[1];
  if (resource === undefined) return undefined;
  const instance = /<instance [^>]*state="(\w+)"[^>]*?(?:cid="([^"]+)")?[^>]*\/>/.exec(resource);
  const state = instance?.[1] ?? '?';
  const cid = /cid="([^"]+)"/.exec(resource)?.[1];
  if (cid === undefined) return { state };
  const part = body.split(`Content-ID: <${cid}>`)[1]?.split(/\r\n--/)[0] ?? '';
  return {
    state,
    basic: /<basic>(\w+)<\/basic>/.exec(part)?.[1],
    activities: /<rpid:activities>(.*?)<\/rpid:activities>/s.exec(part)?.[1] ?? '',
  };
}

/** The next list NOTIFY whose entry for `member` satisfies `want` (earlier ones are skipped). */
async function nextEntry(inbox: Arrivals<SipRequest>, member: string, want: (e: Entry) => boolean, what: string): Promise<Entry> {
  const seen: string[] = [];
  for (;;) {
    let n: SipRequest;
    try {
      n = await inbox.next(20_000);
    } catch (err) {
      throw new Error(`no list NOTIFY showed ${member} ${what}; saw ${JSON.stringify(seen)}\n${pair.logs()}`, { cause: err });
    }
    const entry = entryOf(n, member);
    seen.push(JSON.stringify(entry));
    if (entry !== undefined && want(entry)) return entry;
  }
}

/** A subscription of `c` to alice's list, in a dialog the test keeps so that it can end it (RFC 6665 §4.1.2.3). */
async function watchList(c: SipClient) {
  const callId = `list-${Math.random().toString(36).slice(2)}`;
  const fromTag = Math.random().toString(36).slice(2);
  const headers = { Event: 'presence', Supported: 'eventlist', Accept: LIST_ACCEPT };
  const first = await c.request('SUBSCRIBE', `sip:alice+contacts@${A}`, { contact: true, callId, fromTag, cseq: 1, headers: { ...headers, Expires: '600' } });
  assert.equal(first.status, 200, outcome(first, pair.logs));
  const to = `<sip:alice+contacts@${A}>;tag=${/;\s*tag=([^;\s]+)/.exec(first.response.headers.get('to') ?? '')?.[1] ?? ''}`;
  return {
    async unsubscribe() {
      const end = await c.request('SUBSCRIBE', `sip:alice+contacts@${A}`, { contact: true, callId, fromTag, to, cseq: 10, headers: { ...headers, Expires: '0' } });
      assert.equal(end.status, 200, outcome(end, pair.logs));
    },
  };
}

/** Who watches dave at org-b (Get-CsUserPresence through the admin API). */
async function watchersOfDave(): Promise<string> {
  const [shown] = (await pair.orgB.admin('Get-CsUserPresence', { Identity: `dave@${B}` })) as Array<Record<string, unknown>>;
  return JSON.stringify(shown?.Watchers ?? shown?.watchers ?? shown);
}

/** Waits until org-b does (or no longer does) list alice@org-a among dave's watchers. */
async function aliceWatchesDave(yes: boolean): Promise<void> {
  let last = '';
  try {
    await eventually(`alice ${yes ? '' : 'no longer '}watching dave at org-b`, async () => {
      last = await watchersOfDave();
      return /alice@org-a\.test/.test(last) === yes ? true : undefined;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}; dave's watchers: ${last}\n${pair.logs()}`, { cause: err });
  }
}

describe('a partner\'s user on a contact list (RFC 4662 lists with remote entries)', () => {
  it('alice may put dave@org-b on her list; a domain not allowed is refused with the reason', async () => {
    const put = await api(pair.orgA, 'alice', 'PUT', `/presence/contacts/${encodeURIComponent(`dave@${B}`)}`);
    assert.equal(put.status, 201, await put.clone().text());
    const json = (await put.json()) as { contact: string; remote: boolean };
    assert.equal(json.contact, `dave@${B}`);
    assert.equal(json.remote, true);
    const refused = await api(pair.orgA, 'alice', 'PUT', `/presence/contacts/${encodeURIComponent('erin@org-c.test')}`);
    assert.equal(refused.status, 403);
    const problem = (await refused.json()) as { code: string; detail: string };
    assert.equal(problem.code, 'PARTNER_REFUSED');
    assert.match(problem.detail, /org-c\.test/);
    const list = (await (await api(pair.orgA, 'alice', 'GET', '/presence/contacts')).json()) as { contacts: Array<{ contact: string; remote: boolean }> };
    assert.deepEqual(list.contacts.map((c) => [c.contact, c.remote]), [[`dave@${B}`, true]]);
  });

  it('her list subscription shows dave pending, then his presence; his changes and his block of alice reach her list; removing him ends the back-end subscription', async () => {
    const dave = await pair.atB.connect('dave', { register: true });
    const aliceWatches = await pair.atA.connect('alice');
    const listSees = notifications(aliceWatches);

    const list = await watchList(aliceWatches);
    const first = await listSees.next(20_000);
    assert.equal(first.headers.get('require'), 'eventlist');
    const initial = entryOf(first, `dave@${B}`);
    assert.ok(initial !== undefined, `dave is on the list\n${first.body.toString('utf8')}`);
    // RFC 4662 §5.2: until org-b's first NOTIFY, dave's instance is pending, without a part
    assert.ok(initial.state === 'pending' || initial.state === 'active', JSON.stringify(initial));
    if (initial.state === 'pending') assert.equal(initial.basic, undefined);

    // org-a subscribed to dave as alice: org-b lists her among dave's watchers
    await aliceWatchesDave(true);
    await nextEntry(listSees, `dave@${B}`, (e) => e.state === 'active' && e.basic === 'open', 'online');

    // dave's change reaches alice's list
    const busy = await dave.request('PUBLISH', `sip:dave@${B}`, { headers: { Event: 'presence', Expires: '600' }, body: pidf(`dave@${B}`, '<rpid:busy/>'), contentType: PIDF });
    assert.equal(busy.status, 200, outcome(busy, pair.logs));
    await nextEntry(listSees, `dave@${B}`, (e) => e.state === 'active' && (e.activities ?? '').includes('busy'), 'busy');

    // dave blocks alice at org-b: her list shows him Offline, though he is still signed in and busy
    const block = await api(pair.orgB, 'dave', 'PUT', `/presence/blocked/${encodeURIComponent(`alice@${A}`)}`);
    assert.equal(block.status, 201, await block.text());
    const hidden = await nextEntry(listSees, `dave@${B}`, (e) => e.state === 'active' && e.basic === 'closed', 'Offline');
    assert.doesNotMatch(hidden.activities ?? '', /busy/);

    // removing dave from the list: the list NOTIFY no longer has him, org-a unsubscribes at org-b
    const removed = await api(pair.orgA, 'alice', 'DELETE', `/presence/contacts/${encodeURIComponent(`dave@${B}`)}`);
    assert.equal(removed.status, 204);
    for (;;) {
      const n = await listSees.next(20_000);
      if (entryOf(n, `dave@${B}`) === undefined) break;
    }
    await aliceWatchesDave(false);
    await list.unsubscribe();
  });

  it('the back-end subscription lasts only while the list is watched', async () => {
    const put = await api(pair.orgA, 'alice', 'PUT', `/presence/contacts/${encodeURIComponent(`dave@${B}`)}`);
    assert.equal(put.status, 201, await put.text());
    // nobody watches alice's list now: org-a does not watch dave
    assert.doesNotMatch(await watchersOfDave(), /alice@org-a\.test/);
    const aliceWatches = await pair.atA.connect('alice');
    const listSees = notifications(aliceWatches);
    const list = await watchList(aliceWatches);
    await nextEntry(listSees, `dave@${B}`, (e) => e.state === 'active', 'with a state');
    await aliceWatchesDave(true);
    // alice's client ends its list subscription: org-a ends its subscription to dave
    await list.unsubscribe();
    await aliceWatchesDave(false);
  });

  it('in the web client, alice adds dave@org-b by his full address and sees his presence', async () => {
    // dave off the list and alice unblocked, from the tests above
    assert.equal((await api(pair.orgA, 'alice', 'DELETE', `/presence/contacts/${encodeURIComponent(`dave@${B}`)}`)).status, 204);
    assert.equal((await api(pair.orgB, 'dave', 'DELETE', `/presence/blocked/${encodeURIComponent(`alice@${A}`)}`)).status, 204);
    const dave = await pair.atB.connect('dave', { register: true });
    const busy = await dave.request('PUBLISH', `sip:dave@${B}`, { headers: { Event: 'presence', Expires: '600' }, body: pidf(`dave@${B}`, '<rpid:busy/>'), contentType: PIDF });
    assert.equal(busy.status, 200, outcome(busy, pair.logs));
    const browser = await launchBrowser();
    try {
      const alice = await openClient(browser, pair.orgA.server);
      await signIn(alice.page, 'alice', 'alice-pw');
      await alice.page.keyboard.press('Control+k');
      const dialog = alice.page.getByRole('dialog', { name: 'Search the directory' });
      await dialog.getByLabel('Name or address').fill(`dave@${B}`);
      const result = dialog.locator(`li.result[data-address="dave@${B}"]`);
      await result.getByText('At another organisation').waitFor();
      await result.getByRole('button', { name: 'Add to contacts' }).click();
      await result.getByText('In contacts').waitFor();
      await alice.page.keyboard.press('Escape');
      await contactEntry(alice.page, `dave@${B}`).getByText('Busy').waitFor();
      // a domain alice may not reach: the server's reason, in the dialog
      await alice.page.keyboard.press('Control+k');
      await dialog.getByLabel('Name or address').fill('erin@org-c.test');
      await dialog.locator('li.result[data-address="erin@org-c.test"]').getByRole('button', { name: 'Add to contacts' }).click();
      await dialog.getByRole('alert').getByText(/org-c\.test/).waitFor();
      assert.deepEqual(alice.problems, []);
    } finally {
      await browser.close();
    }
  });
});

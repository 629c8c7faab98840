// Federation between two Parley organisations end to end (issue 15): org-a.test and org-b.test, each
// `parley serve` with its own certificate from a test CA on its own loopback address, finding the
// other through dnsmasq's _sipfederationtls._tcp SRV records (test/e2e/federation-env.ts). alice@org-a
// and dave@org-b (Parley's SDK over TCP to their own servers) chat both ways and see each other's
// presence; dave blocked by alice sees her Offline; a message from dave to carol, who is offline,
// becomes one plain note in her Inbox (read with ews-javascript-api), nothing in Conversation History.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import ews from 'ews-javascript-api';
import type { SipClient } from '../../src/client/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { notifications, type Arrivals } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { startJsSipUser } from '../harness/jssip.ts';
import { runCli } from '../harness/server.ts';
import { federatedPair, pidf, messageReceiver, outcome, type ParleyOrg } from './federation-env.ts';

const { EmailMessage, ExchangeService, ExchangeVersion, ItemView, PropertySet, BasePropertySet, BodyType, Uri, WebCredentials, WellKnownFolderName } = ews;

const A = 'org-a.test';
const B = 'org-b.test';
const PIDF = 'application/pidf+xml';
const pair = federatedPair(11, { a: ['alice', 'carol', 'judy'], b: ['dave'] });

const receiver = (clients: typeof pair.atA, user: string) => messageReceiver(clients, user, pair.logs);

function subscribe(c: SipClient, address: string) {
  return c.request('SUBSCRIBE', `sip:${address}`, { contact: true, headers: { Event: 'presence', Expires: '600', Accept: PIDF } });
}

const basicOf = (n: SipRequest) => /<basic>(\w+)<\/basic>/.exec(n.body.toString('utf8'))?.[1];
const activitiesOf = (n: SipRequest) => /<rpid:activities>(.*?)<\/rpid:activities>/s.exec(n.body.toString('utf8'))?.[1] ?? '';
const describe_ = (r: { status: number; headers: { get(name: string): string | undefined } }) => outcome(r, pair.logs);

/** The next NOTIFY whose body shows `basic`, skipping others (an empty first NOTIFY, say). */
async function nextWithBasic(inbox: Arrivals<SipRequest>, basic: string): Promise<SipRequest> {
  for (;;) {
    const n = await inbox.next(15_000);
    if (basicOf(n) === basic) return n;
  }
}

function mailbox(org: ParleyOrg, user: string): InstanceType<typeof ExchangeService> {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Credentials = new WebCredentials(`${user}@${org.domain}`, `${user}-pw`);
  service.Url = new Uri(`http://${org.server.http.host}:${org.server.http.port}/EWS/Exchange.asmx`);
  return service;
}

async function folderItems(org: ParleyOrg, user: string, folder: number) {
  const service = mailbox(org, user);
  const found = await service.FindItems(folder, new ItemView(50));
  const out = [];
  for (const item of found.Items) {
    const props = new PropertySet(BasePropertySet.FirstClassProperties);
    props.RequestedBodyType = BodyType.Text;
    const m = await EmailMessage.Bind(service, item.Id, props);
    out.push({ itemClass: m.ItemClass, subject: m.Subject, isRead: m.IsRead, from: m.From?.Address, body: m.Body.Text, internetMessageId: m.InternetMessageId });
  }
  return out;
}

describe('federation between two Parley organisations', () => {
  it('the test DNS serves both organisations\' SRV records', async () => {
    const r = pair.env.dns.resolver();
    const srv = await r.resolveSrv(`_sipfederationtls._tcp.${B}`);
    assert.equal(srv[0]?.name, 'sip.org-b.test');
    assert.equal(srv[0]?.port, pair.orgB.federation.port);
    assert.deepEqual(await r.resolve4('sip.org-a.test'), [pair.orgA.federation.host]);
  });

  it('judy@org-a on JsSIP (SIP over WebSocket) and dave@org-b chat both ways', async () => {
    const dave = await receiver(pair.atB, 'dave');
    const judy = await startJsSipUser({ wsUrl: pair.orgA.server.wsUrl, uri: `sip:judy@${A}`, password: 'judy-pw' });
    try {
      const sent = await judy.sendMessage(`sip:dave@${B}`, 'Hello dave, judy here, on JsSIP');
      assert.equal(sent.status, 200, `${JSON.stringify(sent)}\n${pair.logs()}`);
      const atDave = await dave.inbox.next();
      assert.equal(atDave.text, 'Hello dave, judy here, on JsSIP');
      assert.match(atDave.from, /^sip:judy@org-a\.test\b/);

      const back = await dave.client.sendMessage(`sip:judy@${A}`, 'Hi judy, dave from org-b');
      assert.equal(back.status, 200, describe_(back));
      const atJudy = await judy.nextMessage(15_000);
      assert.equal(atJudy.body, 'Hi judy, dave from org-b');
      assert.match(atJudy.from, /^sip:dave@org-b\.test$/);
    } finally {
      await judy.stop();
    }
  });

  it('alice@org-a and dave@org-b chat both ways', async () => {
    const dave = await receiver(pair.atB, 'dave');
    const alice = await receiver(pair.atA, 'alice');

    const toDave = await alice.client.sendMessage(`sip:dave@${B}`, 'Hello dave, this is alice at org-a');
    assert.equal(toDave.status, 200, describe_(toDave));
    const atDave = await dave.inbox.next();
    assert.equal(atDave.text, 'Hello dave, this is alice at org-a');
    assert.match(atDave.from, /^sip:alice@org-a\.test\b/);
    // org-b vouches for the From address the partner's certificate covers, at domain level
    assert.match(atDave.assertedIdentity?.uri ?? '', /^sip:alice@org-a\.test$/, `P-Asserted-Identity: ${atDave.request.headers.get('p-asserted-identity')}`);

    const toAlice = await dave.client.sendMessage(`sip:alice@${A}`, 'Hi alice, dave here, from org-b');
    assert.equal(toAlice.status, 200, describe_(toAlice));
    const atAlice = await alice.inbox.next();
    assert.equal(atAlice.text, 'Hi alice, dave here, from org-b');
    assert.match(atAlice.from, /^sip:dave@org-b\.test\b/);
    assert.match(atAlice.assertedIdentity?.uri ?? '', /^sip:dave@org-b\.test$/);

    // a second round on the pooled connections
    assert.equal((await alice.client.sendMessage(`sip:dave@${B}`, 'again')).status, 200);
    assert.equal((await dave.inbox.next()).text, 'again');
    assert.equal(dave.inbox.queued + alice.inbox.queued, 0, 'each message arrived once');
  });

  it('alice and dave see each other\'s presence across the link; dave blocked by alice sees her Offline', async () => {
    // both signed in (registered) devices
    const alice = await pair.atA.connect('alice', { register: true });
    const dave = await pair.atB.connect('dave', { register: true });
    const aliceWatches = await pair.atA.connect('alice');
    const daveWatches = await pair.atB.connect('dave');
    const aliceSees = notifications(aliceWatches);
    const daveSees = notifications(daveWatches);

    const sub = await subscribe(aliceWatches, `dave@${B}`);
    assert.ok(sub.status === 200 || sub.status === 202, describe_(sub));
    assert.equal(basicOf(await nextWithBasic(aliceSees, 'open')), 'open');
    const back = await subscribe(daveWatches, `alice@${A}`);
    assert.ok(back.status === 200 || back.status === 202, describe_(back));
    const aliceOnline = await nextWithBasic(daveSees, 'open');
    assert.match(aliceOnline.body.toString('utf8'), /entity="sip:alice@org-a\.test"/);

    // a change on one side reaches the watcher on the other, through both servers
    const busy = await dave.request('PUBLISH', `sip:dave@${B}`, { headers: { Event: 'presence', Expires: '600' }, body: pidf(`dave@${B}`, '<rpid:busy/>'), contentType: PIDF });
    assert.equal(busy.status, 200, describe_(busy));
    for (;;) {
      const n = await aliceSees.next(15_000);
      if (activitiesOf(n).includes('busy')) break;
    }
    const away = await alice.request('PUBLISH', `sip:alice@${A}`, { headers: { Event: 'presence', Expires: '600' }, body: pidf(`alice@${A}`, '<rpid:away/>'), contentType: PIDF });
    assert.equal(away.status, 200, describe_(away));
    for (;;) {
      const n = await daveSees.next(15_000);
      if (activitiesOf(n).includes('away')) break;
    }

    // alice blocks dave (as a user, over HTTP): he sees her Offline, though she is still signed in
    const put = await fetch(`http://${pair.orgA.server.http.host}:${pair.orgA.server.http.port}/presence/blocked/${encodeURIComponent(`dave@${B}`)}`, {
      method: 'PUT',
      headers: { authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` },
    });
    assert.equal(put.status, 201, await put.text());
    const hidden = await nextWithBasic(daveSees, 'closed');
    assert.doesNotMatch(hidden.body.toString('utf8'), /away|block/i);
    // a new subscription from dave shows her Offline too
    const again = await pair.atB.connect('dave');
    const againSees = notifications(again);
    const resub = await subscribe(again, `alice@${A}`);
    assert.ok(resub.status === 200 || resub.status === 202, describe_(resub));
    assert.equal(basicOf(await againSees.next(15_000)), 'closed');
    // and dave's view of alice stays Offline while she changes
    await alice.request('PUBLISH', `sip:alice@${A}`, { headers: { Event: 'presence', Expires: '600' }, body: pidf(`alice@${A}`, '<rpid:busy/>'), contentType: PIDF });
    await new Promise((r) => setTimeout(r, 500));
    while (daveSees.queued > 0) assert.equal(basicOf(await daveSees.next()), 'closed');
  });

  it('a subscription across the link is refreshed and ended in its dialog, through both servers (its Record-Route set)', async () => {
    const dave = await pair.atB.connect('dave', { register: true });
    const alice = await pair.atA.connect('alice');
    const seen = notifications(alice);
    const callId = `fed-${Math.random().toString(36).slice(2)}`;
    const fromTag = Math.random().toString(36).slice(2);
    const headers = { Event: 'presence', Accept: PIDF };
    const first = await alice.request('SUBSCRIBE', `sip:dave@${B}`, { contact: true, callId, fromTag, cseq: 1, headers: { ...headers, Expires: '600' } });
    assert.ok(first.status === 200 || first.status === 202, describe_(first));
    assert.equal(basicOf(await nextWithBasic(seen, 'open')), 'open');
    // RFC 3261 §12.1.2: the route set is the Record-Route of the answer, reversed; the remote target its Contact
    const routeSet = first.response.headers.getAll('record-route').flatMap((v) => v.split(/,(?=\s*<)/)).map((r) => r.trim()).reverse();
    assert.ok(routeSet.length >= 2, `org-a and org-b record-route the dialog: ${routeSet.join(' | ')}`);
    const remoteTarget = /<([^>]+)>/.exec(first.response.headers.get('contact') ?? '')?.[1] ?? '';
    assert.match(remoteTarget, /^sips?:/, `a Contact in the answer: ${first.response.headers.get('contact')}`);
    const to = `<sip:dave@${B}>;tag=${/;\s*tag=([^;\s]+)/.exec(first.response.headers.get('to') ?? '')?.[1] ?? ''}`;
    const inDialog = (cseq: number, expires: string) =>
      alice.request('SUBSCRIBE', remoteTarget, { contact: true, callId, fromTag, to, cseq, headers: { ...headers, Expires: expires, Route: routeSet.join(', ') } });

    // the first SUBSCRIBE took CSeq 1 and 2 (a digest challenge at org-a); later ones count on from there
    const refresh = await inDialog(10, '600');
    assert.ok(refresh.status === 200 || refresh.status === 202, describe_(refresh));
    const afterRefresh = await seen.next(15_000);
    assert.match(afterRefresh.headers.get('subscription-state') ?? '', /^active/, 'a refresh brings a NOTIFY with the current state');
    const end = await inDialog(11, '0');
    assert.ok(end.status === 200 || end.status === 202, describe_(end));
    for (;;) {
      const n = await seen.next(15_000);
      if (/^terminated/.test(n.headers.get('subscription-state') ?? '')) break;
    }
    // ended at org-b: dave's changes no longer reach alice
    const busy = await dave.request('PUBLISH', `sip:dave@${B}`, { headers: { Event: 'presence', Expires: '600' }, body: pidf(`dave@${B}`, '<rpid:on-the-phone/>'), contentType: PIDF });
    assert.equal(busy.status, 200, describe_(busy));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(seen.queued, 0, 'no NOTIFY after the subscription ended');
  });

  it('dave writes to carol, who is offline: 202, then one plain note in her Inbox, nothing in Conversation History', async () => {
    const dave = await pair.atB.connect('dave');
    const sent = await dave.sendMessage(`sip:carol@${A}`, 'Carol, the contract is ready <for review> & signature');
    assert.equal(sent.status, 202, describe_(sent));
    const entry = /sp-[a-z2-7]{16}/.exec(sent.headers.get('warning') ?? '')?.[0];
    assert.ok(entry, `the Warning names the spool entry: ${describe_(sent)}`);
    const inbox = await eventually('a note in carol\'s Inbox', async () => {
      const items = await folderItems(pair.orgA, 'carol', WellKnownFolderName.Inbox);
      return items.length > 0 ? items : undefined;
    }, 30_000);
    assert.equal(inbox.length, 1, JSON.stringify(inbox));
    const note = inbox[0]!;
    assert.equal(note.itemClass, 'IPM.Note', 'a plain note, never IPM.Note.Microsoft.Missed');
    assert.match(note.subject, /^Message from .*dave.* while you were offline$/i);
    assert.equal(note.isRead, false);
    assert.equal(note.from, `dave@${B}`);
    assert.match(note.body, /Carol, the contract is ready <for review> & signature/);
    assert.match(note.internetMessageId ?? '', new RegExp(entry));
    // exactly once: nothing more arrives, nothing in Conversation History
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await folderItems(pair.orgA, 'carol', WellKnownFolderName.Inbox)).length, 1);
    assert.deepEqual(await folderItems(pair.orgA, 'carol', WellKnownFolderName.ConversationHistory), []);
    const show = await runCli(['spooler', 'show', entry, '--json', ...pair.orgA.server.storageArgs]);
    assert.equal(show.code, 0, show.stderr);
    const detail = JSON.parse(show.stdout) as { state: string; kind: string };
    assert.equal(detail.kind, 'note', show.stdout);
    assert.equal(detail.state, 'delivered', show.stdout);
  });
});

// The SDK's mailbox reader against a running `parley serve`: missed conversations seeded through
// EWS CreateItem as the user (as a gateway delivering them would), then listed, read and marked
// read with MailboxReader and SipClient.missedConversations() over real HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientError, MailboxReader } from '../../src/client/index.ts';
import { escapeXmlText } from '../../src/xml/index.ts';
import { sdkClients } from '../harness/clients.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const S = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';
let server: RunningServer;
let ewsUrl: string;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({ domain: DOMAIN, users: [{ address: ALICE, password: 'alice-pw' }, { address: BOB, password: 'bob-pw' }] });
  ewsUrl = `http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`;
  await seed(ALICE, 'alice-pw', 'IPM.Note.Microsoft.Missed', 'Missed conversation with Bob', '<p>are you there?</p>', '2024-05-01T10:00:00Z');
  await seed(ALICE, 'alice-pw', 'IPM.Note.Microsoft.Missed', 'Missed conversation with Carol', '<p>lunch & <b>coffee</b>?</p>', '2024-05-02T10:00:00Z');
  await seed(ALICE, 'alice-pw', 'IPM.Note.Microsoft.Conversation', 'Saved conversation', '<p>not missed</p>', '2024-05-03T10:00:00Z');
  await seed(ALICE, 'alice-pw', 'IPM.Note.Microsoft.Missed', 'Missed conversation with Dave', '<p>ping</p>', '2024-04-30T10:00:00Z');
  await seed(BOB, 'bob-pw', 'IPM.Note.Microsoft.Missed', "Bob's own", '<p>private</p>', '2024-05-04T10:00:00Z');
});
after(async () => {
  await people.closeAll();
  await server?.stop();
});

/** EWS CreateItem in Conversation History, with the delivery time set (PR_MESSAGE_DELIVERY_TIME, 0x0E06). */
async function seed(user: string, password: string, itemClass: string, subject: string, html: string, receivedAt: string): Promise<void> {
  const body =
    `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="${S}" xmlns:m="${M}" xmlns:t="${T}">` +
    `<soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body>` +
    `<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="conversationhistory"/></m:SavedItemFolderId><m:Items><t:Message>` +
    `<t:ItemClass>${itemClass}</t:ItemClass><t:Subject>${escapeXmlText(subject)}</t:Subject><t:Body BodyType="HTML">${escapeXmlText(html)}</t:Body>` +
    `<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x0E06" PropertyType="SystemTime"/><t:Value>${receivedAt}</t:Value></t:ExtendedProperty>` +
    `<t:From><t:Mailbox><t:Name>Parley</t:Name><t:EmailAddress>${BOB === user ? ALICE : BOB}</t:EmailAddress></t:Mailbox></t:From>` +
    `</t:Message></m:Items></m:CreateItem></soap:Body></soap:Envelope>`;
  const response = await fetch(ewsUrl, {
    method: 'POST',
    headers: { 'content-type': 'text/xml; charset=utf-8', authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
    body,
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.match(text, /ResponseClass="Success"/);
}

describe('MailboxReader against parley serve', () => {
  it('lists the missed conversations newest first, pages, reads one and marks it read', async () => {
    const mailbox = new MailboxReader({ ewsUrl, username: ALICE, password: 'alice-pw' });
    const all = await mailbox.listMissedConversations();
    assert.deepEqual(all.map((i) => i.subject), ['Missed conversation with Carol', 'Missed conversation with Bob', 'Missed conversation with Dave']);
    assert.deepEqual(all.map((i) => i.receivedAt.toISOString()), ['2024-05-02T10:00:00.000Z', '2024-05-01T10:00:00.000Z', '2024-04-30T10:00:00.000Z']);
    assert.ok(all.every((i) => !i.isRead && i.itemId !== '' && i.changeKey !== ''));
    assert.deepEqual(all[0]?.from, { name: 'Parley', address: BOB });

    const page = await mailbox.listMissedConversations({ max: 1, offset: 1 });
    assert.deepEqual(page.map((i) => i.subject), ['Missed conversation with Bob']);

    const carol = await mailbox.getItem(all[0]!.itemId);
    assert.equal(carol.itemClass, 'IPM.Note.Microsoft.Missed');
    assert.equal(carol.subject, 'Missed conversation with Carol');
    assert.equal(carol.bodyHtml, '<p>lunch & <b>coffee</b>?</p>');
    assert.equal(carol.bodyText, 'lunch & coffee?');
    assert.equal(carol.isRead, false);

    const marked = await mailbox.markRead(carol.itemId, carol.changeKey);
    assert.equal(marked.itemId, carol.itemId);
    assert.notEqual(marked.changeKey, carol.changeKey);
    assert.deepEqual((await mailbox.listMissedConversations()).map((i) => i.isRead), [true, false, false]);
    await mailbox.markRead(marked.itemId, marked.changeKey, false);
    assert.equal((await mailbox.getItem(carol.itemId)).isRead, false);
  });

  it("keeps each user to their own mailbox and names EWS's ResponseCode", async () => {
    const bob = new MailboxReader({ ewsUrl, username: BOB, password: 'bob-pw' });
    assert.deepEqual((await bob.listMissedConversations()).map((i) => i.subject), ["Bob's own"]);
    const [aliceItem] = await new MailboxReader({ ewsUrl, username: ALICE, password: 'alice-pw' }).listMissedConversations({ max: 1 });
    await assert.rejects(bob.getItem(aliceItem!.itemId), (e: unknown) => e instanceof ClientError && e.code === 'EWS_ERROR' && e.responseCode === 'ErrorAccessDenied');
    await assert.rejects(bob.getItem('not-an-id'), (e: unknown) => e instanceof ClientError && e.code === 'EWS_ERROR' && e.responseCode === 'ErrorInvalidIdMalformed');
  });

  it('reports a wrong password as AUTH_FAILED with the HTTP status', async () => {
    const wrong = new MailboxReader({ ewsUrl, username: ALICE, password: 'nope' });
    await assert.rejects(wrong.listMissedConversations(), (e: unknown) => e instanceof ClientError && e.code === 'AUTH_FAILED' && e.status === 401);
  });

  it('SipClient.missedConversations() uses the ewsUrl option and the credentials of the user agent', async () => {
    const ua = await people.connect('alice', { ewsUrl });
    try {
      await ua.register({ expires: 300 });
      const missed = await ua.missedConversations({ max: 2 });
      assert.deepEqual(missed.map((i) => i.subject), ['Missed conversation with Carol', 'Missed conversation with Bob']);
      await ua.unregister();
    } finally {
      await ua.close();
    }
  });
});

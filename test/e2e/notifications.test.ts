// RFC 6665 event packages end to end against a real `parley serve`: message-summary (RFC 3842)
// over Missed Conversations written through EWS, in-band provisioning (issue 3) that follows
// `parley admin` run in another process, and 489 for a package Parley does not serve.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipClient } from '../../src/client/index.ts';
import { notifications, sdkClients } from '../harness/clients.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
let ewsUrl: string;
const people = sdkClients(() => server, DOMAIN, { register: true });

before(async () => {
  server = await startServer({ domain: DOMAIN, users: ['alice', 'bob', 'carol'].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })) });
  ewsUrl = `http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`;
});

after(async () => {
  await people.closeAll();
  await server?.stop();
});

function subscribe(c: SipClient, target: string, event: string, expires = 600) {
  return c.request('SUBSCRIBE', `sip:${target}`, { contact: true, headers: { Event: event, Expires: String(expires) } });
}

/** One EWS request as `user` (SOAP 1.1, HTTP Basic); the response text. */
async function ews(user: string, operation: string): Promise<string> {
  const envelope =
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">' +
    `<soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body>${operation}</soap:Body></soap:Envelope>`;
  const res = await fetch(ewsUrl, {
    method: 'POST',
    headers: { 'content-type': 'text/xml; charset=utf-8', authorization: `Basic ${Buffer.from(`${user}@${DOMAIN}:${user}-pw`).toString('base64')}` },
    body: envelope,
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(text, /ResponseClass="Success"/, text);
  return text;
}

/** A Missed Conversation in the user's Conversation History; its ItemId. */
async function missed(user: string, subject: string): Promise<string> {
  const xml = await ews(user,
    '<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="conversationhistory"/></m:SavedItemFolderId>' +
    `<m:Items><t:Message><t:ItemClass>IPM.Note.Microsoft.Missed</t:ItemClass><t:Subject>${subject}</t:Subject><t:Body BodyType="Text">hi</t:Body></t:Message></m:Items></m:CreateItem>`);
  const id = /<t:ItemId Id="([^"]+)"/.exec(xml)?.[1];
  assert.ok(id, xml);
  return id;
}

function markRead(user: string, id: string, read = true): Promise<string> {
  return ews(user,
    `<m:UpdateItem ConflictResolution="AlwaysOverwrite" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange><t:ItemId Id="${id}"/><t:Updates>` +
    `<t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>${read}</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>`);
}

describe('message-summary (RFC 3842) over Missed Conversations', () => {
  it('gives the counts at once, and again when EWS marks, adds or deletes a missed conversation', async () => {
    const ids = [await missed('bob', 'from alice'), await missed('bob', 'from carol'), await missed('bob', 'from dave')];
    await markRead('bob', ids[2]!);
    const bob = await people.connect('bob');
    const inbox = notifications(bob);
    const res = await subscribe(bob, `bob@${DOMAIN}`, 'message-summary');
    assert.equal(res.status, 200);
    const first = await inbox.next();
    assert.equal(first.headers.get('event'), 'message-summary');
    assert.equal(first.headers.get('content-type'), 'application/simple-message-summary');
    assert.match(first.headers.get('subscription-state') ?? '', /^active;expires=(600|599)$/);
    assert.equal(first.body.toString('utf8'), `Messages-Waiting: yes\r\nMessage-Account: sip:bob@${DOMAIN}\r\nText-Message: 2/1\r\n`);

    await markRead('bob', ids[0]!);
    assert.match((await inbox.next()).body.toString('utf8'), /Text-Message: 1\/2\r\n/);
    await markRead('bob', ids[1]!);
    const none = (await inbox.next()).body.toString('utf8');
    assert.equal(none, `Messages-Waiting: no\r\nMessage-Account: sip:bob@${DOMAIN}\r\nText-Message: 0/3\r\n`);
    await ews('bob', `<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="${ids[2]}"/></m:ItemIds></m:DeleteItem>`);
    assert.match((await inbox.next()).body.toString('utf8'), /Text-Message: 0\/2\r\n/);
    await missed('bob', 'from erin');
    assert.match((await inbox.next()).body.toString('utf8'), /^Messages-Waiting: yes\r\n.*Text-Message: 1\/2\r\n$/s);
  });

  it("refuses a subscription to someone else's account with 403 and a Warning", async () => {
    const alice = await people.connect('alice');
    const res = await subscribe(alice, `bob@${DOMAIN}`, 'message-summary');
    assert.equal(res.status, 403);
    assert.match(res.headers.get('warning') ?? '', /alice@parley\.test may not watch the messages of bob@parley\.test/);
  });
});

describe('vnd-parley-provisioning (in-band provisioning)', () => {
  it('sends the effective settings, and a new NOTIFY when an administrator changes them', async () => {
    const carol = await people.connect('carol');
    const inbox = notifications(carol);
    const res = await subscribe(carol, `carol@${DOMAIN}`, 'vnd-parley-provisioning');
    assert.equal(res.status, 200);
    const first = await inbox.next();
    assert.equal(first.headers.get('content-type'), 'application/vnd.parley.provisioning+json');
    assert.deepEqual(JSON.parse(first.body.toString('utf8')), {
      EnableOfflineIm: true, EnableIMAutoArchiving: true, DisableSavingIM: false, OfflineImPickupDelay: '00:02:00', OfflineImMaxAge: '1.00:00:00',
      ConversationIdleTimeout: '00:10:00', UnreadMissedTimeout: '00:05:00', ewsUrl, sources: { ImConfiguration: 'Global', ClientPolicy: 'Global' },
    });

    const off = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-EnableOfflineIM', '$False']);
    assert.equal(off.code, 0, off.stderr);
    const second = JSON.parse((await inbox.next(5000)).body.toString('utf8')) as Record<string, unknown>;
    assert.equal(second.EnableOfflineIm, false);
    assert.equal(second.EnableIMAutoArchiving, true);

    // A change that does not touch carol's settings sends nothing: the next NOTIFY is the next real change.
    const site = await runCli(['admin', ...server.storageArgs, 'New-CsSite', '-Identity', 'Paris']);
    assert.equal(site.code, 0, site.stderr);
    await new Promise((r) => setTimeout(r, 1500));
    const archive = await runCli(['admin', ...server.storageArgs, 'Set-CsClientPolicy', '-EnableIMAutoArchiving', '$False']);
    assert.equal(archive.code, 0, archive.stderr);
    const third = JSON.parse((await inbox.next(5000)).body.toString('utf8')) as Record<string, unknown>;
    assert.deepEqual([third.EnableOfflineIm, third.EnableIMAutoArchiving], [false, false]);
  });

  it("refuses someone else's settings with 403", async () => {
    const alice = await people.connect('alice');
    assert.equal((await subscribe(alice, `carol@${DOMAIN}`, 'vnd-parley-provisioning')).status, 403);
  });
});

describe('event packages Parley does not serve', () => {
  it('answers 489 Bad Event with Allow-Events listing the three packages', async () => {
    const alice = await people.connect('alice');
    const res = await subscribe(alice, `bob@${DOMAIN}`, 'dialog');
    assert.equal(res.status, 489);
    assert.equal(res.headers.getAll('allow-events').join(', '), 'presence, message-summary, vnd-parley-provisioning');
  });
});

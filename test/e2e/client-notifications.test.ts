// The SDK's subscriber side against a running `parley serve`: watchMessageSummary() and
// watchProvisioning() (RFC 6665, RFC 3842, Parley's vnd-parley-provisioning), the missed list read
// through the EWS URL that provisioning gave, and the subscription life cycle (423, 403, 489,
// unsubscribe) as the real notifier answers it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientError } from '../../src/client/index.ts';
import type { MessageSummary, ProvisioningSettings, SubscriptionNotify, SubscriptionTermination } from '../../src/client/index.ts';
import { arrivals, sdkClients } from '../harness/clients.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const S = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';
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

/** The values of one UA event, in order, awaited one by one (the server's last logs when one is late). */
function events<T>(listen: (push: (value: T) => void) => void) {
  return arrivals(listen, { what: 'event', timeoutMs: 5000, context: () => server.logs().slice(-3000) });
}

/** A Missed Conversation delivered into the user's Conversation History through EWS CreateItem. */
async function deliverMissed(user: string, subject: string): Promise<void> {
  const body =
    `<soap:Envelope xmlns:soap="${S}" xmlns:m="${M}" xmlns:t="${T}"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body>` +
    `<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="conversationhistory"/></m:SavedItemFolderId>` +
    `<m:Items><t:Message><t:ItemClass>IPM.Note.Microsoft.Missed</t:ItemClass><t:Subject>${subject}</t:Subject><t:Body BodyType="Text">are you there?</t:Body></t:Message></m:Items></m:CreateItem>` +
    `</soap:Body></soap:Envelope>`;
  const res = await fetch(ewsUrl, {
    method: 'POST',
    headers: { 'content-type': 'text/xml; charset=utf-8', authorization: `Basic ${Buffer.from(`${user}@${DOMAIN}:${user}-pw`).toString('base64')}` },
    body,
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(text, /ResponseClass="Success"/);
}

describe('SDK: missed conversations end to end', () => {
  it('provisioning gives the EWS URL, message-summary tells of a missed conversation, the SDK lists it and marks it read', async () => {
    const bob = await people.connect('bob');
    const settings = events<ProvisioningSettings>((push) => bob.on('provisioning', push));
    const summaries = events<MessageSummary>((push) => bob.on('message-summary', push));
    const errors: Error[] = [];
    bob.on('error', (e) => errors.push(e));

    await bob.watchProvisioning();
    const provisioned = await settings.next();
    assert.deepEqual(provisioned, {
      EnableOfflineIm: true, EnableIMAutoArchiving: true, DisableSavingIM: false, OfflineImPickupDelay: '00:02:00', OfflineImMaxAge: '1.00:00:00',
      ConversationIdleTimeout: '00:10:00', UnreadMissedTimeout: '00:05:00', ewsUrl, sources: { ImConfiguration: 'Global', ClientPolicy: 'Global' },
    });
    assert.equal(bob.provisioning?.ewsUrl, ewsUrl);

    await bob.watchMessageSummary();
    assert.deepEqual(await summaries.next(), { waiting: false, account: `sip:bob@${DOMAIN}`, textMessages: { new: 0, old: 0 }, classes: { 'text-message': { new: 0, old: 0, urgentNew: 0, urgentOld: 0 } } });

    await deliverMissed('bob', 'Missed conversation with Alice');
    const waiting = await summaries.next();
    assert.equal(waiting.waiting, true);
    assert.deepEqual(waiting.textMessages, { new: 1, old: 0 });

    const [missed, ...rest] = await bob.missedConversations();
    assert.equal(rest.length, 0);
    assert.equal(missed?.subject, 'Missed conversation with Alice');
    assert.equal(missed?.isRead, false);
    const item = await bob.mailbox().getItem(missed!.itemId);
    assert.equal(item.bodyText, 'are you there?');
    await bob.mailbox().markRead(item.itemId, item.changeKey);
    const read = await summaries.next();
    assert.equal(read.waiting, false);
    assert.deepEqual(read.textMessages, { new: 0, old: 1 });
    assert.deepEqual(errors, []);
  });

  it('follows an administrator changing the settings from another process', async () => {
    const carol = await people.connect('carol', { over: 'ws' });
    const settings = events<ProvisioningSettings>((push) => carol.on('provisioning', push));
    await carol.watchProvisioning();
    assert.equal((await settings.next()).EnableOfflineIm, true);
    const off = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-EnableOfflineIM', '$False']);
    assert.equal(off.code, 0, off.stderr);
    const changed = await settings.next(8000);
    assert.equal(changed.EnableOfflineIm, false);
    assert.equal(carol.provisioning?.EnableOfflineIm, false);
    const on = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-EnableOfflineIM', '$True']);
    assert.equal(on.code, 0, on.stderr);
    assert.equal((await settings.next(8000)).EnableOfflineIm, true);
    // the Conversation History timeouts reach the SDK the same way
    const timeouts = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-ConversationIdleTimeout', '00:01:30', '-UnreadMissedTimeout', '00:00:00']);
    assert.equal(timeouts.code, 0, timeouts.stderr);
    const shortened = await settings.next(8000);
    assert.deepEqual([shortened.ConversationIdleTimeout, shortened.UnreadMissedTimeout], ['00:01:30', '00:00:00']);
    const back = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-ConversationIdleTimeout', '00:10:00', '-UnreadMissedTimeout', '00:05:00']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal((await settings.next(8000)).UnreadMissedTimeout, '00:05:00');
  });
});

describe('SDK: the subscription life cycle against the real notifier', () => {
  it('raises a too-short Expires to Min-Expires (423), then unsubscribes with a final NOTIFY answered', async () => {
    const alice = await people.connect('alice');
    const sub = alice.subscribe('message-summary', { expires: 10, accept: 'application/simple-message-summary' });
    const notes = events<SubscriptionNotify>((push) => sub.on('notify', push));
    const ends = events<SubscriptionTermination>((push) => sub.on('terminated', push));
    const result = await sub.ready;
    assert.equal(result.status, 200);
    assert.equal(result.expires, 60);
    const first = await notes.next();
    assert.equal(first.subscriptionState.state, 'active');
    assert.ok((first.subscriptionState.expires ?? 0) <= 60);
    assert.equal(first.contentType, 'application/simple-message-summary');
    await sub.close();
    assert.deepEqual(await ends.next(), { reason: 'closed', retrying: false });
    assert.equal(sub.state, 'terminated');
    // the final NOTIFY was answered 200: the server logs no failed NOTIFY for it
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.doesNotMatch(server.logs(), /NOTIFY answered 481/);
  });

  it("is refused someone else's account (403) and an unknown package (489), as SUBSCRIBE_FAILED", async () => {
    const alice = await people.connect('alice');
    const other = alice.subscribe('message-summary', { target: `sip:bob@${DOMAIN}` });
    await assert.rejects(other.ready, (e: unknown) => e instanceof ClientError && e.code === 'SUBSCRIBE_FAILED' && e.status === 403);
    await assert.rejects(alice.watchMessageSummary({ target: `sip:carol@${DOMAIN}` }), (e: unknown) => e instanceof ClientError && e.status === 403);
    const unknown = alice.subscribe('dialog');
    await assert.rejects(unknown.ready, (e: unknown) => e instanceof ClientError && e.code === 'SUBSCRIBE_FAILED' && e.status === 489);
    assert.equal(unknown.state, 'terminated');
  });
});

// EWS interop with a client we did not write (ews-javascript-api, the JavaScript port of the EWS
// Managed API) against a running `parley serve`, with HTTP Basic auth. The library does not escape
// the strings it is given, so the test escapes them; the raw tests check that the server survives
// clients that do not.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import ews from 'ews-javascript-api';
import { escapeXmlText } from '../../src/xml/index.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const {
  AutodiscoverService, BasePropertySet, BodyType, ChangeType, EventType, SyncFolderItemsScope, UserSettingName, ConflictResolutionMode, DeleteMode, EmailMessage, ExchangeService, ExchangeVersion, Folder, FolderId, FolderSchema, FolderView,
  ItemSchema, ItemView, Mailbox, MessageBody, OffsetBasePoint, PropertySet, SearchFilter, ServiceError, SortDirection, Uri, WebCredentials, WellKnownFolderName,
} = ews;

const DOMAIN = 'parley.test';
const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
let server: RunningServer;
let ewsUrl: string;

before(async () => {
  server = await startServer({ domain: DOMAIN, users: [{ address: ALICE, password: 'alice-pw' }, { address: BOB, password: 'bob-pw' }] });
  ewsUrl = `http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`;
});
after(async () => {
  await server?.stop();
});

function serviceFor(user: string, password: string): InstanceType<typeof ExchangeService> {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Credentials = new WebCredentials(user, password);
  service.Url = new Uri(ewsUrl);
  return service;
}

/** The ResponseCode name of an ews-javascript-api rejection. */
async function ewsCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    const { ErrorCode: code, HttpStatusCode: http, status } = e as { ErrorCode?: number; HttpStatusCode?: number; status?: number };
    if (code !== undefined && code !== ServiceError.NoError) return String(ServiceError[code]);
    if (http !== undefined || status !== undefined) return `HTTP ${http ?? status}`;
    return `not an EWS error: ${String(e)} ${JSON.stringify(e)}`;
  }
  return 'no error';
}

async function missedItem(service: InstanceType<typeof ExchangeService>, subject: string, itemClass = 'IPM.Note.Microsoft.Missed') {
  const message = new EmailMessage(service);
  message.ItemClass = itemClass;
  message.Subject = escapeXmlText(subject);
  message.Body = new MessageBody(BodyType.HTML, escapeXmlText(`<p>${subject}</p>`));
  message.ToRecipients.Add(ALICE);
  await message.Save(new FolderId(WellKnownFolderName.ConversationHistory));
  return message;
}

describe('EWS with ews-javascript-api', () => {
  it('autodiscovers the EWS URL (SOAP GetUserSettings)', async () => {
    const autodiscover = new AutodiscoverService(new Uri(ewsUrl.replace('/EWS/Exchange.asmx', '/autodiscover/autodiscover.svc')), ExchangeVersion.Exchange2013);
    autodiscover.Credentials = new WebCredentials(ALICE, 'alice-pw');
    const response = await autodiscover.GetUserSettings(ALICE, [UserSettingName.InternalEwsUrl, UserSettingName.ExternalEwsUrl]);
    assert.equal(response.Settings.get(UserSettingName.ExternalEwsUrl), ewsUrl);
    assert.equal(response.Settings.get(UserSettingName.InternalEwsUrl), ewsUrl);
  });

  it('finds Conversation History by distinguished id and by display name', async () => {
    const alice = serviceFor(ALICE, 'alice-pw');
    const folder = await Folder.Bind(alice, WellKnownFolderName.ConversationHistory);
    assert.equal(folder.DisplayName, 'Conversation History');
    const found = await alice.FindFolders(WellKnownFolderName.MsgFolderRoot, new SearchFilter.IsEqualTo(FolderSchema.DisplayName, 'Conversation History'), new FolderView(10));
    assert.equal(found.TotalCount, 1);
    assert.equal(found.Folders[0]?.Id.UniqueId, folder.Id.UniqueId);
  });

  it('creates Missed Conversations, pages through them with an ItemClass restriction, reads, marks read and deletes', async () => {
    const alice = serviceFor(ALICE, 'alice-pw');
    const subjects = ['one <b> & "two"', 'second', 'third'];
    for (const s of subjects) await missedItem(alice, s);
    await missedItem(alice, 'saved conversation', 'IPM.Note.Microsoft.Conversation');

    const view = new ItemView(2, 0, OffsetBasePoint.Beginning);
    view.OrderBy.Add(ItemSchema.DateTimeReceived, SortDirection.Ascending);
    const missed = new SearchFilter.IsEqualTo(ItemSchema.ItemClass, 'IPM.Note.Microsoft.Missed');
    const page1 = await alice.FindItems(WellKnownFolderName.ConversationHistory, missed, view);
    assert.equal(page1.TotalCount, 3);
    assert.equal(page1.MoreAvailable, true);
    assert.equal(page1.Items.length, 2);
    view.Offset = page1.NextPageOffset ?? 2;
    const page2 = await alice.FindItems(WellKnownFolderName.ConversationHistory, missed, view);
    assert.equal(page2.Items.length, 1);
    assert.equal(page2.MoreAvailable, false);
    assert.deepEqual([...page1.Items, ...page2.Items].map((i) => i.Subject), subjects);

    const first = page1.Items[0]!;
    const message = await EmailMessage.Bind(alice, first.Id, new PropertySet(BasePropertySet.FirstClassProperties));
    assert.equal(message.ItemClass, 'IPM.Note.Microsoft.Missed');
    assert.equal(message.Subject, subjects[0]);
    assert.equal(message.Body.Text, escapeXmlText(`<p>${subjects[0]}</p>`).replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
    assert.equal(message.IsRead, false);

    message.IsRead = true;
    await message.Update(ConflictResolutionMode.AlwaysOverwrite);
    const unread = await alice.FindItems(WellKnownFolderName.ConversationHistory, new SearchFilter.IsEqualTo(ItemSchema.ItemClass, 'IPM.Note.Microsoft.Missed'), new ItemView(10));
    assert.equal(unread.Items.filter((i) => (i as InstanceType<typeof EmailMessage>).IsRead).length, 1);

    await message.Delete(DeleteMode.HardDelete);
    assert.equal(await ewsCode(EmailMessage.Bind(alice, first.Id)), 'ErrorItemNotFound');
  });

  it('sends with SendAndSaveCopy between two local users', async () => {
    const alice = serviceFor(ALICE, 'alice-pw');
    const bob = serviceFor(BOB, 'bob-pw');
    const message = new EmailMessage(alice);
    message.Subject = escapeXmlText('lunch? <today> & tomorrow');
    message.Body = new MessageBody(BodyType.Text, escapeXmlText('at 12 & 1'));
    message.ToRecipients.Add(BOB);
    await message.SendAndSaveCopy();
    const inbox = await bob.FindItems(WellKnownFolderName.Inbox, new ItemView(10));
    assert.deepEqual(inbox.Items.map((i) => i.Subject), ['lunch? <today> & tomorrow']);
    const received = await EmailMessage.Bind(bob, inbox.Items[0]!.Id);
    assert.equal(received.From.Address, ALICE);
    assert.equal(received.Body.Text, 'at 12 & 1');
    const sent = await alice.FindItems(WellKnownFolderName.SentItems, new ItemView(10));
    assert.equal(sent.TotalCount, 1);
    const drafts = await alice.FindItems(WellKnownFolderName.Drafts, new ItemView(10));
    assert.equal(drafts.TotalCount, 0, 'nothing left in Drafts');
  });

  it('synchronises Conversation History in pages (SyncFolderItems)', async () => {
    const alice = serviceFor(ALICE, 'alice-pw');
    const folder = new FolderId(WellKnownFolderName.ConversationHistory);
    const total = (await alice.FindItems(folder, new ItemView(100))).TotalCount;
    assert.ok(total > 2);
    let state = null as unknown as string;
    let created = 0;
    for (let page = 0; page < 20; page++) {
      const changes = await alice.SyncFolderItems(folder, PropertySet.IdOnly, null as never, 2, SyncFolderItemsScope.NormalItems, state);
      created += changes.GetEnumerator().filter((c) => c.ChangeType === ChangeType.Create).length;
      state = changes.SyncState;
      if (!changes.MoreChangesAvailable) break;
    }
    assert.equal(created, total);
    await missedItem(alice, 'after the sync');
    const next = await alice.SyncFolderItems(folder, PropertySet.IdOnly, null as never, 10, SyncFolderItemsScope.NormalItems, state);
    assert.deepEqual(next.GetEnumerator().map((c) => ChangeType[c.ChangeType]), ['Create']);
  });

  it('reports new mail to a pull subscription', async () => {
    const bob = serviceFor(BOB, 'bob-pw');
    const subscription = await bob.SubscribeToPullNotifications([new FolderId(WellKnownFolderName.Inbox)], 5, null as unknown as string, EventType.NewMail, EventType.Created);
    const quiet = await subscription.GetEvents();
    assert.equal(quiet.ItemEvents.length, 0);
    const message = new EmailMessage(serviceFor(ALICE, 'alice-pw'));
    message.Subject = 'ping';
    message.ToRecipients.Add(BOB);
    await message.Send();
    const events = await subscription.GetEvents();
    assert.deepEqual(events.ItemEvents.map((e) => EventType[e.EventType]), ['NewMail', 'Created']);
    assert.equal((await EmailMessage.Bind(bob, events.ItemEvents[0]!.ItemId)).Subject, 'ping');
    assert.equal((await subscription.GetEvents()).ItemEvents.length, 0, 'the watermark moved on');
    await subscription.Unsubscribe();
  });

  it('keeps each user to their own mailbox', async () => {
    const alice = serviceFor(ALICE, 'alice-pw');
    const bob = serviceFor(BOB, 'bob-pw');
    const secret = await missedItem(alice, 'for alice only');
    assert.equal(await ewsCode(EmailMessage.Bind(bob, secret.Id)), 'ErrorAccessDenied');
    const aliceInbox = new FolderId(WellKnownFolderName.Inbox, new Mailbox(ALICE));
    assert.equal(await ewsCode(bob.FindItems(aliceInbox, new ItemView(10))), 'ErrorAccessDenied');
    const wrong = serviceFor(ALICE, 'bob-pw');
    assert.equal(await ewsCode(Folder.Bind(wrong, WellKnownFolderName.Inbox)), 'HTTP 401');
  });
});

describe('EWS refusals on the wire', () => {
  const basic = `Basic ${Buffer.from(`${ALICE}:alice-pw`).toString('base64')}`;
  const post = (body: string | Buffer, auth: string | null = basic) =>
    fetch(ewsUrl, { method: 'POST', headers: { 'content-type': 'text/xml; charset=utf-8', ...(auth ? { authorization: auth } : {}) }, body });
  const envelope = (op: string) =>
    `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header><t:RequestServerVersion Version="Exchange2013"/></s:Header><s:Body>${op}</s:Body></s:Envelope>`;
  const getInbox = envelope('<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>');

  it('answers autodiscover (POX) with the EWS URL', async () => {
    const res = await fetch(ewsUrl.replace('/EWS/Exchange.asmx', '/autodiscover/autodiscover.xml'), {
      method: 'POST',
      headers: { 'content-type': 'text/xml', authorization: basic },
      body: `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>${ALICE}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`,
    });
    assert.equal(res.status, 200);
    assert.ok((await res.text()).includes(`<EwsUrl>${ewsUrl}</EwsUrl>`));
  });

  it('asks for Basic credentials', async () => {
    const res = await post(getInbox, null);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="parley\.test"/);
  });

  it('answers malformed XML, a DTD with entities and an oversized request precisely, and keeps serving', async () => {
    const unescaped = await post(envelope('<m:GetFolder><t:Subject>Fish & Chips</t:Subject></m:GetFolder>'));
    assert.equal(unescaped.status, 500);
    assert.match(await unescaped.text(), /ErrorSchemaValidation<\/e:ResponseCode>.*XML_MALFORMED/s);

    const laughs = `<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>${getInbox.replace('<?xml version="1.0"?>', '')}`;
    const dtd = await post(laughs);
    assert.equal(dtd.status, 500);
    assert.match(await dtd.text(), /XML_DTD_FORBIDDEN/);

    const huge = await post(envelope(`<m:GetFolder><t:X>${'x'.repeat(2 * 1024 * 1024)}</t:X></m:GetFolder>`)).catch((e: unknown) => e);
    assert.ok(huge instanceof Response, `an answer, not ${String(huge)}`);
    assert.equal(huge.status, 413);
    assert.match(await huge.text(), /exceeds the limit/);

    const notSoap = await post('<Envelope/>');
    assert.equal(notSoap.status, 500);
    assert.match(await notSoap.text(), /<faultcode[^>]*>a:ErrorSchemaValidation<\/faultcode>/);

    const ok = await post(getInbox);
    assert.equal(ok.status, 200);
    const text = await ok.text();
    assert.match(text, /<h:ServerVersionInfo [^>]*MajorVersion="15"/);
    assert.match(text, /<t:DisplayName>Inbox<\/t:DisplayName>/);
    assert.equal(server.exitStatus(), null);
  });
});

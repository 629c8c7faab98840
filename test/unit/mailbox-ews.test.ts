// The EWS operations in-process: envelope in, envelope out, no sockets.
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { MAILBOX_MIGRATIONS, compactChangeLogBatch, ensureMailbox, grantImpersonation, findItems, getDistinguishedFolder } from '../../src/mailbox/index.ts';
import { answerEws } from '../../src/mailbox/ews/service.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import type { EngineUnderTest } from '../harness/engines.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';
import type { XmlElement } from '../../src/xml/index.ts';
import { childElement, childElements, childText, escapeXmlAttr, parseXml } from '../../src/xml/index.ts';

const S = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';
const E = 'http://schemas.microsoft.com/exchange/services/2006/errors';

after(closeTestPostgres);
const opened: SqlDatabase[] = [];
afterEach(async () => {
  for (const sql of opened.splice(0)) await sql.close();
});

async function setup(engine: EngineUnderTest) {
  const sql = await engine.open();
  opened.push(sql);
  await migrate(sql, [MAILBOX_MIGRATIONS]);
  let t = 1_700_000_000_000;
  const opts = { sql, domain: 'parley.test', userExists: async (a: string) => ['alice@parley.test', 'bob@parley.test'].includes(a), now: () => (t += 1000) };
  const call = async (user: string, op: string, header = '<t:RequestServerVersion Version="Exchange2013"/>') => {
    const xml = `<soap:Envelope xmlns:soap="${S}" xmlns:m="${M}" xmlns:t="${T}"><soap:Header>${header}</soap:Header><soap:Body>${op}</soap:Body></soap:Envelope>`;
    const answer = await answerEws(opts, user, parseXml(xml));
    const root = parseXml(answer.xml);
    const body = childElement(root, S, 'Body')!;
    return { status: answer.status, root, response: body.children[0]!, messages: body.children[0]?.children[0]?.children ?? [] };
  };
  return { sql, call };
}

const codeOf = (message: XmlElement | undefined) => (message === undefined ? 'missing' : childText(message, M, 'ResponseCode'));
const faultCode = (r: { response: XmlElement }) => childText(childElement(r.response, '', 'detail')!, E, 'ResponseCode');
const folderIds = (...ids: string[]) => ids.map((id) => (/^[a-z]+$/.test(id) ? `<t:DistinguishedFolderId Id="${id}"/>` : `<t:FolderId Id="${escapeXmlAttr(id)}"/>`)).join('');
const save = (folder: string, cls: string, subject: string, extra = '') =>
  `<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>${folderIds(folder)}</m:SavedItemFolderId><m:Items><t:Message><t:ItemClass>${cls}</t:ItemClass><t:Subject>${subject}</t:Subject><t:Body BodyType="Text">hi</t:Body>${extra}</t:Message></m:Items></m:CreateItem>`;
const findItem = (folder: string, view: string, extra = '') =>
  `<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape>${view}${extra}<m:ParentFolderIds>${folderIds(folder)}</m:ParentFolderIds></m:FindItem>`;
const idOf = (message: XmlElement) => childElement(childElements(childElement(message, M, 'Items')!, T, 'Message')[0]!, T, 'ItemId')!.attrs;

for (const engine of ENGINES) {
describe(`EWS operations in-process on ${engine.name}`, () => {
  it('GetFolder answers each id on its own, with ServerVersionInfo', async () => {
    const { call } = await setup(engine);
    const r = await call('alice@parley.test', `<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:FolderIds>${folderIds('conversationhistory', 'tasks', 'AAAAAAAAAAAAAAAAAAAAAA', 'bad id')}<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>bob@parley.test</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:FolderIds></m:GetFolder>`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.messages.map((m) => [m.attrs.get('ResponseClass'), codeOf(m)]), [
      ['Success', 'NoError'],
      ['Error', 'ErrorFolderNotFound'],
      ['Error', 'ErrorFolderNotFound'],
      ['Error', 'ErrorInvalidIdMalformed'],
      ['Error', 'ErrorAccessDenied'],
    ]);
    const folder = childElement(childElement(r.messages[0]!, M, 'Folders')!, T, 'Folder')!;
    assert.deepEqual(folder.children.map((c) => c.name), ['FolderId', 'ParentFolderId', 'FolderClass', 'DisplayName', 'TotalCount', 'ChildFolderCount', 'UnreadCount']);
    assert.equal(childText(folder, T, 'DisplayName'), 'Conversation History');
    const header = childElement(r.root, S, 'Header')!;
    assert.equal(childElement(header, T, 'ServerVersionInfo')?.attrs.get('Version'), 'Exchange2013');
  });

  it('FindFolder: deep, by display name, paged', async () => {
    const { call } = await setup(engine);
    const byName = await call('alice@parley.test', `<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:IndexedPageFolderView MaxEntriesReturned="10" Offset="0" BasePoint="Beginning"/><m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="folder:DisplayName"/><t:FieldURIOrConstant><t:Constant Value="conversation history"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:ParentFolderIds>${folderIds('msgfolderroot')}</m:ParentFolderIds></m:FindFolder>`);
    const root = childElement(byName.messages[0]!, M, 'RootFolder')!;
    assert.equal(root.attrs.get('TotalItemsInView'), '1');
    assert.equal(root.attrs.get('IncludesLastItemInRange'), 'true');
    const paged = await call('alice@parley.test', `<m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:IndexedPageFolderView MaxEntriesReturned="2" Offset="2" BasePoint="Beginning"/><m:ParentFolderIds>${folderIds('msgfolderroot')}</m:ParentFolderIds></m:FindFolder>`);
    const page = childElement(paged.messages[0]!, M, 'RootFolder')!;
    assert.deepEqual([page.attrs.get('IndexedPagingOffset'), page.attrs.get('TotalItemsInView'), page.attrs.get('IncludesLastItemInRange')], ['4', '9', 'false']);
    assert.equal(childElement(page, T, 'Folders')!.children.length, 2);
  });

  it('CreateItem, FindItem with restriction, sort and paging, GetItem shapes, UpdateItem, DeleteItem', async () => {
    const { call } = await setup(engine);
    const alice = 'alice@parley.test';
    for (let i = 0; i < 5; i++) await call(alice, save('conversationhistory', i < 3 ? 'IPM.Note.Microsoft.Missed' : 'IPM.Note.Microsoft.Conversation', `s${i}`, `<t:InternetMessageId>&lt;m${i}@x&gt;</t:InternetMessageId>`));
    const restriction = '<m:Restriction><t:And><t:IsEqualTo><t:FieldURI FieldURI="item:ItemClass"/><t:FieldURIOrConstant><t:Constant Value="IPM.Note.Microsoft.Missed"/></t:FieldURIOrConstant></t:IsEqualTo><t:IsEqualTo><t:FieldURI FieldURI="message:IsRead"/><t:FieldURIOrConstant><t:Constant Value="false"/></t:FieldURIOrConstant></t:IsEqualTo></t:And></m:Restriction><m:SortOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="item:DateTimeReceived"/></t:FieldOrder></m:SortOrder>';
    const page1 = await call(alice, findItem('conversationhistory', '<m:IndexedPageItemView MaxEntriesReturned="2" Offset="0" BasePoint="Beginning"/>', restriction));
    const root = childElement(page1.messages[0]!, M, 'RootFolder')!;
    assert.deepEqual([root.attrs.get('IndexedPagingOffset'), root.attrs.get('TotalItemsInView'), root.attrs.get('IncludesLastItemInRange')], ['2', '3', 'false']);
    const items = childElement(root, T, 'Items')!.children;
    assert.deepEqual(items.map((i) => childText(i, T, 'Subject')), ['s0', 's1']);
    assert.equal(childElement(items[0]!, T, 'Body'), undefined, 'FindItem never returns the body');
    const byId = await call(alice, findItem('conversationhistory', '', '<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="message:InternetMessageId"/><t:FieldURIOrConstant><t:Constant Value="&lt;m4@x&gt;"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>'));
    const found = childElement(childElement(byId.messages[0]!, M, 'RootFolder')!, T, 'Items')!.children;
    assert.deepEqual(found.map((i) => childText(i, T, 'Subject')), ['s4']);
    const itemId = childElement(found[0]!, T, 'ItemId')!.attrs;

    const idOnly = await call(alice, `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/><t:FieldURI FieldURI="message:IsRead"/></t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="${itemId.get('Id')}"/><t:ItemId Id="zzz"/></m:ItemIds></m:GetItem>`);
    const message = childElement(childElement(idOnly.messages[0]!, M, 'Items')!, T, 'Message')!;
    assert.deepEqual(message.children.map((c) => c.name), ['ItemId', 'Subject', 'IsRead']);
    assert.equal(codeOf(idOnly.messages[1]), 'ErrorInvalidIdMalformed');

    const update = async (key: string, resolution: string) =>
      call(alice, `<m:UpdateItem ConflictResolution="${resolution}" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange><t:ItemId Id="${itemId.get('Id')}" ChangeKey="${key}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="item:Subject"/><t:Message><t:Subject>renamed</t:Subject></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>`);
    const updated = await update(itemId.get('ChangeKey')!, 'NeverOverwrite');
    assert.equal(codeOf(updated.messages[0]), 'NoError');
    assert.notEqual(idOf(updated.messages[0]!).get('ChangeKey'), itemId.get('ChangeKey'));
    assert.equal(codeOf((await update(itemId.get('ChangeKey')!, 'NeverOverwrite')).messages[0]), 'ErrorIrresolvableConflict');
    const bad = await call(alice, `<m:UpdateItem ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange><t:ItemId Id="${itemId.get('Id')}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="item:ItemClass"/><t:Message><t:ItemClass>IPM.Note</t:ItemClass></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>`);
    assert.equal(codeOf(bad.messages[0]), 'ErrorInvalidPropertySet');

    assert.equal(codeOf((await call('bob@parley.test', `<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="${itemId.get('Id')}"/></m:ItemIds></m:DeleteItem>`)).messages[0]), 'ErrorAccessDenied');
    const del = await call(alice, `<m:DeleteItem DeleteType="MoveToDeletedItems"><m:ItemIds><t:ItemId Id="${itemId.get('Id')}"/><t:ItemId Id="AAAAAAAAAAAAAAAAAAAAAA"/></m:ItemIds></m:DeleteItem>`);
    assert.deepEqual(del.messages.map(codeOf), ['NoError', 'ErrorItemNotFound']);
    const deleted = await call(alice, findItem('deleteditems', ''));
    assert.equal(childElement(deleted.messages[0]!, M, 'RootFolder')!.attrs.get('TotalItemsInView'), '1');
  });

  it('SendAndSaveCopy delivers a plain note to local recipients and keeps a copy in Sent Items', async () => {
    const { sql, call } = await setup(engine);
    const r = await call('alice@parley.test', `<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:Message><t:ItemClass>IPM.Note.Microsoft.Missed</t:ItemClass><t:Subject>hello bob</t:Subject><t:Body BodyType="Text">hi</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>bob@parley.test</t:EmailAddress></t:Mailbox></t:ToRecipients><t:From><t:Mailbox><t:EmailAddress>ceo@parley.test</t:EmailAddress></t:Mailbox></t:From></t:Message></m:Items></m:CreateItem>`);
    assert.equal(codeOf(r.messages[0]), 'NoError');
    const bob = await ensureMailbox(sql, 'bob@parley.test');
    const inbox = await findItems(sql, bob.id, (await getDistinguishedFolder(sql, bob.id, 'inbox')).id);
    assert.equal(inbox.total, 1);
    assert.equal(inbox.items[0]?.itemClass, 'IPM.Note', 'no forged IM history in another mailbox');
    assert.equal(inbox.items[0]?.from?.address, 'alice@parley.test', 'From is the sender');
    const alice = await ensureMailbox(sql, 'alice@parley.test');
    assert.equal((await findItems(sql, alice.id, (await getDistinguishedFolder(sql, alice.id, 'sentitems')).id)).total, 1);
    assert.equal((await findItems(sql, alice.id, (await getDistinguishedFolder(sql, alice.id, 'drafts')).id)).total, 0);
    const foreign = await call('alice@parley.test', `<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:Message><t:Subject>x</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>eve@elsewhere.example</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>`);
    assert.equal(codeOf(foreign.messages[0]), 'ErrorInvalidRequest');
  });

  it('CreateFolder, MoveItem, DeleteFolder', async () => {
    const { call } = await setup(engine);
    const alice = 'alice@parley.test';
    const created = await call(alice, `<m:CreateFolder><m:ParentFolderId>${folderIds('inbox')}</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>Projects</t:DisplayName></t:Folder><t:Folder><t:DisplayName>projects</t:DisplayName></t:Folder><t:CalendarFolder><t:DisplayName>Cal</t:DisplayName></t:CalendarFolder></m:Folders></m:CreateFolder>`);
    assert.deepEqual(created.messages.map(codeOf), ['NoError', 'ErrorFolderExists', 'ErrorInvalidRequest']);
    const folderId = childElement(childElement(childElement(created.messages[0]!, M, 'Folders')!, T, 'Folder')!, T, 'FolderId')!.attrs.get('Id')!;
    const item = idOf((await call(alice, save('inbox', 'IPM.Note', 'to move'))).messages[0]!).get('Id')!;
    const moved = await call(alice, `<m:MoveItem><m:ToFolderId>${folderIds(folderId)}</m:ToFolderId><m:ItemIds><t:ItemId Id="${item}"/></m:ItemIds></m:MoveItem>`);
    assert.equal(codeOf(moved.messages[0]), 'NoError');
    const inProjects = await call(alice, findItem(folderId, ''));
    assert.equal(childElement(inProjects.messages[0]!, M, 'RootFolder')!.attrs.get('TotalItemsInView'), '1');
    const del = async (id: string) => (await call(alice, `<m:DeleteFolder DeleteType="HardDelete"><m:FolderIds>${folderIds(id)}</m:FolderIds></m:DeleteFolder>`)).messages[0];
    assert.equal(codeOf(await del('inbox')), 'ErrorDeleteDistinguishedFolder');
    assert.equal(codeOf(await del(folderId)), 'NoError');
    assert.equal(codeOf((await call(alice, `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id="${item}"/></m:ItemIds></m:GetItem>`)).messages[0]), 'ErrorItemNotFound');
  });

  it('SyncFolderItems reports net changes in windows, with a folder-bound SyncState', async () => {
    const { call } = await setup(engine);
    const alice = 'alice@parley.test';
    const sync = async (state: string, max = 2, folder = 'inbox') =>
      (await call(alice, `<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId>${folderIds(folder)}</m:SyncFolderId>${state ? `<m:SyncState>${state}</m:SyncState>` : ''}<m:MaxChangesReturned>${max}</m:MaxChangesReturned></m:SyncFolderItems>`)).messages[0]!;
    const changesOf = (m: XmlElement) => childElement(m, M, 'Changes')!.children.map((c) => c.name);
    const ids: string[] = [];
    for (const i of [0, 1, 2]) ids.push(idOf((await call(alice, save('inbox', 'IPM.Note', `n${i}`))).messages[0]!).get('Id')!);
    const first = await sync('');
    assert.deepEqual(changesOf(first), ['Create', 'Create']);
    assert.equal(childText(first, M, 'IncludesLastItemInRange'), 'false');
    const second = await sync(childText(first, M, 'SyncState')!);
    assert.deepEqual(changesOf(second), ['Create']);
    assert.equal(childText(second, M, 'IncludesLastItemInRange'), 'true');
    const state = childText(second, M, 'SyncState')!;

    const set = (id: string, field: string, value: string) =>
      call(alice, `<m:UpdateItem ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange><t:ItemId Id="${id}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="${field}"/><t:Message>${value}</t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>`);
    await set(ids[0]!, 'message:IsRead', '<t:IsRead>true</t:IsRead>');
    await set(ids[1]!, 'item:Subject', '<t:Subject>renamed</t:Subject>');
    const del = async (id: string) => call(alice, `<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="${id}"/></m:ItemIds></m:DeleteItem>`);
    await del(ids[2]!);
    await del(idOf((await call(alice, save('inbox', 'IPM.Note', 'short-lived'))).messages[0]!).get('Id')!);
    const third = await sync(state, 10);
    assert.deepEqual(changesOf(third), ['ReadFlagChange', 'Update', 'Delete']);
    assert.equal(childText(third, M, 'IncludesLastItemInRange'), 'true');
    assert.deepEqual(changesOf(await sync(childText(third, M, 'SyncState')!, 10)), []);

    assert.equal(codeOf(await sync('garbage')), 'ErrorInvalidSyncStateData');
    assert.equal(codeOf(await sync(state, 2, 'drafts')), 'ErrorInvalidSyncStateData', 'a state is bound to its folder');
  });

  it('after the change log is compacted (retention), an older SyncState or watermark is refused and a full synchronisation still finds every item', async () => {
    const { sql, call } = await setup(engine);
    const alice = 'alice@parley.test';
    const sync = async (state: string) =>
      (await call(alice, `<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId>${folderIds('inbox')}</m:SyncFolderId>${state ? `<m:SyncState>${state}</m:SyncState>` : ''}<m:MaxChangesReturned>100</m:MaxChangesReturned></m:SyncFolderItems>`)).messages[0]!;
    const created = (m: XmlElement) => childElement(m, M, 'Changes')!.children.map((c) => `${c.name} ${childElement(childElement(c, T, 'Message')!, T, 'ItemId')!.attrs.get('Id')}`).sort();
    const subscribed = (await call(alice, `<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds>${folderIds('inbox')}</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:Timeout>1</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>`)).messages[0]!;
    const watermark = childText(subscribed, M, 'Watermark')!;
    const made: string[] = [];
    for (const i of [0, 1, 2]) made.push(idOf((await call(alice, save('inbox', 'IPM.Note', `n${i}`))).messages[0]!).get('Id')!);
    const [kept, read, gone] = made;
    const early = childText(await sync(''), M, 'SyncState')!;
    await call(alice, `<m:UpdateItem ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange><t:ItemId Id="${read}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>`);
    await call(alice, `<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="${gone}"/></m:ItemIds></m:DeleteItem>`);
    // everything is old and past maxAge: the subscription (which read nothing) ends with it
    while ((await compactChangeLogBatch(sql, { keepAfter: Number.MAX_SAFE_INTEGER, forceBefore: Number.MAX_SAFE_INTEGER, now: 0 }, 2)).more);
    assert.equal(codeOf(await sync(early)), 'ErrorInvalidSyncStateData');
    assert.deepEqual(created(await sync('')), [`Create ${kept}`, `Create ${read}`].sort());
    const poll = (await call(alice, `<m:GetEvents><m:SubscriptionId>${childText(subscribed, M, 'SubscriptionId')}</m:SubscriptionId><m:Watermark>${watermark}</m:Watermark></m:GetEvents>`)).messages[0]!;
    assert.equal(codeOf(poll), 'ErrorSubscriptionNotFound');
  });

  it('Subscribe / GetEvents / Unsubscribe: folder filter, owner only', async () => {
    const { call } = await setup(engine);
    const alice = 'alice@parley.test';
    const subscribed = (await call(alice, `<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds>${folderIds('conversationhistory')}</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>ModifiedEvent</t:EventType></t:EventTypes><t:Timeout>1</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>`)).messages[0]!;
    const id = childText(subscribed, M, 'SubscriptionId')!;
    const watermark = childText(subscribed, M, 'Watermark')!;
    await call(alice, save('inbox', 'IPM.Note', 'elsewhere'));
    await call(alice, save('conversationhistory', 'IPM.Note.Microsoft.Missed', 'missed'));
    const poll = async (user: string, mark: string) => (await call(user, `<m:GetEvents><m:SubscriptionId>${id}</m:SubscriptionId><m:Watermark>${mark}</m:Watermark></m:GetEvents>`)).messages[0]!;
    const got = await poll(alice, watermark);
    const notification = childElement(got, M, 'Notification')!;
    assert.deepEqual(notification.children.map((c) => c.name), ['SubscriptionId', 'PreviousWatermark', 'MoreEvents', 'CreatedEvent']);
    const next = childText(childElement(notification, T, 'CreatedEvent')!, T, 'Watermark')!;
    assert.deepEqual(childElement(await poll(alice, next), M, 'Notification')!.children.map((c) => c.name).at(-1), 'StatusEvent');
    assert.equal(codeOf(await poll('bob@parley.test', next)), 'ErrorAccessDenied');
    assert.equal(codeOf(await poll(alice, 'bogus')), 'ErrorInvalidWatermark');
    assert.equal(codeOf((await call(alice, `<m:Unsubscribe><m:SubscriptionId>${id}</m:SubscriptionId></m:Unsubscribe>`)).messages[0]), 'NoError');
    assert.equal(codeOf(await poll(alice, next)), 'ErrorSubscriptionNotFound');
  });

  it('ExchangeImpersonation only for accounts with the right, and only of existing users', async () => {
    const { sql, call } = await setup(engine);
    const as = (who: string) => `<t:RequestServerVersion Version="Exchange2013"/><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>${who}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`;
    const op = save('conversationhistory', 'IPM.Note.Microsoft.Missed', 'from the gateway');
    assert.equal(faultCode(await call('alice@parley.test', op, as('bob@parley.test'))), 'ErrorImpersonationDenied');
    await grantImpersonation(sql, 'alice@parley.test');
    assert.equal(codeOf((await call('alice@parley.test', op, as('bob@parley.test'))).messages[0]), 'NoError');
    const bob = await ensureMailbox(sql, 'bob@parley.test');
    assert.equal((await findItems(sql, bob.id, (await getDistinguishedFolder(sql, bob.id, 'conversationhistory')).id)).items[0]?.subject, 'from the gateway');
    assert.equal(faultCode(await call('alice@parley.test', op, as('nobody@parley.test'))), 'ErrorNonExistentMailbox');
  });

  it('answers invalid requests with SOAP Faults', async () => {
    const { sql, call } = await setup(engine);
    const unknown = await call('alice@parley.test', '<m:GetUserOofSettingsRequest/>');
    assert.equal(unknown.status, 500);
    assert.equal(faultCode(unknown), 'ErrorInvalidRequest');
    assert.equal(faultCode(await call('alice@parley.test', '<m:GetFolder/>', '<t:RequestServerVersion Version="Exchange2003"/>')), 'ErrorInvalidServerVersion');
    assert.equal(faultCode(await call('alice@parley.test', '<m:GetFolder/>')), 'ErrorSchemaValidation');
    assert.equal(faultCode(await call('alice@parley.test', '<m:DeleteItem DeleteType="Shred"><m:ItemIds/></m:DeleteItem>')), 'ErrorSchemaValidation');
    const impersonate = '<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>bob@parley.test</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>';
    assert.equal(faultCode(await call('alice@parley.test', '<m:GetFolder/>', impersonate)), 'ErrorImpersonationDenied');
    const notSoap = await answerEws({ sql, domain: 'parley.test', userExists: async () => true }, 'alice@parley.test', parseXml('<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body/></Envelope>'));
    assert.equal(notSoap.status, 500);
    assert.equal(notSoap.fault, 'ErrorSchemaValidation');
  });
});

// What EWS-to-IMAP gateways such as DavMail send (requests as DavMail 6 writes them).
describe(`EWS for gateways: ConvertId, MAPI properties by tag, MIME content on ${engine.name}`, () => {
  const rootId = async (call: Awaited<ReturnType<typeof setup>>['call'], user = 'alice@parley.test') =>
    childElement(childElement(childElement((await call(user, `<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>${folderIds('root')}</m:FolderIds></m:GetFolder>`)).messages[0]!, M, 'Folders')!, T, 'Folder')!, T, 'FolderId')!.attrs.get('Id')!;
  const convert = (ids: string, destination = 'EwsId') => `<m:ConvertId DestinationFormat="${destination}"><m:SourceIds>${ids}</m:SourceIds></m:ConvertId>`;
  const alternate = (id: string, format = 'EwsId') => `<t:AlternateId Format="${format}" Id="${escapeXmlAttr(id)}" Mailbox="blah@blah.com"/>`;

  it('ConvertId answers an own EwsId with the mailbox owner\'s address, whatever Mailbox the request named', async () => {
    const { call } = await setup(engine);
    const root = await rootId(call);
    const bobRoot = await rootId(call, 'bob@parley.test');
    const item = idOf((await call('alice@parley.test', save('inbox', 'IPM.Note', 'x'))).messages[0]!).get('Id')!;
    const r = await call('alice@parley.test', convert(alternate(root) + alternate(item, 'EwsLegacyId') + alternate(bobRoot) + alternate('AAAAAAAAAAAAAAAAAAAAAA') + alternate('not an id') + alternate(root, 'HexEntryId') + '<t:AlternatePublicFolderId Format="EwsId" FolderId="x"/>'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.messages.map((m) => [m.attrs.get('ResponseClass'), codeOf(m)]), [
      ['Success', 'NoError'],
      ['Success', 'NoError'],
      ['Error', 'ErrorAccessDenied'],
      ['Error', 'ErrorItemNotFound'],
      ['Error', 'ErrorInvalidIdMalformed'],
      ['Error', 'ErrorUnsupportedTypeForConversion'],
      ['Error', 'ErrorUnsupportedTypeForConversion'],
    ]);
    const answer = childElement(r.messages[0]!, M, 'AlternateId')!;
    assert.deepEqual([answer.attrs.get('Format'), answer.attrs.get('Id'), answer.attrs.get('Mailbox')], ['EwsId', root, 'alice@parley.test']);
    const legacy = childElement(r.messages[1]!, M, 'AlternateId')!;
    assert.deepEqual([legacy.attrs.get('Format'), legacy.attrs.get('Id')], ['EwsId', item], 'an EwsLegacyId source in the DestinationFormat asked');
    const toStore = await call('alice@parley.test', convert(alternate(root), 'EntryId'));
    assert.equal(codeOf(toStore.messages[0]), 'ErrorUnsupportedTypeForConversion');
    assert.equal(faultCode(await call('alice@parley.test', convert(alternate(root), 'Binary'))), 'ErrorSchemaValidation');
    assert.equal(faultCode(await call('alice@parley.test', convert(''))), 'ErrorSchemaValidation');
  });

  it('GetFolder and FindFolder answer folder:DisplayName and MAPI folder properties by tag, and FindFolder restricts on PR_CONTAINER_CLASS', async () => {
    const { call } = await setup(engine);
    for (let i = 0; i < 3; i++) await call('alice@parley.test', save('conversationhistory', 'IPM.Note.Microsoft.Missed', `s${i}`, i === 0 ? '<t:IsRead>true</t:IsRead>' : ''));
    const props = '<t:AdditionalProperties><t:ExtendedFieldURI PropertyTag="0x6752" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="0x3602" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="0x3603" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="0x360a" PropertyType="Boolean"/><t:ExtendedFieldURI PropertyTag="0x670a" PropertyType="SystemTime"/><t:ExtendedFieldURI PropertyTag="0x3613" PropertyType="String"/><t:ExtendedFieldURI PropertyTag="0x3603" PropertyType="String"/><t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="x" PropertyType="String"/><t:FieldURI FieldURI="folder:DisplayName"/></t:AdditionalProperties>';
    const r = await call('alice@parley.test', `<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape>${props}</m:FolderShape><m:FolderIds>${folderIds('conversationhistory')}</m:FolderIds></m:GetFolder>`);
    const folder = childElement(childElement(r.messages[0]!, M, 'Folders')!, T, 'Folder')!;
    assert.deepEqual(folder.children.map((c) => c.name), ['FolderId', 'DisplayName', 'ExtendedProperty', 'ExtendedProperty', 'ExtendedProperty', 'ExtendedProperty', 'ExtendedProperty']);
    const values = Object.fromEntries(childElements(folder, T, 'ExtendedProperty').map((p) => [childElement(p, T, 'ExtendedFieldURI')!.attrs.get('PropertyTag'), childText(p, T, 'Value')]));
    // 0x6752 is not kept, 0x3603 asked as a String does not fit its type, named properties are not kept: left out
    const { '0x670a': changed, ...counts } = values;
    assert.deepEqual(counts, { '0x3602': '3', '0x3603': '2', '0x360a': 'false', '0x3613': 'IPF.Note' });
    const items = childElements(childElement(childElement((await call('alice@parley.test', findItem('conversationhistory', ''))).messages[0]!, M, 'RootFolder')!, T, 'Items')!, T, 'Message');
    const created = items.map((m) => childText(m, T, 'DateTimeCreated') ?? '').sort();
    assert.equal(changed, created.at(-1), 'the time of the last change in the folder: the newest item\'s creation');
    assert.equal(childText(folder, T, 'DisplayName'), 'Conversation History');

    // DavMail lists the mail folders: class IPF.Note or IPF.Note.Microsoft.Conversation, or no class at all
    const mailOnly = '<m:Restriction><t:Or><t:IsEqualTo><t:ExtendedFieldURI PropertyTag="0x3613" PropertyType="String"/><t:FieldURIOrConstant><t:Constant Value="IPF.Note"/></t:FieldURIOrConstant></t:IsEqualTo><t:Not><t:Exists><t:ExtendedFieldURI PropertyTag="0x3613" PropertyType="String"/></t:Exists></t:Not></t:Or></m:Restriction>';
    const found = await call('alice@parley.test', `<m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape>${props}</m:FolderShape><m:IndexedPageFolderView MaxEntriesReturned="500" Offset="0" BasePoint="Beginning"/>${mailOnly}<m:ParentFolderIds>${folderIds('msgfolderroot')}</m:ParentFolderIds></m:FindFolder>`);
    const names = childElements(childElement(childElement(found.messages[0]!, M, 'RootFolder')!, T, 'Folders')!, T, 'Folder').map((f) => childText(f, T, 'DisplayName'));
    assert.deepEqual(names.sort(), ['Conversation History', 'Deleted Items', 'Drafts', 'Inbox', 'Junk Email', 'Outbox', 'Sent Items'], 'not Calendar and Contacts');
    const named = await call('alice@parley.test', `<m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:Restriction><t:IsEqualTo><t:ExtendedFieldURI PropertyTag="0x1234" PropertyType="String"/><t:FieldURIOrConstant><t:Constant Value="x"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:ParentFolderIds>${folderIds('msgfolderroot')}</m:ParentFolderIds></m:FindFolder>`);
    assert.equal(faultCode(named), 'ErrorUnsupportedPathForQuery');
  });

  it('FindItem sorts by the article number (PR_INTERNET_ARTICLE_NUMBER) and answers MAPI message properties by tag', async () => {
    const { call } = await setup(engine);
    // delivered out of order: the article number follows the order of storing, not of delivery
    const stored: Array<string | undefined> = [];
    for (const [i, at] of ['2024-05-03T10:00:00Z', '2024-05-01T10:00:00Z', '2024-05-02T10:00:00Z'].entries()) stored.push(
      idOf((await call('alice@parley.test', save('conversationhistory', 'IPM.Note.Microsoft.Missed', `s${i}`, `<t:IsRead>${i === 1}</t:IsRead><t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x0E06" PropertyType="SystemTime"/><t:Value>${at}</t:Value></t:ExtendedProperty>`))).messages[0]!).get('Id'),
    );
    const shape = '<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:ExtendedFieldURI PropertyTag="0xe06" PropertyType="SystemTime"/><t:ExtendedFieldURI PropertyTag="0xe23" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="0xe08" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="0xe07" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="0xff9" PropertyType="Binary"/><t:FieldURI FieldURI="message:IsRead"/></t:AdditionalProperties></m:ItemShape>';
    const sort = (order: string) => `<m:SortOrder><t:FieldOrder Order="${order}"><t:ExtendedFieldURI PropertyTag="0xe23" PropertyType="Integer"/></t:FieldOrder></m:SortOrder>`;
    const list = async (order: string) => {
      const r = await call('alice@parley.test', `<m:FindItem Traversal="Shallow">${shape}<m:IndexedPageItemView MaxEntriesReturned="500" Offset="0" BasePoint="Beginning"/>${sort(order)}<m:ParentFolderIds>${folderIds('conversationhistory')}</m:ParentFolderIds></m:FindItem>`);
      return childElements(childElement(childElement(r.messages[0]!, M, 'RootFolder')!, T, 'Items')!, T, 'Message');
    };
    const ascending = await list('Ascending');
    assert.deepEqual(ascending.map((m) => childElement(m, T, 'ItemId')!.attrs.get('Id')), stored);
    assert.deepEqual((await list('Descending')).map((m) => childElement(m, T, 'ItemId')!.attrs.get('Id')), [...stored].reverse());
    const first = ascending[0]!;
    assert.deepEqual(first.children.map((c) => c.name), ['ItemId', 'ExtendedProperty', 'ExtendedProperty', 'ExtendedProperty', 'ExtendedProperty', 'IsRead'], 'Binary PR_RECORD_KEY is not kept');
    const values = (m: XmlElement) => Object.fromEntries(childElements(m, T, 'ExtendedProperty').map((p) => [childElement(p, T, 'ExtendedFieldURI')!.attrs.get('PropertyTag'), childText(p, T, 'Value')]));
    const articles = ascending.map((m) => Number(values(m)['0xe23']));
    assert.ok(articles.every((n, i) => Number.isInteger(n) && n > 0 && (i === 0 || n > articles[i - 1]!)), `growing article numbers: ${articles}`);
    assert.equal(values(first)['0xe06'], '2024-05-03T10:00:00Z');
    assert.deepEqual(ascending.map((m) => values(m)['0xe07']), ['0', '1', '0'], 'MSGFLAG_READ');
    assert.ok(Number(values(first)['0xe08']) > 0);
    const bySubject = await call('alice@parley.test', `<m:FindItem Traversal="Shallow">${shape}<m:SortOrder><t:FieldOrder Order="Ascending"><t:ExtendedFieldURI PropertyTag="0x0037" PropertyType="String"/></t:FieldOrder></m:SortOrder><m:ParentFolderIds>${folderIds('conversationhistory')}</m:ParentFolderIds></m:FindItem>`);
    assert.equal(faultCode(bySubject), 'ErrorUnsupportedPathForSortGroup');
  });

  it('GetItem with IncludeMimeContent answers the item as a MIME message, before its ItemId; FindItem refuses it', async () => {
    const { call } = await setup(engine);
    const from = '<t:From><t:Mailbox><t:Name>Bob "the builder"</t:Name><t:EmailAddress>bob@parley.test</t:EmailAddress></t:Mailbox></t:From>';
    const id = idOf((await call('alice@parley.test', save('inbox', 'IPM.Note', 'Grüße\r\nBcc: evil@example.com', from))).messages[0]!).get('Id')!;
    const r = await call('alice@parley.test', `<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ItemIds><t:ItemId Id="${id}"/></m:ItemIds></m:GetItem>`);
    const message = childElement(childElement(r.messages[0]!, M, 'Items')!, T, 'Message')!;
    assert.deepEqual(message.children.map((c) => c.name), ['MimeContent', 'ItemId']);
    const mime = Buffer.from(childText(message, T, 'MimeContent') ?? '', 'base64').toString('utf8');
    const [head = '', body = ''] = mime.split('\r\n\r\n');
    assert.match(head, /^From: "Bob \\"the builder\\"" <bob@parley\.test>$/m);
    assert.match(head, /^Subject: =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/m, 'a subject with a line break is an encoded-word, not a new header');
    assert.doesNotMatch(head, /^Bcc:/m);
    assert.match(head, new RegExp(`^Message-ID: <${id.replace(/[-_]/g, '.')}@parley\\.test>$`, 'm'));
    assert.match(head, /^Content-Type: text\/plain; charset=utf-8$/m);
    assert.equal(Buffer.from(body, 'base64').toString('utf8'), 'hi');
    const find = await call('alice@parley.test', `<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ParentFolderIds>${folderIds('inbox')}</m:ParentFolderIds></m:FindItem>`);
    assert.equal(faultCode(find), 'ErrorInvalidPropertyRequest');
    // DavMail's IMAP APPEND sends the message as MIME: refused, not stored without its subject and body
    const append = await call('alice@parley.test', `<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>${folderIds('sentitems')}</m:SavedItemFolderId><m:Items><t:Message><t:MimeContent>${Buffer.from('Subject: x\r\n\r\nhi').toString('base64')}</t:MimeContent></t:Message></m:Items></m:CreateItem>`);
    assert.equal(codeOf(append.messages[0]), 'ErrorInvalidRequest');
  });
});
}

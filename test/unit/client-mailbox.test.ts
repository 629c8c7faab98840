// The SDK's EWS reader (src/client/mailbox.ts, ews-soap.ts) without sockets: against scripted
// answers, and against Parley's EWS service in-process through a fetch stand-in.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MailboxReader } from '../../src/client/index.ts';
import type { FetchLike } from '../../src/client/index.ts';
import { ClientError } from '../../src/client/errors.ts';
import { htmlToText } from '../../src/client/ews-soap.ts';
import { MAILBOX_MIGRATIONS } from '../../src/mailbox/index.ts';
import { answerEws } from '../../src/mailbox/ews/service.ts';
import type { Sql } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';
import { childElement, childText, parseXml } from '../../src/xml/index.ts';
import type { XmlElement } from '../../src/xml/index.ts';

const S = 'http://schemas.xmlsoap.org/soap/envelope/';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';
const EWS_URL = 'https://mail.example.com/EWS/Exchange.asmx';

interface Sent {
  url: string;
  headers: Record<string, string>;
  operation: XmlElement;
  root: XmlElement;
}

/** A fetch that records each request and answers with the next scripted (status, body). */
function scripted(...answers: Array<[number, string] | Error>) {
  const sent: Sent[] = [];
  const fetch: FetchLike = async (url, init) => {
    const root = parseXml(init.body);
    sent.push({ url, headers: init.headers, root, operation: childElement(root, S, 'Body')!.children[0]! });
    const answer = answers.shift();
    if (answer === undefined) throw new Error('no more scripted answers');
    if (answer instanceof Error) throw answer;
    return { status: answer[0], text: async () => answer[1] };
  };
  return { sent, fetch };
}

const envelope = (body: string) => `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${S}"><s:Body>${body}</s:Body></s:Envelope>`;
const FOUND = envelope(
  `<m:FindItemResponse xmlns:m="${M}" xmlns:t="${T}"><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>` +
    `<m:RootFolder IndexedPagingOffset="2" TotalItemsInView="5" IncludesLastItemInRange="false"><t:Items>` +
    `<t:Message><t:ItemId Id="AAA=" ChangeKey="CK1"/><t:Subject>Missed conversation with Bob</t:Subject><t:DateTimeReceived>2024-05-01T10:00:00Z</t:DateTimeReceived>` +
    `<t:From><t:Mailbox><t:Name>Bob Builder</t:Name><t:EmailAddress>bob@parley.local</t:EmailAddress></t:Mailbox></t:From><t:IsRead>false</t:IsRead><t:Preview>are you there?</t:Preview></t:Message>` +
    `<t:Message><t:ItemId Id="BBB=" ChangeKey="CK2"/><t:Subject>older</t:Subject><t:DateTimeReceived>2024-04-30T09:00:00Z</t:DateTimeReceived><t:IsRead>true</t:IsRead></t:Message>` +
    `</t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse>`,
);
const FAULT = envelope(
  `<s:Fault><faultcode xmlns:a="${T}">a:ErrorSchemaValidation</faultcode><faultstring xml:lang="en-US">bad request</faultstring>` +
    `<detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorSchemaValidation</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">bad request</e:Message></detail></s:Fault>`,
);

const reader = (fetch: FetchLike, password = 'pässword') => new MailboxReader({ ewsUrl: EWS_URL, username: 'alice@parley.local', password, fetch });
const isClientError = (code: string, extra: (e: ClientError) => boolean = () => true) => (e: unknown) => e instanceof ClientError && e.code === code && extra(e);

describe('MailboxReader requests and answers', () => {
  it('lists missed conversations with FindItem on conversationhistory, newest first, with Basic auth', async () => {
    const { sent, fetch } = scripted([200, FOUND]);
    const items = await reader(fetch).listMissedConversations({ max: 2, offset: 4 });
    const [request] = sent;
    assert.equal(request?.url, EWS_URL);
    assert.equal(request?.headers.authorization, `Basic ${Buffer.from('alice@parley.local:pässword', 'utf8').toString('base64')}`);
    assert.match(request?.headers['content-type'] ?? '', /^text\/xml/);
    const op = request!.operation;
    assert.equal(op.ns, M);
    assert.equal(op.name, 'FindItem');
    assert.equal(op.attrs.get('Traversal'), 'Shallow');
    assert.deepEqual(op.children.map((c) => c.name), ['ItemShape', 'IndexedPageItemView', 'Restriction', 'SortOrder', 'ParentFolderIds']);
    const view = childElement(op, M, 'IndexedPageItemView')!;
    assert.deepEqual([view.attrs.get('MaxEntriesReturned'), view.attrs.get('Offset'), view.attrs.get('BasePoint')], ['2', '4', 'Beginning']);
    const equal = childElement(childElement(op, M, 'Restriction')!, T, 'IsEqualTo')!;
    assert.equal(childElement(equal, T, 'FieldURI')?.attrs.get('FieldURI'), 'item:ItemClass');
    assert.equal(childElement(childElement(equal, T, 'FieldURIOrConstant')!, T, 'Constant')?.attrs.get('Value'), 'IPM.Note.Microsoft.Missed');
    const order = childElement(childElement(op, M, 'SortOrder')!, T, 'FieldOrder')!;
    assert.equal(order.attrs.get('Order'), 'Descending');
    assert.equal(childElement(order, T, 'FieldURI')?.attrs.get('FieldURI'), 'item:DateTimeReceived');
    assert.equal(childElement(childElement(op, M, 'ParentFolderIds')!, T, 'DistinguishedFolderId')?.attrs.get('Id'), 'conversationhistory');
    assert.equal(childElement(childElement(request!.root, S, 'Header')!, T, 'RequestServerVersion')?.attrs.get('Version'), 'Exchange2013');

    assert.deepEqual(items, [
      { itemId: 'AAA=', changeKey: 'CK1', subject: 'Missed conversation with Bob', from: { name: 'Bob Builder', address: 'bob@parley.local' }, receivedAt: new Date('2024-05-01T10:00:00Z'), isRead: false, preview: 'are you there?' },
      { itemId: 'BBB=', changeKey: 'CK2', subject: 'older', from: { name: '', address: '' }, receivedAt: new Date('2024-04-30T09:00:00Z'), isRead: true },
    ]);
  });

  it('marks read with UpdateItem SetItemField message:IsRead, escaping the ids', async () => {
    const updated = envelope(`<m:UpdateItemResponse xmlns:m="${M}" xmlns:t="${T}"><m:ResponseMessages><m:UpdateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message><t:ItemId Id="A&amp;B" ChangeKey="CK9"/></t:Message></m:Items></m:UpdateItemResponseMessage></m:ResponseMessages></m:UpdateItemResponse>`);
    const { sent, fetch } = scripted([200, updated]);
    assert.deepEqual(await reader(fetch).markRead('A&B', 'C"K'), { itemId: 'A&B', changeKey: 'CK9' });
    const change = childElement(childElement(sent[0]!.operation, M, 'ItemChanges')!, T, 'ItemChange')!;
    assert.deepEqual([...childElement(change, T, 'ItemId')!.attrs], [['Id', 'A&B'], ['ChangeKey', 'C"K']]);
    const set = childElement(childElement(change, T, 'Updates')!, T, 'SetItemField')!;
    assert.equal(childElement(set, T, 'FieldURI')?.attrs.get('FieldURI'), 'message:IsRead');
    assert.equal(childText(childElement(set, T, 'Message')!, T, 'IsRead'), 'true');
  });

  it('turns a SOAP Fault and an error ResponseClass into EWS_ERROR with the ResponseCode', async () => {
    const notFound = envelope(`<m:GetItemResponse xmlns:m="${M}"><m:ResponseMessages><m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>gone</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode></m:GetItemResponseMessage></m:ResponseMessages></m:GetItemResponse>`);
    const { fetch } = scripted([500, FAULT], [200, notFound]);
    const r = reader(fetch);
    await assert.rejects(r.listMissedConversations(), isClientError('EWS_ERROR', (e) => e.responseCode === 'ErrorSchemaValidation' && /bad request/.test(e.message)));
    await assert.rejects(r.getItem('X'), isClientError('EWS_ERROR', (e) => e.responseCode === 'ErrorItemNotFound'));
  });

  it('reports refused credentials, HTTP errors, unreadable answers and network failures', async () => {
    const { fetch } = scripted([401, 'no'], [502, '<html>bad gateway</html>'], [200, 'not xml'], [500, '<html/>'], new TypeError('fetch failed'));
    const r = reader(fetch);
    await assert.rejects(r.listMissedConversations(), isClientError('AUTH_FAILED', (e) => e.status === 401));
    await assert.rejects(r.listMissedConversations(), isClientError('HTTP_FAILED', (e) => e.status === 502));
    await assert.rejects(r.listMissedConversations(), isClientError('HTTP_FAILED'));
    await assert.rejects(r.listMissedConversations(), isClientError('HTTP_FAILED', (e) => e.status === 500));
    await assert.rejects(r.listMissedConversations(), isClientError('HTTP_FAILED', (e) => /fetch failed/.test(e.message)));
  });

  it('checks its arguments', async () => {
    const { fetch } = scripted();
    assert.throws(() => new MailboxReader({ ewsUrl: 'nope', username: 'a@b', password: 'p', fetch }), isClientError('INVALID_ARGUMENT'));
    assert.throws(() => new MailboxReader({ ewsUrl: 'ftp://x/EWS', username: 'a@b', password: 'p', fetch }), isClientError('INVALID_ARGUMENT'));
    await assert.rejects(reader(fetch).listMissedConversations({ max: 0 }), isClientError('INVALID_ARGUMENT'));
    await assert.rejects(reader(fetch).listMissedConversations({ offset: -1 }), isClientError('INVALID_ARGUMENT'));
  });

  it('renders an HTML body as text', () => {
    assert.equal(htmlToText('<html><head><style>p{}</style></head><body><p>Hi &amp; <b>bye</b></p><p>a&lt;b&#33;&#x21;</p></body></html>'), 'Hi & bye\na<b!!');
  });
});

/** Parley's EWS service in-process: the reader's requests go to answerEws as the Basic user. */
async function parleyEws(sql: Sql) {
  await migrate(sql, [MAILBOX_MIGRATIONS]);
  let t = 1_700_000_000_000;
  const opts = { sql, domain: 'parley.test', userExists: async (a: string) => a === 'alice@parley.test', now: () => (t += 1000) };
  const fetch: FetchLike = async (_url, init) => {
    const credentials = Buffer.from(init.headers.authorization?.replace(/^Basic /, '') ?? '', 'base64').toString('utf8');
    const answer = await answerEws(opts, credentials.slice(0, credentials.indexOf(':')), parseXml(init.body));
    return { status: answer.status, text: async () => answer.xml };
  };
  const save = (itemClass: string, subject: string, body: string) =>
    fetch('', {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('alice@parley.test:x').toString('base64')}` },
      body:
        `<soap:Envelope xmlns:soap="${S}" xmlns:m="${M}" xmlns:t="${T}"><soap:Body><m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="conversationhistory"/></m:SavedItemFolderId>` +
        `<m:Items><t:Message><t:ItemClass>${itemClass}</t:ItemClass><t:Subject>${subject}</t:Subject><t:Body BodyType="HTML">${body}</t:Body>` +
        `<t:From><t:Mailbox><t:Name>Bob</t:Name><t:EmailAddress>bob@parley.test</t:EmailAddress></t:Mailbox></t:From></t:Message></m:Items></m:CreateItem></soap:Body></soap:Envelope>`,
    });
  return { fetch, save };
}

after(closeTestPostgres);
for (const engine of ENGINES) describe(`MailboxReader against Parley's EWS service in-process on ${engine.name}`, () => {
  it('lists, reads and marks read the missed conversations only', async (t) => {
    const sql = await engine.open();
    t.after(() => sql.close());
    const ews = await parleyEws(sql);
    await ews.save('IPM.Note.Microsoft.Missed', 'first', '&lt;p&gt;one&lt;/p&gt;');
    await ews.save('IPM.Note.Microsoft.Conversation', 'saved', 'x');
    await ews.save('IPM.Note.Microsoft.Missed', 'second', '&lt;p&gt;two &amp;amp; more&lt;/p&gt;');
    const r = new MailboxReader({ ewsUrl: 'http://127.0.0.1/EWS/Exchange.asmx', username: 'alice@parley.test', password: 'x', fetch: ews.fetch });
    const items = await r.listMissedConversations();
    assert.deepEqual(items.map((i) => i.subject), ['second', 'first']);
    assert.ok(items[0]!.receivedAt.getTime() > items[1]!.receivedAt.getTime());
    assert.deepEqual(items[0]?.from, { name: 'Bob', address: 'bob@parley.test' });
    assert.equal(items[0]?.isRead, false);
    assert.deepEqual((await r.listMissedConversations({ max: 1, offset: 1 })).map((i) => i.subject), ['first']);

    const item = await r.getItem(items[0]!.itemId);
    assert.equal(item.subject, 'second');
    assert.equal(item.itemClass, 'IPM.Note.Microsoft.Missed');
    assert.equal(item.bodyHtml, '<p>two &amp; more</p>');
    assert.equal(item.bodyText, 'two & more');

    const updated = await r.markRead(item.itemId, item.changeKey);
    assert.equal(updated.itemId, item.itemId);
    assert.notEqual(updated.changeKey, item.changeKey);
    assert.deepEqual((await r.listMissedConversations()).map((i) => i.isRead), [true, false]);
    await assert.rejects(r.getItem('AAAAAAAAAAAAAAAAAAAAAA=='), isClientError('EWS_ERROR', (e) => e.responseCode === 'ErrorItemNotFound' || e.responseCode === 'ErrorInvalidIdMalformed'));
  });
});

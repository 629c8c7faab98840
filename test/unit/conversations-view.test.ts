// How a Conversation History item looks to the web client (src/conversations/view.ts) and the
// one-line preview of a transcript (src/offline/transcript.ts): pure, on items made by hand and on
// a transcript rendered by the offline pipeline's own renderer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detailOf, summaryOf } from '../../src/conversations/index.ts';
import type { ItemRecord } from '../../src/mailbox/index.ts';
import { renderTranscript, transcriptPreview } from '../../src/offline/transcript.ts';

const ALICE = 'alice@parley.local';
const BOB = 'bob@parley.local';

function item(over: Partial<ItemRecord>): ItemRecord {
  return {
    id: 'AAAAAAAAAAAAAAAAAAAAAA', changeKey: 'k', mailboxId: 1, folderId: 'f', itemClass: 'IPM.Note.Microsoft.Missed', subject: 'Missed conversation with Alice',
    bodyHtml: null, bodyText: null, from: { address: ALICE, name: 'Alice' }, to: [{ address: BOB, name: BOB }], cc: [], sentAt: null,
    receivedAt: Date.UTC(2026, 0, 2, 3, 4, 5), isRead: false, internetMessageId: null, conversationTopic: null, size: 0, createdAt: 0, updatedAt: 0, articleNumber: 1, ...over,
  };
}

describe('transcript preview', () => {
  it("shows the messages without heading and times, on one line, cut at the limit", () => {
    const { text } = renderTranscript({
      sender: { name: 'Alice', address: ALICE },
      recipient: { name: '', address: BOB },
      messages: [
        { receivedAt: new Date('2026-01-02T03:04:05Z'), contentType: 'text/plain', body: Buffer.from('are you there?\nsecond line') },
        { receivedAt: new Date('2026-01-02T03:05:00Z'), contentType: 'text/html', body: Buffer.from('<p>lunch <b>today</b>?</p>') },
      ],
    });
    assert.equal(transcriptPreview(text), 'Alice: are you there? second line Alice: lunch today?');
    assert.equal(transcriptPreview(text, 12), 'Alice: are…');
    assert.equal(transcriptPreview('plain body\n\nfrom EWS'), 'plain body from EWS');
    assert.equal(transcriptPreview(''), '');
  });
});

describe('conversation view', () => {
  const names = (address: string) => (address === ALICE ? 'Alice Liddell' : null);

  it('a missed conversation is with its sender; the directory name wins, a name that is only the address is none', () => {
    const s = summaryOf(item({ bodyText: 'hello' }), BOB, names);
    assert.deepEqual(s, { id: 'AAAAAAAAAAAAAAAAAAAAAA', kind: 'missed', subject: 'Missed conversation with Alice', with: { address: ALICE, displayName: 'Alice Liddell' }, received: '2026-01-02T03:04:05.000Z', unread: true, preview: 'hello' });
    const copy = summaryOf(item({ itemClass: 'IPM.Note.Microsoft.Conversation', from: { address: ALICE, name: 'Alice' }, isRead: true }), ALICE, names);
    assert.deepEqual([copy.kind, copy.with, copy.unread], ['conversation', { address: BOB, displayName: null }, false]);
    const unknown = summaryOf(item({ from: { address: 'Zed@Parley.Local', name: 'Zed' } }), BOB, () => undefined);
    assert.deepEqual(unknown.with, { address: 'zed@parley.local', displayName: 'Zed' });
  });

  it('html is always the sanitiser\'s output; a text-only item is escaped', () => {
    const hostile = detailOf(item({ bodyHtml: '<p onclick="x()">hi<script>alert(1)</script><img src=x onerror=alert(2)><a href="javascript:alert(3)">link</a></p>', bodyText: null }), BOB, names);
    assert.equal(hostile.html, '<p>hilink</p>');
    assert.equal(hostile.text, 'hilink');
    const text = detailOf(item({ bodyText: '<b>not bold</b>\nline 2' }), BOB, names);
    assert.equal(text.html, '&lt;b&gt;not bold&lt;/b&gt;<br>\nline 2');
    assert.equal(text.text, '<b>not bold</b>\nline 2');
  });
});

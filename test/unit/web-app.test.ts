// The web client's pure parts: language choice and catalogues, text made into text and safe
// links, what a SIP answer means for a sent message, automatic Inactive/Away, the conversations
// model (Seen, unread navigation); and that no file of the app names a Node module.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { webSocketServers } from '../../src/web/app/api.ts';
import { Conversations } from '../../src/web/app/conversations.ts';
import { AWAY_AFTER_MS, autoState, INACTIVE_AFTER_MS } from '../../src/web/app/idle.ts';
import { en } from '../../src/web/app/i18n/en.ts';
import { chooseLanguage, LANGUAGES, translator } from '../../src/web/app/i18n/index.ts';
import { outcomeOf } from '../../src/web/app/outcome.ts';
import { safeHref, textRuns } from '../../src/web/app/text.ts';
import { transcriptFileName, transcriptText } from '../../src/web/app/transcript.ts';

const APP = fileURLToPath(new URL('../../src/web/app/', import.meta.url));

describe('web client i18n', () => {
  it('chooses the first of the browser languages it has, else English', () => {
    assert.equal(chooseLanguage(['es-MX', 'en-US']), 'es');
    assert.equal(chooseLanguage(['fr-FR', 'es']), 'es');
    assert.equal(chooseLanguage(['de']), 'en');
    assert.equal(chooseLanguage([]), 'en');
  });

  it('has every string in every catalogue, with the same {placeholders}', () => {
    const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const [lang, catalogue] of Object.entries(LANGUAGES)) {
      assert.deepEqual(Object.keys(catalogue).sort(), Object.keys(en).sort(), lang);
      for (const [key, text] of Object.entries(catalogue)) {
        assert.ok(text.trim() !== '', `${lang} ${key} is empty`);
        assert.deepEqual(names(text), names(en[key as keyof typeof en]), `${lang} ${key}`);
      }
    }
  });

  it('fills placeholders and picks plural forms', () => {
    const es = translator('es');
    assert.equal(es('chat.typing', { name: 'Bob' }), 'Bob está escribiendo…');
    assert.equal(es.plural('missed.badge', 1), '1 conversación perdida nueva');
    assert.equal(translator('en').plural('missed.badge', 3), '3 new missed conversations');
  });

  it('keeps every string the views show in the catalogues (no text literal in JSX)', () => {
    const offenders: string[] = [];
    for (const file of readdirSync(path.join(APP, 'views'))) {
      const source = readFileSync(path.join(APP, 'views', file), 'utf8');
      // text between a tag's end and the next tag that has letters and is not an expression
      // (words of two letters or more; code between JSX tags, `a === b ? (`, is not text)
      for (const m of source.matchAll(/>\s*([^<>{}]*[A-Za-zÀ-ÿ]{2}[^<>{}]*?)\s*</g)) if (!/[=(;|&*]/.test(m[1] ?? '')) offenders.push(`${file}: ${m[1]}`);
    }
    assert.deepEqual(offenders, []);
  });
});

describe('web client message text', () => {
  it('links http(s) URLs only, without the sentence punctuation after them', () => {
    assert.deepEqual(textRuns('see https://example.com/a?b=1. ok'), [
      { kind: 'text', text: 'see ' },
      { kind: 'link', text: 'https://example.com/a?b=1', href: 'https://example.com/a?b=1' },
      { kind: 'text', text: '. ok' },
    ]);
    assert.deepEqual(textRuns('javascript:alert(1) and data:text/html,<script>x</script>'), [{ kind: 'text', text: 'javascript:alert(1) and data:text/html,<script>x</script>' }]);
    assert.deepEqual(textRuns('<img src=x onerror=alert(1)>'), [{ kind: 'text', text: '<img src=x onerror=alert(1)>' }]);
    assert.equal(safeHref('javascript:alert(1)'), null);
    assert.equal(safeHref('HTTP://Example.COM'), 'http://example.com/');
  });
});

describe('web client delivery status', () => {
  it('reads 200 as delivered, 202 as for the mailbox, others as failed with the Warning text', () => {
    assert.deepEqual(outcomeOf({ status: 200, reason: 'OK' }), { status: 'delivered' });
    assert.deepEqual(outcomeOf({ status: 202, reason: 'Accepted', warning: 'bob@parley.test is offline; stored for delivery to their mailbox' }), { status: 'mailbox', detail: 'bob@parley.test is offline; stored for delivery to their mailbox' });
    assert.deepEqual(outcomeOf({ status: 480, reason: 'Temporarily Unavailable', warning: 'EnableOfflineIm is False in CsImConfiguration Global' }), { status: 'failed', detail: 'EnableOfflineIm is False in CsImConfiguration Global' });
    assert.deepEqual(outcomeOf({ status: 404, reason: 'Not Found' }), { status: 'failed', detail: 'Not Found (404)' });
  });
});

describe('web client automatic presence', () => {
  it('goes Inactive (published Away) after 5 minutes, Away after 10, only from Available or Busy', () => {
    assert.deepEqual(autoState('Available', INACTIVE_AFTER_MS - 1), { published: 'Available', label: 'Available' });
    assert.deepEqual(autoState('Available', INACTIVE_AFTER_MS), { published: 'Away', label: 'Inactive' });
    assert.deepEqual(autoState('Busy', AWAY_AFTER_MS), { published: 'Away', label: 'Away' });
    assert.deepEqual(autoState('Do Not Disturb', AWAY_AFTER_MS * 3), { published: 'Do Not Disturb', label: 'Do Not Disturb' });
    assert.deepEqual(autoState('Be Right Back', AWAY_AFTER_MS), { published: 'Be Right Back', label: 'Be Right Back' });
  });
});

describe('web client conversations', () => {
  it('marks our message and the delivered ones before it Seen, not the failed ones', () => {
    const c = new Conversations();
    const out = (id: string, status: 'delivered' | 'failed', imdnMessageId?: string) => ({ id, direction: 'out' as const, text: id, at: 1, status, ...(imdnMessageId ? { imdnMessageId } : {}) });
    c.add('bob@x', out('a', 'delivered', 'i1'), false);
    c.add('bob@x', out('b', 'failed'), false);
    c.add('bob@x', out('c', 'delivered', 'i3'), false);
    c.add('bob@x', out('d', 'delivered', 'i4'), false);
    c.seen('bob@x', 'i3');
    assert.deepEqual(c.get('bob@x')?.messages.value.map((m) => m.status), ['seen', 'failed', 'seen', 'delivered']);
  });

  it('counts unread and moves to the next or previous unread conversation', () => {
    const c = new Conversations();
    const msg = (id: string, at: number) => ({ id, direction: 'in' as const, text: id, at });
    c.add('a@x', msg('1', 1), true);
    c.add('b@x', msg('2', 2), false);
    c.add('c@x', msg('3', 3), true);
    assert.equal(c.totalUnread.value, 2);
    c.active.value = 'b@x';
    // the list is newest first: c, b, a
    assert.equal(c.nextUnread(1), 'a@x');
    assert.equal(c.nextUnread(-1), 'c@x');
    assert.equal(c.get('a@x')?.typing.value, false);
  });
});

describe('web client: the SIP servers of a session', () => {
  const one = 'wss://a.example/sip';
  it('is the one webSocketUrl without a list (a single server), or with an empty one', () => {
    assert.deepEqual(webSocketServers({ webSocketUrl: one }), [one]);
    assert.deepEqual(webSocketServers({ webSocketUrl: one, webSocketUrls: [] }), [one]);
  });

  it('is every node of a cluster, from the one that served the page on, each once, strings only', () => {
    const [b, c] = ['wss://b.example/sip', 'wss://c.example/sip'];
    assert.deepEqual(webSocketServers({ webSocketUrl: b, webSocketUrls: [one, b, c] }), [b, c, one]);
    assert.deepEqual(webSocketServers({ webSocketUrl: one, webSocketUrls: [b, c] }), [b, c]);
    const odd = [one, one, 42, '', null, c] as unknown as string[];
    assert.deepEqual(webSocketServers({ webSocketUrl: one, webSocketUrls: odd }), [one, c]);
  });
});

describe('web client sources', () => {
  it('import no Node module (the app runs in the browser only)', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (/\.tsx?$/.test(entry.name)) {
          for (const m of readFileSync(full, 'utf8').matchAll(/from\s+'([^']+)'/g)) if (m[1]?.startsWith('node:')) offenders.push(`${full}: ${m[1]}`);
        }
      }
    };
    walk(APP);
    assert.deepEqual(offenders, []);
  });
});

describe('web client: Save conversation', () => {
  it('writes a title, then each message with its time and speaker, further lines indented', () => {
    const at = Date.UTC(2026, 11, 6, 21, 5, 9);
    const text = transcriptText('Conversation with Bob Brown', [
      { at, who: 'You', text: 'Hello Bob' },
      { at: at + 60_000, who: 'Bob Brown', text: 'Hi Alice\r\ntwo lines' },
    ], 'en-GB');
    const lines = text.split('\n');
    assert.equal(lines[0], 'Conversation with Bob Brown');
    assert.equal(lines[1], '');
    assert.match(lines[2] ?? '', /^\[06\/12\/2026, \d\d:05:09\] You: Hello Bob$/);
    assert.match(lines[3] ?? '', /^\[06\/12\/2026, \d\d:06:09\] Bob Brown: Hi Alice$/);
    assert.equal(lines[4], '    two lines');
    assert.equal(lines[5], '');
    assert.equal(lines.length, 6);
  });

  it('names the file after the peer and the day, with no character a file system refuses', () => {
    const at = Date.UTC(2026, 11, 6, 12);
    assert.equal(transcriptFileName('bob@parley.test', at), 'conversation-bob-at-parley.test-2026-12-06.txt');
    assert.equal(transcriptFileName('a/b:c@x.y', at), 'conversation-a_b_c-at-x.y-2026-12-06.txt');
  });
});

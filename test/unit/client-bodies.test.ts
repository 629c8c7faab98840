// The pure parsers of NOTIFY bodies and header fields of the SDK: message-summary (RFC 3842),
// Parley's provisioning JSON, and Subscription-State (RFC 6665 §8.2.3).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientError } from '../../src/client/errors.ts';
import { eventType, parseSubscriptionState } from '../../src/client/event-headers.ts';
import { parseMessageSummary } from '../../src/client/message-summary.ts';
import { parseProvisioning } from '../../src/client/provisioning.ts';
import { PROVISIONING as GOOD } from './fake-sip-server.ts';

const isInvalid = (e: unknown) => e instanceof ClientError && e.code === 'INVALID_BODY';

describe('parseMessageSummary (RFC 3842 §5.2)', () => {
  it("reads Parley's body", () => {
    assert.deepEqual(parseMessageSummary('Messages-Waiting: yes\r\nMessage-Account: sip:bob@parley.test\r\nText-Message: 2/3\r\n'), {
      waiting: true,
      account: 'sip:bob@parley.test',
      textMessages: { new: 2, old: 3 },
      classes: { 'text-message': { new: 2, old: 3, urgentNew: 0, urgentOld: 0 } },
    });
  });

  it('takes LF line ends, any case of names and values, and space around the separators', () => {
    const summary = parseMessageSummary('messages-waiting:NO\ntext-message :  0 / 7 ( 0 / 1 )\n');
    assert.equal(summary.waiting, false);
    assert.equal(summary.account, undefined);
    assert.deepEqual(summary.classes['text-message'], { new: 0, old: 7, urgentNew: 0, urgentOld: 1 });
    assert.deepEqual(summary.textMessages, { new: 0, old: 7 });
  });

  it('reads the other message-context classes and the example of RFC 3842 §6', () => {
    const body = [
      'Messages-Waiting: yes',
      'Message-Account: sip:alice@vmail.example.com',
      'Voice-Message: 4/8 (1/2)',
      'Fax-Message: 1/0',
      '',
      'To: <alice@atlanta.example.com>',
      'From: <bob@biloxi.example.com>',
      'Subject: carpool tomorrow?',
      'Voice-Message: not/counted',
      '',
    ].join('\r\n');
    const summary = parseMessageSummary(body);
    assert.equal(summary.waiting, true);
    assert.deepEqual(summary.classes, {
      'voice-message': { new: 4, old: 8, urgentNew: 1, urgentOld: 2 },
      'fax-message': { new: 1, old: 0, urgentNew: 0, urgentOld: 0 },
    });
    assert.deepEqual(summary.textMessages, { new: 0, old: 0 }, 'no Text-Message line: zeros');
  });

  it('ignores unknown lines and refuses a body without a valid status or with bad counts', () => {
    assert.equal(parseMessageSummary('Messages-Waiting: yes\r\nX-Extension: whatever\r\n').waiting, true);
    assert.throws(() => parseMessageSummary(''), isInvalid);
    assert.throws(() => parseMessageSummary('Text-Message: 1/2\r\n'), isInvalid);
    assert.throws(() => parseMessageSummary('Messages-Waiting: maybe\r\n'), isInvalid);
    assert.throws(() => parseMessageSummary('Messages-Waiting: yes\r\nText-Message: two/three\r\n'), isInvalid);
    assert.throws(() => parseMessageSummary('Messages-Waiting: yes\r\nno colon here\r\n'), isInvalid);
  });
});

describe('parseProvisioning', () => {
  it("reads Parley's body and keeps only the known fields", () => {
    assert.deepEqual(parseProvisioning(JSON.stringify({ ...GOOD, futureSetting: 1 })), GOOD);
    const { sources: _, ...withoutSources } = GOOD;
    assert.deepEqual(parseProvisioning(JSON.stringify(withoutSources)), withoutSources);
  });

  it('reads the Conversation History timeouts when the server sends them, and does without them from an older one', () => {
    const timeouts = { ConversationIdleTimeout: '00:10:00', UnreadMissedTimeout: '00:00:00' };
    assert.deepEqual(parseProvisioning(JSON.stringify({ ...GOOD, ...timeouts })), { ...GOOD, ...timeouts });
    const older = parseProvisioning(JSON.stringify(GOOD));
    assert.equal('ConversationIdleTimeout' in older || 'UnreadMissedTimeout' in older, false);
    for (const wrong of [{ ConversationIdleTimeout: 600 }, { UnreadMissedTimeout: 'five minutes' }, { UnreadMissedTimeout: null }]) {
      assert.throws(() => parseProvisioning(JSON.stringify({ ...GOOD, ...wrong })), isInvalid, JSON.stringify(wrong));
    }
  });

  it('refuses what is not JSON, not an object, or has a field of the wrong type', () => {
    const bad = (change: Record<string, unknown>) => JSON.stringify({ ...GOOD, ...change });
    for (const body of [
      'not json',
      '[]',
      'null',
      bad({ EnableOfflineIm: 'true' }),
      bad({ DisableSavingIM: undefined }),
      bad({ OfflineImPickupDelay: 120 }),
      bad({ OfflineImMaxAge: '1 day' }),
      bad({ ewsUrl: 'ftp://x/EWS' }),
      bad({ ewsUrl: 'not a url' }),
      bad({ sources: ['Global'] }),
      bad({ sources: { ImConfiguration: 1 } }),
    ]) {
      assert.throws(() => parseProvisioning(body), isInvalid, body);
    }
  });

  it('accepts TimeSpans with days, fractions and a sign', () => {
    for (const span of ['00:00:00', '10.12:30:00', '-00:05:00', '00:00:01.5']) {
      assert.equal(parseProvisioning(JSON.stringify({ ...GOOD, OfflineImPickupDelay: span })).OfflineImPickupDelay, span);
    }
  });
});

describe('Subscription-State and Event (RFC 6665 §8.2)', () => {
  it('reads the state and its parameters', () => {
    assert.deepEqual(parseSubscriptionState('active;expires=600'), { state: 'active', expires: 600 });
    assert.deepEqual(parseSubscriptionState('Terminated ; reason=Deactivated;retry-after=30'), { state: 'terminated', reason: 'deactivated', retryAfter: 30 });
    assert.deepEqual(parseSubscriptionState('pending'), { state: 'pending' });
    assert.deepEqual(parseSubscriptionState('active;expires=soon;x=y'), { state: 'active' });
  });

  it('refuses a missing or malformed value', () => {
    assert.equal(parseSubscriptionState(undefined), null);
    assert.equal(parseSubscriptionState(''), null);
    assert.equal(parseSubscriptionState('act ive'), null);
    assert.equal(parseSubscriptionState('active;='), null);
  });

  it('reads the package of an Event header', () => {
    assert.equal(eventType('Message-Summary;id=1'), 'message-summary');
    assert.equal(eventType(undefined), undefined);
    assert.equal(eventType(' ;id=1'), undefined);
  });
});

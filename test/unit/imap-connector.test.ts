// The IMAP mailbox connector (src/mailbox/imap) against a real Dovecot started by the test
// (test/harness/dovecot.ts): delivery, exactly once when the APPEND answer is lost and across a
// restart, a stopped server retried until it is back, refusals with their reasons (password,
// unknown mailbox, ACL, TLS), the Missed count, and `parley mailbox test`'s check.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import type { DeliveryItem } from '../../src/mailbox/index.ts';
import { ImapMailboxConnector, MailboxError } from '../../src/mailbox/index.ts';
import type { ImapConnectorOptions } from '../../src/mailbox/index.ts';
import { dovecotInstalled, startDovecot, startImapRelay } from '../harness/dovecot.ts';
import { eventually } from '../harness/eventually.ts';
import type { Dovecot } from '../harness/dovecot.ts';

const DOMAIN = 'example.test';
const FOLDER = 'Conversation History';
const [ALICE, BOB, CAROL, DAVE, ERIN, FRANK] = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'].map((name) => `${name}@${DOMAIN}`) as [string, string, string, string, string, string];
const USERS = [ALICE, BOB, CAROL, DAVE, ERIN, FRANK].map((address) => ({ address, password: `${address.split('@')[0]}-pw` }));
const MASTER = { username: 'parley', password: 'master-pw' };
const skip = dovecotInstalled() ? false : 'dovecot is not installed (scripts/install-test-deps.sh)';

let serial = 0;
function item(mailbox: string, overrides: Partial<DeliveryItem> = {}): DeliveryItem {
  serial++;
  return {
    mailbox,
    folder: 'conversationhistory',
    itemClass: 'IPM.Note.Microsoft.Missed',
    internetMessageId: `<sp-imap${serial}${Date.now().toString(36)}@parley.test>`,
    subject: 'Missed conversation with Zoë',
    from: { name: 'Zoë Example', address: `zoe@${DOMAIN}` },
    to: [{ name: 'Recipient', address: mailbox }],
    bodyHtml: '<p>Hello <b>there</b></p>',
    bodyText: 'Hello there',
    sentAt: new Date('2026-12-01T10:00:00Z'),
    isRead: false,
    ...overrides,
  };
}

/** The messages in a folder of `user`'s mailbox, read with the user's own password. */
async function messagesOf(dovecot: Dovecot, address: string, folder = FOLDER): Promise<Array<{ uid: number; flags: Set<string>; source: Buffer }>> {
  const user = USERS.find((u) => u.address === address);
  assert.ok(user);
  const client = new ImapFlow({ host: '127.0.0.1', port: dovecot.port, secure: false, doSTARTTLS: false, auth: { user: user.address, pass: user.password }, logger: false });
  await client.connect();
  try {
    const lock = await client.getMailboxLock(folder);
    try {
      const out = [];
      if ((client.mailbox && client.mailbox.exists) === 0) return [];
      for await (const m of client.fetch('1:*', { uid: true, flags: true, source: true })) out.push({ uid: m.uid, flags: m.flags ?? new Set<string>(), source: m.source ?? Buffer.alloc(0) });
      return out;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

function withMessageId(list: Array<{ source: Buffer }>, id: string): number {
  return list.filter((m) => m.source.toString('latin1').includes(`Message-ID: ${id}`)).length;
}

async function refusal(promise: Promise<unknown>): Promise<MailboxError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof MailboxError, `expected a MailboxError, got ${String(error)}`);
  return error;
}

/** A Dovecot for the describe that calls it, and connectors to it (master sign-in unless told), all closed after. */
function dovecotFixture(opts: { acl?: boolean; tls?: boolean } = {}): { readonly dovecot: Dovecot; connector: (o?: Partial<ImapConnectorOptions>) => ImapMailboxConnector } {
  let dovecot: Dovecot | undefined;
  const connectors: ImapMailboxConnector[] = [];
  before(async () => {
    dovecot = await startDovecot({ users: USERS, masters: [MASTER], ...opts });
  });
  after(async () => {
    await Promise.all(connectors.map((c) => c.close()));
    await dovecot?.destroy();
  });
  return {
    get dovecot() {
      assert.ok(dovecot, 'Dovecot is started');
      return dovecot;
    },
    connector(o = {}) {
      const c = new ImapMailboxConnector({ url: this.dovecot.url, signIn: { method: 'master', ...MASTER }, timeoutMs: 5_000, ...o });
      connectors.push(c);
      return c;
    },
  };
}

describe('IMAP mailbox connector against Dovecot', { skip }, () => {
  const fixture = dovecotFixture();
  const connector = (o?: Partial<ImapConnectorOptions>) => fixture.connector(o);

  it('delivers the Missed item unread and the copy read into Conversation History, created and subscribed, class in Content-Class, Message-ID the entry id, text and HTML', async () => {
    const imap = connector();
    const missed = item(ALICE);
    const copy = item(ALICE, { itemClass: 'IPM.Note.Microsoft.Conversation', isRead: true, subject: 'Conversation with Zoë' });
    const first = await imap.deliver(missed);
    assert.equal(first.created, true);
    assert.match(first.itemId, /^Conversation History\/\d+\/1$/);
    assert.equal((await imap.deliver(copy)).created, true);

    const messages = await messagesOf(fixture.dovecot, ALICE);
    assert.equal(messages.length, 2);
    const [unread, read] = messages;
    assert.equal(unread?.flags.has('\\Seen'), false, 'the Missed item is unread');
    assert.equal(read?.flags.has('\\Seen'), true, 'the copy is read');
    const parsed = await simpleParser(unread?.source ?? Buffer.alloc(0));
    assert.equal(parsed.messageId, missed.internetMessageId);
    assert.equal(parsed.headers.get('content-class'), 'IPM.Note.Microsoft.Missed');
    assert.equal(parsed.subject, 'Missed conversation with Zoë');
    assert.equal(parsed.text?.trim(), 'Hello there');
    assert.equal(parsed.html, '<p>Hello <b>there</b></p>');
    assert.equal(parsed.date?.toISOString(), '2026-12-01T10:00:00.000Z');

    const user = new ImapFlow({ host: '127.0.0.1', port: fixture.dovecot.port, secure: false, doSTARTTLS: false, auth: { user: ALICE, pass: 'alice-pw' }, logger: false });
    await user.connect();
    const folder = (await user.list()).find((f) => f.path === FOLDER);
    await user.logout();
    assert.equal(folder?.subscribed, true, 'the folder is subscribed, so mail clients show it');
  });

  it('puts a partner note in INBOX, unread', async () => {
    const note = item(FRANK, { folder: 'inbox', itemClass: 'IPM.Note', subject: 'Message from eve while you were offline' });
    assert.equal((await connector().deliver(note)).created, true);
    const inbox = await messagesOf(fixture.dovecot, FRANK, 'INBOX');
    assert.equal(withMessageId(inbox, note.internetMessageId), 1);
    assert.equal(inbox[0]?.flags.has('\\Seen'), false);
  });

  it('finds a repeat by its Message-ID and makes no second message, on one kept connection', async () => {
    const imap = connector();
    const one = item(BOB);
    const first = await imap.deliver(one);
    const again = await imap.deliver(one);
    assert.deepEqual(again, { itemId: first.itemId, created: false });
    // another id whose Message-ID contains the first one's text is another message
    const longer = item(BOB, { internetMessageId: one.internetMessageId.replace('<', '<x') });
    assert.equal((await imap.deliver(longer)).created, true);
    const logins = fixture.dovecot.log().split('\n').filter((l) => l.includes(`Login: user=<${BOB}>`));
    assert.equal(logins.length, 1, `three deliveries, one sign-in:\n${logins.join('\n')}`);
    assert.equal(withMessageId(await messagesOf(fixture.dovecot, BOB), one.internetMessageId), 1);
    // an id given without angle brackets (written with them) is found again too
    const bare = item(BOB, { internetMessageId: 'bare-id-1@parley.test' });
    assert.equal((await imap.deliver(bare)).created, true);
    assert.equal((await imap.deliver(bare)).created, false);
  });

  it('keeps at most maxConnections idle connections: the least recently used one logs out', async () => {
    const imap = connector({ maxConnections: 1, idleMs: 60_000 });
    const loggedOut = () => fixture.dovecot.log().split('\n').filter((l) => l.includes(`imap(${ERIN})`) && l.includes('Logged out')).length;
    await imap.deliver(item(ERIN));
    const before = loggedOut();
    await imap.deliver(item(FRANK));
    await eventually(`${ERIN}'s kept connection logged out`, async () => (loggedOut() > before ? true : undefined), 5_000);
  });

  it('delivers exactly once when the APPEND answer is lost on the way back', async () => {
    const relay = await startImapRelay(fixture.dovecot.port);
    try {
      const imap = connector({ url: relay.url });
      const one = item(CAROL);
      const cut = relay.cutNextAppendAnswer();
      const error = await refusal(imap.deliver(one));
      await cut;
      assert.equal(error.code, 'REMOTE_UNAVAILABLE', error.message);
      assert.equal(withMessageId(await messagesOf(fixture.dovecot, CAROL), one.internetMessageId), 1, 'the server stored it');
      assert.equal((await imap.deliver(one)).created, false, 'the retry finds it');
      assert.equal(withMessageId(await messagesOf(fixture.dovecot, CAROL), one.internetMessageId), 1);
    } finally {
      await relay.close();
    }
  });

  it('after a Dovecot restart between two attempts, the repeat finds the message (a kept connection is replaced)', async () => {
    const imap = connector();
    const one = item(DAVE);
    assert.equal((await imap.deliver(one)).created, true);
    await fixture.dovecot.stop();
    await fixture.dovecot.start();
    assert.equal((await imap.deliver(one)).created, false);
    assert.equal(withMessageId(await messagesOf(fixture.dovecot, DAVE), one.internetMessageId), 1);
  });

  it('a stopped Dovecot is REMOTE_UNAVAILABLE (retried), and the delivery succeeds once it is back', async () => {
    const imap = connector();
    const one = item(ERIN);
    await fixture.dovecot.stop();
    try {
      const error = await refusal(imap.deliver(one));
      assert.equal(error.code, 'REMOTE_UNAVAILABLE');
      assert.match(error.message, /cannot reach the IMAP server imap:\/\/127\.0\.0\.1:\d+ .*ECONNREFUSED/);
      const again = await refusal(imap.missedSummary(one.mailbox));
      assert.equal(again.code, 'REMOTE_UNAVAILABLE');
    } finally {
      await fixture.dovecot.start();
    }
    assert.equal((await imap.deliver(one)).created, true);
    assert.equal(withMessageId(await messagesOf(fixture.dovecot, ERIN), one.internetMessageId), 1);
  });

  it('a wrong password is REMOTE_REFUSED at once, saying the credentials were refused', async () => {
    const imap = connector({ signIn: { method: 'master', username: MASTER.username, password: 'wrong' } });
    const error = await refusal(imap.deliver(item(ALICE)));
    assert.equal(error.code, 'REMOTE_REFUSED');
    assert.match(error.message, /refused the credentials \(signing in as master user parley for alice@example\.test\).*AUTHENTICATIONFAILED/);
    const checks = await imap.check(ALICE);
    assert.deepEqual(checks.map((c) => [c.step, c.ok]), [['sign-in', false]]);
    assert.match(checks[0]?.detail ?? '', /check the user name and password/);
  });

  it('signs in with SASL PLAIN and an authorization identity; an unknown mailbox is REMOTE_REFUSED naming why', async () => {
    const imap = connector({ signIn: { method: 'authzid', ...MASTER } });
    const one = item(ALICE, { itemClass: 'IPM.Note.Microsoft.Conversation', isRead: true });
    assert.equal((await imap.deliver(one)).created, true);
    const error = await refusal(imap.deliver(item(`nobody@${DOMAIN}`)));
    assert.equal(error.code, 'REMOTE_REFUSED');
    assert.match(error.message, /accepted the password but refused .*nobody@example\.test.*does not exist there, or the account may not act for it/);
    const checks = await imap.check(`nobody@${DOMAIN}`);
    assert.deepEqual(checks.map((c) => [c.step, c.ok]), [['sign-in', true], ['mailbox', false]]);
  });

  it('signs in with per-user credentials; a user without any is REMOTE_REFUSED', async () => {
    const own = new Map(USERS.map((u) => [u.address, { username: u.address, password: u.password }]));
    own.delete(FRANK);
    const imap = connector({ signIn: { method: 'per-user', credentials: (m) => own.get(m) } });
    assert.equal((await imap.deliver(item(BOB))).created, true);
    const error = await refusal(imap.deliver(item(FRANK)));
    assert.equal(error.code, 'REMOTE_REFUSED');
    assert.match(error.message, /no IMAP credentials for frank@example\.test/);
  });

  it('counts Missed Conversations and the unread ones by SEARCH in the folder; a mailbox without the folder has none', async () => {
    const imap = connector({ folder: 'Missed Test' });
    const mailbox = CAROL;
    assert.deepEqual(await imap.missedSummary(mailbox), { total: 0, unread: 0 });
    await imap.deliver(item(mailbox));
    await imap.deliver(item(mailbox));
    await imap.deliver(item(mailbox, { isRead: true }));
    await imap.deliver(item(mailbox, { itemClass: 'IPM.Note.Microsoft.Conversation', isRead: false }));
    assert.deepEqual(await imap.missedSummary(mailbox), { total: 3, unread: 2 });
  });

  it('mailbox test: every step passes and the test message is gone', async () => {
    const imap = connector({ folder: 'Check Test' });
    const mailbox = DAVE;
    const checks = await imap.check(mailbox);
    assert.deepEqual(checks.map((c) => [c.step, c.ok]), [['sign-in', true], ['mailbox', true], ['folder', true], ['write', true]], JSON.stringify(checks));
    assert.match(checks[2]?.detail ?? '', /was missing and is now created and subscribed/);
    assert.match(checks[3]?.detail ?? '', /removed it \(UID EXPUNGE\)/);
    assert.deepEqual(await messagesOf(fixture.dovecot, mailbox, 'Check Test'), []);
    const second = await imap.check(mailbox);
    assert.match(second[2]?.detail ?? '', /the folder "Check Test" exists/);
  });

  it('refuses an item it must not write (no InternetMessageId) before connecting', async () => {
    const error = await refusal(connector().deliver(item(ALICE, { internetMessageId: ' ' })));
    assert.equal(error.code, 'INVALID_REQUEST');
  });
});

describe('IMAP mailbox connector: rights (ACL) and TLS', { skip }, () => {
  const fixture = dovecotFixture({ acl: true, tls: true });
  const connector = (o?: Partial<ImapConnectorOptions>) => fixture.connector(o);

  it('a folder the account may not write to (ACL without insert) is REMOTE_REFUSED naming the right; mailbox test fails at write', async () => {
    const mailbox = ALICE;
    const imap = connector();
    assert.equal((await imap.deliver(item(mailbox))).created, true);
    // the owner (whose rights a master user gets: acl_user = %u) may look and read, not insert
    fixture.dovecot.doveadm(['acl', 'set', '-u', mailbox, FOLDER, 'owner', 'lookup', 'read']);
    const fresh = connector();
    const error = await refusal(fresh.deliver(item(mailbox)));
    assert.equal(error.code, 'REMOTE_REFUSED', error.message);
    assert.match(error.message, /lacks the right \(ACL\)/);
    const checks = await fresh.check(mailbox);
    assert.deepEqual(checks.map((c) => [c.step, c.ok]), [['sign-in', true], ['mailbox', true], ['folder', true], ['write', false]], JSON.stringify(checks));
  });

  it('STARTTLS and imaps:// with the CA given work; without it the certificate is refused with what to do', async () => {
    const ca = (await import('node:fs')).readFileSync(fixture.dovecot.caFile ?? '');
    const starttls = connector({ starttls: true, ca });
    assert.equal((await starttls.deliver(item(BOB))).created, true);
    const imaps = connector({ url: `imaps://127.0.0.1:${fixture.dovecot.imapsPort}`, ca });
    assert.equal((await imaps.deliver(item(BOB))).created, true);
    const untrusted = await refusal(connector({ url: `imaps://127.0.0.1:${fixture.dovecot.imapsPort}` }).deliver(item(BOB)));
    assert.equal(untrusted.code, 'REMOTE_REFUSED', untrusted.message);
    assert.match(untrusted.message, /cannot be trusted .*give the CA/);
  });

  it('a server that offers no STARTTLS is refused when STARTTLS is required', async () => {
    const plain = await startDovecot({ users: USERS, masters: [MASTER] });
    try {
      const error = await refusal(connector({ url: plain.url, starttls: true }).deliver(item(BOB)));
      assert.equal(error.code, 'REMOTE_REFUSED', error.message);
      assert.match(error.message, /does not offer STARTTLS/);
    } finally {
      await plain.destroy();
    }
  });
});

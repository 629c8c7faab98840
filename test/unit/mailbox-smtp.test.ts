// Inbound SMTP on loopback, spoken raw (RFC 5321) by a client in a child process, on each storage engine.
import assert from 'node:assert/strict';
import { smtpDialogue } from '../harness/smtp-client.ts';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { MAILBOX_MIGRATIONS, MailboxQuota, createItem, ensureMailbox, findItems, getDistinguishedFolder, startSmtpInbound } from '../../src/mailbox/index.ts';
import type { SmtpListener } from '../../src/mailbox/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

after(() => closeTestPostgres());

const message = (id: string, extra = '') =>
  `From: Eve <eve@elsewhere.example>\r\nTo: bob@parley.test\r\nSubject: Hello Bob\r\nMessage-ID: ${id}\r\nDate: Thu, 01 Jan 2026 10:00:00 +0000\r\n${extra}Content-Type: text/plain\r\n\r\nHi Bob,\r\n..a dotted line\r\n.`;

for (const engine of ENGINES) {
  describe(`inbound SMTP on ${engine.name}`, () => {
    let sql: SqlDatabase;
    let smtp: SmtpListener;
    before(async () => {
      sql = await engine.open();
      await migrate(sql, [MAILBOX_MIGRATIONS]);
      smtp = await startSmtpInbound({ sql, logger: pino({ level: 'silent' }), domain: 'parley.test', userExists: async (a) => a === 'bob@parley.test', address: '127.0.0.1', port: 0, maxBytes: 64 * 1024 });
    });
    after(async () => {
      await smtp.close();
      await sql.close();
    });
    const dialogue = (...commands: string[]): Promise<number[]> => smtpDialogue('127.0.0.1', smtp.port, ...commands);

    it('accepts mail for local users and stores it in Inbox as a plain note, once per Message-ID', async () => {
      const send = (id: string, extra = '') => dialogue('EHLO elsewhere.example', 'MAIL FROM:<eve@elsewhere.example>', 'RCPT TO:<bob@parley.test>', 'DATA', message(id, extra), 'QUIT');
      assert.deepEqual(await send('<1@elsewhere.example>', 'X-MS-Exchange-Organization-Class: IPM.Note.Microsoft.Missed\r\nContent-Class: IPM.Note.Microsoft.Missed\r\n'), [220, 250, 250, 250, 354, 250, 221]);
      assert.deepEqual(await send('<1@elsewhere.example>'), [220, 250, 250, 250, 354, 250, 221], 'a retransmission is accepted');
      const bob = await ensureMailbox(sql, 'bob@parley.test');
      const inbox = await findItems(sql, bob.id, (await getDistinguishedFolder(sql, bob.id, 'inbox')).id);
      assert.equal(inbox.total, 1);
      const [item] = inbox.items;
      assert.equal(item?.itemClass, 'IPM.Note');
      assert.equal(item?.subject, 'Hello Bob');
      assert.equal(item?.from?.address, 'eve@elsewhere.example');
      assert.equal(item?.bodyText?.trim(), 'Hi Bob,\n.a dotted line');
      assert.equal(item?.sentAt, Date.parse('2026-01-01T10:00:00Z'));
      assert.equal((await findItems(sql, bob.id, (await getDistinguishedFolder(sql, bob.id, 'conversationhistory')).id)).total, 0);
    });

    it('is never an open relay, refuses unknown users and oversized mail, and keeps serving', async () => {
      assert.deepEqual(await dialogue('EHLO x', 'MAIL FROM:<eve@elsewhere.example>', 'RCPT TO:<carol@other.example>', 'RCPT TO:<nobody@parley.test>', 'QUIT'), [220, 250, 250, 550, 550, 221]);
      assert.deepEqual(await dialogue('EHLO x', 'MAIL FROM:<eve@elsewhere.example> SIZE=10000000', 'QUIT'), [220, 250, 552, 221]);
      const big = message('<2@elsewhere.example>').replace('Hi Bob,', 'x'.repeat(70 * 1024));
      assert.deepEqual(await dialogue('EHLO x', 'MAIL FROM:<eve@elsewhere.example>', 'RCPT TO:<bob@parley.test>', 'DATA', big, 'QUIT'), [220, 250, 250, 250, 354, 552, 221]);
      assert.deepEqual(await dialogue('EHLO x', 'QUIT'), [220, 250, 221]);
    });

    it('refuses a recipient whose mailbox is at ProhibitSendReceiveQuota at RCPT TO (452 4.2.2), takes the others', async () => {
      const quota = new MailboxQuota({ issueWarningQuota: Infinity, prohibitSendQuota: Infinity, prohibitSendReceiveQuota: 4096, recoverableItemsQuota: Infinity });
      const users = ['dora@parley.test', 'fred@parley.test'];
      const small = await startSmtpInbound({ sql, logger: pino({ level: 'silent' }), domain: 'parley.test', userExists: async (a) => users.includes(a), address: '127.0.0.1', port: 0, quota });
      try {
        const dora = await ensureMailbox(sql, 'dora@parley.test');
        await createItem(sql, dora.id, (await getDistinguishedFolder(sql, dora.id, 'inbox')).id, { subject: 'full', bodyText: 'x'.repeat(4096) });
        const codes = await smtpDialogue('127.0.0.1', small.port, 'EHLO x', 'MAIL FROM:<eve@elsewhere.example>', 'RCPT TO:<dora@parley.test>', 'RCPT TO:<fred@parley.test>', 'DATA', message('<q@elsewhere.example>'), 'QUIT');
        assert.deepEqual(codes, [220, 250, 250, 452, 250, 354, 250, 221]);
        const inbox = async (address: string) => {
          const box = await ensureMailbox(sql, address);
          return (await findItems(sql, box.id, (await getDistinguishedFolder(sql, box.id, 'inbox')).id, { max: 0 })).total;
        };
        assert.deepEqual([await inbox('dora@parley.test'), await inbox('fred@parley.test')], [1, 1]);
        assert.equal(quota.refusals.ProhibitSendReceiveQuota, 1);
      } finally {
        await small.close();
      }
    });
  });
}

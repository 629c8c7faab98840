// Mail to other organisations: EWS SendAndSaveCopy queues it in the durable outbox; the outbound
// worker delivers it over SMTP to a partner (here another Parley's inbound listener on loopback),
// retries temporary failures with back-off and fails permanent ones, keeping the reason; each
// attempt holds a lease on its entry, so that several workers never take one entry twice and an
// entry whose worker died is sent when the lease ends. On each storage engine.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { MAILBOX_MIGRATIONS, SmtpOutbound, dueOutbound, ensureMailbox, findItems, getDistinguishedFolder, getOutbound, leaseDueOutbound, startSmtpInbound } from '../../src/mailbox/index.ts';
import { enqueueOutbound, markOutboundAttemptFailed, markOutboundSent } from '../../src/mailbox/smtp/outbox.ts';
import type { SmtpListener } from '../../src/mailbox/index.ts';
import { answerEws } from '../../src/mailbox/ews/service.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import { parseXml } from '../../src/xml/index.ts';

const logger = pino({ level: 'silent' });
after(() => closeTestPostgres());

const message = { from: { address: 'alice@parley.test' }, to: [{ address: 'bob@partner.example' }], cc: [], subject: 'hi', html: null, text: 'hi', messageId: '<m@parley.test>', date: 0 };

for (const engine of ENGINES) {
  describe(`outbound SMTP on ${engine.name}`, () => {
    let oursSql: SqlDatabase;
    let theirsSql: SqlDatabase;
    let partner: SmtpListener;
    let clock = 1_800_000_000_000;
    const now = () => clock;
    before(async () => {
      oursSql = await engine.open();
      theirsSql = await engine.open();
      await migrate(oursSql, [MAILBOX_MIGRATIONS]);
      await migrate(theirsSql, [MAILBOX_MIGRATIONS]);
      partner = await startSmtpInbound({ sql: theirsSql, logger, domain: 'partner.example', userExists: async (a) => a === 'bob@partner.example', address: '127.0.0.1', port: 0 });
    });
    after(async () => {
      await partner.close();
      await oursSql.close();
      await theirsSql.close();
    });

    const send = async (to: string) => {
      const xml = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body><m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:Message><t:Subject>Hello from Parley</t:Subject><t:Body BodyType="HTML">&lt;p&gt;hi&lt;/p&gt;</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>${to}</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem></s:Body></s:Envelope>`;
      return (await answerEws({ sql: oursSql, domain: 'parley.test', userExists: async () => true, canSendOutside: (a) => !a.endsWith('@nowhere.example'), now }, 'alice@parley.test', parseXml(xml))).xml;
    };

    it('refuses recipients without a route before storing anything', async () => {
      assert.match(await send('carol@nowhere.example'), /ErrorInvalidRequest/);
      assert.equal((await dueOutbound(oursSql, clock)).length, 0);
    });

    it('queues, delivers to the partner, retries outages and fails refusals', async () => {
      assert.match(await send('bob@partner.example'), /NoError/);
      assert.match(await send('bob@down.example'), /NoError/);
      assert.match(await send('nobody@partner.example'), /NoError/);
      const queued = await dueOutbound(oursSql, clock);
      assert.equal(queued.length, 3);
      const worker = new SmtpOutbound({
        sql: oursSql, logger, domain: 'parley.test', now, timeoutMs: 3000, baseDelayMs: 60_000, maxAgeMs: 3_600_000,
        routes: { domains: { 'partner.example': { host: '127.0.0.1', port: partner.port }, 'down.example': { host: '127.0.0.1', port: 1 } } },
      });
      assert.equal(await worker.runOnce(), 1);

      const bob = await ensureMailbox(theirsSql, 'bob@partner.example');
      const inbox = await findItems(theirsSql, bob.id, (await getDistinguishedFolder(theirsSql, bob.id, 'inbox')).id);
      assert.equal(inbox.total, 1);
      assert.equal(inbox.items[0]?.subject, 'Hello from Parley');
      assert.equal(inbox.items[0]?.from?.address, 'alice@parley.test');
      assert.equal(inbox.items[0]?.itemClass, 'IPM.Note');

      const [toBob, toDown, toNobody] = await Promise.all(queued.map(async (q) => (await getOutbound(oursSql, q.id))!));
      assert.equal(toBob?.state, 'sent');
      assert.equal(toDown?.state, 'waiting');
      assert.equal(toDown?.attempts, 1);
      assert.equal(toDown?.nextAttemptAt, clock + 60_000);
      assert.equal(toNobody?.state, 'failed');
      assert.match(toNobody?.lastError ?? '', /550/);

      clock += 3_600_000;
      assert.equal(await worker.runOnce(), 0);
      const gaveUp = (await getOutbound(oursSql, toDown!.id))!;
      assert.equal(gaveUp.state, 'failed');
      assert.equal(gaveUp.attempts, 2);
      const alice = await ensureMailbox(oursSql, 'alice@parley.test');
      assert.equal((await findItems(oursSql, alice.id, (await getDistinguishedFolder(oursSql, alice.id, 'sentitems')).id)).total, 3);
      await worker.stop();
    });

    it('leases each due entry to one worker at a time, however many ask at once', async () => {
      const t = clock + 10 * 86_400_000;
      const ids = new Set<string>();
      for (let i = 0; i < 12; i++) ids.add(await enqueueOutbound(oursSql, 'alice@parley.test', [`u${i}@lease.example`], message, t));
      // five workers (on PostgreSQL, five connections) lease at the same moment
      const leases = await Promise.all(Array.from({ length: 5 }, () => leaseDueOutbound(oursSql, t, 60_000, 4)));
      const taken = leases.flat().map((e) => e.id);
      assert.equal(taken.length, 12, 'every due entry leased');
      assert.equal(new Set(taken).size, 12, 'none leased twice');
      assert.ok(taken.every((id) => ids.has(id)));
      assert.deepEqual(await leaseDueOutbound(oursSql, t + 59_999, 60_000), [], 'nothing is due while its lease lasts');
      for (const e of leases.flat()) assert.equal(await markOutboundSent(oursSql, e, t), true);
    });

    it('gives an entry whose worker died to the next worker when its lease ends, and ignores the first worker after that', async () => {
      const t = clock + 20 * 86_400_000;
      const id = await enqueueOutbound(oursSql, 'alice@parley.test', ['dave@crash.example'], message, t);
      const [first] = await leaseDueOutbound(oursSql, t, 60_000);
      assert.equal(first?.id, id);
      // the first worker never comes back: at the lease's end the entry is due again
      const [second] = await leaseDueOutbound(oursSql, t + 60_000, 60_000);
      assert.equal(second?.id, id);
      assert.equal(second?.leaseUntil, t + 120_000);
      // the first worker does come back, late: its lease is gone, so it changes nothing
      assert.equal(await markOutboundSent(oursSql, first!, t + 61_000), false);
      assert.equal(await markOutboundAttemptFailed(oursSql, first!, 'late', false, t + 61_000, t + 999_000, 86_400_000), undefined);
      assert.equal((await getOutbound(oursSql, id))?.state, 'waiting');
      assert.equal(await markOutboundAttemptFailed(oursSql, second!, '421 busy', false, t + 62_000, t + 120_000, 86_400_000), 'waiting');
      const after = (await getOutbound(oursSql, id))!;
      assert.deepEqual([after.state, after.attempts, after.nextAttemptAt, after.lastError], ['waiting', 1, t + 120_000, '421 busy']);
    });
  });
}

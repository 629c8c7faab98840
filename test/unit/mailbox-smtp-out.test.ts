// Mail to other organisations: EWS SendAndSaveCopy queues it in the durable outbox; the outbound
// worker delivers it over SMTP to a partner (here another Parley's inbound listener on loopback),
// retries temporary failures with back-off and fails permanent ones, keeping the reason.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { MAILBOX_MIGRATIONS, SmtpOutbound, dueOutbound, ensureMailbox, findItems, getDistinguishedFolder, getOutbound, startSmtpInbound } from '../../src/mailbox/index.ts';
import type { SmtpListener } from '../../src/mailbox/index.ts';
import { answerEws } from '../../src/mailbox/ews/service.ts';
import { openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';
import { parseXml } from '../../src/xml/index.ts';

const logger = pino({ level: 'silent' });
const ours = openMemoryDatabase();
const theirs = openMemoryDatabase();
runMigrations(ours, [MAILBOX_MIGRATIONS]);
runMigrations(theirs, [MAILBOX_MIGRATIONS]);
let partner: SmtpListener;
let clock = 1_800_000_000_000;
const now = () => clock;
before(async () => {
  partner = await startSmtpInbound({ db: theirs, logger, domain: 'partner.example', userExists: (a) => a === 'bob@partner.example', address: '127.0.0.1', port: 0 });
});
after(() => partner.close());

const send = async (to: string) => {
  const xml = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body><m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:Message><t:Subject>Hello from Parley</t:Subject><t:Body BodyType="HTML">&lt;p&gt;hi&lt;/p&gt;</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>${to}</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem></s:Body></s:Envelope>`;
  return (await answerEws({ sql: sqliteSql(ours), domain: 'parley.test', userExists: async () => true, canSendOutside: (a) => !a.endsWith('@nowhere.example'), now }, 'alice@parley.test', parseXml(xml))).xml;
};

describe('outbound SMTP', () => {
  it('refuses recipients without a route before storing anything', async () => {
    assert.match(await send('carol@nowhere.example'), /ErrorInvalidRequest/);
    assert.equal(dueOutbound(ours, clock).length, 0);
  });

  it('queues, delivers to the partner, retries outages and fails refusals', async () => {
    assert.match(await send('bob@partner.example'), /NoError/);
    assert.match(await send('bob@down.example'), /NoError/);
    assert.match(await send('nobody@partner.example'), /NoError/);
    const queued = dueOutbound(ours, clock);
    assert.equal(queued.length, 3);
    const worker = new SmtpOutbound({
      db: ours, logger, domain: 'parley.test', now, timeoutMs: 3000, baseDelayMs: 60_000, maxAgeMs: 3_600_000,
      routes: { domains: { 'partner.example': { host: '127.0.0.1', port: partner.port }, 'down.example': { host: '127.0.0.1', port: 1 } } },
    });
    assert.equal(await worker.runOnce(), 1);

    const bob = await ensureMailbox(sqliteSql(theirs), 'bob@partner.example');
    const inbox = await findItems(sqliteSql(theirs), bob.id, (await getDistinguishedFolder(sqliteSql(theirs), bob.id, 'inbox')).id);
    assert.equal(inbox.total, 1);
    assert.equal(inbox.items[0]?.subject, 'Hello from Parley');
    assert.equal(inbox.items[0]?.from?.address, 'alice@parley.test');
    assert.equal(inbox.items[0]?.itemClass, 'IPM.Note');

    const [toBob, toDown, toNobody] = queued.map((q) => getOutbound(ours, q.id)!);
    assert.equal(toBob?.state, 'sent');
    assert.equal(toDown?.state, 'waiting');
    assert.equal(toDown?.attempts, 1);
    assert.equal(toDown?.nextAttemptAt, clock + 60_000);
    assert.equal(toNobody?.state, 'failed');
    assert.match(toNobody?.lastError ?? '', /550/);

    clock += 3_600_000;
    assert.equal(await worker.runOnce(), 0);
    const gaveUp = getOutbound(ours, toDown!.id)!;
    assert.equal(gaveUp.state, 'failed');
    assert.equal(gaveUp.attempts, 2);
    const alice = await ensureMailbox(sqliteSql(ours), 'alice@parley.test');
    assert.equal((await findItems(sqliteSql(ours), alice.id, (await getDistinguishedFolder(sqliteSql(ours), alice.id, 'sentitems')).id)).total, 3);
    await worker.stop();
  });
});

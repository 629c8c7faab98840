// Outbound mail by the recipient domain's MX records (RFC 5321 §5.1, RFC 7505): the order of the
// mail exchangers, the implicit MX, the null MX, what the DNS not answering means, and SmtpOutbound
// trying them — with a table for the DNS and a fake SMTP sender: no socket; the outbox on each
// storage engine.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { DNS_CODES, DnsError } from '../../src/dns/index.ts';
import type { DnsAnswer, MxRecord } from '../../src/dns/index.ts';
import { MAILBOX_MIGRATIONS, NOTE_CLASS, PartnerMailConnector, SmtpOutbound, getOutbound, mailExchangers, nullMx, orderMx } from '../../src/mailbox/index.ts';
import type { DeliveryItem, MailDns, SmtpSend, SmtpServer } from '../../src/mailbox/index.ts';
import { readTrace, TRACE_MIGRATIONS } from '../../src/observability/trace.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate } from '../../src/storage/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const SETS = [MAILBOX_MIGRATIONS, TRACE_MIGRATIONS];
after(() => closeTestPostgres());

/** A DNS from tables: MX records and addresses by name; a name in `nxdomain` does not exist, one in `failing` cannot be asked. */
function tableDns(t: { mx?: Record<string, MxRecord[]>; hosts?: Record<string, string[]>; nxdomain?: string[]; failing?: string[] }): MailDns & { asked: string[] } {
  const asked: string[] = [];
  const answer = <T>(name: string, records: T[] | undefined): DnsAnswer<T> => {
    if (t.failing?.includes(name)) throw new DnsError(DNS_CODES.TIMEOUT, `DNS could not answer ${name} (127.0.0.53:53: no answer within 2000 ms)`);
    if (t.nxdomain?.includes(name)) return { records: [], ttl: 60, noSuchName: true };
    return { records: records ?? [], ttl: 60 };
  };
  return {
    asked,
    mx: async (domain) => {
      asked.push(`MX ${domain}`);
      return answer(domain, t.mx?.[domain]);
    },
    addresses: async (host) => {
      asked.push(`A/AAAA ${host}`);
      return answer(host, t.hosts?.[host]);
    },
  };
}

const mx = (preference: number, exchange: string): MxRecord => ({ preference, exchange });
/** a sequence of "random" numbers */
const seq = (...values: number[]) => () => values.shift() ?? 0;

describe('the order of mail exchangers (RFC 5321 §5.1)', () => {
  it('tries the lowest preference first', () => {
    assert.deepEqual(orderMx([mx(20, 'b'), mx(5, 'a'), mx(30, 'c')]).map((r) => r.exchange), ['a', 'b', 'c']);
  });

  it('randomises exchangers of equal preference, and only among themselves', () => {
    const records = [mx(10, 'a'), mx(10, 'b'), mx(10, 'c'), mx(20, 'z')];
    // Fisher–Yates from the end: random 0 swaps c with a, then 0 swaps b with c
    assert.deepEqual(orderMx(records, seq(0, 0)).map((r) => r.exchange), ['b', 'c', 'a', 'z']);
    assert.deepEqual(orderMx(records, seq(0.99, 0.99)).map((r) => r.exchange), ['a', 'b', 'c', 'z']);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(orderMx(records).map((r) => r.exchange).join(''));
    assert.deepEqual([...seen].sort(), ['abcz', 'acbz', 'bacz', 'bcaz', 'cabz', 'cbaz'], 'every order of the equal ones, z always last');
  });

  it('knows the null MX: "." alone', () => {
    assert.ok(nullMx([mx(0, '')]));
    assert.ok(!nullMx([mx(0, ''), mx(10, 'mail.x.test')]));
    assert.ok(!nullMx([]));
  });
});

describe('the mail exchangers of a domain', () => {
  it('looks up each MX host\'s addresses, in MX order', async () => {
    const dns = tableDns({ mx: { 'org-c.test': [mx(20, 'backup.org-c.test'), mx(10, 'mail.org-c.test')] }, hosts: { 'mail.org-c.test': ['192.0.2.25', '2001:db8::25'], 'backup.org-c.test': ['192.0.2.26'] } });
    assert.deepEqual(await mailExchangers(dns, 'org-c.test'), {
      ok: true,
      implicit: false,
      exchangers: [
        { host: 'mail.org-c.test', preference: 10, addresses: ['192.0.2.25', '2001:db8::25'] },
        { host: 'backup.org-c.test', preference: 20, addresses: ['192.0.2.26'] },
      ],
    });
  });

  it('without MX records, the domain itself is the mail exchanger (the implicit MX)', async () => {
    const dns = tableDns({ hosts: { 'org-c.test': ['192.0.2.80'] } });
    assert.deepEqual(await mailExchangers(dns, 'org-c.test'), { ok: true, implicit: true, exchangers: [{ host: 'org-c.test', preference: 0, addresses: ['192.0.2.80'] }] });
    assert.deepEqual(await mailExchangers(tableDns({}), 'bare.test'), { ok: false, permanent: true, reason: 'bare.test has no MX, A or AAAA record: it receives no mail' });
  });

  it('fails for good a domain that does not exist, or takes no mail (null MX, RFC 7505), without asking more', async () => {
    const gone = tableDns({ nxdomain: ['gone.test'] });
    assert.deepEqual(await mailExchangers(gone, 'gone.test'), { ok: false, permanent: true, reason: 'gone.test does not exist (the DNS answered NXDOMAIN to its MX query)' });
    assert.deepEqual(gone.asked, ['MX gone.test']);
    const none = tableDns({ mx: { 'nomail.test': [mx(0, '')] }, hosts: { 'nomail.test': ['192.0.2.1'] } });
    assert.deepEqual(await mailExchangers(none, 'nomail.test'), { ok: false, permanent: true, reason: 'nomail.test accepts no mail: its MX record is "." (a null MX, RFC 7505)' });
    assert.deepEqual(none.asked, ['MX nomail.test'], 'no implicit MX behind a null MX');
  });

  it('a "." beside real MX records is no host to try', async () => {
    const dns = tableDns({ mx: { 'odd.test': [mx(0, ''), mx(10, 'mail.odd.test')] }, hosts: { 'mail.odd.test': ['192.0.2.5'] } });
    const found = await mailExchangers(dns, 'odd.test');
    assert.ok(found.ok);
    assert.deepEqual(found.exchangers.map((x) => x.host), ['mail.odd.test']);
  });

  it('skips an MX host without addresses; fails for good when none has one', async () => {
    const some = tableDns({ mx: { 'x.test': [mx(10, 'dead.x.test'), mx(20, 'mail.x.test')] }, hosts: { 'mail.x.test': ['192.0.2.9'] } });
    const found = await mailExchangers(some, 'x.test');
    assert.ok(found.ok);
    assert.deepEqual(found.exchangers.map((x) => x.host), ['mail.x.test']);
    const none = tableDns({ mx: { 'x.test': [mx(10, 'dead.x.test')] } });
    assert.deepEqual(await mailExchangers(none, 'x.test'), { ok: false, permanent: true, reason: 'no mail exchanger of x.test has an address: dead.x.test has no A or AAAA record' });
  });

  it('an MX host that is an address needs no lookup', async () => {
    const dns = tableDns({ mx: { 'lit.test': [mx(10, '192.0.2.44')] } });
    assert.deepEqual(await mailExchangers(dns, 'lit.test'), { ok: true, implicit: false, exchangers: [{ host: '192.0.2.44', preference: 10, addresses: ['192.0.2.44'] }] });
    assert.deepEqual(dns.asked, ['MX lit.test']);
  });

  it('the DNS not answering is temporary: for the MX query, or for every MX host', async () => {
    const down = await mailExchangers(tableDns({ failing: ['org-c.test'] }), 'org-c.test');
    assert.equal(down.ok, false);
    assert.ok(!down.ok && !down.permanent && /^the MX records of org-c\.test cannot be looked up: DNS could not answer/.test(down.reason), JSON.stringify(down));
    const hosts = await mailExchangers(tableDns({ mx: { 'org-c.test': [mx(10, 'mail.org-c.test')] }, failing: ['mail.org-c.test'] }), 'org-c.test');
    assert.ok(!hosts.ok && !hosts.permanent && /^the mail exchangers of org-c\.test cannot be looked up: mail\.org-c\.test: DNS could not answer/.test(hosts.reason), JSON.stringify(hosts));
  });
});

for (const engine of ENGINES) {
  describe(`SmtpOutbound by MX on ${engine.name}`, () => {
    let sql: SqlDatabase;
    let clock: number;
    beforeEach(async () => {
      sql = await engine.open();
      await migrate(sql, SETS);
      clock = T0;
    });
    afterEach(() => sql.close());

    const item = (mailbox: string): DeliveryItem => ({
      mailbox,
      folder: 'inbox',
      itemClass: NOTE_CLASS,
      internetMessageId: '<sp-mx1@parley.test>',
      subject: 'Conversation with Alice',
      from: { name: 'Alice', address: 'alice@parley.test' },
      to: [{ address: mailbox }],
      bodyHtml: '<p>hi</p>',
      bodyText: 'hi\n',
      sentAt: new Date(T0),
      isRead: false,
      traceId: 'sp-mx1',
    });
    /** queues an e-mail to `mailbox` as the offline spool does (traced), returns the outbox entry's id */
    const queue = async (mailbox: string) => (await new PartnerMailConnector({ sql, routes: {}, now: () => clock }).deliver(item(mailbox))).itemId;

    /** A fake sender: each address answers as the table says (250 when absent); records the servers tried. */
    function fakeSend(answers: Record<string, 'unreachable' | number> = {}): { send: SmtpSend; tried: SmtpServer[] } {
      const tried: SmtpServer[] = [];
      const send: SmtpSend = async (server) => {
        tried.push(server);
        const a = answers[server.host];
        if (a === 'unreachable') throw Object.assign(new Error(`connect ECONNREFUSED ${server.host}:${server.port}`), { code: 'ESOCKET' });
        if (typeof a === 'number') throw Object.assign(new Error(`Can't send mail - all recipients were rejected: ${a} no`), { code: 'EENVELOPE', responseCode: a });
      };
      return { send, tried };
    }
    const outbound = (dns: MailDns, send: SmtpSend, routes = {}) => new SmtpOutbound({ sql, logger, domain: 'parley.test', routes, dns, send, now: () => clock, baseDelayMs: 60_000, random: () => 0.99 });
    const steps = async () => (await readTrace(sql, 'sp-mx1')).map((s): Record<string, unknown> => ({ step: s.step, ...s.detail }));

    const ORG_C = { mx: { 'org-c.test': [mx(10, 'mail.org-c.test'), mx(20, 'backup.org-c.test')] }, hosts: { 'mail.org-c.test': ['192.0.2.25', '192.0.2.125'], 'backup.org-c.test': ['192.0.2.26'] } };

    it('sends to the preferred MX host on port 25: STARTTLS when offered, its certificate named but not required to verify', async () => {
      const id = await queue('erin@org-c.test');
      const { send, tried } = fakeSend();
      assert.equal(await outbound(tableDns(ORG_C), send).runOnce(), 1);
      assert.deepEqual(tried, [{ host: '192.0.2.25', port: 25, secure: false, requireTls: false, servername: 'mail.org-c.test', verifyCertificate: false, label: 'mail.org-c.test[192.0.2.25]:25 (MX 10)' }]);
      assert.equal((await getOutbound(sql, id))?.state, 'sent');
      const sent = (await steps()).find((s) => s.step === 'mail-sent');
      assert.equal(sent?.host, 'mail.org-c.test');
      assert.equal(sent?.address, '192.0.2.25');
      assert.equal(sent?.port, 25);
    });

    it('moves on to the next address and the next MX host while they cannot be reached', async () => {
      const id = await queue('erin@org-c.test');
      const { send, tried } = fakeSend({ '192.0.2.25': 'unreachable', '192.0.2.125': 'unreachable' });
      assert.equal(await outbound(tableDns(ORG_C), send).runOnce(), 1);
      assert.deepEqual(tried.map((s) => s.label), ['mail.org-c.test[192.0.2.25]:25 (MX 10)', 'mail.org-c.test[192.0.2.125]:25 (MX 10)', 'backup.org-c.test[192.0.2.26]:25 (MX 20)']);
      assert.equal((await getOutbound(sql, id))?.state, 'sent');
    });

    it('every server unreachable: retried later, each one\'s reason kept', async () => {
      const id = await queue('erin@org-c.test');
      const { send } = fakeSend({ '192.0.2.25': 'unreachable', '192.0.2.125': 'unreachable', '192.0.2.26': 'unreachable' });
      assert.equal(await outbound(tableDns(ORG_C), send).runOnce(), 0);
      const entry = (await getOutbound(sql, id));
      assert.equal(entry?.state, 'waiting');
      assert.equal(entry?.nextAttemptAt, T0 + 60_000);
      assert.match(entry?.lastError ?? '', /mail\.org-c\.test\[192\.0\.2\.25\]:25 \(MX 10\): connect ECONNREFUSED.*backup\.org-c\.test\[192\.0\.2\.26\]:25 \(MX 20\): connect ECONNREFUSED/);
      assert.equal((await steps()).at(-1)?.step, 'mail-retry');
    });

    it('an MX host that answers speaks for the domain: 4xx is retried later, 5xx fails; no other host is tried', async () => {
      const id = await queue('erin@org-c.test');
      const busy = fakeSend({ '192.0.2.25': 451 });
      await outbound(tableDns(ORG_C), busy.send).runOnce();
      assert.equal(busy.tried.length, 1);
      assert.equal((await getOutbound(sql, id))?.state, 'waiting');
      clock += 60_000;
      const refusing = fakeSend({ '192.0.2.25': 550 });
      await outbound(tableDns(ORG_C), refusing.send).runOnce();
      assert.equal(refusing.tried.length, 1);
      assert.equal((await getOutbound(sql, id))?.state, 'failed');
      assert.deepEqual((await steps()).map((s) => s.step), ['mail-queued', 'mail-retry', 'mail-failed']);
    });

    it('the implicit MX: the domain\'s own address on port 25', async () => {
      await queue('erin@org-c.test');
      const { send, tried } = fakeSend();
      assert.equal(await outbound(tableDns({ hosts: { 'org-c.test': ['192.0.2.80'] } }), send).runOnce(), 1);
      assert.deepEqual(tried.map((s) => [s.label, s.servername]), [['org-c.test[192.0.2.80]:25 (A/AAAA of the domain, which has no MX record)', 'org-c.test']]);
    });

    it('a null MX or a domain that does not exist fails the entry at once: kept in the outbox with the reason, mail-failed in the trace, nothing sent', async () => {
      const id = await queue('erin@nomail.test');
      const { send, tried } = fakeSend();
      assert.equal(await outbound(tableDns({ mx: { 'nomail.test': [mx(0, '')] } }), send).runOnce(), 0);
      assert.equal(tried.length, 0);
      const entry = (await getOutbound(sql, id));
      assert.equal(entry?.state, 'failed');
      assert.equal(entry?.lastError, 'nomail.test accepts no mail: its MX record is "." (a null MX, RFC 7505)');
      assert.deepEqual((await steps()).map((s) => [s.step, s.reason]), [['mail-queued', undefined], ['mail-failed', 'nomail.test accepts no mail: its MX record is "." (a null MX, RFC 7505)']]);

      await sql.exec('DELETE FROM mail_outbox');
      const gone = await queue('erin@gone.test');
      await outbound(tableDns({ nxdomain: ['gone.test'] }), send).runOnce();
      assert.equal((await getOutbound(sql, gone))?.state, 'failed');
      assert.match((await getOutbound(sql, gone))?.lastError ?? '', /gone\.test does not exist/);
    });

    it('the DNS not answering is a retry; once it answers, the e-mail goes', async () => {
      const id = await queue('erin@org-c.test');
      const { send, tried } = fakeSend();
      await outbound(tableDns({ ...ORG_C, failing: ['org-c.test'] }), send).runOnce();
      const entry = (await getOutbound(sql, id));
      assert.equal(entry?.state, 'waiting');
      assert.match(entry?.lastError ?? '', /the MX records of org-c\.test cannot be looked up/);
      assert.equal((await steps()).at(-1)?.step, 'mail-retry');
      assert.equal(tried.length, 0);
      clock += 60_000;
      assert.equal(await outbound(tableDns(ORG_C), send).runOnce(), 1);
      assert.equal((await getOutbound(sql, id))?.state, 'sent');
    });

    it('a domain route or the smarthost wins over MX: the DNS is not asked, the certificate is verified', async () => {
      await queue('erin@org-c.test');
      const dns = tableDns(ORG_C);
      const { send, tried } = fakeSend();
      await outbound(dns, send, { domains: { 'org-c.test': { host: 'relay.org-c.test', port: 2525, requireTls: true } } }).runOnce();
      assert.deepEqual(tried, [{ host: 'relay.org-c.test', port: 2525, secure: false, requireTls: true, verifyCertificate: true, label: 'relay.org-c.test:2525 (domain route)' }]);
      assert.deepEqual(dns.asked, []);
      await sql.exec('DELETE FROM mail_outbox');
      await queue('erin@org-c.test');
      await outbound(dns, send, { smarthost: { host: 'smarthost.test', port: 587 } }).runOnce();
      assert.equal(tried.at(-1)?.label, 'smarthost.test:587 (smarthost)');
      assert.deepEqual(dns.asked, []);
    });
  });
}

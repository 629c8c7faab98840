// Issue 18, finding 3: one user could fill the disk through the offline spool (500 offline
// messages of 60 KB accepted in 2.5 s, then moved into the recipient's mailbox) and through EWS
// CreateItem SendOnly to a local user. Here, with small limits from the config file, the same
// attack is bounded: the first messages are 202, then 480 with a Warning naming the limit; every
// 202'd message reaches the mailbox; others are served meanwhile; a full mailbox refuses offline
// IM and EWS (ErrorQuotaExceeded, read by ews-javascript-api); the spooler and the trace show it.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ews from 'ews-javascript-api';
import { sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const { EmailMessage, ExchangeService, ExchangeVersion, ItemView, MessageBody, ServiceError, ServiceResponseException, Uri, WebCredentials, WellKnownFolderName } = ews;

const DOMAIN = 'parley.test';
const KB = 1024;
const USERS = ['alice', 'bob', 'carol', 'dave', 'mallory', 'erin'];
// the attack's message: 60 KB, as in the review
const BIG = 60 * KB;
const CONFIG = {
  messaging: { deviceTimeout: 1 },
  offlineIm: {
    // ten of the review's messages, then no more until they are delivered
    senderQuota: { maxBytes: '600KB', maxMessages: 100, perMinute: 20 },
    recipientQuota: { maxBytes: '5MB', maxMessages: 200 },
  },
  // the ten messages' Missed Conversation (HTML and text of 600 KB) fills this
  mailboxQuota: { issueWarningQuota: '512KB', prohibitSendQuota: 'unlimited', prohibitSendReceiveQuota: '1MB' },
};

let server: RunningServer;
let configPath = '';
const people = sdkClients(() => server, DOMAIN, { requestTimeoutMs: 10_000 });

before(async () => {
  configPath = join(process.env.TMPDIR ?? '/tmp', `parley-security-quota-${process.pid}.json`);
  writeFileSync(configPath, JSON.stringify(CONFIG));
  server = await startServer({ domain: DOMAIN, users: USERS.map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })), extraArgs: ['--config', configPath] });
  // long enough that nothing is delivered while the attack runs; shortened below to deliver
  await admin('Set-CsImConfiguration', '-OfflineImPickupDelay', '00:10:00');
});

after(async () => {
  await people.closeAll();
  await server?.stop();
  rmSync(configPath, { force: true });
});

async function admin(...args: string[]): Promise<string> {
  const r = await runCli(['admin', ...server.storageArgs, ...args]);
  assert.equal(r.code, 0, `parley admin ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A body of exactly `bytes` bytes that starts with a marker the transcript can be searched for. */
const body = (marker: string, bytes: number) => `${marker} ${'x'.repeat(bytes - marker.length - 1)}`;

function mailbox(user: string): InstanceType<typeof ExchangeService> {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Credentials = new WebCredentials(`${user}@${DOMAIN}`, `${user}-pw`);
  service.Url = new Uri(`http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`);
  return service;
}

const entryOf = (warning: string | undefined) => /spool entry (sp-[a-z2-7]{16})/.exec(warning ?? '')?.[1];

describe('offline spool and mailbox quotas', () => {
  const accepted: string[] = [];
  let pings = 0;
  let refusedCallId = '';

  it('one sender\'s 60 KB offline messages: 202 up to offlineIm.senderQuota.maxBytes, then 480 naming it; another sender is still served', async () => {
    const alice = await people.connect('alice');
    const statuses: number[] = [];
    let refusal: { status: number; warning: string; callId: string } | undefined;
    // the review sent 500; the limit stops this one at the eleventh
    for (let i = 0; i < 20 && refusal === undefined; i++) {
      const res = await alice.sendMessage(`sip:bob@${DOMAIN}`, body(`attack-${i}`, BIG));
      statuses.push(res.status);
      if (res.status === 202) accepted.push(`attack-${i}`);
      else refusal = { status: res.status, warning: res.headers.get('warning') ?? '', callId: res.headers.get('call-id') ?? '' };
    }
    assert.deepEqual(statuses, [...Array<number>(10).fill(202), 480]);
    assert.match(refusal?.warning ?? '', /^399 parley\.test "offline message refused: alice@parley\.test has 600 KB waiting for delivery and this message of 60 KB would pass the limit of 600 KB \(offlineIm\.senderQuota\.maxBytes\)/);
    refusedCallId = refusal?.callId ?? '';

    // meanwhile, another sender to another recipient
    const carol = await people.connect('carol');
    const other = await carol.sendMessage(`sip:dave@${DOMAIN}`, body('from-carol', BIG));
    assert.equal(other.status, 202, other.headers.get('warning') ?? '');
    // and alice is still refused: nothing was delivered yet
    assert.equal((await alice.sendMessage(`sip:erin@${DOMAIN}`, 'short')).status, 480);
  });

  it('the refusal is in the trace, by Call-ID, with its reason; the spooler lists what waits', async () => {
    const trace = await runCli(['trace', refusedCallId, ...server.storageArgs]);
    assert.equal(trace.code, 0, trace.stderr);
    assert.match(trace.stdout, /\brefused\b.*quota=sender-bytes .*setting=offlineIm\.senderQuota\.maxBytes/);
    const list = await runCli(['spooler', 'list', '--user', `alice@${DOMAIN}`, '--state', 'waiting', ...server.storageArgs]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /BYTES/);
    assert.match(list.stdout, /waiting\s+alice@parley\.test\s+bob@parley\.test\s+10\s+600 KB/);
  });

  it('every 202\'d message ends in the mailbox; the full mailbox then refuses offline IM from anyone, naming mailboxQuota.prohibitSendReceiveQuota', async () => {
    await admin('Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01');
    // the pickup time of an entry is fixed when it is made; bring the waiting ones forward
    const list = await runCli(['spooler', 'list', '--state', 'waiting', '--json', ...server.storageArgs]);
    for (const e of JSON.parse(list.stdout) as Array<{ id: string }>) {
      const r = await runCli(['spooler', 'retry', e.id, ...server.storageArgs]);
      assert.equal(r.code, 0, r.stderr);
    }
    const bob = mailbox('bob');
    const missed = await eventually('bob\'s missed conversation', async () => {
      const found = await bob.FindItems(WellKnownFolderName.ConversationHistory, new ItemView(10));
      return found.TotalCount > 0 ? found.Items : undefined;
    }, 20_000);
    assert.equal(missed.length, 1, 'one conversation');
    const item = await EmailMessage.Bind(bob, missed[0]!.Id);
    const text = item.Body.Text ?? '';
    for (const marker of accepted) assert.ok(text.includes(marker), `${marker} is in the Missed Conversation`);
    assert.equal(accepted.length, 10);
    // long again: what is sent from here on waits in the spool, for the counts below
    await admin('Set-CsImConfiguration', '-OfflineImPickupDelay', '00:10:00');

    const carol = await people.connect('carol');
    const res = await carol.sendMessage(`sip:bob@${DOMAIN}`, 'are you there?');
    assert.equal(res.status, 480);
    assert.match(res.headers.get('warning') ?? '', /offline message refused: bob@parley\.test's mailbox is full: [\d.]+ MB, at or above its ProhibitSendReceiveQuota of 1 MB \(mailboxQuota\.prohibitSendReceiveQuota\)/);
    // alice's copy of the conversation filled hers: her own limit was given back on delivery, her mailbox's now refuses
    const alice = await people.connect('alice');
    const own = await alice.sendMessage(`sip:erin@${DOMAIN}`, 'short');
    assert.equal(own.status, 480);
    assert.match(own.headers.get('warning') ?? '', /the mailbox of alice@parley\.test is full: .*ProhibitSendReceiveQuota of 1 MB.*your copy of an offline conversation goes there/);
    // people whose mailboxes have room still leave offline messages
    const dave = await people.connect('dave');
    const fine = await dave.sendMessage(`sip:erin@${DOMAIN}`, 'hello erin');
    assert.equal(fine.status, 202, fine.headers.get('warning') ?? '');
    assert.ok(entryOf(fine.headers.get('warning')));
  });

  it('EWS CreateItem SendOnly to the full mailbox: ErrorQuotaExceeded, stored nowhere', async () => {
    const carol = mailbox('carol');
    const message = new EmailMessage(carol);
    message.Subject = 'big news';
    message.Body = new MessageBody('hello bob');
    message.ToRecipients.Add(`bob@${DOMAIN}`);
    await assert.rejects(message.Send(), (error: unknown) => {
      assert.ok(error instanceof ServiceResponseException, String(error));
      assert.equal(error.ErrorCode, ServiceError.ErrorQuotaExceeded);
      assert.match(error.Message, /bob@parley\.test's mailbox is full: .*ProhibitSendReceiveQuota .*mailboxQuota\.prohibitSendReceiveQuota/);
      return true;
    });
    const inbox = await mailbox('bob').FindItems(WellKnownFolderName.Inbox, new ItemView(10));
    assert.equal(inbox.TotalCount, 0);
    // to a mailbox with room the same send works
    const ok = new EmailMessage(carol);
    ok.Subject = 'small news';
    ok.Body = new MessageBody('hello erin');
    ok.ToRecipients.Add(`erin@${DOMAIN}`);
    await ok.Send();
    assert.equal((await mailbox('erin').FindItems(WellKnownFolderName.Inbox, new ItemView(10))).TotalCount, 1);
  });

  it('the rate: a sender past offlineIm.senderQuota.perMinute gets 480 with Retry-After', async () => {
    const mallory = await people.connect('mallory');
    const statuses: number[] = [];
    let last;
    // a burst of 20, then one every 3 s: a slow machine may get one or two more in before the refusal
    for (let i = 0; i < 40 && last?.status !== 480; i++) {
      last = await mallory.sendMessage(`sip:dave@${DOMAIN}`, `ping ${i}`);
      statuses.push(last.status);
    }
    pings = statuses.filter((s) => s === 202).length;
    assert.deepEqual(statuses, [...Array<number>(pings).fill(202), 480]);
    assert.ok(pings >= 20 && pings < 30, `${pings} accepted`);
    assert.match(last?.headers.get('warning') ?? '', /the limit is 20 a minute \(offlineIm\.senderQuota\.perMinute\); try again in \d+ s/);
    assert.match(last?.headers.get('retry-after') ?? '', /^\d+$/);
  });

  it('parley spooler quota and GET /admin/spool/quota show what waits, the mailboxes, the refusals and the limits', async () => {
    const cli = await runCli(['spooler', 'quota', '--config', configPath, ...server.storageArgs]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`limits \\(from ${configPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
    assert.match(cli.stdout, /offlineIm\.senderQuota\s+600 KB, 100 messages undelivered; 20 a minute/);
    assert.match(cli.stdout, /mailboxQuota\s+IssueWarning 512 KB, ProhibitSend unlimited, ProhibitSendReceive 1 MB/);
    assert.match(cli.stdout, /^bob@parley\.test\s.*MailboxDisabled\s+recipient-mailbox ×1/m);
    assert.match(cli.stdout, /^alice@parley\.test sender-bytes: 2 refused, the last at .* \(with erin@parley\.test\): offline message refused: alice@parley\.test has 600 KB waiting/m);
    assert.match(cli.stdout, /^mallory@parley\.test sender-rate: 1 refused/m);

    const json = await runCli(['spooler', 'quota', '--user', `alice@${DOMAIN}`, '--json', ...server.storageArgs]);
    assert.equal(json.code, 0, json.stderr);
    const alice = (JSON.parse(json.stdout) as { users: Array<{ address: string; refusals: Array<{ reason: string; count: number }> }> }).users;
    assert.deepEqual(alice.map((u) => u.address), [`alice@${DOMAIN}`]);
    assert.deepEqual(alice[0]?.refusals.map((r) => [r.reason, r.count]).sort(), [['sender-bytes', 2], ['sender-mailbox', 1]]);

    const token = readFileSync(join(server.dataDir, 'secrets', 'admin.token'), 'utf8').trim();
    const res = await fetch(`http://${server.http.host}:${server.http.port}/admin/spool/quota?user=dave@${DOMAIN}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const live = (await res.json()) as {
      limits: { sender: { perMinute: number }; mailbox: { prohibitSendQuota: number | string } };
      users: Array<{ address: string; waitingFor: { messages: number } }>;
      sinceStart: { spool: Record<string, number>; mailbox: Record<string, number> };
    };
    assert.equal(live.limits.sender.perMinute, 20);
    assert.equal(live.limits.mailbox.prohibitSendQuota, 'unlimited');
    assert.equal(live.users[0]?.address, `dave@${DOMAIN}`);
    assert.equal(live.users[0]?.waitingFor.messages, pings, 'mallory\'s pings wait for dave (carol\'s was delivered)');
    assert.deepEqual([live.sinceStart.spool['sender-bytes'], live.sinceStart.spool['sender-rate'], live.sinceStart.spool['recipient-mailbox'], live.sinceStart.spool['sender-mailbox']], [2, 1, 1, 1]);
    assert.equal(live.sinceStart.mailbox.ProhibitSendReceiveQuota, 1, 'the EWS send');
  });
});

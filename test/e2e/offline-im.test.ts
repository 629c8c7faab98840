// Offline IM end to end (issue 5): a MESSAGE to a user who is not signed in becomes, after the
// pickup delay, one Missed Conversation in their Conversation History and one Conversation item in
// the sender's — read back with ews-javascript-api, a client we did not write. The gate, the
// spooler and the trace are driven through the real CLI, as an administrator would.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ews from 'ews-javascript-api';
import { sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const { EmailMessage, ExchangeService, ExchangeVersion, ItemSchema, ItemView, PropertySet, BasePropertySet, BodyType, SearchFilter, Uri, WebCredentials, WellKnownFolderName } = ews;

const DOMAIN = 'parley.test';
let server: RunningServer;
const people = sdkClients(() => server, DOMAIN, { requestTimeoutMs: 10_000 });

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Example' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob Example' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw', displayName: 'Carol' },
      { address: `dave@${DOMAIN}`, password: 'dave-pw' },
    ],
    // a device that does not answer counts as offline after one second (default 10 s)
    extraArgs: ['--config', configFile({ messaging: { deviceTimeout: 1 } })],
  });
  await admin('Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:02');
});

after(async () => {
  await people.closeAll();
  await server?.stop();
});

function configFile(content: object): string {
  const file = join(process.env.TMPDIR ?? '/tmp', `parley-offline-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(content));
  return file;
}

async function admin(...args: string[]): Promise<string> {
  const r = await runCli(['admin', ...server.storageArgs, ...args]);
  assert.equal(r.code, 0, `parley admin ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function cli(...args: string[]) {
  return runCli([...args, ...server.storageArgs]);
}

function mailbox(user: string): InstanceType<typeof ExchangeService> {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Credentials = new WebCredentials(`${user}@${DOMAIN}`, `${user}-pw`);
  service.Url = new Uri(`http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`);
  return service;
}

/** The Conversation History items of one class, with their bodies as text. */
async function history(user: string, itemClass: string) {
  const service = mailbox(user);
  const found = await service.FindItems(WellKnownFolderName.ConversationHistory, new SearchFilter.IsEqualTo(ItemSchema.ItemClass, itemClass), new ItemView(50));
  const out = [];
  for (const item of found.Items) {
    const props = new PropertySet(BasePropertySet.FirstClassProperties);
    props.RequestedBodyType = BodyType.Text;
    const message = await EmailMessage.Bind(service, item.Id, props);
    out.push({ subject: message.Subject, isRead: message.IsRead, from: message.From.Address, body: message.Body.Text, internetMessageId: message.InternetMessageId });
  }
  return out;
}

const entryIdOf = (warning: string | undefined): string => /spool entry (sp-[a-z2-7]{16})/.exec(warning ?? '')?.[1] ?? '';

describe('offline IM', () => {
  it('three messages to offline bob: 202 each, then exactly one Missed Conversation with all three in order, and alice\'s copy', async () => {
    const alice = await people.connect('alice');
    const texts = ['Are you there?', 'It is about <the report> & the budget', 'Call me when you are back'];
    const entries = [];
    for (const text of texts) {
      const res = await alice.sendMessage(`sip:bob@${DOMAIN}`, text);
      assert.equal(res.status, 202, `${res.status} ${res.headers.get('warning')}`);
      assert.match(res.headers.get('warning') ?? '', /bob@parley\.test is offline; stored/);
      entries.push(entryIdOf(res.headers.get('warning')));
    }
    assert.equal(new Set(entries).size, 1, 'one conversation, one spool entry');
    const entry = entries[0] ?? '';
    assert.notEqual(entry, '');

    const missed = await eventually('the missed conversation', async () => {
      const items = await history('bob', 'IPM.Note.Microsoft.Missed');
      return items.length > 0 ? items : undefined;
    }, 15_000);
    assert.equal(missed.length, 1);
    const [item] = missed;
    assert.equal(item?.subject, 'Missed conversation with Alice Example');
    assert.equal(item?.isRead, false);
    assert.equal(item?.from, `alice@${DOMAIN}`);
    assert.equal(item?.internetMessageId, `<${entry}@${DOMAIN}>`);
    const body = item?.body ?? '';
    const at = texts.map((t) => body.indexOf(t));
    assert.ok(at.every((i) => i >= 0) && at[0]! < at[1]! && at[1]! < at[2]!, `all three, in order:\n${body}`);

    const copy = await eventually('alice\'s conversation copy', async () => {
      const items = await history('alice', 'IPM.Note.Microsoft.Conversation');
      return items.length > 0 ? items : undefined;
    }, 15_000);
    assert.equal(copy.length, 1);
    assert.equal(copy[0]?.subject, 'Conversation with Bob Example');

    // no duplicates later, nothing in Drafts
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await history('bob', 'IPM.Note.Microsoft.Missed')).length, 1);
    const drafts = await mailbox('alice').FindItems(WellKnownFolderName.Drafts, new ItemView(10));
    assert.equal(drafts.TotalCount, 0);

    // the History Spooler and the trace tell the story
    const show = await cli('spooler', 'show', entry, '--json');
    assert.equal(show.code, 0, show.stderr);
    const detail = JSON.parse(show.stdout) as { state: string; messages: number; transcript: Array<{ text: string }> };
    assert.equal(detail.state, 'delivered');
    assert.equal(detail.messages, 3);
    assert.deepEqual(detail.transcript.map((m) => m.text), texts);
    const trace = await cli('trace', entry);
    assert.equal(trace.code, 0, trace.stderr);
    for (const step of ['received', 'gated', 'spooled', 'picked-up', 'delivered']) assert.match(trace.stdout, new RegExp(`\\b${step}\\b`), trace.stdout);
    assert.match(trace.stdout, /itemId=/);
  });

  it('Set-CsImConfiguration -EnableOfflineIM $False: 480 with a Warning naming the setting; $True again: 202', async () => {
    const alice = await people.connect('alice');
    await admin('Set-CsImConfiguration', '-EnableOfflineIM', '$False');
    try {
      const res = await alice.sendMessage(`sip:dave@${DOMAIN}`, 'hello?');
      assert.equal(res.status, 480);
      assert.match(res.headers.get('warning') ?? '', /EnableOfflineIm is False in CsImConfiguration Global/);
    } finally {
      await admin('Set-CsImConfiguration', '-EnableOfflineIM', '$True');
    }
    assert.equal((await alice.sendMessage(`sip:dave@${DOMAIN}`, 'hello?')).status, 202);
  });

  it('a sender granted a policy with EnableIMAutoArchiving $False gets 480; other senders do not', async () => {
    await admin('New-CsClientPolicy', '-Identity', 'Tag:NoArchive', '-EnableIMAutoArchiving', '$False');
    await admin('Grant-CsClientPolicy', '-Identity', `carol@${DOMAIN}`, '-PolicyName', 'NoArchive');
    const carol = await people.connect('carol');
    const refused = await carol.sendMessage(`sip:dave@${DOMAIN}`, 'from carol');
    assert.equal(refused.status, 480);
    assert.match(refused.headers.get('warning') ?? '', /EnableIMAutoArchiving is False in CsClientPolicy Tag:NoArchive/);
    const alice = await people.connect('alice');
    assert.equal((await alice.sendMessage(`sip:dave@${DOMAIN}`, 'from alice')).status, 202);
    const trace = await cli('trace', refused.headers.get('call-id') ?? refused.response.headers.get('call-id') ?? '');
    assert.equal(trace.code, 0, trace.stderr);
    assert.match(trace.stdout, /gated .*decision=refused/);
  });

  it('a registration that never answers counts as offline once the device timeout ends', async () => {
    // a device that takes the message and never answers it
    const bob = await people.connect('bob', { onMessage: () => new Promise<number>(() => {}), register: true });
    const alice = await people.connect('alice');
    // a 202 at all means the server answered within the sender's own transaction timeout (the SDK
    // gives up after Timer F, 32 s); the trace below shows it came from the device timeout
    const res = await alice.sendMessage(`sip:bob@${DOMAIN}`, 'are you really there?');
    assert.equal(res.status, 202, res.headers.get('warning') ?? '');
    const entry = entryIdOf(res.headers.get('warning'));
    const trace = await cli('trace', entry);
    assert.match(trace.stdout, /no answer within 1 s/);
    await bob.unregister();
  });

  it('spooler list, retry and purge refuse what they cannot do, with exit codes', async () => {
    const list = await cli('spooler', 'list', '--user', `dave@${DOMAIN}`, '--json');
    assert.equal(list.code, 0, list.stderr);
    const entries = JSON.parse(list.stdout) as Array<{ id: string; state: string }>;
    assert.ok(entries.length >= 1);
    const unknown = await cli('spooler', 'show', 'sp-aaaaaaaaaaaaaaaa');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no spool entry sp-aaaaaaaaaaaaaaaa/);
    const bad = await cli('spooler', 'list', '--state', 'lost');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /state must be one of waiting, delivering, delivered, failed/);
    const usage = await cli('spooler', 'retry');
    assert.equal(usage.code, 2);
    const delivered = await eventually('a delivered entry', async () => {
      const r = await cli('spooler', 'list', '--state', 'delivered', '--json');
      const list = JSON.parse(r.stdout) as Array<{ id: string }>;
      return list[0];
    }, 15_000);
    const retry = await cli('spooler', 'retry', delivered.id);
    assert.equal(retry.code, 1);
    assert.match(retry.stderr, /is delivered; only failed or waiting entries can be retried/);
    const purge = await cli('spooler', 'purge', delivered.id);
    assert.equal(purge.code, 0, purge.stderr);
    assert.equal((await cli('spooler', 'show', delivered.id)).code, 1);
  });

  it('the admin API shows the spooler and the trace, with problem JSON for mistakes', async () => {
    const token = readFileSync(join(server.dataDir, 'secrets', 'admin.token'), 'utf8').trim();
    const api = async (method: string, path: string) => {
      const res = await fetch(`http://${server.http.host}:${server.http.port}/admin${path}`, { method, headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, type: res.headers.get('content-type') ?? '', body: (await res.json().catch(() => undefined)) as Record<string, unknown> };
    };
    const list = await api('GET', `/spool?user=bob@${DOMAIN}&state=delivered`);
    assert.equal(list.status, 200);
    const entries = list.body.entries as Array<{ id: string; state: string; recipient: string }>;
    assert.ok(entries.length >= 1 && entries.every((e) => e.state === 'delivered' && e.recipient === `bob@${DOMAIN}`));
    const id = entries[0]?.id ?? '';
    const one = await api('GET', `/spool/${id}`);
    assert.equal(one.status, 200);
    assert.ok(Array.isArray(one.body.transcript));
    const trace = await api('GET', `/trace/${id}`);
    assert.equal(trace.status, 200);
    assert.ok((trace.body.events as Array<{ step: string }>).some((e) => e.step === 'delivered'));
    const again = await api('POST', `/spool/${id}/retry`);
    assert.equal(again.status, 409);
    assert.match(again.type, /application\/problem\+json/);
    assert.equal(again.body.code, 'ENTRY_STATE');
    const missing = await api('GET', '/spool/sp-aaaaaaaaaaaaaaaa');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'ENTRY_NOT_FOUND');
    assert.equal((await api('GET', '/spool?state=lost')).status, 400);
  });
});

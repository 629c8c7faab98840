// The two packages Parley adds to presence: message-summary (RFC 3842) over Missed Conversations,
// and vnd-parley-provisioning (issue 3) over effective settings. Their bodies exactly, who may
// subscribe, and what triggers a NOTIFY.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { DIRECTORY_MIGRATIONS, addUser } from '../../src/directory/index.ts';
import type { EventNotifications } from '../../src/events/index.ts';
import { MAILBOX_MIGRATIONS, MISSED_CLASS, MessageSummaryPackage, buildMessageSummary, createItem, ensureMailbox, getDistinguishedFolder, missedConversationSummary } from '../../src/mailbox/index.ts';
import type { SipContext } from '../../src/router/context.ts';
import { GLOBAL, IM_CONFIGURATION, ProvisioningPackage, SETTINGS_MIGRATIONS, updateInstance } from '../../src/settings/index.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';
import { eventually } from '../harness/eventually.ts';
import { addTestUser, openSettingsDatabase } from './settings-fixture.ts';

after(closeTestPostgres);

const BOB = 'bob@parley.test';
const ctx = {} as SipContext;
const change = { actor: 'test', cmdlet: 'Set-CsImConfiguration', now: () => 1 };

async function database() {
  const db = openMemoryDatabase();
  runMigrations(db, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, MAILBOX_MIGRATIONS]);
  await addUser(sqliteSql(db), { address: BOB, password: 'pw' });
  return db;
}

/** An event service stand-in that records what the package asked for. */
function recorder() {
  const calls: string[] = [];
  const events: EventNotifications = {
    changed: (pkg, resource) => void calls.push(`${pkg} ${resource}`),
    changedAll: (pkg) => void calls.push(`${pkg} *`),
    watching: () => [],
  };
  return { calls, events };
}

describe('message-summary (RFC 3842)', () => {
  it('writes the §5.2 body: status line, account, text-message new/old, CRLF line ends', async () => {
    assert.equal(
      buildMessageSummary('sip:bob@parley.local', { total: 5, unread: 2 }),
      'Messages-Waiting: yes\r\nMessage-Account: sip:bob@parley.local\r\nText-Message: 2/3\r\n',
    );
    assert.equal(
      buildMessageSummary('sip:bob@parley.local', { total: 4, unread: 0 }),
      'Messages-Waiting: no\r\nMessage-Account: sip:bob@parley.local\r\nText-Message: 0/4\r\n',
    );
    assert.equal(buildMessageSummary('sip:bob@parley.local', { total: 0, unread: 0 }), 'Messages-Waiting: no\r\nMessage-Account: sip:bob@parley.local\r\nText-Message: 0/0\r\n');
  });

  it("counts the user's unread and read Missed Conversations, nothing else", async () => {
    const db = await database();
    const pkg = new MessageSummaryPackage({ summary: async (address) => missedConversationSummary(sqliteSql(db), address) });
    assert.equal(pkg.name, 'message-summary');
    assert.equal(pkg.contentType, 'application/simple-message-summary');
    assert.equal(await pkg.body({ resource: BOB }), 'Messages-Waiting: no\r\nMessage-Account: sip:bob@parley.test\r\nText-Message: 0/0\r\n', 'no mailbox yet');
    const mailbox = await ensureMailbox(sqliteSql(db), BOB);
    const history = await getDistinguishedFolder(sqliteSql(db), mailbox.id, 'conversationhistory');
    await createItem(sqliteSql(db), mailbox.id, history.id, { itemClass: MISSED_CLASS, subject: 'a', isRead: false });
    await createItem(sqliteSql(db), mailbox.id, history.id, { itemClass: MISSED_CLASS, subject: 'b', isRead: true });
    await createItem(sqliteSql(db), mailbox.id, history.id, { itemClass: 'IPM.Note.Microsoft.Conversation', subject: 'c', isRead: false });
    await createItem(sqliteSql(db), mailbox.id, (await getDistinguishedFolder(sqliteSql(db), mailbox.id, 'inbox')).id, { itemClass: 'IPM.Note', subject: 'd', isRead: false });
    assert.equal(await pkg.body({ resource: BOB }), 'Messages-Waiting: yes\r\nMessage-Account: sip:bob@parley.test\r\nText-Message: 1/1\r\n');
  });

  it('shows the last known counts while the mailbox cannot be read, and fails when it never could', async () => {
    let down = false;
    const pkg = new MessageSummaryPackage({ summary: async () => { if (down) throw new Error('EWS down'); return { total: 3, unread: 2 }; } });
    assert.match(await pkg.body({ resource: BOB }), /Text-Message: 2\/1/);
    down = true;
    assert.match(await pkg.body({ resource: BOB }), /Text-Message: 2\/1/);
    await assert.rejects(pkg.body({ resource: 'carol@parley.test' }), /EWS down/);
  });

  it('lets only the account owner subscribe, and forwards mailbox changes once started', async () => {
    const db = await database();
    const pkg = new MessageSummaryPackage({ summary: async (address) => missedConversationSummary(sqliteSql(db), address) });
    assert.equal(pkg.authorize(ctx, BOB, BOB), 'ok');
    const refused = pkg.authorize(ctx, 'alice@parley.test', BOB);
    assert.notEqual(refused, 'ok');
    assert.equal(refused !== 'ok' && refused.status, 403);
    assert.match(refused !== 'ok' ? refused.warning : '', /alice@parley\.test may not watch the messages of bob@parley\.test/);
    const { calls, events } = recorder();
    pkg.mailboxChanged(BOB);
    pkg.start(ctx, events);
    pkg.mailboxChanged(BOB);
    pkg.close();
    pkg.mailboxChanged(BOB);
    assert.deepEqual(calls, [`message-summary ${BOB}`]);
  });
});

for (const engine of ENGINES) describe(`vnd-parley-provisioning on ${engine.name}`, () => {
  const URL = 'http://127.0.0.1:8080/EWS/Exchange.asmx';
  const sub = { resource: BOB, flow: { local: { address: '127.0.0.1' } } };
  let sql: SqlDatabase;
  beforeEach(async () => {
    sql = await openSettingsDatabase(engine);
    await addTestUser(sql, BOB);
  });
  afterEach(() => sql.close());

  it("sends the user's effective settings as JSON, TimeSpans as the cmdlets write them", async () => {
    // the EWS URL names the address the subscriber reached the server at (its flow's local address)
    const pkg = new ProvisioningPackage({ sql, ewsUrl: (local) => `http://${local}:8080/EWS/Exchange.asmx`, pollMs: 0 });
    assert.equal(pkg.name, 'vnd-parley-provisioning');
    assert.equal(pkg.contentType, 'application/vnd.parley.provisioning+json');
    assert.equal(
      await pkg.body(sub),
      '{"EnableOfflineIm":true,"EnableIMAutoArchiving":true,"DisableSavingIM":false,"OfflineImPickupDelay":"00:02:00","OfflineImMaxAge":"1.00:00:00",' +
        '"ConversationIdleTimeout":"00:10:00","UnreadMissedTimeout":"00:05:00",' +
        `"ewsUrl":"${URL}","sources":{"ImConfiguration":"Global","ClientPolicy":"Global"}}`,
    );
    assert.equal(pkg.authorize(ctx, BOB, BOB), 'ok');
    const refused = pkg.authorize(ctx, 'alice@parley.test', BOB);
    assert.equal(refused !== 'ok' && refused.status, 403);
  });

  it('notices a change of settings (by any process: settings_version) and settingsChanged() (this one)', async () => {
    const pkg = new ProvisioningPackage({ sql, ewsUrl: () => URL, pollMs: 0 });
    const { calls, events } = recorder();
    pkg.start(ctx, events);
    await pkg.poll();
    assert.deepEqual(calls, [], 'nothing changed since start');
    await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { EnableOfflineIm: false }, change);
    await pkg.poll();
    await pkg.poll();
    assert.deepEqual(calls, ['vnd-parley-provisioning *'], 'once per change');
    assert.match(await pkg.body(sub), /"EnableOfflineIm":false/);
    // the Conversation History timeouts travel the same way: a change is a NOTIFY with the new values
    await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { ConversationIdleTimeout: 90, UnreadMissedTimeout: 0 }, change);
    await pkg.poll();
    assert.deepEqual(calls, ['vnd-parley-provisioning *', 'vnd-parley-provisioning *']);
    assert.match(await pkg.body(sub), /"ConversationIdleTimeout":"00:01:30","UnreadMissedTimeout":"00:00:00"/);
    // a write of the tables by another process (no repository function of this one involved)
    await sql.run("UPDATE im_configurations SET offline_im_pickup_delay_s = 61 WHERE scope = 'global'");
    await pkg.poll();
    assert.equal(calls.length, 3);
    pkg.settingsChanged();
    assert.equal(calls.length, 4);
    pkg.close();
  });

  it('polls on its own every pollMs', async () => {
    const pkg = new ProvisioningPackage({ sql, ewsUrl: () => URL, pollMs: 10 });
    const { calls, events } = recorder();
    pkg.start(ctx, events);
    await pkg.poll();
    await updateInstance(sql, IM_CONFIGURATION, GLOBAL, { OfflineImPickupDelay: 60 }, change);
    // nothing calls poll() now: the package's own timer must find the change (however loaded the machine)
    await eventually('the package\'s own poll to see the change', async () => (calls.length > 0 ? true : undefined));
    pkg.close();
    assert.deepEqual(calls, ['vnd-parley-provisioning *']);
  });
});

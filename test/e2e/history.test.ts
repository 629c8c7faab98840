// Conversation History (issue 14) against a running `parley serve`: JsSIP and the SDK chat online
// and each finds one Conversation item with the whole exchange in order (read with
// ews-javascript-api); a resumed conversation is a second item; a participant who does not
// archive gets none; a conversation that goes offline half-way makes one Missed item for the
// offline part and history items for the online part, no message twice for one person; a message
// asking for a display notification that is never displayed becomes a Missed item; a SIGKILL while
// history is being written leaves nothing doubled. Each test has its own pair of users.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import ews from 'ews-javascript-api';
import type { IncomingMessage, SipClient } from '../../src/client/index.ts';
import { runHistoryCommand } from '../../src/history/index.ts';
import { arrivals, sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { startJsSipUser, type JsSipUser } from '../harness/jssip.ts';
import { runCli, runCommandHere, startServer, type RunningServer } from '../harness/server.ts';

const { BasePropertySet, EmailMessage, ExchangeService, ExchangeVersion, ItemView, PropertySet, Uri, WebCredentials, WellKnownFolderName } = ews;

const DOMAIN = 'parley.test';
const MISSED = 'IPM.Note.Microsoft.Missed';
const CONVERSATION = 'IPM.Note.Microsoft.Conversation';
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'ivan', 'judy', 'kate', 'liam'];
const name = (user: string) => `${user[0]?.toUpperCase()}${user.slice(1)} Example`;
const address = (user: string) => `${user}@${DOMAIN}`;

let server: RunningServer;
let dataDir = '';
/** where the CLI finds the server's state (its data directory, or its PostgreSQL database) */
let storage: string[] = [];
const people = sdkClients(() => server, DOMAIN, { register: true });
const jssip: JsSipUser[] = [];

before(async () => {
  server = await startServer({ domain: DOMAIN, users: USERS.map((u) => ({ address: address(u), password: `${u}-pw`, displayName: name(u) })) });
  dataDir = server.dataDir;
  storage = server.storageArgs;
  // short enough for a test, long enough for a loaded machine to exchange a few messages within it
  await admin('Set-CsImConfiguration', '-ConversationIdleTimeout', '00:00:04', '-UnreadMissedTimeout', '00:00:03', '-OfflineImPickupDelay', '00:00:01');
});

after(async () => {
  await Promise.all(jssip.map((u) => u.stop().catch(() => {})));
  await people.closeAll();
  await server?.stop();
});

async function admin(...args: string[]): Promise<void> {
  const r = await runCli(['admin', ...storage, ...args]);
  assert.equal(r.code, 0, r.stderr);
}

interface Item {
  itemClass: string;
  subject: string;
  text: string;
  isRead: boolean;
  internetMessageId: string;
}

/** The items of `user`'s Conversation History, through ews-javascript-api (the EWS Managed API's port). */
async function itemsOf(user: string): Promise<Item[]> {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Credentials = new WebCredentials(address(user), `${user}-pw`);
  service.Url = new Uri(`http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`);
  const found = await service.FindItems(WellKnownFolderName.ConversationHistory, new ItemView(100));
  const items: Item[] = [];
  for (const summary of found.Items) {
    const m = await EmailMessage.Bind(service, summary.Id, new PropertySet(BasePropertySet.FirstClassProperties));
    items.push({
      itemClass: m.ItemClass,
      subject: m.Subject,
      // the transcript as text: tags out, entities of the few characters tests use back
      text: m.Body.Text.replace(/<[^>]*>/g, ' ').replace(/&#39;|&apos;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'),
      isRead: m.IsRead,
      internetMessageId: m.InternetMessageId,
    });
  }
  return items;
}

/** Waits until `user` has `count` items of `itemClass` (and says what there is when it does not come). */
async function waitForItems(user: string, itemClass: string, count: number, timeoutMs = 30_000): Promise<Item[]> {
  let last: Item[] = [];
  try {
    return await eventually(`${count} ${itemClass} items for ${user}`, async () => {
      last = (await itemsOf(user)).filter((i) => i.itemClass === itemClass);
      return last.length >= count ? last : undefined;
    }, timeoutMs);
  } catch (err) {
    const list = await runCli(['history', 'list', '--user', address(user), ...storage]);
    throw new Error(`${(err as Error).message}\nitems: ${JSON.stringify(last.map((i) => i.subject))}\n${list.stdout}${list.stderr}\n${server.logs().slice(-3000)}`);
  }
}

/** Asserts the texts appear in `text` in this order. */
function assertInOrder(text: string, texts: readonly string[]): void {
  let from = 0;
  for (const t of texts) {
    const at = text.indexOf(t, from);
    assert.ok(at >= 0, `"${t}" in order in:\n${text}`);
    from = at + t.length;
  }
}

/** How many of `items` hold `text`. */
const holding = (items: readonly Item[], text: string) => items.filter((i) => i.text.includes(text)).length;

interface HistoryRow {
  id: string;
  peer: string;
  state: string;
  closeReason: string | null;
  messages: number;
  entries: Array<{ owner: string; entry: string }>;
}

async function historyList(user: string): Promise<HistoryRow[]> {
  // the command's code in this process: the SIGKILL test polls it to catch a conversation open,
  // which a process start per poll (seconds on a loaded machine) could miss within the 4 s idle timeout
  const r = await runCommandHere(runHistoryCommand, ['list', '--user', address(user), '--json', ...storage]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as HistoryRow[];
}

/** An SDK client and the messages that reach it. */
async function sdkUser(user: string): Promise<{ client: SipClient; next(): Promise<IncomingMessage> }> {
  const client = await people.connect(user);
  const messages = arrivals<IncomingMessage>((push) => client.on('message', push), { what: `message to ${user}`, timeoutMs: 10_000 });
  return { client, next: () => messages.next() };
}

describe('Conversation History', () => {
  it('JsSIP and the SDK chat online: after the idle timeout each has one read Conversation item with the whole exchange in order; resumed, a second', async () => {
    const alice = await startJsSipUser({ wsUrl: server.wsUrl, uri: `sip:${address('alice')}`, password: 'alice-pw' });
    jssip.push(alice);
    const bob = await sdkUser('bob');
    const exchange = async (lines: readonly string[]) => {
      for (const [i, line] of lines.entries()) {
        if (i % 2 === 0) {
          assert.equal((await alice.sendMessage(`sip:${address('bob')}`, line)).status, 200);
          assert.equal((await bob.next()).text, line);
        } else {
          assert.equal((await bob.client.sendMessage(`sip:${address('alice')}`, line)).status, 200);
          assert.equal((await alice.nextMessage()).body, line);
        }
      }
    };
    const first = ['hello bob (1)', 'hi alice (2)', 'lunch at noon? (3)', 'yes & see you <there> (4)'];
    await exchange(first);
    const [aliceItem] = await waitForItems('alice', CONVERSATION, 1);
    const [bobItem] = await waitForItems('bob', CONVERSATION, 1);
    assert.ok(aliceItem && bobItem);
    assert.equal(aliceItem.subject, 'Conversation with Bob Example');
    assert.equal(bobItem.subject, 'Conversation with Alice Example');
    for (const item of [aliceItem, bobItem]) {
      assertInOrder(item.text, first);
      assert.equal(item.isRead, true, 'the user\'s own history is not news');
      assert.match(item.internetMessageId, new RegExp(`^<sp-[a-z2-7]{16}@${DOMAIN}>$`));
    }
    assert.notEqual(aliceItem.internetMessageId, bobItem.internetMessageId);
    const [conversation] = await historyList('alice');
    assert.equal(conversation?.state, 'closed');
    assert.equal(conversation?.peer, address('bob'));
    assert.equal(conversation?.messages, 4);
    assert.deepEqual(conversation?.entries.map((e) => e.owner).sort(), [address('alice'), address('bob')]);
    // `parley trace cv-…` follows the conversation into its entries
    const trace = await runCli(['trace', conversation?.id ?? '', ...storage]);
    assert.equal(trace.code, 0, trace.stderr);
    assert.match(trace.stdout, /opened/);
    assert.match(trace.stdout, /closed/);
    assert.match(trace.stdout, /delivered/);

    const second = ['are you back? (5)', 'yes (6)'];
    await exchange(second);
    const aliceItems = await waitForItems('alice', CONVERSATION, 2);
    const bobItems = await waitForItems('bob', CONVERSATION, 2);
    for (const items of [aliceItems, bobItems]) {
      assert.equal(items.length, 2, 'one more item, no duplicates');
      const resumed = items.find((i) => i.text.includes(second[0] as string));
      assert.ok(resumed);
      assertInOrder(resumed.text, second);
      assert.equal(holding(items, first[0] as string), 1, 'the first part stays in the first item only');
    }
  });

  it('a participant whose EnableIMAutoArchiving is False (granted tag policy) gets no item; the other still does', async () => {
    await admin('New-CsClientPolicy', '-Identity', 'Tag:HistoryOff', '-EnableIMAutoArchiving', '$False');
    await admin('Grant-CsClientPolicy', '-Identity', address('ivan'), '-PolicyName', 'HistoryOff');
    const ivan = await sdkUser('ivan');
    const judy = await sdkUser('judy');
    assert.equal((await ivan.client.sendMessage(`sip:${address('judy')}`, 'not saved for me')).status, 200);
    await judy.next();
    assert.equal((await judy.client.sendMessage(`sip:${address('ivan')}`, 'saved for me')).status, 200);
    await ivan.next();
    const [item] = await waitForItems('judy', CONVERSATION, 1);
    assertInOrder(item?.text ?? '', ['not saved for me', 'saved for me']);
    await eventually('the conversation closed', async () => ((await historyList('ivan'))[0]?.state === 'closed' ? true : undefined));
    assert.deepEqual(await itemsOf('ivan'), []);
  });

  it('goes offline half-way: one Missed item for the offline part, history items for the online part, no message in two items of one person', async () => {
    const carol = await sdkUser('carol');
    const dave = await sdkUser('dave');
    assert.equal((await carol.client.sendMessage(`sip:${address('dave')}`, 'online one')).status, 200);
    await dave.next();
    assert.equal((await dave.client.sendMessage(`sip:${address('carol')}`, 'online two, bye')).status, 200);
    await carol.next();
    // dave signs out of his only device: the conversation ends now
    await dave.client.unregister();
    await dave.client.close();
    for (const line of ['offline three', 'offline four']) {
      const r = await carol.client.sendMessage(`sip:${address('dave')}`, line);
      assert.equal(r.status, 202, r.headers.get('warning') ?? '');
    }
    const [missed] = await waitForItems('dave', MISSED, 1);
    assertInOrder(missed?.text ?? '', ['offline three', 'offline four']);
    // dave: the Missed item and the history of the online part; carol: the copy of the offline part and the history
    const daveItems = await waitForItems('dave', CONVERSATION, 1);
    const carolItems = await waitForItems('carol', CONVERSATION, 2);
    assertInOrder(daveItems[0]?.text ?? '', ['online one', 'online two, bye']);
    const all = { dave: [...daveItems, missed as Item], carol: carolItems };
    for (const [who, items] of Object.entries(all)) {
      for (const line of ['online one', 'online two, bye', 'offline three', 'offline four']) assert.equal(holding(items, line), 1, `${who}: "${line}" in exactly one item`);
    }
    const conversations = await historyList('dave');
    // (the offline messages may be in it too, when they were recorded before the sign-out was: they are only noted there)
    assert.equal(conversations.find((c) => c.entries.length === 2)?.closeReason, 'signed-out', JSON.stringify(conversations));
    // nothing more comes (the sign-out closed the conversation once)
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await itemsOf('dave')).length, 2);
    assert.equal((await itemsOf('carol')).length, 2);
  });

  it('IMDN: a message whose display notification never comes is a Missed item after UnreadMissedTimeout; one reported displayed is not', async () => {
    const erin = await sdkUser('erin');
    const frank = await sdkUser('frank');
    const unread = await erin.client.sendMessage(`sip:${address('frank')}`, 'you will not read this', { requestDisplayNotification: true });
    assert.equal(unread.status, 200);
    const got = await frank.next();
    assert.equal(got.displayNotificationRequested, true);
    // frank's client received it but never says it was displayed
    const [missed] = await waitForItems('frank', MISSED, 1);
    assert.match(missed?.text ?? '', /you will not read this/);
    assert.equal(missed?.isRead, false);

    const read = await erin.client.sendMessage(`sip:${address('frank')}`, 'but this one you read', { requestDisplayNotification: true });
    assert.equal(read.status, 200);
    const seen = await frank.next();
    assert.equal((await frank.client.sendDisplayed(`sip:${address('erin')}`, seen.imdnMessageId ?? '')).status, 200);
    // the conversation closes after the idle timeout: the displayed message is in the history, not missed
    const [history] = await waitForItems('frank', CONVERSATION, 1);
    assert.match(history?.text ?? '', /but this one you read/);
    assert.doesNotMatch(history?.text ?? '', /you will not read this/, 'the missed message is in the missed conversation only');
    const items = await itemsOf('frank');
    assert.equal(items.filter((i) => i.itemClass === MISSED).length, 1, 'the displayed message made no Missed item');
    assert.equal(holding(items, 'you will not read this'), 1);
    assert.equal(holding(items, 'but this one you read'), 1);
    // a displayed report that comes late makes no second item
    assert.equal((await frank.client.sendDisplayed(`sip:${address('erin')}`, got.imdnMessageId ?? '')).status, 200);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await itemsOf('frank')).filter((i) => i.itemClass === MISSED).length, 1);
  });

  it('killed (SIGKILL) while history is being written, then restarted: one item each, nothing doubled', { timeout: 120_000 }, async () => {
    for (const round of ['killed while open', 'killed as it closed']) {
      const kate = await sdkUser('kate');
      const liam = await sdkUser('liam');
      const lines = [`${round}: one`, `${round}: two`];
      assert.equal((await kate.client.sendMessage(`sip:${address('liam')}`, lines[0] as string)).status, 200);
      await liam.next();
      assert.equal((await liam.client.sendMessage(`sip:${address('kate')}`, lines[1] as string)).status, 200);
      await kate.next();
      // both messages committed (the recorder's window is 10 ms), then killed before or as the conversation closes
      await eventually('both recorded', async () => ((await historyList('kate')).find((c) => c.state === 'open')?.messages === 2 ? true : undefined));
      if (round === 'killed as it closed') await eventually('closed', async () => ((await historyList('kate')).every((c) => c.state === 'closed') ? true : undefined), 20_000);
      const exit = await server.kill('SIGKILL');
      assert.equal(exit.signal, 'SIGKILL');
      await people.closeAll();
      server = await startServer({ domain: DOMAIN, dataDir });
      for (const user of ['kate', 'liam']) {
        const items = await waitForItems(user, CONVERSATION, round === 'killed while open' ? 1 : 2);
        assert.equal(holding(items, lines[0] as string), 1, `${user}: ${round}: in one item`);
      }
    }
    await new Promise((r) => setTimeout(r, 2000));
    for (const user of ['kate', 'liam']) assert.equal((await itemsOf(user)).length, 2, `${user}: one item per conversation`);
  });
});

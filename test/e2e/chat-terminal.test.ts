// `parley chat` in a real pseudo-terminal (tmux): alice types her password (not echoed), sees her
// contacts' presence change, sends to and receives from bob (an SDK client), is told in words
// that carol is offline and her message goes to the mailbox, opens a missed conversation that the
// server really delivered to her mailbox, sets her own presence, and leaves with Ctrl-D (exit 0,
// unregistered). Then the refusals outside the terminal: bad arguments (2), a wrong password and
// an unreachable server (1).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MailboxReader } from '../../src/client/index.ts';
import type { DisplayedEvent, IncomingMessage, PresenceInfo } from '../../src/client/index.ts';
import { arrivals, sdkClients } from '../harness/clients.ts';
import { eventually } from '../harness/eventually.ts';
import { REPO_ROOT, runCli, startServer, type RunningServer } from '../harness/server.ts';
import { startTerminal, type TerminalSession } from '../harness/tmux.ts';

const DOMAIN = 'parley.test';
let server: RunningServer;
let terminal: TerminalSession | undefined;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Adams' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob Brown' },
      { address: `carol@${DOMAIN}`, password: 'carol-pw', displayName: 'Carol Clark' },
    ],
  });
  const r = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
  assert.equal(r.code, 0, r.stderr);
  for (const contact of ['bob', 'carol']) {
    const res = await fetch(`http://${server.http.host}:${server.http.port}/presence/contacts/${contact}`, { method: 'PUT', headers: { authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` } });
    assert.equal(res.status, 201);
  }
});

after(async () => {
  await terminal?.close();
  await people.closeAll();
  await server?.stop();
});

const sdkClientsOf = (s: RunningServer) => {
  const c = sdkClients(() => s, DOMAIN);
  return { connect: async (user: string) => c.connect(user) };
};
const chat = (...args: string[]) => [process.execPath, path.join(REPO_ROOT, 'src', 'cli.ts'), 'chat', ...args];

describe('parley chat in a terminal', () => {
  it('signs in, shows presence, sends, receives, lists missed conversations and leaves with Ctrl-D', async () => {
    // a real offline delivery first: carol writes while alice is away; after the pickup delay the
    // server puts a missed conversation in alice's mailbox
    const carol = await people.connect('carol');
    assert.equal((await carol.sendMessage(`sip:alice@${DOMAIN}`, 'did you see the report?')).status, 202);
    const ewsUrl = `http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`;
    const mailbox = new MailboxReader({ ewsUrl, username: `alice@${DOMAIN}`, password: 'alice-pw' });
    await eventually('the missed conversation in alice\'s mailbox', async () => ((await mailbox.listMissedConversations()).length === 1 ? true : undefined));

    terminal = await startTerminal(chat('--server', `tcp://${server.tcp.host}:${server.tcp.port}`, '--user', `alice@${DOMAIN}`), { width: 80 });
    await terminal.waitFor(`Password for alice@${DOMAIN}:`);
    await terminal.type('alice-pw');
    let screen = await terminal.waitFor(/Contacts:\n.*Bob Brown <bob@parley\.test> +Offline\n.*Carol Clark <carol@parley\.test> +Offline/);
    assert.doesNotMatch(screen, /alice-pw/, 'the password is not echoed');
    await terminal.waitFor('You have 1 unread missed conversation: /missed lists them.');

    // bob signs in and sets Busy with a note: alice sees both as they happen, with the time
    const bob = await people.connect('bob', { register: true });
    const toBob = arrivals<IncomingMessage>((push) => bob.on('message', push), { what: 'message to bob' });
    await terminal.waitFor(/\[\d\d:\d\d\] Bob Brown is now Available/);
    await bob.publishPresence({ state: 'Busy', note: 'in a meeting' });
    await terminal.waitFor(/\[\d\d:\d\d\] Bob Brown is now Busy \(in a meeting\)/);

    // alice writes to bob; the outcome in words
    await terminal.type('/msg bob hello from the terminal');
    const first = await toBob.next(5000);
    assert.equal(first.text, 'hello from the terminal');
    assert.equal(first.displayNotificationRequested, true, 'the terminal asks for a display notification (RFC 5438)');
    await terminal.waitFor(/you -> Bob Brown: hello from the terminal\n +delivered/);
    await terminal.waitFor('bob> ');
    // plain lines go to the current conversation
    await terminal.type('second line');
    assert.equal((await toBob.next(5000)).text, 'second line');

    // bob answers; a typing notification before it is not shown
    const typing = '<?xml version="1.0" encoding="UTF-8"?>\n<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><refresh>60</refresh></isComposing>';
    assert.equal((await bob.sendMessage(`sip:alice@${DOMAIN}`, typing, { contentType: 'application/im-iscomposing+xml' })).status, 200);
    const readByAlice = arrivals<DisplayedEvent>((push) => bob.on('displayed', push), { what: 'displayed report to bob' });
    const answer = await bob.sendMessage(`sip:alice@${DOMAIN}`, 'hi alice, in a meeting', { requestDisplayNotification: true });
    assert.equal(answer.status, 200);
    screen = await terminal.waitFor(/\[\d\d:\d\d\] Bob Brown: hi alice, in a meeting/);
    assert.doesNotMatch(screen, /isComposing|im-iscomposing/);
    // printed in the conversation on screen: alice's terminal reports it displayed
    assert.equal((await readByAlice.next(5000)).imdnMessageId, answer.imdnMessageId);

    // carol (signed in for a moment) writes while bob's conversation is on screen: announced, not
    // shown, not reported; /to carol shows it and reports it displayed
    const carolOnline = await people.connect('carol', { register: true });
    const readByAliceForCarol = arrivals<DisplayedEvent>((push) => carolOnline.on('displayed', push), { what: 'displayed report to carol' });
    const asked = await carolOnline.sendMessage(`sip:alice@${DOMAIN}`, 'lunch at noon?', { requestDisplayNotification: true });
    assert.equal(asked.status, 200);
    screen = await terminal.waitFor('New message from Carol Clark (1 waiting): /to carol shows it.');
    assert.doesNotMatch(screen, /lunch at noon/);
    await terminal.type('/to carol');
    await terminal.waitFor(/Now talking with Carol Clark\.\n\[\d\d:\d\d\] Carol Clark: lunch at noon\?/);
    assert.equal((await readByAliceForCarol.next(5000)).imdnMessageId, asked.imdnMessageId);
    await carolOnline.unregister();
    await carolOnline.close();

    // carol is offline: the message goes to her mailbox, and alice is told so in words
    await terminal.type('/msg carol are you there?');
    // her Offline NOTIFY (after the unregister above) may land between the line and its outcome
    await terminal.waitFor(/you -> Carol Clark: are you there\?\n(?:\[\d\d:\d\d\] Carol Clark is now Offline\n)? +offline — will be delivered to their mailbox \(.+\)/);

    // the missed conversation from before: listed, then opened (and marked read on the server)
    await terminal.type('/missed');
    await terminal.waitFor(/Missed conversations, newest first.*\n +1\. \* .*Carol Clark/);
    await terminal.type('/missed 1');
    await terminal.waitFor(/From: +Carol Clark <carol@parley\.test>[\s\S]*did you see the report\?/);
    await eventually('the item marked read', async () => ((await mailbox.listMissedConversations())[0]?.isRead === true ? true : undefined));

    // alice's own presence, as bob sees it
    const watch = await bob.watchPresence(`alice@${DOMAIN}`);
    const seen = arrivals<PresenceInfo>((push) => watch.on('change', push), { what: "alice's presence" });
    await terminal.type('/presence dnd "deep work"');
    await terminal.waitFor('Your presence is now Do Not Disturb (deep work).');
    for (;;) if ((await seen.next(5000)).state === 'Do Not Disturb') break;
    await terminal.type('/presence sleepy');
    await terminal.waitFor(/! "sleepy" is not a presence state; use available, busy, dnd, brb, away or offline/);
    await terminal.type('/nonsense');
    await terminal.waitFor('! unknown command /nonsense; /help lists the commands');

    // Ctrl-D: unregistered (bob sees alice Offline), exit 0
    await terminal.keys('C-d');
    assert.equal(await terminal.exitStatus(), 0);
    for (;;) if ((await seen.next(5000)).state === 'Offline') break;
    await watch.close();
  });

  it('reconnects by itself when the server comes back, and leaves with Ctrl-C', async () => {
    const users = [{ address: `dave@${DOMAIN}`, password: 'dave-pw' }, { address: `erin@${DOMAIN}`, password: 'erin-pw', displayName: 'Erin Evans' }];
    const first = await startServer({ domain: DOMAIN, users });
    let restarted: RunningServer | undefined;
    const term = await startTerminal(chat('--server', `tcp://${first.tcp.host}:${first.tcp.port}`, '--user', `dave@${DOMAIN}`), { env: { PARLEY_PASSWORD: 'dave-pw' } });
    try {
      await term.waitFor(`Signed in as dave@${DOMAIN}`);
      await term.waitFor('> ');
      await first.kill();
      await term.waitFor(/! connection lost.*; reconnecting in \d+ s \(attempt 1\)/);
      restarted = await startServer({ domain: DOMAIN, dataDir: first.dataDir, extraArgs: ['--sip-port', String(first.tcp.port), '--http-port', String(first.http.port)] });
      await term.waitFor('Reconnected.', 20_000);
      // registered again: a message reaches the terminal
      const erin = await sdkClientsOf(restarted).connect('erin');
      assert.equal((await erin.sendMessage(`sip:dave@${DOMAIN}`, 'welcome back')).status, 200);
      await term.waitFor(/\[\d\d:\d\d\] Erin Evans: welcome back/);
      await erin.close();
      await term.keys('C-c');
      assert.equal(await term.exitStatus(), 0);
    } finally {
      await term.close();
      await restarted?.stop();
      await first.stop();
    }
  });

  it('refuses bad arguments (2), a wrong password and an unreachable server (1), with the reason', async () => {
    const noUser = await runCli(['chat']);
    assert.equal(noUser.code, 2);
    assert.match(noUser.stderr, /missing --user ADDRESS/);
    const badServer = await runCli(['chat', '--user', `alice@${DOMAIN}`, '--server', 'http://x']);
    assert.equal(badServer.code, 2);
    assert.match(badServer.stderr, /--server: server URL scheme "http" is not one of tcp, tls, ws, wss/);
    const noDomain = await runCli(['chat', '--user', 'alice']);
    assert.equal(noDomain.code, 2);
    assert.match(noDomain.stderr, /has no domain/);

    const server1 = `tcp://${server.tcp.host}:${server.tcp.port}`;
    const wrong = await runCli(['chat', '--server', server1, '--user', `bob@${DOMAIN}`], { env: { PARLEY_PASSWORD: 'not-the-password' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /sign-in refused for bob@parley\.test: 403 Forbidden: authentication failed for "bob": wrong user name or password/);
    const closed = await runCli(['chat', '--server', 'tcp://127.0.0.1:1', '--user', `bob@${DOMAIN}`], { env: { PARLEY_PASSWORD: 'bob-pw' } });
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /cannot connect to tcp:\/\/127\.0\.0\.1:1: /);

    // not a terminal: the password from PARLEY_PASSWORD, commands from stdin, end of input signs out
    const piped = await runCli(['chat', '--server', server1, '--user', `bob@${DOMAIN}`, '--ews-url', `http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`], { env: { PARLEY_PASSWORD: 'bob-pw' } });
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /Signed in as bob@parley\.test/);
  });
});

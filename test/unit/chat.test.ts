// `parley chat` without a terminal or server: the command line, the commands typed, and what is
// shown (outcomes in words, 80 columns, no control characters from others reaching the terminal).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatUsageError, fallbackEwsUrl, parseChatArgs } from '../../src/chat/args.ts';
import { parseCommand } from '../../src/chat/commands.ts';
import { clean, contactLines, incomingLines, outcomeText, wrap } from '../../src/chat/render.ts';
import { ChatSession } from '../../src/chat/session.ts';
import { cpimWithDisplayRequest, readCpim } from '../../src/client/imdn.ts';
import { Headers } from '../../src/sip/index.ts';
import { AOR, FakeSipServer, incoming } from './fake-sip-server.ts';

const style = { width: 80, color: false };

function response(status: number, reason: string, warning?: string) {
  const headers = new Headers();
  if (warning !== undefined) headers.append('Warning', `399 parley.test "${warning}"`);
  return { status, reason, headers };
}

describe('parley chat arguments', () => {
  it('takes --user and --server, defaulting the server to this machine', () => {
    assert.deepEqual(parseChatArgs(['--user', 'sip:Alice@Parley.local']), { address: 'alice@parley.local', server: 'tcp://127.0.0.1:5060' });
    assert.deepEqual(parseChatArgs(['--user', 'bob@x.test', '--server', 'ws://h:8080/sip', '--ews-url', 'https://mail/EWS/Exchange.asmx']), { address: 'bob@x.test', server: 'ws://h:8080/sip', ewsUrl: 'https://mail/EWS/Exchange.asmx' });
    assert.equal(parseChatArgs(['--help']), 'help');
  });

  it('refuses what it cannot use, saying what to fix', () => {
    const refuses = (args: string[], message: RegExp) => assert.throws(() => parseChatArgs(args), (e: unknown) => e instanceof ChatUsageError && message.test(e.message));
    refuses([], /missing --user ADDRESS/);
    refuses(['--user', 'alice'], /has no domain: write it as user@domain/);
    refuses(['--user', 'a b@x'], /--user: /);
    refuses(['--user', 'a@x', '--server', 'udp://h'], /--server: .*not one of tcp, tls, ws, wss/);
    refuses(['--user', 'a@x', '--ews-url', 'ftp://h'], /--ews-url .* is not an http\(s\) URL/);
    refuses(['--user', 'a@x', '--colour'], /Unknown option '--colour'/);
    refuses(['--user', 'a@x', 'extra'], /unexpected argument "extra"/);
  });

  it('finds EWS on the server host: the WebSocket port, else 8080', () => {
    assert.equal(fallbackEwsUrl('ws://chat.example:9000/sip'), 'http://chat.example:9000/EWS/Exchange.asmx');
    assert.equal(fallbackEwsUrl('tcp://10.0.0.5:5060'), 'http://10.0.0.5:8080/EWS/Exchange.asmx');
    assert.equal(fallbackEwsUrl('tls://[::1]:5061'), 'http://[::1]:8080/EWS/Exchange.asmx');
  });
});

describe('parley chat commands', () => {
  it('reads messages, conversations and the other commands', () => {
    assert.deepEqual(parseCommand('hello there  '), { kind: 'say', text: 'hello there' });
    assert.deepEqual(parseCommand('//etc/passwd is a file'), { kind: 'say', text: '/etc/passwd is a file' });
    assert.deepEqual(parseCommand('/msg bob see you at 3'), { kind: 'msg', to: 'bob', text: 'see you at 3' });
    assert.deepEqual(parseCommand('/msg bob'), { kind: 'error', message: 'usage: /msg USER text' });
    assert.deepEqual(parseCommand('/to carol@parley.test'), { kind: 'to', to: 'carol@parley.test' });
    assert.deepEqual(parseCommand('/missed'), { kind: 'missed' });
    assert.deepEqual(parseCommand('/missed 2'), { kind: 'missed', index: 2 });
    assert.equal(parseCommand('/missed 0').kind, 'error');
    assert.deepEqual(['/contacts', '/help', '/quit', '/exit', '', '   '].map((l) => parseCommand(l).kind), ['contacts', 'help', 'quit', 'quit', 'none', 'none']);
    assert.match((parseCommand('/frobnicate') as { message: string }).message, /unknown command \/frobnicate; \/help lists the commands/);
  });

  it('reads each of the six states, with a note in quotes or as the rest of the line', () => {
    assert.deepEqual(parseCommand('/presence busy "in a meeting"'), { kind: 'presence', state: 'Busy', note: 'in a meeting' });
    assert.deepEqual(parseCommand('/presence busy in a meeting'), { kind: 'presence', state: 'Busy', note: 'in a meeting' });
    assert.deepEqual(parseCommand('/presence do not disturb'), { kind: 'presence', state: 'Do Not Disturb' });
    assert.deepEqual(parseCommand('/presence be right back "5 min"'), { kind: 'presence', state: 'Be Right Back', note: '5 min' });
    assert.deepEqual(['available', 'BUSY', 'dnd', 'brb', 'away', 'offline'].map((s) => (parseCommand(`/presence ${s}`) as { state?: string }).state), ['Available', 'Busy', 'Do Not Disturb', 'Be Right Back', 'Away', 'Offline']);
    assert.deepEqual(parseCommand('/presence'), { kind: 'presence' });
    assert.match((parseCommand('/presence sleepy') as { message: string }).message, /"sleepy" is not a presence state/);
    assert.match((parseCommand('/presence busy in "a meeting"') as { message: string }).message, /put the whole note in quotes/);
  });
});

describe('parley chat screen text', () => {
  it('says each outcome in words, with the server\'s Warning and never a bare code', () => {
    assert.equal(outcomeText(response(200, 'OK')), 'delivered');
    assert.equal(outcomeText(response(202, 'Accepted', 'bob is offline; stored for delivery to their mailbox')), 'offline — will be delivered to their mailbox (bob is offline; stored for delivery to their mailbox)');
    assert.equal(outcomeText(response(480, 'Temporarily Unavailable', 'bob is offline and offline IM is disabled')), 'not delivered: bob is offline and offline IM is disabled');
    assert.equal(outcomeText(response(480, 'Temporarily Unavailable')), 'not delivered: they are offline and cannot take messages now');
    assert.equal(outcomeText(response(599, 'Odd')), 'not delivered: Odd');
  });

  it('keeps control characters of others away from the terminal', () => {
    assert.equal(clean('hi\u001b]0;pwned\u0007 \u001b[2Jthere\r\nnext'), 'hi]0;pwned [2Jthere next');
    assert.equal(clean('a\u202eb\nc', true), 'ab\nc');
    const lines = incomingLines('Mallory\u001b[31m', 'x\u001b[5m', new Date(2026, 0, 1, 9, 5), style);
    assert.deepEqual(lines, ['[09:05] Mallory[31m: x[5m']);
  });

  it('fits 80 columns', () => {
    const long = 'word '.repeat(60).trim();
    const lines = wrap('[12:00] Bob Brown: ', long, 80);
    assert.ok(lines.length > 2);
    for (const line of lines) assert.ok(line.length <= 80, line);
    const contacts = contactLines([{ address: 'someone-with-a-long-name@a-long-domain.example', displayName: 'A Person With A Very Long Display Name Indeed', state: 'Busy', note: 'x'.repeat(80) }], style);
    for (const line of contacts) assert.ok(line.length <= 80, line);
  });
});

describe('parley chat read reports (RFC 5438)', () => {
  /** A session signed in to a scripted server that refuses the subscriptions (chatting works without them). */
  async function signedIn() {
    const peer = new FakeSipServer();
    const shown: string[] = [];
    const screen = { show: (lines: readonly string[]) => shown.push(...lines), setPrompt: () => undefined, style: () => style };
    const session = new ChatSession({ address: 'alice@parley.local', server: 'tcp://127.0.0.1:5060' }, 'pw', screen, { connector: peer.connector, keepAliveIntervalMs: 0, autoReconnect: false });
    const started = session.start();
    const register = await peer.nextRequest('REGISTER');
    peer.reply(register, 200, { contact: `${register.headers.get('contact')};expires=600` });
    for (let i = 0; i < 3; i++) peer.reply(await peer.nextRequest('SUBSCRIBE'), 489);
    await started;
    return { peer, session, shown };
  }
  const fromBob = (text: string, id: string) =>
    incoming('MESSAGE', cpimWithDisplayRequest({ from: 'sip:bob@parley.local', to: AOR }, text, 'text/plain;charset=utf-8', id, new Date()), { 'content-type': 'message/cpim' });
  const fromCarol = (text: string, id: string) => {
    const request = incoming('MESSAGE', cpimWithDisplayRequest({ from: 'sip:carol@parley.local', to: AOR }, text, 'text/plain;charset=utf-8', id, new Date()), { 'content-type': 'message/cpim' });
    request.headers.set('from', '"Carol" <sip:carol@parley.local>;tag=c1');
    return request;
  };

  it('asks for display notifications, reports displayed what it printed, and holds another conversation until it is opened', async () => {
    const { peer, session, shown } = await signedIn();
    try {
      // sent messages ask for a display notification
      const sending = session.run({ kind: 'msg', to: 'bob', text: 'hello bob' });
      const sent = await peer.nextRequest('MESSAGE');
      assert.equal(sent.headers.get('content-type'), 'message/cpim');
      const cpim = readCpim(sent.body);
      assert.ok(cpim?.kind === 'content' && cpim.displayNotificationRequested);
      peer.reply(sent, 200);
      await sending;

      // bob's answer is in the conversation on screen: printed, and reported displayed to bob
      peer.inject(fromBob('hi alice', 'b1'));
      assert.equal((await peer.nextResponse()).status, 200);
      const report = await peer.nextRequest('MESSAGE');
      assert.equal(report.uri, 'sip:bob@parley.local');
      assert.deepEqual(readCpim(report.body), { kind: 'notification', originalId: 'b1', displayed: true });
      peer.reply(report, 200);
      assert.ok(shown.some((l) => /\] Bob: hi alice$/.test(l)));

      // carol writes while bob's conversation is on screen: announced, not printed, no report
      peer.inject(fromCarol('are you there?', 'c1'));
      assert.equal((await peer.nextResponse()).status, 200);
      peer.inject(fromCarol('hello?', 'c2'));
      assert.equal((await peer.nextResponse()).status, 200);
      await peer.silent(100);
      assert.deepEqual(peer.received, [], 'no displayed report for a message not shown');
      assert.ok(!shown.some((l) => l.includes('are you there?')));
      assert.ok(shown.includes('New message from Carol (2 waiting): /to carol shows them.'));

      // opening carol's conversation prints both, in order, and reports each displayed
      await session.run({ kind: 'to', to: 'carol' });
      const printed = shown.filter((l) => /\] Carol: /.test(l));
      assert.deepEqual(printed.map((l) => l.replace(/^\[\d\d:\d\d\] /, '')), ['Carol: are you there?', 'Carol: hello?']);
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const r = await peer.nextRequest('MESSAGE');
        assert.equal(r.uri, 'sip:carol@parley.local');
        const read = readCpim(r.body);
        assert.ok(read?.kind === 'notification' && read.displayed);
        ids.push(read.originalId);
        peer.reply(r, 200);
      }
      assert.deepEqual(ids, ['c1', 'c2']);
      // a plain message (no display request) is printed and not reported
      peer.inject(incoming('MESSAGE', 'plain words', { 'content-type': 'text/plain', from: '"Carol" <sip:carol@parley.local>;tag=c2' }));
      assert.equal((await peer.nextResponse()).status, 200);
      await peer.silent(100);
      assert.deepEqual(peer.received, []);
      assert.ok(shown.some((l) => l.endsWith('Carol: plain words')));
    } finally {
      const stopping = session.stop();
      peer.reply(await peer.nextRequest('REGISTER'), 200);
      await stopping;
    }
  });
});

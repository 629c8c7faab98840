// EWS clients as they are (issue 19): the GET probes of the EWS URL answered as Exchange answers
// them, and DavMail (Debian package davmail, an EWS-to-IMAP gateway used with Thunderbird and other
// mail clients) in front of a real `parley serve`. An IMAP client signs in through DavMail, lists
// the folders and reads the Missed Conversation that an instant message to the offline user left
// in Conversation History. DavMail starts once for the file (a JVM).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sdkClients } from '../harness/clients.ts';
import { ImapSession, startDavMail, type DavMail } from '../harness/davmail.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
let server: RunningServer;
let gateway: DavMail | undefined;
let ewsUrl = '';
const people = sdkClients(() => server, DOMAIN, { requestTimeoutMs: 10_000 });
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Example' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob Example' },
    ],
  });
  ewsUrl = `http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`;
  const r = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
  assert.equal(r.code, 0, r.stderr);
  gateway = await startDavMail(ewsUrl);
});

after(async () => {
  await people.closeAll();
  await gateway?.stop();
  await server?.stop();
});

describe('EWS GET probes on a running server', () => {
  it('401 with the Basic challenge without credentials, 200 and the WSDL with them, in any case of the path', async () => {
    const base = `http://${server.http.host}:${server.http.port}`;
    for (const path of ['/EWS/Exchange.asmx', '/ews/exchange.asmx', '/EWS/Exchange.asmx?wsdl', '/EWS/Services.wsdl']) {
      const anonymous = await fetch(base + path);
      assert.equal(anonymous.status, 401, path);
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm="parley\.test"/);
      const head = await fetch(base + path, { method: 'HEAD' });
      assert.equal(head.status, 401);
      const signedIn = await fetch(base + path, { headers: { authorization: basic(`bob@${DOMAIN}`, 'bob-pw') } });
      assert.equal(signedIn.status, 200, path);
      const wsdl = await signedIn.text();
      assert.match(wsdl, /^<\?xml/);
      assert.match(wsdl, new RegExp(`<wsdl:definitions [^>]*targetNamespace="${M}"`));
      assert.match(wsdl, /<wsdl:operation name="ConvertId">/);
      assert.match(wsdl, new RegExp(`<soap:address location="${ewsUrl}"/>`));
    }
  });
});

describe('DavMail in front of Parley', () => {
  it('an IMAP client signs in through DavMail, lists the folders and reads the Missed Conversation in Conversation History', async () => {
    const alice = await people.connect('alice');
    const sent = await alice.sendMessage(`sip:bob@${DOMAIN}`, 'Are you there? It is about <the report> & the budget');
    assert.equal(sent.status, 202, `${sent.status} ${sent.headers.get('warning')}`);
    await eventually('the missed conversation in bob\'s mailbox', async () => {
      const r = await runCli(['mailbox', 'ls', `bob@${DOMAIN}`, 'Conversation History', ...server.storageArgs]);
      return /Missed conversation with Alice Example/.test(r.stdout) ? true : undefined;
    }, 20_000);

    const imap = await ImapSession.open(gateway!.imapPort);
    try {
      assert.match(imap.greeting, /^\* OK .*DavMail/);
      const refused = await imap.command(`LOGIN "bob@${DOMAIN}" "wrong-pw"`);
      assert.equal(refused.status, 'NO', 'a wrong password is refused');
      const login = await imap.command(`LOGIN "bob@${DOMAIN}" "bob-pw"`);
      assert.equal(login.status, 'OK', `LOGIN: ${login.text}\n${await gateway!.log()}`);

      const list = await imap.command('LIST "" "*"');
      assert.equal(list.status, 'OK', list.text);
      const folders = list.untagged.map((l) => /^\* LIST \([^)]*\) "\/" "?([^"]*)"?$/.exec(l)?.[1]).filter((f) => f !== undefined);
      for (const folder of ['INBOX', 'Conversation History', 'Sent', 'Drafts', 'Trash']) assert.ok(folders.includes(folder), `${folder} in ${folders.join(', ')}`);

      const examine = await imap.command('EXAMINE "Conversation History"');
      assert.equal(examine.status, 'OK', `${examine.text}\n${await gateway!.log()}`);
      assert.ok(examine.untagged.includes('* 1 EXISTS'), examine.untagged.join('\n'));

      const fetched = await imap.command('UID FETCH 1:* (UID FLAGS BODY.PEEK[])');
      assert.equal(fetched.status, 'OK', `${fetched.text}\n${await gateway!.log()}`);
      const message = fetched.untagged.find((l) => /^\* 1 FETCH/.test(l)) ?? '';
      assert.doesNotMatch(message, /\\Seen/, 'still unread');
      const raw = message.slice(message.indexOf('\r\n') + 2).replace(/\)\s*$/, '');
      const [head = ''] = raw.split('\r\n\r\n');
      assert.match(head, /^Subject: Missed conversation with Alice Example$/m);
      assert.match(head, /^From: "Alice Example" <alice@parley\.test>$/m);
      assert.match(head, /^To: "Bob Example" <bob@parley\.test>$/m);
      assert.match(head, /^Message-ID: <sp-[a-z2-7]{16}@parley\.test>$/m);
      const boundary = /^Content-Type: multipart\/alternative; boundary="([^"]+)"$/m.exec(head)?.[1];
      assert.ok(boundary, `a text and an HTML part:\n${head}`);
      const parts = raw.split(`--${boundary}`).slice(1, -1).map((p) => {
        const [partHead = '', partBody = ''] = p.replace(/^\r\n/, '').split('\r\n\r\n');
        assert.match(partHead, /^Content-Transfer-Encoding: base64$/m);
        return { type: /^Content-Type: ([^;]+)/m.exec(partHead)?.[1], text: Buffer.from(partBody, 'base64').toString('utf8') };
      });
      assert.deepEqual(parts.map((p) => p.type), ['text/plain', 'text/html']);
      assert.match(parts[0]!.text, /Are you there\? It is about <the report> & the budget/);
      assert.match(parts[1]!.text, /Are you there\? It is about &lt;the report&gt; &amp; the budget/);
      await imap.command('LOGOUT');
    } finally {
      imap.close();
    }
  });
});

// Mail from another organisation over SMTP into a running `parley serve` (started with
// --smtp-port 0; the ready line names the port as smtp=HOST:PORT), read back through EWS with
// ews-javascript-api. The SMTP client runs in another process and speaks raw RFC 5321.
import assert from 'node:assert/strict';
import { smtpDialogue } from '../harness/smtp-client.ts';
import { after, before, describe, it } from 'node:test';
import ews from 'ews-javascript-api';
import { startServer, type RunningServer } from '../harness/server.ts';

const { ExchangeService, ExchangeVersion, ItemView, Uri, WebCredentials, WellKnownFolderName } = ews;
const DOMAIN = 'parley.test';
let server: RunningServer;
let smtpPort = 0;

before(async () => {
  server = await startServer({ domain: DOMAIN, users: [{ address: `bob@${DOMAIN}`, password: 'bob-pw' }], extraArgs: ['--smtp-port', '0'] });
  const m = /\bsmtp=(?:\[[^\]]+\]|[^\s:]+):(\d+)/.exec(server.readyLine);
  assert.ok(m, `the ready line names the SMTP port: ${server.readyLine}`);
  smtpPort = Number(m[1]);
});
after(async () => {
  await server?.stop();
});

const smtp = (...commands: string[]): Promise<number[]> => smtpDialogue(server.tcp.host, smtpPort, ...commands);

describe('SMTP in, EWS out', () => {
  it('stores mail from outside in Inbox as a plain note, never as an IM item', async () => {
    const data = `From: Eve <eve@partner.example>\r\nTo: bob@${DOMAIN}\r\nSubject: From the partner\r\nMessage-ID: <e2e-1@partner.example>\r\nContent-Class: IPM.Note.Microsoft.Missed\r\n\r\nhello\r\n.`;
    assert.deepEqual(await smtp('EHLO partner.example', 'MAIL FROM:<eve@partner.example>', `RCPT TO:<bob@${DOMAIN}>`, 'DATA', data, 'QUIT'), [220, 250, 250, 250, 354, 250, 221]);
    const bob = new ExchangeService(ExchangeVersion.Exchange2013);
    bob.Credentials = new WebCredentials(`bob@${DOMAIN}`, 'bob-pw');
    bob.Url = new Uri(`http://${server.http.host}:${server.http.port}/EWS/Exchange.asmx`);
    const inbox = await bob.FindItems(WellKnownFolderName.Inbox, new ItemView(10));
    assert.deepEqual(inbox.Items.map((i) => [i.Subject, i.ItemClass]), [['From the partner', 'IPM.Note']]);
    const history = await bob.FindItems(WellKnownFolderName.ConversationHistory, new ItemView(10));
    assert.equal(history.TotalCount, 0);
  });

  it('refuses to relay and to deliver to unknown users', async () => {
    assert.deepEqual(await smtp('EHLO x', 'MAIL FROM:<eve@partner.example>', 'RCPT TO:<carol@elsewhere.example>', `RCPT TO:<nobody@${DOMAIN}>`, 'QUIT'), [220, 250, 250, 550, 550, 221]);
    assert.equal(server.exitStatus(), null);
  });
});

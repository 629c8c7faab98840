// What IMAP failures mean for the offline pipeline (src/mailbox/imap/errors.ts): retried
// (REMOTE_UNAVAILABLE) or failed at once with an actionable reason (REMOTE_REFUSED). A server that
// greets with BYE and one that never greets are real sockets here; the response codes are mapped
// from the error shape imapflow gives them (its ImapFlowError).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ImapMailboxConnector, MailboxError } from '../../src/mailbox/index.ts';
import { imapError } from '../../src/mailbox/imap/errors.ts';

const SERVER = 'the IMAP server imaps://mail.example.com';
const code = (e: object) => imapError(e, 'APPEND to "Conversation History" for alice@example.com', SERVER);

describe('IMAP failures: retried or refused', () => {
  it('maps the server\'s answers (RFC 5530 codes) to retry or refusal, quoting the server', () => {
    const no = (serverResponseCode: string | undefined, responseText = 'Something (0.001 + 0.000 secs).') => code({ responseStatus: 'NO', serverResponseCode, responseText });
    assert.equal(no('OVERQUOTA').code, 'REMOTE_UNAVAILABLE', 'a full mailbox is retried, as EWS and SMTP do');
    assert.equal(no('UNAVAILABLE').code, 'REMOTE_UNAVAILABLE');
    assert.equal(no('SERVERBUG').code, 'REMOTE_UNAVAILABLE');
    assert.equal(no(undefined).code, 'REMOTE_UNAVAILABLE', 'a NO that says nothing more is not taken as final');
    const noperm = no('NOPERM', 'Permission denied');
    assert.equal(noperm.code, 'REMOTE_REFUSED');
    assert.equal(noperm.message, `${SERVER} refused APPEND to "Conversation History" for alice@example.com: the signed-in account lacks the right (ACL) to it; grant it, or sign in with an account that has it (server: [NOPERM] Permission denied)`);
    assert.match(no('TRYCREATE').message, /no such folder, or the account may not see it/);
    assert.equal(no('CANNOT').code, 'REMOTE_REFUSED');
    assert.equal(code({ responseStatus: 'BAD', responseText: 'Error in IMAP command' }).code, 'REMOTE_REFUSED');
    assert.doesNotMatch(no('OVERQUOTA', 'Quota exceeded (0.001 + 0.000 secs).').message, /secs/, "Dovecot's timing is left out");
  });

  it('maps sign-in refusals: credentials, authorization, a temporary failure', () => {
    assert.match(code({ authenticationFailed: true, serverResponseCode: 'AUTHENTICATIONFAILED' }).message, /refused the credentials .*check the user name and password/);
    assert.match(code({ authenticationFailed: true, serverResponseCode: 'AUTHORIZATIONFAILED' }).message, /accepted the password but refused/);
    assert.equal(code({ authenticationFailed: true, serverResponseCode: 'UNAVAILABLE' }).code, 'REMOTE_UNAVAILABLE');
  });

  it('maps connection failures to retries, and TLS it cannot trust to a refusal naming the setting', () => {
    for (const c of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'NoConnection', 'EConnectionClosed', 'GREETING_TIMEOUT', 'ETIMEOUT']) {
      assert.equal(code({ code: c, message: 'x' }).code, 'REMOTE_UNAVAILABLE', c);
    }
    assert.match(code({ code: 'NoConnection', reason: 'Server shutting down', message: 'x' }).message, /BYE Server shutting down/);
    const cert = code({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', message: 'unable to verify the first certificate' });
    assert.equal(cert.code, 'REMOTE_REFUSED');
    assert.match(cert.message, /give the CA that signed its certificate in the setting ca/);
    assert.equal(code({ code: 'ParserError3', message: 'odd answer' }).code, 'REMOTE_UNAVAILABLE');
    const own = new MailboxError('INVALID_REQUEST', 'mine');
    assert.equal(imapError(own, 'x', SERVER), own);
  });
});

describe('IMAP servers that greet badly, over real sockets', () => {
  const sockets = new Set<net.Socket>();
  let silent: net.Server;
  let bye: net.Server;
  const listen = async (onConnection: (s: net.Socket) => void) => {
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
      onConnection(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return server;
  };
  before(async () => {
    silent = await listen(() => undefined);
    bye = await listen((s) => s.end('* BYE Too many connections, try again later\r\n'));
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([silent, bye].map((server) => new Promise((resolve) => server.close(resolve))));
  });
  const item = {
    mailbox: 'alice@example.com', folder: 'conversationhistory' as const, itemClass: 'IPM.Note.Microsoft.Missed', internetMessageId: '<sp-1@parley.test>',
    subject: 's', from: { address: 'bob@example.com' }, to: [], bodyHtml: '<p>x</p>', bodyText: 'x', sentAt: new Date(0), isRead: false,
  };
  const deliverTo = async (server: net.Server) => {
    const port = (server.address() as net.AddressInfo).port;
    const imap = new ImapMailboxConnector({ url: `imap://127.0.0.1:${port}`, signIn: { method: 'master', username: 'parley', password: 'pw' }, timeoutMs: 300 });
    try {
      const error = await imap.deliver(item).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof MailboxError, String(error));
      return error;
    } finally {
      await imap.close();
    }
  };

  it('one that never greets times out: retried', async () => {
    const error = await deliverTo(silent);
    assert.equal(error.code, 'REMOTE_UNAVAILABLE', error.message);
    assert.match(error.message, /signing in as master user parley for alice@example\.com/);
  });

  it('one that says BYE: retried, with its words', async () => {
    const error = await deliverTo(bye);
    assert.equal(error.code, 'REMOTE_UNAVAILABLE', error.message);
    assert.match(error.message, /Too many connections, try again later/);
  });
});

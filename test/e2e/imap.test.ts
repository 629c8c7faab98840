// Offline IM into mailboxes on an IMAP server (issue 17): a real `parley serve` whose config routes
// the domain to a Dovecot started by this test (inside the test's network namespace), and SIP
// clients. An offline MESSAGE becomes one unread Missed Conversation in the recipient's
// "Conversation History" at Dovecot and one read copy in the sender's, read back over IMAP; a
// stopped Dovecot is retried until it is back; a refused password fails the entry with its reason.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { sdkClients } from '../harness/clients.ts';
import { dovecotInstalled, startDovecot } from '../harness/dovecot.ts';
import type { Dovecot } from '../harness/dovecot.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const FOLDER = 'Conversation History';
const USERS = [
  { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice Example' },
  { address: `bob@${DOMAIN}`, password: 'bob-pw' },
  { address: `carol@${DOMAIN}`, password: 'carol-pw' },
];
const MASTER = { username: 'parley', password: 'master-pw' };
const skip = dovecotInstalled() ? false : 'dovecot is not installed (scripts/install-test-deps.sh)';

let dovecot: Dovecot;
let server: RunningServer;
let mailboxes: object;
const people = sdkClients(() => server, DOMAIN, { requestTimeoutMs: 10_000 });

/** What an IMAP client of `address` (signed in with the user's own Dovecot password) sees in the folder. */
async function folderOf(address: string): Promise<Array<{ messageId: string; seen: boolean; contentClass: string; subject: string }>> {
  const user = USERS.find((u) => u.address === address);
  assert.ok(user);
  const client = new ImapFlow({ host: '127.0.0.1', port: dovecot.port, secure: false, doSTARTTLS: false, auth: { user: user.address, pass: user.password }, logger: false });
  await client.connect();
  try {
    if (!(await client.list()).some((f) => f.path === FOLDER)) return [];
    const lock = await client.getMailboxLock(FOLDER);
    try {
      const out = [];
      if (client.mailbox !== false && client.mailbox.exists === 0) return [];
      for await (const m of client.fetch('1:*', { flags: true, envelope: true, headers: ['content-class'] })) {
        out.push({
          messageId: m.envelope?.messageId ?? '',
          seen: m.flags?.has('\\Seen') ?? false,
          contentClass: (m.headers?.toString('latin1') ?? '').replace(/^Content-Class:\s*/i, '').trim(),
          subject: m.envelope?.subject ?? '',
        });
      }
      return out;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

async function entry(id: string): Promise<{ state: string; attempts: number; lastError: string | null }> {
  const r = await runCli(['spooler', 'show', id, '--json', ...server.storageArgs]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { state: string; attempts: number; lastError: string | null };
}

/** Alice writes to an offline user; returns the spool entry id from the 202. */
async function sendTo(recipient: string, text: string): Promise<string> {
  const alice = await people.connect('alice');
  const res = await alice.sendMessage(`sip:${recipient}`, text);
  assert.equal(res.status, 202, res.headers.get('warning') ?? '');
  await alice.close();
  const id = /spool entry (sp-[a-z2-7]{16})/.exec(res.headers.get('warning') ?? '')?.[1];
  assert.ok(id);
  return id;
}

describe('offline IM to mailboxes on an IMAP server (Dovecot)', { skip }, () => {
  before(async () => {
    dovecot = await startDovecot({ users: USERS, masters: [MASTER] });
    mailboxes = {
      servers: {
        dovecot: { kind: 'imap', url: dovecot.url, username: MASTER.username, password: MASTER.password, timeout: 3 },
        // carol's mailbox is signed in to with a password Dovecot refuses
        wrong: { kind: 'imap', url: dovecot.url, username: MASTER.username, password: 'not-the-password', timeout: 3 },
      },
      domains: { [DOMAIN]: 'dovecot' },
      users: { [`carol@${DOMAIN}`]: 'wrong' },
    };
    server = await startServer({ domain: DOMAIN, users: USERS, config: { mailboxes, offlineIm: { retryBase: 0.2, retryMax: 1 } } });
    const r = await runCli(['admin', ...server.storageArgs, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    await people.closeAll();
    await server?.stop();
    await dovecot?.destroy();
  });

  it('lands once in Dovecot: bob\'s Missed Conversation unread, alice\'s copy read, Message-ID the spool entry', async () => {
    const id = await sendTo(`bob@${DOMAIN}`, 'hello bob, in your IMAP mailbox');
    const messageId = `<${id}@${DOMAIN}>`;
    const bobs = await eventually('the Missed Conversation at Dovecot', async () => {
      const found = (await folderOf(`bob@${DOMAIN}`)).filter((m) => m.messageId === messageId);
      return found.length > 0 ? found : undefined;
    });
    await eventually('the entry delivered', async () => ((await entry(id)).state === 'delivered' ? true : undefined));
    assert.deepEqual(bobs, [{ messageId, seen: false, contentClass: 'IPM.Note.Microsoft.Missed', subject: 'Missed conversation with Alice Example' }]);
    const alices = (await folderOf(`alice@${DOMAIN}`)).filter((m) => m.messageId === messageId);
    assert.deepEqual(alices.map((m) => [m.seen, m.contentClass]), [[true, 'IPM.Note.Microsoft.Conversation']]);
    // delivered means done: nothing more arrives
    assert.equal((await folderOf(`bob@${DOMAIN}`)).filter((m) => m.messageId === messageId).length, 1);
  });

  it('a stopped Dovecot: the entry waits and is retried, then lands once when Dovecot is back', async () => {
    await dovecot.stop();
    let id: string;
    try {
      id = await sendTo(`bob@${DOMAIN}`, 'while the IMAP server is down');
      const failing = await eventually('two failed attempts', async () => {
        const e = await entry(id);
        return e.attempts >= 2 && e.state === 'waiting' ? e : undefined;
      });
      assert.match(failing.lastError ?? '', /cannot reach the IMAP server imap:\/\/127\.0\.0\.1:\d+/);
    } finally {
      await dovecot.start();
    }
    await eventually('delivered after Dovecot is back', async () => ((await entry(id)).state === 'delivered' ? true : undefined));
    assert.equal((await folderOf(`bob@${DOMAIN}`)).filter((m) => m.messageId === `<${id}@${DOMAIN}>`).length, 1);
  });

  it('bob, signing in, learns of his Missed Conversations through message-summary counted at Dovecot (RFC 3842)', async () => {
    const unread = (await folderOf(`bob@${DOMAIN}`)).filter((m) => m.contentClass === 'IPM.Note.Microsoft.Missed' && !m.seen).length;
    assert.equal(unread, 2, 'the two earlier tests left two unread Missed Conversations');
    const bob = await people.connect('bob', { register: true });
    const summary = new Promise<{ waiting: boolean; textMessages: { new: number; old: number } }>((resolve) => bob.once('message-summary', resolve));
    await bob.watchMessageSummary();
    const first = await summary;
    assert.equal(first.waiting, true);
    assert.equal(first.textMessages.new, 2);
    await bob.close();
  });

  it('a password Dovecot refuses fails the delivery at once, with the reason', async () => {
    const id = await sendTo(`carol@${DOMAIN}`, 'to a mailbox Parley cannot sign in to');
    const failed = await eventually('failed', async () => {
      const e = await entry(id);
      return e.state === 'failed' ? e : undefined;
    });
    assert.match(failed.lastError ?? '', /refused the credentials \(signing in as master user parley for carol@parley\.test\)/);
    assert.equal(failed.attempts, 1, 'not retried');
    assert.deepEqual(await folderOf(`carol@${DOMAIN}`), []);
  });

  it('parley mailbox test: four steps pass for bob and leave nothing behind; the refused password fails at sign-in (exit 1)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-imap-mailbox-test-'));
    try {
      const config = path.join(dir, 'parley.json');
      writeFileSync(config, JSON.stringify({ domain: DOMAIN, dataDir: path.join(dir, 'data'), mailboxes }));
      const before = (await folderOf(`bob@${DOMAIN}`)).length;
      const ok = await runCli(['mailbox', 'test', `bob@${DOMAIN}`, '--config', config]);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.deepEqual(ok.stdout.split('\n').filter((l) => /^(ok|FAIL) /.test(l)).map((l) => l.split(/\s+/).slice(0, 2).join(' ')), ['ok sign-in', 'ok mailbox', 'ok folder', 'ok write']);
      assert.match(ok.stdout, /APPENDed a test message to "Conversation History" and removed it \(UID EXPUNGE\)/);
      assert.equal((await folderOf(`bob@${DOMAIN}`)).length, before, 'the test message is gone');
      const refused = await runCli(['mailbox', 'test', `carol@${DOMAIN}`, '--config', config]);
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(refused.stdout, /FAIL\s+sign-in.*refused the credentials/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

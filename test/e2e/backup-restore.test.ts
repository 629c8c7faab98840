// Backup and restore (issue 19): `parley backup` copies the database while the server takes
// offline MESSAGEs; `parley restore` puts it in a new data directory (and refuses the running
// server's); a new server there delivers every MESSAGE answered 202 before the backup began,
// exactly once.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { SipClient } from '../../src/client/index.ts';
import { eventually } from '../harness/eventually.ts';
import { runCli, startServer, TEST_DATABASE, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const USERS = [
  { address: `alice@${DOMAIN}`, password: 'alice-pw' },
  { address: `bob@${DOMAIN}`, password: 'bob-pw' },
];
/** at most; the senders stop once the backup is done */
const MESSAGES = 5000;
const PARALLEL = 16;
/** the backup starts once this many are answered 202 */
const BEFORE_BACKUP = 100;
const MISSED = 'IPM.Note.Microsoft.Missed';

const servers: RunningServer[] = [];
const clients: SipClient[] = [];
const work = mkdtempSync(path.join(os.tmpdir(), 'parley-backup-'));
after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  for (const s of servers.reverse()) await s.stop();
  rmSync(work, { recursive: true, force: true });
});

const marker = (n: number): string => `[m-${String(n).padStart(4, '0')}]`;

// parley backup and restore copy the SQLite file; a PostgreSQL database is backed up with its own
// tools (pg_dump), and the CLI refuses it (test/unit/backup-cli.test.ts)
describe('parley backup and restore', { skip: TEST_DATABASE === 'postgres' ? 'SQLite only: backup and restore copy the SQLite file' : false }, () => {
  it('a backup under offline-IM load, restored into a new data directory, delivers every MESSAGE answered 202 before it began, exactly once', { timeout: 180_000 }, async (t) => {
    const s = await startServer({ domain: DOMAIN, users: USERS, config: { offlineIm: { senderQuota: { perMinute: 100_000, maxMessages: 100_000 }, recipientQuota: { maxMessages: 100_000 } } } });
    servers.push(s);
    const set = await runCli(['admin', '--data-dir', s.dataDir, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:02']);
    assert.equal(set.code, 0, set.stderr);
    const alice = new SipClient({ server: `tcp://${s.tcp.host}:${s.tcp.port}`, aor: `sip:alice@${DOMAIN}`, password: 'alice-pw', requestTimeoutMs: 15_000, keepAliveIntervalMs: 0 });
    clients.push(alice);
    await alice.connect();

    // bob is offline: every MESSAGE is spooled; its 202 names the spool entry
    const accepted = new Map<string, string>(); // marker → spool entry id
    let beforeBackup: Map<string, string> | undefined;
    let backup: Promise<{ code: number | null; stdout: string; stderr: string }> | undefined;
    const file = path.join(work, 'parley-backup.db');
    let sent = 0;
    let backupDone = false;
    const sender = async (): Promise<void> => {
      // the load goes on while the backup runs
      while (sent < MESSAGES && !backupDone) {
        const text = `message ${marker(sent++)}`;
        const res = await alice.sendMessage(`sip:bob@${DOMAIN}`, text);
        assert.equal(res.status, 202, `${res.status} ${res.headers.get('warning')}`);
        const id = /spool entry (sp-[a-z2-7]{16})/.exec(res.headers.get('warning') ?? '')?.[1];
        assert.ok(id, res.headers.get('warning') ?? '');
        accepted.set(text, id);
        if (accepted.size >= BEFORE_BACKUP && backup === undefined) {
          beforeBackup = new Map(accepted);
          backup = runCli(['backup', '--to', file, '--data-dir', s.dataDir]).finally(() => {
            backupDone = true;
          });
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, () => sender()));
    assert.ok(backup !== undefined && beforeBackup !== undefined);
    const done = await backup;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /backup of .* written to .*parley-backup\.db/);
    assert.match(done.stdout, /not in it: .*secrets/);
    assert.equal(statSync(file).mode & 0o777, 0o600);

    // a second backup to the same file is refused; --force replaces it
    const again = await runCli(['backup', '--to', file, '--data-dir', s.dataDir]);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /exists; choose another file or add --force/);

    // the running server's data is not replaced
    const onRunning = await runCli(['restore', file, '--data-dir', s.dataDir, '--force']);
    assert.equal(onRunning.code, 3);
    assert.match(onRunning.stderr, /a Parley server \(process \d+\) is running on/);
    // a file that is not a Parley database is refused
    const junk = path.join(work, 'junk.db');
    writeFileSync(junk, 'not a database');
    const notParley = await runCli(['restore', junk, '--data-dir', path.join(work, 'other')]);
    assert.equal(notParley.code, 4);
    assert.equal(existsSync(path.join(work, 'other', 'parley.db')), false);

    const restored = path.join(work, 'restored');
    const restore = await runCli(['restore', file, '--data-dir', restored]);
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, /restored .* \(migrations: .*offline \d+/);
    const twice = await runCli(['restore', file, '--data-dir', restored]);
    assert.equal(twice.code, 3);
    assert.match(twice.stderr, /holds data; add --force/);

    // the first server stops: only the restored one delivers from now on
    await s.stop();
    const r = await startServer({ domain: DOMAIN, dataDir: restored });
    servers.push(r);
    const spool = async (state: string) => {
      const list = await runCli(['spooler', 'list', '--state', state, '--limit', '1000', '--json', '--data-dir', restored]);
      assert.equal(list.code, 0, list.stderr);
      return JSON.parse(list.stdout) as Array<{ id: string }>;
    };
    await eventually('the restored spool delivered', async () => ((await spool('waiting')).length + (await spool('delivering')).length === 0 ? true : undefined), 60_000);
    const delivered = new Set((await spool('delivered')).map((e) => e.id));
    const missingEntries = [...new Set(beforeBackup.values())].filter((id) => !delivered.has(id));
    assert.deepEqual(missingEntries, [], 'every spool entry answered 202 before the backup is delivered in the restored server');

    // bob's Missed Conversations in the restored mailbox: each message answered 202 before the backup, once
    const ls = await runCli(['mailbox', 'ls', `bob@${DOMAIN}`, 'conversationhistory', '--data-dir', restored]);
    assert.equal(ls.code, 0, ls.stderr);
    const itemIds = ls.stdout.split('\n').filter((l) => l.includes(MISSED)).map((l) => l.trim().split(/\s+/).at(-1) ?? '');
    const seen = new Map<string, number>();
    const perEntry = new Map<string, number>();
    for (const id of itemIds) {
      const show = await runCli(['mailbox', 'show', id, '--data-dir', restored]);
      assert.equal(show.code, 0, show.stderr);
      const entryId = /InternetMessageId: <(sp-[a-z2-7]{16})@/.exec(show.stdout)?.[1] ?? '?';
      perEntry.set(entryId, (perEntry.get(entryId) ?? 0) + 1);
      const body = show.stdout.slice(show.stdout.indexOf('\n\n'));
      for (const m of body.matchAll(/\[m-\d{4}\]/g)) seen.set(m[0], (seen.get(m[0]) ?? 0) + 1);
    }
    const wrong = [...beforeBackup.keys()].map((text) => text.slice('message '.length)).filter((m) => seen.get(m) !== 1).map((m) => `${m}: ${seen.get(m) ?? 0} times`);
    assert.deepEqual(wrong, [], 'each message answered 202 before the backup is in exactly one Missed Conversation, once');
    assert.deepEqual([...perEntry].filter(([, n]) => n !== 1), [], 'one Missed Conversation per spool entry');
    assert.deepEqual([...seen].filter(([, n]) => n !== 1), [], 'no message is there twice');
    assert.ok(accepted.size > beforeBackup.size, 'MESSAGEs were answered while the backup ran');
    t.diagnostic(`${beforeBackup.size} answered 202 before the backup began, ${accepted.size} in all; the restored server holds ${seen.size} of them in ${itemIds.length} Missed Conversations`);
  });
});

// `parley spooler`, `parley history` and `parley trace` in process, on each engine: a data directory
// named with --data-dir on SQLite, a database named with --database on PostgreSQL, or what
// `--config FILE` names (the spooler); and the usage errors of naming the storage.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { runHistoryCommand } from '../../src/history/index.ts';
import { writeHistoryBatch } from '../../src/history/commit.ts';
import { DEFAULT_MAILBOX_QUOTA } from '../../src/mailbox/index.ts';
import { runTraceCommand } from '../../src/observability/trace-cli.ts';
import { DEFAULT_SPOOL_QUOTA, spoolMessages } from '../../src/offline/index.ts';
import type { SpoolerDefaults } from '../../src/offline/cli.ts';
import { runSpoolerCommand } from '../../src/offline/cli.ts';
import type { CliStorage } from '../harness/cli-storage.ts';
import { CLI_ENGINES, UNREACHABLE_POSTGRES, withStore } from '../harness/cli-storage.ts';
import { closeTestPostgres } from '../harness/engines.ts';
import { ALICE, BOB, T0, enc, prepareHistoryDatabase, text } from './history-fixture.ts';

after(closeTestPostgres);

const DOMAIN = 'parley.test';
const NO_DATA_DIR = '/nonexistent/parley-offline-cli-default';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

async function spooler(args: string[], defaults: SpoolerDefaults = { dataDir: NO_DATA_DIR, domain: DOMAIN }) {
  const r = io();
  const code = await runSpoolerCommand(args, r.io, defaults, () => T0 + 1000);
  return { code, text: r.out.join('\n'), error: r.err.join('\n') };
}

async function history(args: string[]) {
  const r = io();
  const code = await runHistoryCommand(args, r.io, { dataDir: NO_DATA_DIR, domain: DOMAIN }, () => T0 + 1000);
  return { code, text: r.out.join('\n'), error: r.err.join('\n') };
}

async function trace(args: string[]) {
  const r = io();
  const code = await runTraceCommand(args, r.io, { dataDir: NO_DATA_DIR });
  return { code, text: r.out.join('\n'), error: r.err.join('\n') };
}

for (const engine of CLI_ENGINES) describe(`parley spooler, history and trace on ${engine.name}`, () => {
  let store: CliStorage;
  let entryId = '';
  before(async () => {
    store = await engine.fresh();
    entryId = await withStore(store, async (sql) => {
      await prepareHistoryDatabase(sql);
      await writeHistoryBatch(sql, [text('hello bob', T0), text('still there?', T0 + 10)]);
      const request = { contentType: 'text/plain', body: enc('are you there?'), receivedAt: T0, pickupDelayMs: 0, maxAgeMs: 86_400_000, why: 'offline', gate: { EnableOfflineIm: 'Global' } };
      const [receipt] = await sql.transaction((tx) => spoolMessages(tx, [{ ...request, sender: BOB, recipient: ALICE, callId: 'c-offline-1' }]));
      return receipt?.entryId ?? '';
    });
  });
  after(() => store.drop());

  it('reads what --config FILE names: its database (or data directory), domain and limits', async () => {
    const files: string[] = [];
    const defaults: SpoolerDefaults = {
      dataDir: NO_DATA_DIR,
      domain: 'elsewhere.test',
      readConfig: (file) => {
        files.push(file);
        return { dataDir: store.dataDir, database: store.database, domain: DOMAIN, spool: { ...DEFAULT_SPOOL_QUOTA, recipient: { ...DEFAULT_SPOOL_QUOTA.recipient, maxMessages: 7 } }, mailbox: DEFAULT_MAILBOX_QUOTA };
      },
    };
    const quota = await spooler(['quota', '--config', 'parley.json', '--json'], defaults);
    assert.equal(quota.code, 0, quota.error);
    const report = JSON.parse(quota.text) as { limits: { recipient: { maxMessages: number } }; users: Array<{ address: string; waitingFrom: { messages: number }; waitingFor: { messages: number } }> };
    assert.equal(report.limits.recipient.maxMessages, 7);
    assert.deepEqual(report.users.map((u) => [u.address, u.waitingFrom.messages, u.waitingFor.messages]), [[ALICE, 0, 1], [BOB, 1, 0]]);
    const list = await spooler(['list', '--user', 'alice', '--config', 'parley.json'], defaults);
    assert.equal(list.code, 0, list.error);
    assert.match(list.text, new RegExp(`^${entryId}\\s+offline\\s+waiting\\s+bob@parley\\.test\\s+alice@parley\\.test`, 'm'), 'alice: in the domain of the config');
    assert.deepEqual(files, ['parley.json', 'parley.json']);
  });

  it('lists and shows the spool, retries and purges an entry', async () => {
    const list = await spooler(['list', '--json', ...store.args]);
    assert.equal(list.code, 0, list.error);
    const entries = JSON.parse(list.text) as Array<{ id: string; state: string; sender: string; recipient: string }>;
    assert.deepEqual(entries.map((e) => [e.id, e.state, e.sender, e.recipient]), [[entryId, 'waiting', BOB, ALICE]]);
    const show = await spooler(['show', entryId, ...store.args]);
    assert.equal(show.code, 0, show.error);
    assert.match(show.text, /\] #1 bob@parley\.test \(text\/plain, Call-ID c-offline-1\): are you there\?/);
    const retry = await spooler(['retry', entryId, ...store.args]);
    assert.equal(retry.code, 0, retry.error);
    assert.match(retry.text, new RegExp(`^${entryId} will be delivered again now`));
    const purge = await spooler(['purge', entryId, '--force', ...store.args]);
    assert.equal(purge.code, 0, purge.error);
    assert.equal(purge.text, `${entryId} purged`);
    assert.equal((await spooler(['list', ...store.args])).text, 'the spool has no such entries');
    if (store.database !== null) assert.equal(existsSync(store.dataDir), false, 'nothing made in a data directory on PostgreSQL');
  });

  it("lists a user's conversations, and traces one", async () => {
    const list = await history(['list', '--user', 'alice', '--json', ...store.args]);
    assert.equal(list.code, 0, list.error);
    const conversations = JSON.parse(list.text) as Array<{ id: string; peer: string; state: string; messages: number }>;
    assert.equal(conversations.length, 1);
    assert.deepEqual([conversations[0]?.peer, conversations[0]?.state, conversations[0]?.messages], [BOB, 'open', 2]);
    assert.equal((await history(['list', '--user', 'carol', ...store.args])).text, 'carol@parley.test has no open or recently written conversation');
    const steps = await trace([entryId, ...store.args]);
    assert.equal(steps.code, 0, steps.error);
    assert.match(steps.text, /received\s+call-id=c-offline-1 /);
    const none = await trace(['sp-aaaaaaaaaaaaaaaa', ...store.args]);
    assert.equal(none.code, 1);
    assert.match(none.error, /nothing is recorded under sp-aaaaaaaaaaaaaaaa/);
  });
});

describe('parley spooler, history and trace: --data-dir or --database', () => {
  const both = ['--data-dir', '/tmp/x', '--database', 'postgres://localhost/parley'];
  const notBoth = /give --data-dir DIR \(SQLite in that directory\) or --database postgres:\/\/… \(PostgreSQL\), not both/;

  it('refuses both at once, or an address that is not PostgreSQL, with exit 2 and the usage', async () => {
    for (const r of [await spooler(['list', ...both]), await spooler(['quota', ...both]), await history(['list', '--user', 'alice', ...both]), await trace(['sp-x', ...both])]) {
      assert.equal(r.code, 2, r.error);
      assert.match(r.error, notBoth);
      assert.match(r.error, /usage: parley (spooler|history|trace) .*\[--data-dir DIR \| --database postgres:\/\/…/);
    }
    for (const r of [await spooler(['show', 'sp-x', '--database', 'file:/tmp/x']), await history(['list', '--user', 'alice', '--database', 'x']), await trace(['sp-x', '--database', 'redis://localhost'])]) {
      assert.equal(r.code, 2, r.error);
      assert.match(r.error, /--database must be a PostgreSQL address/);
    }
  });

  it('answers a PostgreSQL it cannot reach with exit 1 and the reason, never the password', async () => {
    const cannot = /cannot connect to PostgreSQL at postgres:\/\/parley:\*\*\*@127\.0\.0\.1:1\/parley: /;
    const fromConfig: SpoolerDefaults = { dataDir: NO_DATA_DIR, domain: DOMAIN, readConfig: () => ({ dataDir: NO_DATA_DIR, database: UNREACHABLE_POSTGRES, domain: DOMAIN, spool: DEFAULT_SPOOL_QUOTA, mailbox: DEFAULT_MAILBOX_QUOTA }) };
    for (const r of [
      await spooler(['list', '--database', UNREACHABLE_POSTGRES]),
      await spooler(['quota', '--config', 'cluster.json'], fromConfig),
      await history(['list', '--user', 'alice', '--database', UNREACHABLE_POSTGRES]),
      await trace(['sp-x', '--database', UNREACHABLE_POSTGRES]),
    ]) {
      assert.equal(r.code, 1, r.error);
      assert.match(r.error, cannot);
      assert.doesNotMatch(r.error, /s3cret-pw/);
    }
  });
});

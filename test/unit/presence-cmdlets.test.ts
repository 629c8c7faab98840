// The presence cmdlets: Get-/Add-/Remove-CsPresenceBlock on a data directory, and
// Get-CsUserPresence, which only the running server (with its live presence) can answer.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CMDLETS, runAdminCommand, serverCmdlets } from '../../src/admin/index.ts';
import type { LivePresence } from '../../src/admin/index.ts';
import { formatList } from '../../src/admin/format.ts';
import { inspectionOutput } from '../../src/admin/cmdlets/presence.ts';
import { DIRECTORY_MIGRATIONS, addUser } from '../../src/directory/index.ts';
import { MAX_BLOCKS, PRESENCE_MIGRATIONS } from '../../src/presence/index.ts';
import { addBlock } from '../../src/presence/blocks.ts';
import { SETTINGS_MIGRATIONS, listAudit } from '../../src/settings/index.ts';
import { migrate, openMemoryDatabase, sqliteSql } from '../../src/storage/index.ts';
import type { CliEngine, CliStorage } from '../harness/cli-storage.ts';
import { CLI_ENGINES, withStore } from '../harness/cli-storage.ts';
import { closeTestPostgres } from '../harness/engines.ts';

const D = 'parley.test';
after(closeTestPostgres);

/** `parley admin` on fresh storage of `engine` (--data-dir DIR or --database URL) holding `users`. */
function adminOn(engine: CliEngine) {
  const stores: CliStorage[] = [];
  after(async () => {
    for (const store of stores) await store.drop();
  });
  return async (...users: string[]) => {
    const store = await engine.fresh();
    stores.push(store);
    await withStore(store, async (sql) => {
      await migrate(sql, [DIRECTORY_MIGRATIONS]);
      for (const u of users) await addUser(sql, { address: `${u}@${D}`, password: 'pw' });
    });
    return {
      store,
      async run(...args: string[]) {
        const out: string[] = [];
        const err: string[] = [];
        const code = await runAdminCommand([...store.args, ...args], { out: (l) => out.push(l), err: (l) => err.push(l) }, { dataDir: store.dataDir, domain: D });
        return { code, out, text: out.join('\n'), error: err.join('\n') };
      },
    };
  };
}

for (const engine of CLI_ENGINES) describe(`Cs…PresenceBlock cmdlets on ${engine.name}`, () => {
  const admin = adminOn(engine);

  it('adds, shows and removes blocks, audited; blocking twice is harmless', async () => {
    const a = await admin('alice', 'bob');
    const added = await a.run('Add-CsPresenceBlock', '-Identity', 'alice', '-Watcher', 'sip:Mallory@parley.test');
    assert.equal(added.code, 0, added.error);
    assert.match(added.text, /^Identity : alice@parley\.test\nWatcher  : mallory@parley\.test\nSince    : \d{4}-\d\d-\d\dT/);
    assert.equal((await a.run('add-cspresenceblock', 'alice', '-watcher', 'mallory')).code, 0);
    assert.equal((await a.run('Add-CsPresenceBlock', 'bob', '-Watcher', 'mallory')).code, 0);
    assert.equal((await a.run('Add-CsPresenceBlock', 'alice', '-Watcher', 'eve@elsewhere.example')).code, 0);

    const all = JSON.parse((await a.run('--json', 'Get-CsPresenceBlock')).text) as Array<Record<string, string>>;
    assert.deepEqual(all.map((b) => `${b.Identity} ${b.Watcher}`), ['alice@parley.test eve@elsewhere.example', 'alice@parley.test mallory@parley.test', 'bob@parley.test mallory@parley.test']);
    const alices = JSON.parse((await a.run('--json', 'Get-CsPresenceBlock', 'alice@parley.test')).text) as unknown[];
    assert.equal(alices.length, 2);
    const ofMallory = JSON.parse((await a.run('--json', 'Get-CsPresenceBlock', '-Watcher', 'mallory')).text) as Array<Record<string, string>>;
    assert.deepEqual(ofMallory.map((b) => b.Identity), ['alice@parley.test', 'bob@parley.test']);

    const removed = await a.run('Remove-CsPresenceBlock', 'alice', '-Watcher', 'mallory');
    assert.deepEqual([removed.code, removed.out], [0, []]);
    const again = await a.run('Remove-CsPresenceBlock', 'alice', '-Watcher', 'mallory');
    assert.equal(again.code, 1);
    assert.match(again.error, /alice@parley\.test has not blocked mallory@parley\.test/);

    const audit = (await withStore(a.store, (sql) => listAudit(sql))).map((e) => [e.cmdlet, e.identity, e.property, e.oldValue, e.newValue]);
    assert.deepEqual(audit, [
      ['Add-CsPresenceBlock', 'alice@parley.test', 'BlockedWatcher', null, 'mallory@parley.test'],
      ['Add-CsPresenceBlock', 'bob@parley.test', 'BlockedWatcher', null, 'mallory@parley.test'],
      ['Add-CsPresenceBlock', 'alice@parley.test', 'BlockedWatcher', null, 'eve@elsewhere.example'],
      ['Remove-CsPresenceBlock', 'alice@parley.test', 'BlockedWatcher', 'mallory@parley.test', null],
    ]);
  });

  it('refuses an unknown user (1), a block of oneself, a bad address and a missing watcher (2)', async () => {
    const a = await admin('alice');
    const ghost = await a.run('Add-CsPresenceBlock', 'ghost', '-Watcher', 'bob');
    assert.equal(ghost.code, 1);
    assert.match(ghost.error, /user ghost@parley\.test does not exist/);
    assert.equal((await a.run('Get-CsPresenceBlock', 'ghost')).code, 1);
    const self = await a.run('Add-CsPresenceBlock', 'alice', '-Watcher', 'alice@parley.test');
    assert.equal(self.code, 2);
    assert.match(self.error, /cannot block themselves/);
    assert.equal((await a.run('Add-CsPresenceBlock', 'alice', '-Watcher', 'bob@@x')).code, 2);
    assert.equal((await a.run('Add-CsPresenceBlock', 'alice')).code, 2);
  });

  it(`refuses a block past ${MAX_BLOCKS} (exit 1), saying why, and audits nothing`, async () => {
    const a = await admin('alice');
    await withStore(a.store, async (sql) => {
      await migrate(sql, [DIRECTORY_MIGRATIONS, PRESENCE_MIGRATIONS]);
      await sql.transaction(async (tx) => {
        for (let i = 0; i < MAX_BLOCKS; i++) await addBlock(tx, `alice@${D}`, `w${i}@elsewhere.example`, Date.now());
      });
    });
    const full = await a.run('Add-CsPresenceBlock', 'alice', '-Watcher', 'mallory');
    assert.equal(full.code, 1);
    assert.equal(full.error, `parley admin: the block list of alice@${D} holds ${MAX_BLOCKS} blocked watchers already; remove some first`);
    assert.equal((await a.run('Add-CsPresenceBlock', 'alice', '-Watcher', 'w7@elsewhere.example')).code, 0, 'one already blocked still answers');
    assert.equal((await a.run('Remove-CsPresenceBlock', 'alice', '-Watcher', 'w7@elsewhere.example')).code, 0);
    assert.equal((await a.run('Add-CsPresenceBlock', 'alice', '-Watcher', 'mallory')).code, 0, 'room again');
    const audit = await withStore(a.store, (sql) => listAudit(sql));
    assert.deepEqual(audit.map((e) => `${e.cmdlet} ${e.newValue ?? e.oldValue}`), ['Remove-CsPresenceBlock w7@elsewhere.example', 'Add-CsPresenceBlock mallory@parley.test']);
  });

  it("says in its help that it is Parley's own cmdlet", async () => {
    const a = await admin();
    for (const name of ['Get-CsPresenceBlock', 'Add-CsPresenceBlock', 'Remove-CsPresenceBlock', 'Get-CsUserPresence']) {
      const help = await a.run(name, '-?');
      assert.equal(help.code, 0);
      assert.match(help.text, /Parley's own cmdlet/);
    }
  });
});

describe('Get-CsUserPresence', () => {
  const admin = adminOn(CLI_ENGINES[0]!);

  it('needs the running server: in local mode it says to use --url', async () => {
    const a = await admin('alice');
    const r = await a.run('Get-CsUserPresence', '-Identity', 'alice');
    assert.equal(r.code, 2);
    assert.match(r.error, /needs the running server.*use --url http:\/\/HOST:HTTP-PORT --token-file DATA-DIR\/secrets\/admin\.token/);
  });

  it('is served with the live presence by the server, and block changes reach it at once', async () => {
    const db = openMemoryDatabase();
    await migrate(sqliteSql(db), [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, PRESENCE_MIGRATIONS]);
    await addUser(sqliteSql(db), { address: `alice@${D}`, password: 'pw' });
    const now = 1_700_000_000_000;
    let changes = 0;
    const live: LivePresence = {
      blocksChanged: () => void changes++,
      inspect: async (aor) => ({
        aor, state: 'Busy', note: 'In a meeting',
        registrations: [
          { contact: 'sip:alice@127.0.0.1:4000;transport=tcp', transport: 'tcp', userAgent: 'Parley SDK', expiresAt: now + 290_000 },
          { contact: 'sip:x1@df7jal23ls0d.invalid;transport=ws', transport: 'ws', userAgent: null, expiresAt: now + 60_000 },
        ],
        publications: [{ state: 'Busy', note: 'In a meeting', updatedAt: now, expiresAt: now + 600_000 }, { state: 'Away', note: '', updatedAt: now - 1, expiresAt: now + 30_000 }],
        watchers: [
          { watcher: `bob@${D}`, blocked: false, expiresAt: now, viaList: false },
          { watcher: `carol@${D}`, blocked: false, expiresAt: now, viaList: true },
          { watcher: `mallory@${D}`, blocked: true, expiresAt: now, viaList: false },
        ],
      }),
    };
    const cmdlets = serverCmdlets({ presence: live });
    assert.deepEqual(cmdlets.map((c) => c.name), CMDLETS.map((c) => c.name), 'the same cmdlets, in the same order');
    const get = cmdlets.find((c) => c.name === 'Get-CsUserPresence')!;
    const ctx = { sql: sqliteSql(db), domain: D, actor: 'admin-api', now: () => now };
    const output = await get.run(ctx, { Identity: 'alice' });
    assert.deepEqual(formatList(output), [
      'Identity      : alice@parley.test',
      'State         : Busy',
      'Note          : In a meeting',
      'Registrations : {sip:alice@127.0.0.1:4000;transport=tcp (tcp, Parley SDK, expires in 290 s), sip:x1@df7jal23ls0d.invalid;transport=ws (ws, expires in 60 s)}',
      'Publications  : {Busy "In a meeting" (expires in 600 s), Away (expires in 30 s)}',
      'Watchers      : {bob@parley.test, carol@parley.test (through their contact list), mallory@parley.test (blocked: sees Offline)}',
    ]);
    await assert.rejects(async () => get.run(ctx, { Identity: 'nobody' }), { code: 'USER_NOT_FOUND' });

    await cmdlets.find((c) => c.name === 'Add-CsPresenceBlock')!.run(ctx, { Identity: 'alice', Watcher: 'mallory' });
    await cmdlets.find((c) => c.name === 'Remove-CsPresenceBlock')!.run(ctx, { Identity: 'alice', Watcher: 'mallory' });
    assert.equal(changes, 2);
    db.close();
  });

  it('shows an offline user with nothing', () => {
    assert.deepEqual(formatList([inspectionOutput({ aor: `bob@${D}`, state: 'Offline', note: '', registrations: [], publications: [], watchers: [] }, 0)]), [
      'Identity      : bob@parley.test',
      'State         : Offline',
      'Note          :',
      'Registrations : {}',
      'Publications  : {}',
      'Watchers      : {}',
    ]);
  });
});

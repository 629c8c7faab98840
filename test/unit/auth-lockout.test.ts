// The sign-in guard (src/auth/lockout.ts) on an injected clock, the keeper that holds it in step
// with the database, how sources are counted, and the Get-/Clear-CsAuthLockout cmdlets.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { runAdminCommand } from '../../src/admin/index.ts';
import { AUTH_MIGRATIONS, Authenticator, FAMILIAR_MS, LockoutKeeper, SignInGuard, clearLockout, listLockouts, purgeExpiredLockoutBatch, sourceKey } from '../../src/auth/index.ts';
import { listFamiliarSources, saveGuardChanges } from '../../src/auth/lockout-store.ts';
import type { LockoutPolicy, LockoutState, Refusal } from '../../src/auth/index.ts';
import { httpSource } from '../../src/auth/source.ts';
import { DIRECTORY_MIGRATIONS } from '../../src/directory/index.ts';
import { ConfigError, loadConfig } from '../../src/server/config.ts';
import { SETTINGS_MIGRATIONS, listAudit, recordAudit } from '../../src/settings/index.ts';
import { NonceIssuer, answerChallenge, challenges, computeHa1, formatAuthField, parseMessage } from '../../src/sip/index.ts';
import type { SipRequest } from '../../src/sip/index.ts';
import { migrate } from '../../src/storage/index.ts';
import type { MigrationSet, Sql, SqlDatabase } from '../../src/storage/index.ts';
import type { CliStorage } from '../harness/cli-storage.ts';
import { CLI_ENGINES, withStore } from '../harness/cli-storage.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';

const S = 1000;
const POLICY: LockoutPolicy = { sourceThreshold: 3, accountThreshold: 5, windowMs: 600 * S, durationMs: 60 * S, maxDurationMs: 300 * S };

function clockAt(start = 1_800_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function guardWith(policy: Partial<LockoutPolicy> = {}, maxTracked?: number) {
  const clock = clockAt();
  const started: Array<{ state: LockoutState; refusal: Refusal }> = [];
  const guard = new SignInGuard({ ...POLICY, ...policy }, { now: clock.now, maxTracked, onLockout: (state, refusal) => started.push({ state, refusal }) });
  return { guard, clock, started };
}

const failTimes = (guard: SignInGuard, n: number, source: string, account?: string) => {
  let last: Refusal | undefined;
  for (let i = 0; i < n; i++) last = guard.failed(source, account) ?? last;
  return last;
};

describe('sign-in guard: sources', () => {
  it('locks a source at the threshold, before any password check, and only that source', () => {
    const { guard, clock, started } = guardWith();
    assert.equal(failTimes(guard, 2, '192.0.2.7', 'alice@parley.test'), undefined);
    assert.equal(guard.check('192.0.2.7', 'alice@parley.test'), undefined, 'under the threshold');
    const refusal = guard.failed('192.0.2.7', 'alice@parley.test');
    assert.deepEqual(refusal, {
      kind: 'source', key: '192.0.2.7', until: clock.now() + 60 * S, retryAfterSeconds: 60,
      message: 'too many failed sign-ins from 192.0.2.7; try again in 60 s',
    });
    assert.equal(started.length, 1);
    assert.equal(started[0]?.state.failures, 3);
    // refused whatever account it names, and without naming one (a SIP request with no credentials)
    assert.equal(guard.check('192.0.2.7', 'bob@parley.test')?.kind, 'source');
    assert.equal(guard.check('192.0.2.7')?.kind, 'source');
    assert.equal(guard.check('192.0.2.8', 'alice@parley.test'), undefined, 'another source');
    // what /metrics reads
    assert.deepEqual(guard.counts, { failures: 3, lockouts: { source: 1, account: 0 } });
    assert.deepEqual(guard.lockedNow(), { source: 1, account: 0 });
    clock.advance(30 * S);
    assert.equal(guard.check('192.0.2.7')?.retryAfterSeconds, 30);
    clock.advance(30 * S);
    assert.equal(guard.check('192.0.2.7'), undefined, 'the lockout ended');
    assert.deepEqual(guard.lockedNow(), { source: 0, account: 0 }, 'the lockout ended');
  });

  it('forgets a count after a quiet window; doubles repeated lockouts up to the maximum; forgets the streak a window after', () => {
    const { guard, clock } = guardWith();
    failTimes(guard, 2, '192.0.2.7');
    clock.advance(601 * S);
    assert.equal(guard.failed('192.0.2.7'), undefined, 'the two old failures no longer count');
    assert.equal(guard.failed('192.0.2.7'), undefined);
    const durations: number[] = [];
    let refusal = guard.failed('192.0.2.7');
    for (let i = 0; i < 5; i++) {
      assert.ok(refusal !== undefined, `lockout ${i + 1}`);
      durations.push(refusal.retryAfterSeconds);
      clock.advance(refusal.retryAfterSeconds * S);
      assert.equal(guard.check('192.0.2.7'), undefined);
      // once it ends, one more failure within the window locks again, for twice as long
      refusal = guard.failed('192.0.2.7');
    }
    assert.deepEqual(durations, [60, 120, 240, 300, 300]);
    clock.advance((300 + 601) * S);
    // a quiet window after the last lockout: a fresh count and a fresh streak
    assert.equal(failTimes(guard, 2, '192.0.2.7'), undefined);
    assert.equal(guard.failed('192.0.2.7')?.retryAfterSeconds, 60);
  });

  it('counts an IPv6 /64 as one source, and an IPv4-mapped address as the IPv4 address', () => {
    assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
    const { guard } = guardWith();
    guard.failed('2001:db8:1:2::a');
    guard.failed('2001:db8:1:2::b');
    assert.equal(guard.failed('2001:db8:1:2:ffff::c')?.key, '2001:db8:1:2::/64');
    assert.equal(guard.check('2001:db8:1:2::99')?.kind, 'source');
    assert.equal(guard.check('2001:db8:1:3::1'), undefined, 'the next /64 is another source');
    failTimes(guard, 3, '::ffff:198.51.100.1');
    assert.equal(guard.check('198.51.100.1')?.key, '198.51.100.1');
  });

  it('stays bounded: the oldest unlocked source gives way, locked ones stay', () => {
    const { guard } = guardWith({}, 2);
    failTimes(guard, 3, '192.0.2.1'); // locked
    guard.failed('192.0.2.2');
    guard.failed('192.0.2.3'); // 192.0.2.2 gives way
    assert.deepEqual(guard.entries().map((e) => e.key), ['192.0.2.1', '192.0.2.3']);
    failTimes(guard, 3, '192.0.2.3'); // now both are locked: a new source is not tracked
    guard.failed('192.0.2.4');
    assert.deepEqual(guard.entries().map((e) => e.key), ['192.0.2.1', '192.0.2.3']);
    assert.equal(guard.check('192.0.2.1')?.kind, 'source');
  });
});

describe('sign-in guard: accounts (smart lockout)', () => {
  it('locks an account against unfamiliar sources only; its familiar sources still sign in', () => {
    const { guard, clock, started } = guardWith();
    guard.succeeded('Carol@parley.test', '198.51.100.10'); // carol's usual address
    // a slow attack from many sources, each under the source threshold
    const attackers = ['192.0.2.1', '192.0.2.2', '192.0.2.3'];
    for (let i = 0; i < 4; i++) assert.equal(guard.failed(attackers[i % 3] as string, 'carol@parley.test'), undefined);
    const refusal = guard.failed('192.0.2.3', 'carol@parley.test');
    assert.equal(refusal?.kind, 'account');
    assert.equal(refusal?.key, 'carol@parley.test');
    assert.match(refusal?.message ?? '', /^too many failed sign-ins for carol@parley\.test from addresses it has not signed in from; try again in 60 s/);
    assert.equal(started.at(-1)?.state.kind, 'account');
    assert.equal(guard.check('203.0.113.5', 'carol@parley.test')?.kind, 'account', 'a new address, even with the right password');
    assert.equal(guard.check('203.0.113.5', 'dave@parley.test'), undefined, 'other accounts from there');
    assert.equal(guard.check('198.51.100.10', 'CAROL@parley.test'), undefined, 'her usual address');
    clock.advance(60 * S);
    assert.equal(guard.check('203.0.113.5', 'carol@parley.test'), undefined, 'the lockout ended');
  });

  it('does not count the failures of a familiar source against the account (the owner mistyping)', () => {
    const { guard } = guardWith({ sourceThreshold: 100 });
    guard.succeeded('carol@parley.test', '198.51.100.10');
    failTimes(guard, 20, '198.51.100.10', 'carol@parley.test');
    assert.equal(guard.check('203.0.113.5', 'carol@parley.test'), undefined);
    assert.deepEqual(guard.entries().map((e) => `${e.kind} ${e.key} ${e.failures}`), ['source 198.51.100.10 20']);
  });

  it('resets no count on a successful sign-in: neither the account owner nor a guesser refills a budget', () => {
    const { guard } = guardWith({ sourceThreshold: 10 });
    failTimes(guard, 4, '192.0.2.1', 'carol@parley.test');
    // carol's phone refreshes its registration from home
    guard.succeeded('carol@parley.test', '198.51.100.10');
    assert.equal(guard.failed('192.0.2.2', 'carol@parley.test')?.kind, 'account', 'the fifth guess locks the account all the same');
    // a guesser who knows one password cannot reset its own source's budget with it
    guard.succeeded('mallory@parley.test', '192.0.2.1');
    assert.deepEqual(guard.entries().filter((e) => e.kind === 'source').map((e) => `${e.key} ${e.failures}`), ['192.0.2.1 4', '192.0.2.2 1']);
  });
});

describe('sign-in guard: clearing, changes, loading', () => {
  it('clears, reports what to write, loads what is still running and sweeps what expired', () => {
    const { guard, clock } = guardWith();
    failTimes(guard, 3, '192.0.2.7', 'alice@parley.test');
    guard.failed('192.0.2.8');
    guard.succeeded('alice@parley.test', '198.51.100.1');
    const first = guard.takeChanges();
    assert.deepEqual(first.saved.map((s) => `${s.kind} ${s.key} ${s.failures} ${s.lockedUntil > 0}`).sort(), ['account alice@parley.test 3 false', 'source 192.0.2.7 3 true', 'source 192.0.2.8 1 false']);
    assert.deepEqual(first.familiar.map((f) => `${f.account} ${f.source}`), ['alice@parley.test 198.51.100.1']);
    assert.deepEqual(guard.takeChanges(), { saved: [], removed: [], familiar: [] }, 'nothing new');
    // a REGISTER refresh from the same address writes nothing, a day later it does
    guard.succeeded('alice@parley.test', '198.51.100.1');
    assert.equal(guard.takeChanges().familiar.length, 0);

    assert.equal(guard.clear('source', '192.0.2.7'), true);
    assert.equal(guard.clear('source', '192.0.2.7'), false);
    assert.equal(guard.check('192.0.2.7'), undefined);
    assert.deepEqual(guard.takeChanges().removed, [{ kind: 'source', key: '192.0.2.7' }]);

    const reloaded = guardWith();
    reloaded.guard.load(
      [
        { kind: 'source', key: '192.0.2.9', failures: 3, lastFailure: reloaded.clock.now() - 10 * S, lockedUntil: reloaded.clock.now() + 50 * S, lockouts: 1 },
        { kind: 'source', key: '192.0.2.10', failures: 1, lastFailure: reloaded.clock.now() - 3600 * S, lockedUntil: 0, lockouts: 0 },
      ],
      [{ account: 'alice@parley.test', source: '198.51.100.1', at: reloaded.clock.now() - 86_400 * S }],
    );
    assert.equal(reloaded.guard.check('192.0.2.9')?.retryAfterSeconds, 50);
    assert.deepEqual(reloaded.guard.entries().map((e) => e.key), ['192.0.2.9'], 'the expired count is not taken back');
    assert.equal(reloaded.guard.familiarSources('alice@parley.test').length, 1);

    clock.advance(3600 * S);
    guard.sweep();
    assert.deepEqual(guard.entries(), []);
    assert.deepEqual(guard.takeChanges().removed.map((r) => r.key).sort(), ['192.0.2.8', 'alice@parley.test']);
  });
});

describe('SIP digest with the guard', () => {
  const realm = 'parley.test';
  let now = 1_800_000_000_000;
  const nonces = new NonceIssuer({ secret: Buffer.alloc(32, 7), lifetimeSeconds: 60, now: () => now });
  const { guard } = guardWith();
  const ha1 = { MD5: computeHa1('MD5', 'alice', realm, 'alice-pw'), 'SHA-256': computeHa1('SHA-256', 'alice', realm, 'alice-pw') };
  const auth = new Authenticator({ realm, nonces, algorithms: ['SHA-256', 'MD5'], findAccount: async (u) => (u === 'alice' ? { address: 'alice@parley.test', ha1 } : undefined), guard });
  const register = (authorization?: string): SipRequest =>
    parseMessage(Buffer.from(
      [
        `REGISTER sip:${realm} SIP/2.0`, 'Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1', 'From: <sip:alice@parley.test>;tag=1', 'To: <sip:alice@parley.test>',
        'Call-ID: 1@test', 'CSeq: 1 REGISTER', ...(authorization === undefined ? [] : [`Authorization: ${authorization}`]), 'Content-Length: 0', '', '',
      ].join('\r\n'),
    )) as SipRequest;
  // an answer to a challenge made for `source`: a nonce works only from the address it was issued to
  const answer = (user: string, password: string, source = '192.0.2.7') => {
    const challenge = challenges(realm, nonces.issue(source), false, { algorithms: ['SHA-256'] })[0];
    assert.ok(challenge);
    return formatAuthField(answerChallenge(challenge, { username: user, password, method: 'REGISTER', uri: `sip:${realm}` }));
  };

  it('counts wrong passwords and unknown users, not challenges nor stale nonces, and refuses a locked source with 403', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await auth.authenticate(register(), 'registrar', '192.0.2.7')).ok, false, 'a challenge');
    const stale = answer('alice', 'alice-pw');
    now += 61_000;
    const staleOutcome = (await auth.authenticate(register(stale), 'registrar', '192.0.2.7'));
    assert.ok(!staleOutcome.ok && staleOutcome.status === 401, 'stale: challenged again');
    const borrowed = (await auth.authenticate(register(answer('alice', 'a guess', '192.0.2.99')), 'registrar', '192.0.2.7'));
    assert.ok(!borrowed.ok && borrowed.status === 401, "another address's nonce: challenged again, the password not even looked at");
    assert.equal(guard.entries().length, 0, 'neither a challenge, a stale nonce nor a borrowed one is a failure');

    const wrong = (await auth.authenticate(register(answer('alice', 'guess')), 'registrar', '192.0.2.7'));
    assert.ok(!wrong.ok && wrong.status === 403 && /authentication failed/.test(wrong.warning));
    (await auth.authenticate(register(answer('nobody', 'guess')), 'registrar', '192.0.2.7'));
    assert.equal(guard.check('192.0.2.7'), undefined);
    (await auth.authenticate(register(answer('alice', 'guess 2')), 'registrar', '192.0.2.7'));
    const locked = (await auth.authenticate(register(answer('alice', 'alice-pw')), 'registrar', '192.0.2.7'));
    assert.deepEqual(locked, { ok: false, status: 403, warning: 'too many failed sign-ins from 192.0.2.7; try again in 60 s', headers: [] });
    const unchallenged = (await auth.authenticate(register(), 'registrar', '192.0.2.7'));
    assert.ok(!unchallenged.ok && unchallenged.status === 403, 'no challenge for a locked source either');
    assert.deepEqual((await auth.authenticate(register(answer('alice', 'alice-pw', '192.0.2.8')), 'registrar', '192.0.2.8')), { ok: true, address: 'alice@parley.test' });
    assert.deepEqual(guard.familiarSources('alice@parley.test').map((f) => f.source), ['192.0.2.8']);
  });
});

describe('the source of an HTTP request', () => {
  const trusted = new Set(['127.0.0.1']);
  it('is the peer, unless the peer is a trusted proxy', () => {
    assert.equal(httpSource('192.0.2.7', '203.0.113.9', trusted), '192.0.2.7', 'an untrusted peer cannot name another source');
    assert.equal(httpSource('::ffff:127.0.0.1', '203.0.113.9', trusted), '203.0.113.9');
    assert.equal(httpSource('127.0.0.1', '198.51.100.1, 203.0.113.9', trusted), '203.0.113.9', 'the entry the proxy appended');
    assert.equal(httpSource('127.0.0.1', '203.0.113.9, 127.0.0.1', trusted), '203.0.113.9', 'further trusted hops are skipped');
    assert.equal(httpSource('127.0.0.1', 'not-an-address', trusted), '127.0.0.1');
    assert.equal(httpSource('127.0.0.1', undefined, trusted), '127.0.0.1');
  });
});

/** Where the keeper's audit rows go in these tests: a table of their own, written through the keeper's transaction. */
const TEST_AUDIT: MigrationSet = { capability: 'test-audit', migrations: [{ id: '001', up: 'CREATE TABLE test_audit (identity TEXT NOT NULL, property TEXT NOT NULL, new_value TEXT)' }] };

function keeperOn(sql: Sql, clock = clockAt(), audit?: ConstructorParameters<typeof LockoutKeeper>[0]['audit']) {
  return new LockoutKeeper({
    sql,
    policy: POLICY,
    logger: pino({ level: 'silent' }),
    audit: audit ?? (async (tx, identity, property, _old, newValue) => void (await tx.run('INSERT INTO test_audit (identity, property, new_value) VALUES (?, ?, ?)', [identity, property, newValue]))),
    pollMs: 60_000, // the test calls tick() itself
    now: clock.now,
  });
}

const audited = async (sql: Sql) =>
  (await sql.all<{ identity: string; property: string; new_value: string | null }>('SELECT identity, property, new_value FROM test_audit')).map((r) => ({ identity: r.identity, property: r.property, new_value: r.new_value }));

after(() => closeTestPostgres());

for (const engine of ENGINES) describe(`the lockout keeper on ${engine.name}`, () => {
  let sql: SqlDatabase;
  beforeEach(async () => {
    sql = await engine.open();
    await migrate(sql, [AUTH_MIGRATIONS, TEST_AUDIT]);
  });
  afterEach(() => sql.close());

  it('audits at most 100 lockouts one by one per round, and counts the rest in one row', async () => {
    const keeper = keeperOn(sql);
    await keeper.start();
    for (let i = 0; i < 105; i++) failTimes(keeper.guard, 3, `192.0.2.${i}`);
    await keeper.tick();
    const audit = await audited(sql);
    assert.equal(audit.length, 101);
    assert.deepEqual([audit[100]?.identity, audit[100]?.new_value], ['*', '5 more lockouts within a second; see Get-CsAuthLockout -Locked']);
    assert.equal((await listLockouts(sql)).length, 105);
    await keeper.close();
  });

  it('writes counts, familiar sources and lockouts with their audit rows each round; keeps them over a restart; hears of clears by other processes', async () => {
    const clock = clockAt();
    const keeper = keeperOn(sql, clock);
    await keeper.start();
    try {
      failTimes(keeper.guard, 3, '192.0.2.7');
      keeper.guard.failed('192.0.2.8');
      keeper.guard.succeeded('alice@parley.test', '192.0.2.9');
      assert.deepEqual(await listLockouts(sql), [], 'written by the round, not by the request');
      await keeper.tick();
      assert.deepEqual((await listLockouts(sql)).map((s) => `${s.key} ${s.failures} ${s.lockedUntil}`), [`192.0.2.7 3 ${clock.now() + 60 * S}`, '192.0.2.8 1 0']);
      assert.deepEqual(await audited(sql), [{ identity: 'Source:192.0.2.7', property: 'LockedUntil', new_value: new Date(clock.now() + 60 * S).toISOString() }]);
      await keeper.tick();
      assert.equal((await audited(sql)).length, 1, 'audited once');

      // a restart: the new keeper still refuses the locked source and knows the familiar one
      await keeper.close();
      const restarted = keeperOn(sql, clock);
      await restarted.start();
      assert.equal(restarted.guard.check('192.0.2.7')?.kind, 'source');
      assert.deepEqual(restarted.guard.familiarSources('alice@parley.test').map((f) => f.source), ['192.0.2.9']);
      // cleared by another process (written to the clear log only): the next tick forgets it
      assert.equal((await clearLockout(sql, 'source', '192.0.2.7', clock.now()))?.failures, 3);
      assert.equal(restarted.guard.check('192.0.2.7')?.kind, 'source', 'not before the tick');
      await restarted.tick();
      assert.equal(restarted.guard.check('192.0.2.7'), undefined);
      assert.deepEqual((await listLockouts(sql)).map((s) => s.key), ['192.0.2.8']);
      assert.equal(await clearLockout(sql, 'source', '192.0.2.7', clock.now()), undefined, 'nothing left to clear');
      await restarted.close();
    } finally {
      await keeper.close();
    }
  });

  it('keeps the later sign-in time of a familiar source, and the retention sweep purges what expired in batches', async () => {
    const t = 1_800_000_000_000;
    const familiar = (account: string, source: string, at: number) => ({ saved: [], removed: [], familiar: [{ account, source, at }] });
    await saveGuardChanges(sql, familiar('alice@parley.test', '192.0.2.9', t), 0);
    await saveGuardChanges(sql, familiar('alice@parley.test', '192.0.2.9', t - 1000), 0);
    assert.deepEqual(await listFamiliarSources(sql, 0), [{ account: 'alice@parley.test', source: '192.0.2.9', at: t }], 'an older time does not move it back');
    await saveGuardChanges(sql, familiar('bob@parley.test', '192.0.2.10', t - 40 * 86_400_000), 0);
    const states = [1, 2, 3].map((i) => ({ kind: 'source' as const, key: `192.0.2.${i}`, failures: 1, lastFailure: t - 700 * S, lockedUntil: 0, lockouts: 0 }));
    await saveGuardChanges(sql, { saved: [...states, { kind: 'account', key: 'carol@parley.test', failures: 3, lastFailure: t, lockedUntil: t + 60 * S, lockouts: 1 }], removed: [], familiar: [] }, 0);
    await clearLockout(sql, 'source', '192.0.2.3', t - 11 * 60 * S);
    // two stale counts and the old clear (the 3rd count went with the clear), one old familiar source
    assert.equal(await purgeExpiredLockoutBatch(sql, t, POLICY.windowMs, FAMILIAR_MS, 1), 3, 'at most one row of each table');
    assert.equal(await purgeExpiredLockoutBatch(sql, t, POLICY.windowMs, FAMILIAR_MS, 1), 1);
    assert.equal(await purgeExpiredLockoutBatch(sql, t, POLICY.windowMs, FAMILIAR_MS, 1), 0);
    assert.deepEqual((await listLockouts(sql)).map((l) => l.key), ['carol@parley.test'], 'a running lockout stays');
    assert.deepEqual((await listFamiliarSources(sql, 0)).map((f) => f.account), ['alice@parley.test']);
  });

  it('keeps what it could not write for the next round', async () => {
    const keeper = keeperOn(sql, clockAt(), async () => {
      throw new Error('the audit log is unavailable');
    });
    await keeper.start();
    failTimes(keeper.guard, 3, '192.0.2.7');
    await assert.rejects(keeper.flush(), /the audit log is unavailable/);
    assert.deepEqual(await listLockouts(sql), [], 'the transaction was rolled back');
    await keeper.close(); // logs the failure again, does not throw
    assert.deepEqual(await listLockouts(sql), []);
  });
});

/** `parley admin` on the storage `store` names (--data-dir DIR or --database URL). */
async function admin(store: CliStorage, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runAdminCommand([...store.args, ...args], { out: (l) => out.push(l), err: (l) => err.push(l) }, { dataDir: store.dataDir, domain: 'parley.test' });
  return { code, text: out.join('\n'), error: err.join('\n') };
}

for (const engine of CLI_ENGINES) describe(`Get-/Clear-CsAuthLockout on ${engine.name}`, () => {
  let dir: CliStorage;
  beforeEach(async () => {
    dir = await engine.fresh();
  });
  afterEach(() => dir.drop());

  it('lists what the guard recorded, clears it with an audit row per property, and says what is wrong', async () => {
    const clock = clockAt(Date.now());
    const sql = await dir.open();
    await migrate(sql, [DIRECTORY_MIGRATIONS, SETTINGS_MIGRATIONS, AUTH_MIGRATIONS]);
    const keeper = keeperOn(sql, clock, (tx, identity, property, oldValue, newValue) => recordAudit(tx, { actor: 'system', cmdlet: 'sign-in guard', now: clock.now }, identity, property, oldValue, newValue));
    await keeper.start();
    failTimes(keeper.guard, 3, '192.0.2.7', 'alice@parley.test');
    failTimes(keeper.guard, 2, '2001:db8:1:2::5', 'alice@parley.test');
    await keeper.close();
    await sql.close();

    const all = JSON.parse((await admin(dir, '--json', 'Get-CsAuthLockout')).text) as Array<Record<string, unknown>>;
    assert.deepEqual(all.map((r) => [r.Identity, r.Source, r.Failures, r.LockedUntil !== null, r.Lockouts]), [
      [null, '192.0.2.7', 3, true, 1],
      [null, '2001:db8:1:2::/64', 2, false, 0],
      ['alice@parley.test', null, 5, true, 1],
    ]);
    const locked = JSON.parse((await admin(dir, '--json', 'Get-CsAuthLockout', '-Locked')).text) as Array<Record<string, unknown>>;
    assert.equal(locked.length, 2);
    const list = await admin(dir, 'Get-CsAuthLockout', '-Source', '192.0.2.7');
    assert.match(list.text, /^Identity    :\nSource      : 192\.0\.2\.7\nFailures    : 3\nLockedUntil : \d{4}-.*Z\nLastFailure : \d{4}-.*Z\nLockouts    : 1$/);

    assert.equal((await admin(dir, 'Clear-CsAuthLockout', '-Source', '2001:db8:1:2::/64')).code, 0, 'as Get shows it');
    const cleared = await admin(dir, 'Clear-CsAuthLockout', 'alice', '-Source', '192.0.2.7');
    assert.equal(cleared.code, 0, cleared.error);
    assert.equal((await admin(dir, '--json', 'Get-CsAuthLockout')).text, '[]');
    const audit = (await withStore(dir, (check) => listAudit(check))).filter((e) => e.cmdlet === 'Clear-CsAuthLockout');
    assert.deepEqual(audit.map((e) => `${e.identity} ${e.property} ${e.oldValue === null ? '-' : /Z$/.test(e.oldValue) ? 'time' : e.oldValue} ${e.newValue ?? '-'}`), [
      'Source:2001:db8:1:2::/64 Failures 2 0',
      'alice@parley.test LockedUntil time -',
      'alice@parley.test Failures 5 0',
      'alice@parley.test Lockouts 1 0',
      'Source:192.0.2.7 LockedUntil time -',
      'Source:192.0.2.7 Failures 3 0',
      'Source:192.0.2.7 Lockouts 1 0',
    ]);

    const none = await admin(dir, 'Clear-CsAuthLockout', '-Source', '192.0.2.7');
    assert.deepEqual([none.code, none.error], [1, 'parley admin: no failed sign-ins are recorded for 192.0.2.7; see Get-CsAuthLockout']);
    const bare = await admin(dir, 'Clear-CsAuthLockout');
    assert.equal(bare.code, 2);
    assert.match(bare.error, /needs -Identity \(an account\) or -Source/);
    const bad = await admin(dir, 'Clear-CsAuthLockout', '-Source', 'example.org');
    assert.equal(bad.code, 2);
    assert.match(bad.error, /-Source "example\.org" is not an IP address/);
  });
});

const root = mkdtempSync(join(tmpdir(), 'parley-lockout-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

describe('auth settings', () => {
  const configFile = (content: unknown) => {
    const file = join(root, `config-${++dirs}.json`);
    writeFileSync(file, JSON.stringify(content));
    return file;
  };

  it('has sane defaults, and takes the lockout keys one by one over them', () => {
    assert.deepEqual(loadConfig(undefined, {}).auth, {
      lockout: { sourceThreshold: 10, accountThreshold: 50, window: 900, duration: 60, maxDuration: 3600 },
      hashConcurrency: 2, hashQueue: 64, hashQueuePerSource: 4, credentialCache: 300, trustedProxies: [],
    });
    const c = loadConfig(configFile({ auth: { lockout: { sourceThreshold: 5 }, trustedProxies: ['127.0.0.1', '::1'] } }), {});
    assert.deepEqual(c.auth.lockout, { sourceThreshold: 5, accountThreshold: 50, window: 900, duration: 60, maxDuration: 3600 });
    assert.deepEqual(c.auth.trustedProxies, ['127.0.0.1', '::1']);
    assert.equal(c.auth.hashQueue, 64);
  });

  it('refuses values that cannot work, naming the setting', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ lockout: { sourceThreshold: 0 } }, /^config\.auth\.lockout\.sourceThreshold must be a whole number from 1 to 1000000, not 0$/],
      [{ lockout: { accountThreshold: 2.5 } }, /config\.auth\.lockout\.accountThreshold must be a whole number/],
      [{ lockout: { duration: 600, maxDuration: 60 } }, /^auth\.lockout\.duration must not exceed auth\.lockout\.maxDuration$/],
      [{ lockout: { treshold: 3 } }, /unknown setting config\.auth\.lockout\.treshold; known: sourceThreshold, accountThreshold, window, duration, maxDuration/],
      [{ hashConcurrency: 0 }, /config\.auth\.hashConcurrency must be a whole number from 1 to 64/],
      [{ hashQueue: 0, hashConcurrency: 1, hashQueuePerSource: 4 }, /auth\.hashQueuePerSource must not exceed auth\.hashQueue \+ auth\.hashConcurrency/],
      [{ credentialCache: -1 }, /config\.auth\.credentialCache must be a number from 0 to 86400/],
      [{ trustedProxies: ['proxy.example'] }, /config\.auth\.trustedProxies must list IP addresses/],
    ];
    for (const [auth, message] of cases) {
      assert.throws(() => loadConfig(configFile({ auth }), {}), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(auth));
    }
  });
});

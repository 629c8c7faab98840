import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  DigestError,
  NonceIssuer,
  answerChallenge,
  challenges,
  computeHa1,
  computeResponse,
  formatNonceCount,
  parseDigestAlgorithm,
  pickChallenge,
  verifyCredentials,
} from '../../src/sip/digest.ts';
import type { DigestAlgorithm, VerifyOptions } from '../../src/sip/digest.ts';
import type { AuthField } from '../../src/sip/message.ts';

const field = (scheme: string, params: Record<string, string>): AuthField => ({ scheme, params: new Map(Object.entries(params)) });

describe('digest computations: published vectors', () => {
  // RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
  const rfc7616 = {
    username: 'Mufasa',
    realm: 'http-auth@example.org',
    password: 'Circle of Life',
    method: 'GET',
    uri: '/dir/index.html',
    nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
    opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
  };
  const expected7616: Record<DigestAlgorithm, string> = {
    MD5: '8ca523f5e9506fed4657c9700eebdbec',
    'SHA-256': '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
  };

  for (const algorithm of ['MD5', 'SHA-256'] as const) {
    it(`RFC 7616 §3.9.1 ${algorithm} response`, () => {
      const ha1 = computeHa1(algorithm, rfc7616.username, rfc7616.realm, rfc7616.password);
      const response = computeResponse({ algorithm, ha1, method: 'GET', uri: rfc7616.uri, nonce: rfc7616.nonce, qop: 'auth', nc: 1, cnonce: rfc7616.cnonce });
      assert.equal(response, expected7616[algorithm]);
    });

    it(`RFC 7616 §3.9.1 ${algorithm}: answerChallenge produces the published credentials`, () => {
      const challenge = field('Digest', { realm: rfc7616.realm, qop: 'auth, auth-int', algorithm, nonce: rfc7616.nonce, opaque: rfc7616.opaque });
      const answer = answerChallenge(challenge, { username: 'Mufasa', password: rfc7616.password, method: 'GET', uri: rfc7616.uri, cnonce: rfc7616.cnonce, nc: 1 });
      assert.equal(answer.scheme, 'Digest');
      assert.deepEqual(Object.fromEntries(answer.params), {
        username: 'Mufasa',
        realm: rfc7616.realm,
        nonce: rfc7616.nonce,
        uri: rfc7616.uri,
        response: expected7616[algorithm],
        algorithm,
        qop: 'auth',
        nc: '00000001',
        cnonce: rfc7616.cnonce,
        opaque: rfc7616.opaque,
      });
    });
  }

  it('RFC 2617 §3.5 (qop=auth, MD5, no algorithm parameter)', () => {
    const challenge = field('Digest', {
      realm: 'testrealm@host.com',
      qop: 'auth,auth-int',
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      opaque: '5ccc069c403ebaf9f0171e9517f40e41',
    });
    const answer = answerChallenge(challenge, { username: 'Mufasa', password: 'Circle Of Life', method: 'GET', uri: '/dir/index.html', cnonce: '0a4f113b' });
    assert.equal(answer.params.get('response'), '6629fae49393a05397450978507c4ef1');
    assert.equal(answer.params.get('nc'), '00000001');
    assert.equal(answer.params.has('algorithm'), false, 'algorithm echoed only when the challenge named it');
  });

  it('RFC 2069 form without qop (RFC 2069 example as corrected by erratum 749)', () => {
    const challenge = field('Digest', { realm: 'testrealm@host.com', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', opaque: '5ccc069c403ebaf9f0171e9517f40e41' });
    const answer = answerChallenge(challenge, { username: 'Mufasa', password: 'CircleOfLife', method: 'GET', uri: '/dir/index.html' });
    assert.equal(answer.params.get('response'), '1949323746fe6a43ef61f9606e7febea');
    assert.equal(answer.params.has('qop'), false);
    assert.equal(answer.params.has('nc'), false);
    assert.equal(answer.params.has('cnonce'), false);
  });

  it('HA1 is the hash of username:realm:password', () => {
    // MD5("Mufasa:testrealm@host.com:Circle Of Life"), the HA1 of the RFC 2617 example
    assert.equal(computeHa1('MD5', 'Mufasa', 'testrealm@host.com', 'Circle Of Life'), '939e7578ed9e3c518a452acee763bce9');
    assert.equal(computeHa1('SHA-256', 'a', 'b', 'c').length, 64);
  });

  it('formats nc as 8 hex digits and refuses impossible counts', () => {
    assert.equal(formatNonceCount(1), '00000001');
    assert.equal(formatNonceCount(255), '000000ff');
    assert.throws(() => formatNonceCount(0), DigestError);
    assert.throws(() => formatNonceCount(2 ** 32), DigestError);
  });

  it('reads algorithm tokens case-insensitively, absent meaning MD5', () => {
    assert.equal(parseDigestAlgorithm(undefined), 'MD5');
    assert.equal(parseDigestAlgorithm('sha-256'), 'SHA-256');
    assert.equal(parseDigestAlgorithm('md5'), 'MD5');
    assert.equal(parseDigestAlgorithm('MD5-sess'), undefined);
    assert.equal(parseDigestAlgorithm('SHA-512-256'), undefined);
  });
});

describe('NonceIssuer', () => {
  const secret = Buffer.alloc(32, 7);

  it('accepts its own nonces within the lifetime, then calls them stale', () => {
    let now = 1_700_000_000_000;
    const nonces = new NonceIssuer({ secret, lifetimeSeconds: 60, now: () => now });
    const nonce = nonces.issue();
    assert.match(nonce, /^[A-Za-z0-9_-]+$/);
    assert.equal(nonces.check(nonce), 'valid');
    now += 60_000;
    assert.equal(nonces.check(nonce), 'valid');
    now += 1;
    assert.equal(nonces.check(nonce), 'stale');
  });

  it('keeps its own copy of the secret', () => {
    const mutable = Buffer.from(secret);
    const nonces = new NonceIssuer({ secret: mutable, now: () => 5 });
    const nonce = nonces.issue();
    mutable.fill(0);
    assert.equal(nonces.check(nonce), 'valid');
    assert.equal(new NonceIssuer({ secret, now: () => 5 }).check(nonce), 'valid', 'the same secret bytes give the same MAC');
  });

  it('is timestamp || random || HMAC-SHA256(secret, both), for secrets shorter and longer than a block', () => {
    const now = 1_700_000_000_123; // over 2^32 ms: both halves of the 64-bit timestamp are used
    for (const key of [secret, Buffer.alloc(100, 9)]) {
      const raw = Buffer.from(new NonceIssuer({ secret: key, now: () => now }).issue(), 'base64url');
      assert.equal(raw.length, 48);
      assert.equal(raw.readBigUInt64BE(0), BigInt(now));
      assert.deepEqual(raw.subarray(16), createHmac('sha256', key).update(raw.subarray(0, 16)).digest());
    }
  });

  it('defaults to a 300 s lifetime', () => {
    assert.equal(new NonceIssuer({ secret }).lifetimeSeconds, 300);
  });

  it('binds a nonce to the address it was issued to', () => {
    const nonces = new NonceIssuer({ secret, now: () => 5 });
    const nonce = nonces.issue('192.0.2.1');
    assert.equal(nonces.check(nonce, '192.0.2.1'), 'valid');
    assert.equal(nonces.check(nonce, '::ffff:192.0.2.1'), 'valid', 'the same IPv4 address through a dual-stack socket');
    assert.equal(nonces.check(nonce, '192.0.2.2'), 'invalid');
    assert.equal(nonces.check(nonce), 'invalid');
    assert.equal(nonces.check(nonces.issue(), ''), 'valid', 'unbound nonces still work where no address is known');
  });

  it('issues distinct nonces even within one millisecond', () => {
    const nonces = new NonceIssuer({ secret, now: () => 5 });
    assert.notEqual(nonces.issue(), nonces.issue());
  });

  it('refuses nonces of another secret, tampered or garbage ones', () => {
    const now = () => 1_700_000_000_000;
    const ours = new NonceIssuer({ secret, now });
    const theirs = new NonceIssuer({ secret: Buffer.alloc(32, 8), now });
    assert.equal(ours.check(theirs.issue()), 'invalid');
    const nonce = ours.issue();
    const flipped = (nonce[5] === 'A' ? 'B' : 'A');
    assert.equal(ours.check(nonce.slice(0, 5) + flipped + nonce.slice(6)), 'invalid');
    assert.equal(ours.check(''), 'invalid');
    assert.equal(ours.check('dcd98b7102dd2f0e8b11d0f600bfb0c093'), 'invalid');
    assert.equal(ours.check(`${nonce}=`), 'invalid');
  });

  it('refuses a nonce stamped far in the future', () => {
    let now = 1_700_000_000_000;
    const nonces = new NonceIssuer({ secret, now: () => now });
    const nonce = nonces.issue();
    now -= 10_000;
    assert.equal(nonces.check(nonce), 'valid', 'a little clock skew between nodes is tolerated');
    now -= 60_000;
    assert.equal(nonces.check(nonce), 'invalid');
  });

  it('requires a secret of at least 16 bytes', () => {
    assert.throws(() => new NonceIssuer({ secret: Buffer.alloc(8) }), (e: unknown) => e instanceof DigestError && e.code === 'BAD_ARGUMENT');
  });

  const ours = (nonces: NonceIssuer) => nonces.issue();

  it('accepts each nonce count once per user, out of order within a window of 32', () => {
    const nonces = new NonceIssuer({ secret });
    const n = ours(nonces);
    const count = (nc: number, user = 'alice', nonce = n) => nonces.acceptCount(user, nonce, nc);
    assert.equal(count(1), 'accepted');
    assert.equal(count(1), 'replayed');
    assert.equal(count(3), 'accepted');
    assert.equal(count(2), 'accepted', 'late but unseen');
    assert.equal(count(2), 'replayed');
    assert.equal(count(3), 'replayed');
    assert.equal(count(40), 'accepted');
    assert.equal(count(8), 'accepted', 'exactly 32 below the highest: still in the window');
    assert.equal(count(7), 'replayed', 'below the window');
    assert.equal(count(72), 'accepted', 'a jump of exactly the window size');
    assert.equal(count(40), 'replayed', 'the old highest is remembered after the jump');
    assert.equal(count(1, 'alice', ours(nonces)), 'accepted', 'counts are per nonce');
    assert.equal(count(1, 'bob'), 'accepted', 'and per user: another user\'s credentials are another secret');
  });

  it('never takes a used nonce for a new one, however many nonces one user burns through', () => {
    let now = 1_700_000_000_000;
    const nonces = new NonceIssuer({ secret, now: () => now, maxNoncesPerUser: 4 });
    const first = ours(nonces);
    now += 1;
    const unused = ours(nonces);
    assert.equal(nonces.acceptCount('alice', first, 1), 'accepted');
    // ten more nonces used by alice push `first` out of her tracking
    for (let i = 0; i < 10; i++) {
      now += 1;
      assert.equal(nonces.acceptCount('alice', ours(nonces), 1), 'accepted');
    }
    assert.equal(nonces.trackedNonces, 4, 'bounded per user');
    assert.equal(nonces.acceptCount('alice', first, 1), 'forgotten', 'a replay of a forgotten nonce is refused, not taken as new');
    assert.equal(nonces.acceptCount('alice', unused, 1), 'forgotten', 'an older unused nonce too: the client takes a fresh one');
    assert.equal(nonces.acceptCount('bob', first, 1), 'accepted', "alice's flood does not touch bob");
    now += 1;
    assert.equal(nonces.acceptCount('alice', ours(nonces), 1), 'accepted', 'a nonce issued after the floor is fine');
  });

  it('does not count one nonce into another that shares its tracking key (30 random bits), issued another millisecond', () => {
    const nonces = new NonceIssuer({ secret });
    const a = ours(nonces);
    // the same random part, another issue time: the key is the same, the nonce is not
    const raw = Buffer.from(a, 'base64url');
    raw.writeUInt32BE(raw.readUInt32BE(4) + 1, 4);
    const b = raw.toString('base64url');
    assert.equal(b.slice(12, 17), a.slice(12, 17));
    assert.equal(nonces.acceptCount('alice', a, 1), 'accepted');
    assert.equal(nonces.acceptCount('alice', b, 2), 'forgotten', "not taken as a's count 2: the client takes a new nonce");
    assert.equal(nonces.acceptCount('alice', a, 2), 'accepted', "a's counts were left alone");
    assert.equal(nonces.acceptCount('alice', a, 1), 'replayed');
  });

  it('keeps a nonce in use tracked while others come and go', () => {
    let now = 1_700_000_000_000;
    const nonces = new NonceIssuer({ secret, now: () => now, maxNoncesPerUser: 2 });
    const long = ours(nonces);
    assert.equal(nonces.acceptCount('alice', long, 1), 'accepted');
    for (let nc = 2; nc < 6; nc++) {
      now += 1;
      assert.equal(nonces.acceptCount('alice', ours(nonces), 1), 'accepted');
      assert.equal(nonces.acceptCount('alice', long, nc), 'accepted', 'used last, so not the one forgotten');
    }
    assert.equal(nonces.acceptCount('alice', long, 5), 'replayed');
  });

  it('when the tracking as a whole is full, forgets expired nonces first, then everyone\'s', () => {
    let now = 1_700_000_000_000;
    const nonces = new NonceIssuer({ secret, now: () => now, lifetimeSeconds: 60, maxNoncesPerUser: 2, maxTrackedNonces: 4 });
    const old = ours(nonces);
    for (const user of ['a', 'b', 'c']) assert.equal(nonces.acceptCount(user, old, 1), 'accepted');
    now += 61_000;
    const fresh = ours(nonces);
    assert.equal(nonces.acceptCount('d', fresh, 1), 'accepted');
    assert.equal(nonces.acceptCount('e', fresh, 1), 'accepted', 'the expired ones made room');
    assert.equal(nonces.trackedNonces, 2);
    for (const user of ['f', 'g']) assert.equal(nonces.acceptCount(user, fresh, 1), 'accepted');
    assert.equal(nonces.acceptCount('h', fresh, 1), 'forgotten', 'full of live nonces: all are forgotten at once');
    assert.equal(nonces.acceptCount('d', fresh, 1), 'forgotten', 'a replay after that is still refused');
    now += 1;
    assert.equal(nonces.acceptCount('d', ours(nonces), 1), 'accepted', 'new nonces work at once');
  });

  it('forgets the nonces of users gone quiet once the lifetime has passed', () => {
    let now = 1_700_000_000_000;
    const nonces = new NonceIssuer({ secret, now: () => now, lifetimeSeconds: 60 });
    for (let i = 0; i < 50; i++) nonces.acceptCount(`user${i}`, ours(nonces), 1);
    assert.equal(nonces.trackedNonces, 50);
    now += 121_000;
    nonces.acceptCount('late', ours(nonces), 1);
    assert.equal(nonces.trackedNonces, 1);
  });
});

describe('challenges', () => {
  it('offers SHA-256 first, then MD5, with qop=auth', () => {
    const [first, second, ...rest] = challenges('parley.local', 'N');
    assert.equal(rest.length, 0);
    assert.deepEqual(first && Object.fromEntries(first.params), { realm: 'parley.local', nonce: 'N', algorithm: 'SHA-256', qop: 'auth' });
    assert.deepEqual(second && Object.fromEntries(second.params), { realm: 'parley.local', nonce: 'N', algorithm: 'MD5', qop: 'auth' });
    assert.equal(first?.scheme, 'Digest');
  });

  it('adds stale=true and opaque when asked, and can offer fewer algorithms', () => {
    const list = challenges('parley.local', 'N', true, { opaque: 'O', algorithms: ['MD5'] });
    assert.equal(list.length, 1);
    assert.deepEqual(list[0] && Object.fromEntries(list[0].params), { realm: 'parley.local', nonce: 'N', opaque: 'O', algorithm: 'MD5', qop: 'auth', stale: 'true' });
  });
});

describe('verifyCredentials', () => {
  const realm = 'parley.local';
  const password = 's3cret';
  const secret = Buffer.alloc(32, 1);
  const setup = () => {
    let now = 1_700_000_000_000;
    const nonces = new NonceIssuer({ secret, lifetimeSeconds: 300, now: () => now });
    const options: VerifyOptions = {
      method: 'REGISTER',
      requestUri: 'sip:parley.local',
      expectedRealm: realm,
      nonces,
      ha1For: (algorithm, username) => (username === 'alice' ? computeHa1(algorithm, 'alice', realm, password) : undefined),
    };
    return { nonces, options, advance: (ms: number) => (now += ms) };
  };
  const answer = (challenge: AuthField, overrides: Partial<{ username: string; password: string; method: string; nc: number; uri: string }> = {}) =>
    answerChallenge(challenge, { username: 'alice', password, method: 'REGISTER', uri: 'sip:parley.local', ...overrides });

  it('accepts the answer to each offered challenge', () => {
    const { nonces, options } = setup();
    let nc = 0;
    for (const challenge of challenges(realm, nonces.issue())) {
      // both challenges carry the same nonce, so each use takes the next count
      const result = verifyCredentials(answer(challenge, { nc: ++nc }), options);
      assert.deepEqual(result, { ok: true, username: 'alice', algorithm: challenge.params.get('algorithm'), uri: 'sip:parley.local' });
    }
  });

  it('refuses RFC 2069 credentials without qop: nothing would tell a replay from the first use', () => {
    const { nonces, options } = setup();
    const challenge = field('Digest', { realm, nonce: nonces.issue() });
    const cred = answer(challenge);
    assert.equal(cred.params.has('qop'), false);
    const refused = verifyCredentials(cred, options);
    assert.equal(refused.ok === false && refused.reason, 'no-qop');
    assert.match(refused.ok === false ? refused.detail : '', /qop=auth/);
  });

  it('accepts them, and MD5 when algorithm is absent, only when told to (allowNoQop)', () => {
    const { nonces, options } = setup();
    const cred = answer(field('Digest', { realm, nonce: nonces.issue() }));
    assert.equal(cred.params.has('algorithm'), false);
    assert.deepEqual(verifyCredentials(cred, { ...options, allowNoQop: true }), { ok: true, username: 'alice', algorithm: 'MD5', uri: 'sip:parley.local' });
  });

  it('refuses credentials made for another Request-URI, accepts the same URI written otherwise', () => {
    const { nonces, options } = setup();
    const challenge = challenges(realm, nonces.issue())[0] as AuthField;
    const forBob = answer(challenge, { uri: 'sip:bob@parley.local', method: 'MESSAGE' });
    const onCarol = verifyCredentials(forBob, { ...options, method: 'MESSAGE', requestUri: 'sip:carol@parley.local' });
    assert.equal(onCarol.ok === false && onCarol.reason, 'uri-mismatch');
    assert.equal(verifyCredentials(answer(challenge, { uri: 'sip:bob@PARLEY.local;Transport=TCP', method: 'MESSAGE', nc: 2 }), { ...options, method: 'MESSAGE', requestUri: 'sip:bob@parley.local;transport=tcp' }).ok, true);
    for (const other of ['sip:bob@parley.local:5060', 'sips:bob@parley.local', 'sip:Bob@parley.local', 'sip:bob@parley.local;transport=udp', 'not a uri']) {
      const result = verifyCredentials(answer(challenge, { uri: other, method: 'MESSAGE', nc: 3 }), { ...options, method: 'MESSAGE', requestUri: 'sip:bob@parley.local' });
      assert.equal(result.ok === false && result.reason, 'uri-mismatch', other);
    }
  });

  it('accepts an upper-case hex response and a lower-case scheme', () => {
    const { nonces, options } = setup();
    const cred = answer(challenges(realm, nonces.issue())[0] as AuthField);
    cred.params.set('response', (cred.params.get('response') ?? '').toUpperCase());
    assert.equal(verifyCredentials({ scheme: 'digest', params: cred.params }, options).ok, true);
  });

  it('refuses a wrong password, a wrong method, a wrong uri', () => {
    const { nonces, options } = setup();
    const challenge = challenges(realm, nonces.issue())[0] as AuthField;
    const wrongPassword = verifyCredentials(answer(challenge, { password: 'nope' }), options);
    assert.equal(wrongPassword.ok === false && wrongPassword.reason, 'bad-response');
    const wrongMethod = verifyCredentials(answer(challenge, { method: 'INVITE', nc: 2 }), options);
    assert.equal(wrongMethod.ok === false && wrongMethod.reason, 'bad-response');
    const tampered = answer(challenge, { nc: 3, uri: 'sip:elsewhere.example' });
    tampered.params.set('uri', 'sip:parley.local');
    const wrongUri = verifyCredentials(tampered, options);
    assert.equal(wrongUri.ok === false && wrongUri.reason, 'bad-response', 'the uri is part of the response');
  });

  it('reports an unknown user, another realm, an unknown algorithm', () => {
    const { nonces, options } = setup();
    const nonce = nonces.issue();
    const unknown = verifyCredentials(answer(challenges(realm, nonce)[0] as AuthField, { username: 'mallory' }), options);
    assert.deepEqual(unknown.ok === false && [unknown.reason, unknown.username], ['unknown-user', 'mallory']);
    const other = verifyCredentials(answer(challenges('example.com', nonce)[0] as AuthField), options);
    assert.equal(other.ok === false && other.reason, 'realm');
    const cred = answer(challenges(realm, nonce)[1] as AuthField);
    cred.params.set('algorithm', 'MD5-sess');
    const sess = verifyCredentials(cred, options);
    assert.equal(sess.ok === false && sess.reason, 'unknown-algorithm');
  });

  it('reports malformed credentials precisely', () => {
    const { nonces, options } = setup();
    const good = answer(challenges(realm, nonces.issue())[0] as AuthField);
    const without = (name: string) => {
      const params = new Map(good.params);
      params.delete(name);
      return { scheme: 'Digest', params };
    };
    for (const name of ['username', 'realm', 'nonce', 'uri', 'response', 'nc', 'cnonce']) {
      const result = verifyCredentials(without(name), options);
      assert.equal(result.ok === false && result.reason, 'malformed', name);
    }
    const basic = verifyCredentials({ scheme: 'Basic', params: new Map() }, options);
    assert.equal(basic.ok === false && basic.reason, 'malformed');
    const authInt = new Map(good.params).set('qop', 'auth-int');
    const r1 = verifyCredentials({ scheme: 'Digest', params: authInt }, options);
    assert.equal(r1.ok === false && r1.reason, 'malformed');
    const shortNc = new Map(good.params).set('nc', '1');
    const r2 = verifyCredentials({ scheme: 'Digest', params: shortNc }, options);
    assert.equal(r2.ok === false && r2.reason, 'malformed');
    const shortResponse = new Map(good.params).set('response', 'abc');
    const r3 = verifyCredentials({ scheme: 'Digest', params: shortResponse }, options);
    assert.equal(r3.ok === false && r3.reason, 'malformed');
  });

  it('says stale for a correct response with an expired nonce, bad-response for a wrong one', () => {
    const { nonces, options, advance } = setup();
    const challenge = challenges(realm, nonces.issue())[0] as AuthField;
    advance(301_000);
    const right = verifyCredentials(answer(challenge), options);
    assert.equal(right.ok === false && right.reason, 'stale');
    const wrong = verifyCredentials(answer(challenge, { password: 'nope' }), options);
    assert.equal(wrong.ok === false && wrong.reason, 'bad-response');
  });

  it('says stale for a correct response to a nonce we did not issue (e.g. before a restart with a new secret)', () => {
    const { options } = setup();
    const foreign = new NonceIssuer({ secret: Buffer.alloc(32, 2) }).issue();
    const result = verifyCredentials(answer(challenges(realm, foreign)[0] as AuthField), options);
    assert.equal(result.ok === false && result.reason, 'stale');
  });

  it("refuses a nonce issued to another address before looking at the password, so a guess with it tells nothing", () => {
    const { nonces, options } = setup();
    const challenge = challenges(realm, nonces.issue('192.0.2.1'))[0] as AuthField;
    const fromElsewhere = { ...options, source: '198.51.100.9' };
    const wrong = verifyCredentials(answer(challenge, { password: 'guess' }), fromElsewhere);
    const right = verifyCredentials(answer(challenge, { nc: 2 }), fromElsewhere);
    assert.deepEqual([wrong.ok === false && wrong.reason, right.ok === false && right.reason], ['stale', 'stale']);
    assert.equal(verifyCredentials(answer(challenge, { nc: 3 }), { ...options, source: '192.0.2.1' }).ok, true);
    assert.equal(verifyCredentials(answer(challenge, { password: 'guess', nc: 4 }), { ...options, source: '192.0.2.1' }).ok === false, true);
  });

  it('refuses a replayed nonce count as stale, accepts the next count', () => {
    const { nonces, options } = setup();
    const challenge = challenges(realm, nonces.issue())[0] as AuthField;
    const first = answer(challenge, { nc: 1 });
    assert.equal(verifyCredentials(first, options).ok, true);
    const replay = verifyCredentials(first, options);
    assert.equal(replay.ok === false && replay.reason, 'stale');
    assert.equal(verifyCredentials(answer(challenge, { nc: 2 }), options).ok, true);
  });

  it('leaves nonce checks to the caller when no issuer is given', () => {
    const { options } = setup();
    const { nonces: _ignored, ...withoutNonces } = options;
    const result = verifyCredentials(answer(challenges(realm, 'any-nonce')[0] as AuthField), withoutNonces);
    assert.equal(result.ok, true);
  });
});

describe('client side', () => {
  it('picks the topmost challenge it supports', () => {
    const sess = field('Digest', { realm: 'r', nonce: 'n', algorithm: 'SHA-512-256' });
    const authInt = field('Digest', { realm: 'r', nonce: 'n', algorithm: 'SHA-256', qop: 'auth-int' });
    const md5 = field('Digest', { realm: 'r', nonce: 'n', algorithm: 'MD5', qop: 'auth' });
    const sha = field('Digest', { realm: 'r', nonce: 'n', algorithm: 'SHA-256', qop: 'auth' });
    assert.equal(pickChallenge([field('Basic', { realm: 'r' }), sess, authInt, md5, sha]), md5);
    assert.equal(pickChallenge([sess]), undefined);
  });

  it('draws a fresh random cnonce by default', () => {
    const challenge = field('Digest', { realm: 'r', nonce: 'n', qop: 'auth' });
    const options = { username: 'u', password: 'p', method: 'MESSAGE', uri: 'sip:bob@r' };
    const a = answerChallenge(challenge, options).params.get('cnonce');
    const b = answerChallenge(challenge, options).params.get('cnonce');
    assert.match(a ?? '', /^[0-9a-f]{32}$/);
    assert.notEqual(a, b);
  });

  it('refuses challenges it cannot answer, with a code saying why', () => {
    const opts = { username: 'u', password: 'p', method: 'MESSAGE', uri: 'sip:bob@r' };
    const code = (challenge: AuthField) => {
      try {
        answerChallenge(challenge, opts);
        return 'answered';
      } catch (e) {
        assert.ok(e instanceof DigestError);
        return e.code;
      }
    };
    assert.equal(code(field('Basic', { realm: 'r' })), 'UNSUPPORTED_SCHEME');
    assert.equal(code(field('Digest', { nonce: 'n' })), 'CHALLENGE_MALFORMED');
    assert.equal(code(field('Digest', { realm: 'r' })), 'CHALLENGE_MALFORMED');
    assert.equal(code(field('Digest', { realm: 'r', nonce: 'n', algorithm: 'MD5-sess' })), 'UNSUPPORTED_ALGORITHM');
    assert.equal(code(field('Digest', { realm: 'r', nonce: 'n', qop: 'auth-int' })), 'UNSUPPORTED_QOP');
  });
});

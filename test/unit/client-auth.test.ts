// Choosing and answering digest challenges as a UAC (src/client/auth.ts), checked against the
// server-side verifier of src/sip/digest.ts.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DigestAuthenticator, selectChallenges } from '../../src/client/auth.ts';
import { challenges, computeHa1, NonceIssuer, verifyCredentials } from '../../src/sip/digest.ts';
import type { DigestAlgorithm } from '../../src/sip/digest.ts';
import { formatAuthField, parseAuthField } from '../../src/sip/index.ts';
import { createRequest, createResponseMessage, Headers } from '../../src/sip/message.ts';

const REALM = 'parley.local';
const nonces = new NonceIssuer({ secret: Buffer.alloc(32, 7) });

function challengeResponse(status: 401 | 407, algorithms: DigestAlgorithm[] = ['SHA-256', 'MD5'], realm = REALM) {
  const name = status === 401 ? 'www-authenticate' : 'proxy-authenticate';
  const headers = new Headers(challenges(realm, nonces.issue(), false, { algorithms }).map((c) => ({ name, value: formatAuthField(c) })));
  return createResponseMessage(status, status === 401 ? 'Unauthorized' : 'Proxy Authentication Required', headers);
}

function verify(request: { method: string; uri: string; headers: Headers }, header: 'authorization' | 'proxy-authorization', password = 'pw') {
  const value = request.headers.get(header);
  assert.ok(value !== undefined, 'credentials present');
  return verifyCredentials(parseAuthField(value), {
    method: request.method,
    requestUri: request.uri,
    expectedRealm: REALM,
    nonces,
    ha1For: (algorithm, username) => (username === 'alice' ? computeHa1(algorithm, 'alice', REALM, password) : undefined),
  });
}

describe('selectChallenges', () => {
  it('prefers SHA-256 whatever the order, else MD5 (RFC 8760)', () => {
    const md5First = ['Digest realm="r", nonce="n", algorithm=MD5, qop="auth"', 'Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth"'];
    const picked = selectChallenges(md5First);
    assert.equal(picked.length, 1);
    assert.equal(picked[0]?.params.get('algorithm'), 'SHA-256');
    const onlyMd5 = selectChallenges(['Digest realm="r", nonce="n", qop="auth"']);
    assert.equal(onlyMd5.length, 1);
    assert.equal(onlyMd5[0]?.params.has('algorithm'), false);
  });

  it('skips other schemes, unknown algorithms, auth-int only and garbage', () => {
    assert.deepEqual(
      selectChallenges([
        'Basic realm="r"',
        'Digest realm="r", nonce="n", algorithm=SHA-512-256, qop="auth"',
        'Digest realm="r", nonce="n", algorithm=MD5, qop="auth-int"',
        '"unterminated',
      ]),
      [],
    );
    assert.equal(selectChallenges(['Digest realm="r", nonce="n", qop="auth-int,auth"']).length, 1);
  });

  it('keeps one challenge per realm (RFC 3261 §22.3)', () => {
    const picked = selectChallenges(['Digest realm="a", nonce="1", algorithm=MD5', 'Digest realm="b", nonce="2", algorithm=MD5', 'Digest realm="a", nonce="1", algorithm=SHA-256']);
    assert.deepEqual(picked.map((c) => `${c.params.get('realm')}/${c.params.get('algorithm')}`).sort(), ['a/SHA-256', 'b/MD5']);
  });
});

describe('DigestAuthenticator', () => {
  const register = () => createRequest('REGISTER', 'sip:parley.local', new Headers());

  it('answers a 401 with Authorization the server verifies, choosing SHA-256', () => {
    const auth = new DigestAuthenticator({ username: 'alice', password: 'pw' });
    const kinds = auth.accept('REGISTER', challengeResponse(401));
    assert.deepEqual(kinds, ['www']);
    const req = register();
    auth.authorize(req, kinds);
    const result = verify(req, 'authorization');
    assert.deepEqual(result, { ok: true, username: 'alice', algorithm: 'SHA-256', uri: 'sip:parley.local' });
    assert.equal(req.headers.has('proxy-authorization'), false);
  });

  it('answers a 407 with Proxy-Authorization, MD5 when only MD5 is offered', () => {
    const auth = new DigestAuthenticator({ username: 'alice', password: 'pw' });
    const kinds = auth.accept('MESSAGE', challengeResponse(407, ['MD5']));
    assert.deepEqual(kinds, ['proxy']);
    const req = createRequest('MESSAGE', 'sip:bob@parley.local', new Headers());
    auth.authorize(req, kinds);
    assert.equal(req.headers.has('authorization'), false);
    const result = verify(req, 'proxy-authorization');
    assert.equal(result.ok, true);
    assert.equal(result.ok && result.algorithm, 'MD5');
  });

  it('sends credentials pre-emptively for a method challenged before, with an increasing nc', () => {
    const auth = new DigestAuthenticator({ username: 'alice', password: 'pw' });
    auth.accept('REGISTER', challengeResponse(401));
    const ncs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const req = register();
      auth.authorize(req);
      const value = req.headers.get('authorization');
      assert.equal(verify(req, 'authorization').ok, true, 'the server accepts each reuse of the nonce');
      ncs.push(parseAuthField(value ?? '').params.get('nc') ?? '');
    }
    assert.deepEqual(ncs, ['00000001', '00000002', '00000003']);
    const other = createRequest('MESSAGE', 'sip:bob@parley.local', new Headers());
    auth.authorize(other);
    assert.equal(other.headers.has('authorization'), false, 'a method never challenged goes without');
  });

  it('does not send credentials up front when pre-emptive auth is off', () => {
    const auth = new DigestAuthenticator({ username: 'alice', password: 'pw' }, false);
    const kinds = auth.accept('REGISTER', challengeResponse(401));
    const req = register();
    auth.authorize(req);
    assert.equal(req.headers.has('authorization'), false);
    auth.authorize(req, kinds);
    assert.equal(req.headers.count('authorization'), 1);
  });

  it('replaces credentials rather than adding a second set', () => {
    const auth = new DigestAuthenticator({ username: 'alice', password: 'pw' });
    const kinds = auth.accept('REGISTER', challengeResponse(401));
    const req = register();
    auth.authorize(req, kinds);
    auth.authorize(req, kinds);
    assert.equal(req.headers.count('authorization'), 1);
  });

  it('reports no usable challenge, and a wrong password fails verification', () => {
    const auth = new DigestAuthenticator({ username: 'alice', password: 'wrong' });
    const basic = createResponseMessage(401, 'Unauthorized', new Headers([{ name: 'www-authenticate', value: 'Basic realm="x"' }]));
    assert.deepEqual(auth.accept('REGISTER', basic), []);
    const kinds = auth.accept('REGISTER', challengeResponse(401));
    const req = register();
    auth.authorize(req, kinds);
    const result = verify(req, 'authorization');
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, 'bad-response');
  });
});

// The browser shims of src/client/browser/ give the answers Node gives: hashes as node:crypto's
// (and digest authentication, bundled for the browser, the RFC 2617 and RFC 7616 answers),
// isIPv6 as node:net's, isUtf8 as node:buffer's.

import assert from 'node:assert/strict';
import { isUtf8 as nodeIsUtf8 } from 'node:buffer';
import { hash as nodeHash, timingSafeEqual as nodeTimingSafeEqual } from 'node:crypto';
import { isIP as nodeIsIP, isIPv6 as nodeIsIPv6 } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import * as esbuild from 'esbuild';
import { browserBuildOptions } from '../../src/client/browser-build.ts';
import { isUtf8 } from '../../src/client/browser/buffer.ts';
import { hash, randomBytes, randomFillSync, timingSafeEqual } from '../../src/client/browser/crypto.ts';
import { isIP, isIPv6 } from '../../src/client/browser/net.ts';
import * as nodeDigest from '../../src/sip/digest.ts';
import type { AuthField } from '../../src/sip/message.ts';

const field = (scheme: string, params: Record<string, string>): AuthField => ({ scheme, params: new Map(Object.entries(params)) });

/** src/sip/digest.ts as the browser gets it: bundled with the shims, then loaded as a module. */
async function browserDigest(): Promise<{ module: typeof nodeDigest; inputs: string[] }> {
  const entry = fileURLToPath(new URL('../../src/sip/digest.ts', import.meta.url));
  const result = await esbuild.build({ ...browserBuildOptions(), entryPoints: [entry], write: false, metafile: true, logLevel: 'silent' });
  const code = result.outputFiles[0]?.text ?? '';
  const module = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as typeof nodeDigest;
  return { module, inputs: Object.keys(result.metafile.inputs) };
}

describe('browser shim of node:crypto', () => {
  const inputs: (string | Buffer)[] = ['', 'Mufasa:testrealm@host.com:Circle Of Life', 'Mufasa:http-auth@example.org:Circle of Life', 'héllo wörld ✓ 日本', 'x'.repeat(1000), Buffer.from([0, 1, 2, 255, 254, 128])];
  for (const algorithm of ['md5', 'sha1', 'sha256']) {
    it(`hash(${algorithm}) equals node:crypto's in hex, base64, base64url and bytes`, () => {
      for (const data of inputs) {
        for (const encoding of ['hex', 'base64', 'base64url'] as const) assert.equal(hash(algorithm, data, encoding), nodeHash(algorithm, data, encoding), `${algorithm} ${encoding} of ${String(data).slice(0, 20)}`);
        assert.deepEqual([...(hash(algorithm, data, 'buffer') as Buffer)], [...nodeHash(algorithm, data, 'buffer')]);
      }
    });
  }

  it('refuses an algorithm it does not carry', () => {
    assert.throws(() => hash('sha512', 'x'), /not supported/);
  });

  it('randomBytes and randomFillSync fill with random bytes', () => {
    const a = randomBytes(64);
    const b = randomBytes(64);
    assert.equal(a.length, 64);
    assert.ok(ArrayBuffer.isView(a));
    assert.notDeepEqual([...a], [...b], 'two draws of 512 bits differ');
    const big = randomFillSync(new Uint8Array(70_000), 10, 69_990);
    assert.ok(big.subarray(66_000).some((x) => x !== 0), 'beyond the 65 536-byte quota of one getRandomValues call too');
    assert.deepEqual([...big.subarray(0, 10)], new Array(10).fill(0), 'bytes before offset untouched');
  });

  it('timingSafeEqual answers as node:crypto does', () => {
    const x = Buffer.from('abcdef');
    for (const y of [Buffer.from('abcdef'), Buffer.from('abcdeg'), Buffer.from('bbcdef')]) assert.equal(timingSafeEqual(x, y), nodeTimingSafeEqual(x, y));
    assert.throws(() => timingSafeEqual(x, Buffer.from('abc')), RangeError);
    assert.throws(() => nodeTimingSafeEqual(x, Buffer.from('abc')), RangeError);
  });
});

describe('digest authentication bundled for the browser', async () => {
  const { module: digest, inputs } = await browserDigest();

  it('the bundle computes with the shim, not node:crypto', () => {
    assert.ok(inputs.some((p) => p.endsWith('src/client/browser/crypto.ts')));
    assert.ok(!inputs.some((p) => p.startsWith('node:')));
  });

  // RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
  const rfc7616 = {
    realm: 'http-auth@example.org',
    password: 'Circle of Life',
    uri: '/dir/index.html',
    nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
    opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
  };
  const expected7616 = { MD5: '8ca523f5e9506fed4657c9700eebdbec', 'SHA-256': '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1' } as const;
  for (const algorithm of ['MD5', 'SHA-256'] as const) {
    it(`RFC 7616 §3.9.1 ${algorithm}: the published response, as node:crypto gives it`, () => {
      const challenge = field('Digest', { realm: rfc7616.realm, qop: 'auth, auth-int', algorithm, nonce: rfc7616.nonce, opaque: rfc7616.opaque });
      const options = { username: 'Mufasa', password: rfc7616.password, method: 'GET', uri: rfc7616.uri, cnonce: rfc7616.cnonce, nc: 1 };
      const browser = digest.answerChallenge(challenge, options);
      assert.equal(browser.params.get('response'), expected7616[algorithm]);
      assert.deepEqual(Object.fromEntries(browser.params), Object.fromEntries(nodeDigest.answerChallenge(challenge, options).params));
    });
  }

  it('RFC 2617 §3.5 (qop=auth, MD5) and the RFC 2069 form', () => {
    const challenge = field('Digest', { realm: 'testrealm@host.com', qop: 'auth,auth-int', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', opaque: '5ccc069c403ebaf9f0171e9517f40e41' });
    const answer = digest.answerChallenge(challenge, { username: 'Mufasa', password: 'Circle Of Life', method: 'GET', uri: '/dir/index.html', cnonce: '0a4f113b' });
    assert.equal(answer.params.get('response'), '6629fae49393a05397450978507c4ef1');
    assert.equal(digest.computeHa1('MD5', 'Mufasa', 'testrealm@host.com', 'Circle Of Life'), '939e7578ed9e3c518a452acee763bce9');
    const rfc2069 = field('Digest', { realm: 'testrealm@host.com', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', opaque: '5ccc069c403ebaf9f0171e9517f40e41' });
    assert.equal(digest.answerChallenge(rfc2069, { username: 'Mufasa', password: 'CircleOfLife', method: 'GET', uri: '/dir/index.html' }).params.get('response'), '1949323746fe6a43ef61f9606e7febea');
  });

  it('without a given cnonce, draws one from the shim (32 hex digits)', () => {
    const challenge = field('Digest', { realm: 'r', qop: 'auth', nonce: 'n' });
    assert.match(digest.answerChallenge(challenge, { username: 'u', password: 'p', method: 'REGISTER', uri: 'sip:r' }).params.get('cnonce') ?? '', /^[0-9a-f]{32}$/);
  });

  it('SHA-256 and MD5 answers for UTF-8 credentials match node:crypto', () => {
    for (const algorithm of ['MD5', 'SHA-256'] as const) {
      assert.equal(digest.computeHa1(algorithm, 'zoë', 'parley.local', 'pässwörd ✓'), nodeDigest.computeHa1(algorithm, 'zoë', 'parley.local', 'pässwörd ✓'));
    }
  });
});

describe('browser shim of node:net', () => {
  const cases = [
    '::', '::1', '1::', '2001:db8::1', '2001:0db8:0000:0000:0000:ff00:0042:8329', 'fe80::1%eth0', 'fe80::1%', '::ffff:192.0.2.1', '64:ff9b::192.0.2.33',
    '1.2.3.4::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::', '1::2::3', ':1::2', '1::2:', '12345::1', 'g::1', '', '[::1]', '::ffff:999.0.0.1',
    '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '192.0.2.1', '256.1.1.1', '01.2.3.4', 'parley.local', '1.2.3', '0.0.0.0',
  ];
  it('isIPv6 and isIP answer as node:net does', () => {
    for (const c of cases) {
      assert.equal(isIPv6(c), nodeIsIPv6(c), `isIPv6(${JSON.stringify(c)})`);
      assert.equal(isIP(c), nodeIsIP(c), `isIP(${JSON.stringify(c)})`);
    }
  });
});

describe('browser shim of node:buffer', () => {
  it('isUtf8 answers as node:buffer does', () => {
    for (const bytes of [Buffer.from('héllo ✓'), Buffer.from([0xc3]), Buffer.from([0xff, 0xfe]), Buffer.alloc(0), Buffer.from([0xed, 0xa0, 0x80])]) {
      assert.equal(isUtf8(bytes), nodeIsUtf8(bytes), bytes.toString('hex'));
    }
  });
});

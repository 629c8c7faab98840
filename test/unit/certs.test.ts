// The checks of a certificate pair (start-up, check-config, every reload) and the keeper's reload:
// a good new pair reaches every listener, a bad one is refused and the old one stays.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import { after, describe, it } from 'node:test';
import { CertificateKeeper, type CertificateStats, PAIR_CODES, readPair } from '../../src/certs/index.ts';
import { createLogger } from '../../src/observability/logger.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'parley-certs-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function selfSigned(name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name}.test`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}
const one = selfSigned('one');
const two = selfSigned('two');
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('a certificate pair', () => {
  it('is read with its subject, serial and validity', () => {
    const pair = readPair({ cert: one.cert, key: one.key });
    assert.equal(pair.subject, 'CN=one.test');
    assert.match(pair.serialNumber, /^[0-9A-F]+$/);
    assert.ok(pair.notAfter > new Date());
  });

  it('is refused, naming the setting, when unreadable, not a certificate, another\'s key, expired or not yet valid', () => {
    const files = { certSetting: 'tls.cert', keySetting: 'tls.key' };
    assert.equal(codeOf(() => readPair({ ...files, cert: path.join(dir, 'none.pem'), key: one.key })), PAIR_CODES.UNREADABLE);
    assert.throws(() => readPair({ ...files, cert: path.join(dir, 'none.pem'), key: one.key }), /^CertificateError: tls\.cert: cannot read .*none\.pem: ENOENT/);
    const garbage = path.join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate');
    assert.equal(codeOf(() => readPair({ ...files, cert: garbage, key: one.key })), PAIR_CODES.NOT_A_CERTIFICATE);
    assert.equal(codeOf(() => readPair({ ...files, cert: one.cert, key: two.key })), PAIR_CODES.KEY_MISMATCH);
    assert.throws(() => readPair({ ...files, cert: one.cert, key: two.key }), /tls\.key: .*two\.key is not the private key of the certificate in tls\.cert/);
    assert.equal(codeOf(() => readPair({ ...files, ...one }, new Date(Date.now() + 10 * 86400_000))), PAIR_CODES.EXPIRED);
    assert.equal(codeOf(() => readPair({ ...files, ...one }, new Date(Date.now() - 10 * 86400_000))), PAIR_CODES.NOT_YET_VALID);
  });
});

describe('the certificate keeper', () => {
  it('hands a changed pair to every listener, counts unchanged and refused reloads, keeps the old pair on refusal', () => {
    const live = { cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') };
    writeFileSync(live.cert, readFileSync(one.cert));
    writeFileSync(live.key, readFileSync(one.key));
    const events: string[] = [];
    const stats: CertificateStats = { certificateInUse: (notAfter) => events.push(`in use until ${notAfter.getFullYear()}`), certificateReload: (outcome) => events.push(outcome) };
    const keeper = new CertificateKeeper({ files: live, logger: createLogger('silent'), stats });
    const given: SecureContextOptions[] = [];
    keeper.attach({ setSecureContext: (o) => given.push(o) });
    keeper.attach({ setSecureContext: (o) => given.push(o) });
    const firstSerial = keeper.current.serialNumber;

    assert.equal(keeper.reload('test'), 'unchanged');
    assert.equal(given.length, 0);

    writeFileSync(live.cert, readFileSync(two.cert));
    assert.equal(keeper.reload('test'), 'refused', 'the new certificate with the old key');
    assert.equal(keeper.current.serialNumber, firstSerial);
    assert.equal(given.length, 0);

    writeFileSync(live.key, readFileSync(two.key));
    assert.equal(keeper.reload('test'), 'ok');
    assert.equal(keeper.current.subject, 'CN=two.test');
    assert.equal(given.length, 2);
    assert.deepEqual(given[0]?.cert, readFileSync(two.cert));
    const year = keeper.current.notAfter.getFullYear();
    assert.deepEqual(events, [`in use until ${year}`, 'unchanged', 'refused', 'ok', `in use until ${year}`]);
    keeper.close();
  });

  it('refuses to start on a bad pair', () => {
    assert.throws(() => new CertificateKeeper({ files: { cert: one.cert, key: two.key, certSetting: 'tls.cert', keySetting: 'tls.key' }, logger: createLogger('silent') }), /tls\.key: .* is not the private key/);
  });
});

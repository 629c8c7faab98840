// Reading a registrar's answer and timing refreshes (src/client/registration.ts), and server URLs.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRegisterResult, refreshDelayMs, sameContact } from '../../src/client/registration.ts';
import { parseServerUrl } from '../../src/client/transport.ts';
import { ClientError, CLIENT_ERROR_CODES } from '../../src/client/errors.ts';
import { ParleyError } from '../../src/errors.ts';
import { createResponseMessage, Headers } from '../../src/sip/message.ts';

const OURS = 'sip:alice@192.0.2.7:50123;transport=tcp';

function ok(fields: Array<[string, string]>) {
  return createResponseMessage(200, 'OK', new Headers(fields.map(([name, value]) => ({ name, value }))));
}

describe('parseRegisterResult', () => {
  it("takes our contact's expires parameter and lists every binding", () => {
    const result = parseRegisterResult(
      ok([
        ['contact', '<sip:alice@198.51.100.1:5060;transport=tcp>;expires=3000'],
        ['contact', '<sip:alice@192.0.2.7:50123;transport=TCP>;expires=300'],
        ['expires', '999'],
      ]),
      OURS,
      600,
    );
    assert.equal(result.status, 200);
    assert.equal(result.expires, 300);
    assert.deepEqual(result.contacts, [
      { uri: 'sip:alice@198.51.100.1:5060;transport=tcp', expires: 3000 },
      { uri: 'sip:alice@192.0.2.7:50123;transport=TCP', expires: 300 },
    ]);
  });

  it('falls back to the Expires header, then to what was asked', () => {
    assert.equal(parseRegisterResult(ok([['contact', `<${OURS}>`], ['expires', '120']]), OURS, 600).expires, 120);
    assert.equal(parseRegisterResult(ok([]), OURS, 600).expires, 600);
    assert.deepEqual(parseRegisterResult(ok([]), OURS, 600).contacts, []);
  });
});

describe('sameContact', () => {
  it('compares user, host, port and transport, not spelling', () => {
    assert.equal(sameContact('sip:alice@192.0.2.7:50123;transport=TCP', OURS), true);
    assert.equal(sameContact('sip:alice@192.0.2.7:50124;transport=tcp', OURS), false);
    assert.equal(sameContact('sip:bob@192.0.2.7:50123;transport=tcp', OURS), false);
    assert.equal(sameContact('sip:alice@abc.invalid;transport=ws', 'sip:alice@ABC.invalid;transport=ws'), true);
  });
});

describe('refreshDelayMs', () => {
  it('refreshes 30 s before expiry, or half-way through a short registration', () => {
    assert.equal(refreshDelayMs(600), 570_000);
    assert.equal(refreshDelayMs(60), 30_000);
    assert.equal(refreshDelayMs(10), 5_000);
  });
});

describe('parseServerUrl', () => {
  it('reads tcp, tls, ws and wss URLs with default ports', () => {
    assert.deepEqual(parseServerUrl('tcp://127.0.0.1:5060'), { scheme: 'tcp', host: '127.0.0.1', port: 5060, url: 'tcp://127.0.0.1:5060' });
    assert.equal(parseServerUrl('tls://sip.example.com').port, 5061);
    assert.equal(parseServerUrl('ws://127.0.0.1:8080/sip').port, 8080);
    assert.equal(parseServerUrl('wss://example.com/sip').port, 443);
    assert.equal(parseServerUrl('tcp://[::1]:5070').host, '::1');
  });

  it('rejects other schemes and non-URLs with INVALID_ARGUMENT', () => {
    for (const bad of ['udp://127.0.0.1:5060', 'http://x', 'not a url', '127.0.0.1:5060']) {
      assert.throws(() => parseServerUrl(bad), (e: unknown) => e instanceof ClientError && e.code === 'INVALID_ARGUMENT', bad);
    }
  });
});

describe('ClientError', () => {
  it('is a ParleyError with a documented code, status and reason', () => {
    const error = new ClientError('REGISTER_FAILED', 'REGISTER failed: 403 Forbidden', { status: 403, reason: 'Forbidden' });
    assert.ok(error instanceof ParleyError);
    assert.equal(error.name, 'ClientError');
    assert.equal(error.status, 403);
    assert.equal(error.reason, 'Forbidden');
    assert.ok(error.code in CLIENT_ERROR_CODES);
  });
});

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { CompletedTransactions } from '../../src/sip/transaction/completed.ts';
import { decodeDelta, deltaReference, encodeDelta, maxDeltaLength } from '../../src/sip/transaction/delta-codec.ts';

/** A 202 to an offline MESSAGE as Parley writes it, with the parts that differ between transactions random. */
function accepted(i: number, status = '202 Accepted', method = 'MESSAGE'): { key: string; response: Buffer } {
  const token = (n: number) => randomBytes(n).toString('base64url').slice(0, n);
  const branch = `z9hG4bK${token(20)}`;
  const port = 5060 + (i % 7);
  const key = `${branch}|192.0.2.${i % 250}:${port}|${method}`;
  const response = Buffer.from(
    `SIP/2.0 ${status}\r\nVia: SIP/2.0/UDP 192.0.2.${i % 250}:${port};branch=${branch};rport=${port}\r\n` +
      `From: <sip:user${i % 200}@example.test>;tag=${token(10)}\r\nTo: <sip:off${i % 100}@example.test>;tag=${token(12)}\r\n` +
      `Call-ID: ${crypto.randomUUID()}\r\nCSeq: ${i % 90} ${method}\r\n` +
      `Warning: 399 example.test "off${i % 100}@example.test is offline; stored for delivery to their mailbox (spool entry sp-${token(16)})"\r\n` +
      'Server: Parley/0.1.0\r\nContent-Length: 0\r\n\r\n',
  );
  return { key, response };
}

/** `length` bytes that look random and are the same in every run: SHA-256 of the seed and a counter. */
function seededBytes(length: number, seed: string): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; blocks.length * 32 < length; i++) blocks.push(createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(blocks).subarray(0, length);
}

function roundTrip(input: Uint8Array, reference: Uint8Array): number {
  const ref = deltaReference(reference);
  const out = Buffer.alloc(maxDeltaLength(input.length) + 10, 0xee);
  const n = encodeDelta(input, ref, out, 5);
  assert.ok(n <= maxDeltaLength(input.length));
  assert.equal(out[5 + n], 0xee, 'nothing written past the encoding');
  assert.deepEqual(decodeDelta(out.subarray(5, 5 + n), ref.bytes, input.length), Buffer.from(input));
  return n;
}

describe('delta codec (what completed transactions keep)', () => {
  it('gives back exactly what it encoded: empty, unlike, alike, long runs of each', () => {
    assert.equal(roundTrip(new Uint8Array(0), Buffer.from('anything')), 0);
    assert.equal(roundTrip(Buffer.from('abc'), Buffer.from('abc')), 4, 'under 4 bytes: literals');
    roundTrip(randomBytes(1000), randomBytes(1000));
    // the same bytes in every run (random bytes gave 367-465 here, now and then past a fixed bound):
    // short chance matches in them cost the encoding a few ops more or less
    const ref = seededBytes(5000, 'reference');
    // one long copy (past the longest op) and literals past the longest run between copies
    const input = Buffer.concat([ref.subarray(100, 2100), seededBytes(300, 'new'), ref.subarray(4000, 4500), Buffer.from('tail')]);
    const n = roundTrip(input, ref);
    assert.ok(n < 400, `${n} bytes for 2,500 copied and 304 new`);
  });

  it('uses a reference only up to 65,535 bytes', () => {
    const ref = randomBytes(70_000);
    roundTrip(Buffer.concat([ref.subarray(65_000, 66_000), ref.subarray(0, 500)]), ref);
  });

  it('keeps a response like the last a fraction of its size', () => {
    const first = accepted(0);
    const next = accepted(1);
    const plain = Buffer.concat([Buffer.from(next.key), next.response]);
    const n = roundTrip(plain, Buffer.concat([Buffer.from(first.key), first.response]));
    assert.ok(n < plain.length / 2, `${n} of ${plain.length} bytes`);
  });
});

describe('completed transactions kept as differences', () => {
  it('answers each retransmission with its response byte for byte, in less room', () => {
    const kept = new CompletedTransactions(60_000, 1000, 60_000, () => 0);
    const all = Array.from({ length: 3000 }, (_, i) => accepted(i));
    for (const { key, response } of all) kept.add(key, response);
    for (const { key, response } of all) assert.deepEqual(kept.response(key), response);
    const raw = all.reduce((sum, { key, response }) => sum + key.length + response.length, 0);
    assert.ok(raw > 5 * 256 * 1024, 'kept whole, they would fill more than 5 chunks');
    assert.ok(kept.chunks <= 3, `${kept.chunks} chunks of 256 KiB`);
  });

  it('keeps responses of many kinds, past the references a chunk keeps, and non-ASCII keys', () => {
    const kept = new CompletedTransactions(60_000, 1000, 60_000, () => 0);
    const kinds = ['200 OK', '202 Accepted', '403 Forbidden', '404 Not Found', '480 Temporarily Unavailable', '486 Busy Here', '488 Not Acceptable Here', '500 Server Internal Error', '503 Service Unavailable', '606 Not Acceptable'];
    const all = Array.from({ length: 500 }, (_, i) => accepted(i, kinds[i % kinds.length], i % 3 === 0 ? 'SUBSCRIBE' : 'MESSAGE'));
    all.push({ key: 'z9hG4bK-Zoë✓|192.0.2.1:5060|MESSAGE', response: Buffer.from('SIP/2.0 200 OK\r\nWarning: 399 h "délivré"\r\n\r\n') });
    all.push({ key: 'short', response: Buffer.from('x') });
    for (const { key, response } of all) kept.add(key, response);
    for (const { key, response } of all) assert.deepEqual(kept.response(key), response);
  });

  it('gives a copy: writing over the chunk later does not change a response given out', () => {
    const kept = new CompletedTransactions(60_000, 1000, 60_000, () => 0);
    const first = accepted(0);
    const second = accepted(1);
    kept.add(first.key, first.response);
    kept.add(second.key, second.response);
    const given = kept.response(second.key) as Buffer;
    given.fill(0);
    assert.deepEqual(kept.response(second.key), second.response);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseLog } from '../../src/sip/transaction/response-log.ts';
import type { KeptResponse } from '../../src/sip/transaction/response-log.ts';

const response = (i: number, size = 500): Buffer => {
  const head = `SIP/2.0 200 OK\r\nCall-ID: ${i}\r\n`;
  return Buffer.concat([Buffer.from(head), Buffer.alloc(size - head.length, 0x61 + (i % 26))]);
};

describe('response log (responses kept through Timer J, outside the JS heap)', () => {
  it('gives back every response byte for byte, including bytes beyond ASCII', () => {
    const log = new ResponseLog();
    const utf8 = Buffer.from('SIP/2.0 200 OK\r\nWarning: 399 parley.test "délivré à Zoë ✓"\r\n\r\n');
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const kept = [utf8, binary, response(1)].map((b) => ({ bytes: b, kept: log.keep(b) }));
    for (const { bytes, kept: k } of kept) assert.deepEqual(log.read(k), bytes);
  });

  it('hands out copies: a later write into a reused chunk cannot change bytes still being sent', () => {
    const log = new ResponseLog();
    const first = log.keep(response(1));
    const sent = log.read(first);
    log.release(first);
    // fill past one chunk so the first is recycled and written over
    for (let i = 2; i < 5000; i++) log.release(log.keep(response(i)));
    assert.deepEqual(sent, response(1));
  });

  it('reuses a chunk once every response in it is released, in the order Timer J releases them', () => {
    const log = new ResponseLog();
    const kept: KeptResponse[] = [];
    // ~2.5 chunks of 1 MiB
    for (let i = 0; i < 5200; i++) kept.push(log.keep(response(i)));
    assert.equal(log.spareChunks, 0, 'nothing released, nothing spare');
    for (let i = 0; i < 2000; i++) log.release(kept[i] as KeptResponse);
    assert.equal(log.spareChunks, 0, 'the first chunk still holds live responses');
    for (let i = 2000; i < 2100; i++) log.release(kept[i] as KeptResponse);
    assert.equal(log.spareChunks, 1, 'the first chunk (2,097 responses of 500 bytes) emptied');
    for (let i = 2100; i < 5200; i++) log.release(kept[i] as KeptResponse);
    assert.equal(log.spareChunks, 2, 'the chunk being written is not spare, even when empty');
    const again = log.keep(response(9));
    assert.deepEqual(log.read(again), response(9));
    const firstChunk = (kept[0] as KeptResponse).chunk.bytes;
    let reused = false;
    for (let i = 0; i < 4200; i++) {
      const k = log.keep(response(i));
      reused ||= k.chunk.bytes === firstChunk;
      assert.deepEqual(log.read(k), response(i));
      log.release(k);
    }
    assert.ok(reused, 'a new chunk was a spare one, not a new allocation');
  });

  it('gives a large response a chunk of its own, which is not kept for reuse', () => {
    const log = new ResponseLog();
    const big = response(7, 200_000);
    const small = log.keep(response(1));
    const kept = log.keep(big);
    assert.notEqual(kept.chunk, small.chunk);
    assert.deepEqual(log.read(kept), big);
    log.release(kept);
    assert.equal(log.spareChunks, 0);
    assert.deepEqual(log.read(small), response(1));
  });
});

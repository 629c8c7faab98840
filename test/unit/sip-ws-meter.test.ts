import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WebSocketMeter } from '../../src/sip/index.ts';

/** A client frame (RFC 6455 §5.2): masked, with the payload length in the shortest form. */
function frame(opcode: number, payloadLength: number, fin = true): Buffer {
  const first = (fin ? 0x80 : 0) | opcode;
  let header: number[];
  if (payloadLength < 126) header = [first, 0x80 | payloadLength];
  else if (payloadLength < 65536) header = [first, 0x80 | 126, payloadLength >> 8, payloadLength & 0xff];
  else header = [first, 0x80 | 127, 0, 0, 0, 0, (payloadLength >>> 24) & 0xff, (payloadLength >> 16) & 0xff, (payloadLength >> 8) & 0xff, payloadLength & 0xff];
  return Buffer.concat([Buffer.from([...header, 1, 2, 3, 4]), Buffer.alloc(payloadLength, 0x61)]);
}

describe('WebSocketMeter', () => {
  it('holds nothing between whole messages, of every length form', () => {
    const meter = new WebSocketMeter();
    for (const length of [0, 5, 125, 126, 300, 65535, 65536, 70_000]) {
      assert.equal(meter.push(frame(1, length)), true, `a ${length}-byte message ends`);
      assert.equal(meter.held, 0);
    }
  });

  it('counts a message as it arrives, split anywhere, header bytes included', () => {
    const whole = frame(1, 70_000);
    for (const step of [1, 3, 7, 1000, 65_536]) {
      const meter = new WebSocketMeter();
      let ended = 0;
      for (let at = 0; at < whole.length; at += step) {
        if (meter.push(whole.subarray(at, at + step))) ended++;
        const seen = Math.min(at + step, whole.length);
        assert.equal(meter.held, seen === whole.length ? 0 : seen, `after ${seen} bytes in steps of ${step}`);
      }
      assert.equal(ended, 1);
    }
  });

  it('keeps counting a fragmented message across control frames between its fragments', () => {
    const meter = new WebSocketMeter();
    const first = frame(1, 100, false);
    const ping = frame(9, 4);
    const middle = frame(0, 50, false);
    assert.equal(meter.push(Buffer.concat([first, ping])), false);
    assert.equal(meter.held, first.length, 'a ping between fragments does not end the message');
    assert.equal(meter.push(middle), false);
    assert.equal(meter.held, first.length + middle.length);
    assert.equal(meter.push(frame(0, 10)), true);
    assert.equal(meter.held, 0);
    assert.equal(meter.push(frame(10, 0)), false, 'a lone pong is no message');
    assert.equal(meter.held, 0, 'and holds nothing once whole');
  });

  it('sees the start of the next message in the chunk that ends one', () => {
    const meter = new WebSocketMeter();
    const next = frame(1, 1000);
    assert.equal(meter.push(Buffer.concat([frame(1, 20), next.subarray(0, 300)])), true);
    assert.equal(meter.held, 300);
    assert.equal(meter.push(next.subarray(300)), true);
    assert.equal(meter.held, 0);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserNonces } from '../../src/sip/nonce-counts.ts';

describe('UserNonces (a user\'s tracked nonce counts, in typed arrays)', () => {
  it('accepts each count once, out of order within a window of 32 below the highest', () => {
    const user = new UserNonces();
    user.add(7, 1_000, 5, 1);
    const slot = user.find(7);
    assert.equal(slot, 0);
    assert.equal(user.count(slot, 5, 2), false, 'the first count again');
    assert.equal(user.count(slot, 6, 3), true);
    assert.equal(user.count(slot, 4, 4), true, 'below the highest, unseen');
    assert.equal(user.count(slot, 4, 5), false, 'below the highest, seen');
    assert.equal(user.count(slot, 40, 6), true, 'a jump');
    assert.equal(user.count(slot, 8, 7), true, 'count 8 is 32 below 40: the window\'s last bit');
    assert.equal(user.count(slot, 7, 8), false, 'count 7 is 33 below 40: outside the window');
    assert.equal(user.count(slot, 39, 9), true);
    assert.equal(user.count(slot, 39, 10), false);
    // a jump of exactly 32 keeps only the old highest, at the window's last bit
    assert.equal(user.count(slot, 72, 11), true);
    assert.equal(user.count(slot, 40, 12), false, 'the old highest, now the window\'s last bit');
    assert.equal(user.count(slot, 41, 13), true);
    // counts up to 2^32 - 1 (8 hex digits)
    assert.equal(user.count(slot, 0xffffffff, 14), true);
    assert.equal(user.count(slot, 0xffffffff, 15), false);
    assert.equal(user.count(slot, 0xfffffffe, 16), true);
  });

  it('finds the nonce unused longest, an accepted count marking it used', () => {
    const user = new UserNonces();
    user.add(1, 100, 1, 1);
    user.add(2, 200, 1, 2);
    user.add(3, 300, 1, 3);
    assert.equal(user.oldest(), user.find(1));
    assert.equal(user.count(user.find(1), 2, 4), true);
    assert.equal(user.oldest(), user.find(2));
    assert.equal(user.count(user.find(2), 1, 5), false, 'a refused count does not mark it used');
    assert.equal(user.oldest(), user.find(2));
  });

  it('grows past its first slots and forgets by slot or by age, keeping the others whole', () => {
    const user = new UserNonces();
    for (let key = 0; key < 20; key++) user.add(key, 1_000 + key, key + 1, key);
    assert.equal(user.size, 20);
    for (let key = 0; key < 20; key++) assert.equal(user.issuedAt(user.find(key)), 1_000 + key);
    user.remove(user.find(3));
    assert.equal(user.find(3), -1);
    assert.equal(user.size, 19);
    assert.equal(user.expire(1_010), 9, 'issued before 1,010: keys 0-9 but 3');
    assert.equal(user.size, 10);
    for (let key = 10; key < 20; key++) {
      const slot = user.find(key);
      assert.equal(user.issuedAt(slot), 1_000 + key);
      assert.equal(user.count(slot, key + 1, 100), false, 'its counts moved with it');
      assert.equal(user.count(slot, key + 2, 100), true);
    }
    assert.equal(new UserNonces().oldest(), -1);
  });
});

// Addresses as the transports report them (src/sip/transport/address.ts): one spelling per address,
// and the interface address that faces a peer when the socket is bound to every interface.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { advertisedFor, isRoutable, isWildcardAddress, localAddressFor, plainAddress, sentBy } from '../../src/sip/index.ts';

const machine = () => [
  { address: '127.0.0.1', cidr: '127.0.0.1/8', internal: true },
  { address: '::1', cidr: '::1/128', internal: true },
  { address: '10.77.0.1', cidr: '10.77.0.1/24', internal: false },
  { address: '192.0.2.10', cidr: '192.0.2.10/24', internal: false },
  { address: 'fe80::1', cidr: 'fe80::1/64', internal: false },
  { address: '2001:db8:1::1', cidr: '2001:db8:1::1/64', internal: false },
];

describe('plainAddress and wildcards', () => {
  it('writes an IPv4-mapped address as IPv4, drops brackets and zones, lower-cases', () => {
    assert.equal(plainAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(plainAddress('::FFFF:10.0.0.2'), '10.0.0.2');
    assert.equal(plainAddress('[::1]'), '::1');
    assert.equal(plainAddress('FE80::1%eth0'), 'fe80::1');
    assert.equal(plainAddress('2001:DB8::1'), '2001:db8::1');
  });

  it('knows every spelling of "every address", and which addresses are routable', () => {
    for (const a of ['', '0.0.0.0', '::', '[::]']) assert.equal(isWildcardAddress(a), true, a);
    for (const a of ['127.0.0.1', '::1', '10.0.0.1']) assert.equal(isWildcardAddress(a), false, a);
    for (const a of ['10.0.0.1', '2001:db8::1', '::ffff:192.0.2.1']) assert.equal(isRoutable(a), true, a);
    for (const a of ['127.0.0.1', '::1', 'fe80::1', 'FEBF::2', '0.0.0.0', '::']) assert.equal(isRoutable(a), false, a);
  });
});

describe('localAddressFor', () => {
  it('answers a loopback peer with loopback, an on-link peer with that interface, others with the first routable address', () => {
    assert.equal(localAddressFor('127.0.0.1', machine), '127.0.0.1');
    assert.equal(localAddressFor('::ffff:127.0.0.1', machine), '127.0.0.1');
    assert.equal(localAddressFor('::1', machine), '::1');
    assert.equal(localAddressFor('10.77.0.2', machine), '10.77.0.1');
    assert.equal(localAddressFor('::ffff:192.0.2.77', machine), '192.0.2.10');
    assert.equal(localAddressFor('198.51.100.9', machine), '10.77.0.1', 'off-link: the first routable IPv4 address');
    assert.equal(localAddressFor('2001:db8:1::9', machine), '2001:db8:1::1');
    assert.equal(localAddressFor('2001:db8:2::9', machine), '2001:db8:1::1', 'never the link-local one off-link');
    assert.equal(localAddressFor('198.51.100.9', () => machine().slice(0, 2)), undefined, 'a machine with loopback only');
    assert.equal(localAddressFor('not an address', machine), undefined);
  });
});

describe('sentBy and sip.advertise', () => {
  it('names the advertised host (with the listener port when it has none), else the local address', () => {
    assert.equal(advertisedFor(undefined, 5060), undefined);
    assert.equal(advertisedFor('sip.example.com', 5062), 'sip.example.com:5062');
    assert.equal(advertisedFor('203.0.113.5:5070', 5060), '203.0.113.5:5070');
    assert.equal(advertisedFor('[2001:db8::5]', 5060), '[2001:db8::5]:5060');
    assert.equal(advertisedFor('[2001:db8::5]:5070', 5060), '[2001:db8::5]:5070');
    assert.equal(sentBy({ local: { address: '::1', port: 5060 } }), '[::1]:5060');
    assert.equal(sentBy({ local: { address: '10.0.0.1', port: 5060 }, advertised: 'sip.example.com:5060' }), 'sip.example.com:5060');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPidf, parsePidf, PRESENCE_STATES } from '../../src/presence/pidf.ts';
import { PresenceError } from '../../src/presence/errors.ts';
import { eventPackage, expiresOf } from '../../src/events/headers.ts';
import { acceptsPidf } from '../../src/presence/headers.ts';

const BOB = 'sip:bob@parley.test';

function doc(inner: string, entity = BOB): string {
  return `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${entity}">${inner}</presence>`;
}

function badPidf(re: RegExp) {
  return (err: unknown) => err instanceof PresenceError && err.code === 'BAD_PIDF' && err.status === 400 && re.test(err.message);
}

describe('PIDF documents (RFC 3863, RFC 4480)', () => {
  it('round-trips every state with its note', () => {
    for (const state of PRESENCE_STATES) {
      const note = state === 'Offline' ? '' : `in a <meeting> & "busy" ${state}`;
      const parsed = parsePidf(buildPidf(BOB, { state, note }), BOB);
      assert.deepEqual(parsed, { state, note }, state);
    }
  });

  it('builds a valid document with basic status and RPID activities', () => {
    const xml = buildPidf(BOB, { state: 'Busy', note: 'On a call' });
    assert.match(xml, /entity="sip:bob@parley\.test"/);
    assert.match(xml, /<basic>open<\/basic>/);
    assert.match(xml, /<rpid:activities><rpid:busy\/><\/rpid:activities>/);
    assert.match(xml, /<note>On a call<\/note>/);
    assert.match(buildPidf(BOB, { state: 'Offline', note: '' }), /<basic>closed<\/basic>/);
  });

  it('reads what other clients publish', () => {
    const open = '<tuple id="t"><status><basic>open</basic></status></tuple>';
    assert.equal(parsePidf(doc(open), BOB).state, 'Available');
    assert.equal(parsePidf(doc(`${open}<dm:person id="p"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>`), BOB).state, 'Busy');
    assert.equal(parsePidf(doc(`${open}<dm:person id="p"><rpid:activities><rpid:vacation/></rpid:activities></dm:person>`), BOB).state, 'Away');
    assert.equal(parsePidf(doc(`${open}<dm:person id="p"><rpid:activities><rpid:other>DND</rpid:other></rpid:activities></dm:person>`), BOB).state, 'Do Not Disturb');
    assert.equal(parsePidf(doc(`${open}<dm:person id="p"><rpid:activities><rpid:other>Be Right Back</rpid:other></rpid:activities></dm:person>`), BOB).state, 'Be Right Back');
    assert.equal(parsePidf(doc(`${open}<dm:person id="p"><rpid:activities><rpid:unknown/></rpid:activities></dm:person>`), BOB).state, 'Available');
    assert.equal(parsePidf(doc('<tuple id="t"><status><basic>closed</basic></status><note>gone</note></tuple>'), BOB).state, 'Offline');
    // activities in the tuple (older RPID drafts, still sent by some clients)
    assert.equal(parsePidf(doc('<tuple id="t"><status><basic>open</basic></status><rpid:activities><rpid:away/></rpid:activities></tuple>'), BOB).state, 'Away');
    assert.deepEqual(parsePidf(doc(`${open}<note>lunch</note>`), BOB), { state: 'Available', note: 'lunch' });
    assert.equal(parsePidf(doc(open, 'pres:bob@parley.test'), BOB).state, 'Available');
  });

  it('refuses bad documents with a reason', () => {
    assert.throws(() => parsePidf('<presence', BOB), badPidf(/not a PIDF document/));
    assert.throws(() => parsePidf('<presence entity="sip:bob@parley.test"/>', BOB), badPidf(/root element/));
    assert.throws(() => parsePidf('<presence xmlns="urn:ietf:params:xml:ns:pidf"/>', BOB), badPidf(/no entity/));
    assert.throws(() => parsePidf(doc('', 'sip:alice@parley.test'), BOB), badPidf(/not the publisher/));
    assert.throws(() => parsePidf(doc('<tuple><status/></tuple>'), BOB), badPidf(/no id/));
    assert.throws(() => parsePidf(doc('<tuple id="t"/>'), BOB), badPidf(/no <status>/));
    assert.throws(() => parsePidf(doc('<tuple id="t"><status><basic>maybe</basic></status></tuple>'), BOB), badPidf(/not open or closed/));
    assert.throws(() => parsePidf(`<!DOCTYPE x [<!ENTITY a "b">]>${doc('')}`, BOB), badPidf(/not a PIDF document/));
  });
});

describe('event framework headers (RFC 6665 §8.2)', () => {
  it('reads the event package, Expires and Accept', () => {
    assert.equal(eventPackage('Presence;id=4'), 'presence');
    assert.equal(eventPackage('presence.winfo'), 'presence.winfo');
    assert.equal(eventPackage(undefined), undefined);
    assert.equal(expiresOf('600'), 600);
    assert.equal(expiresOf(undefined), undefined);
    assert.equal(expiresOf('soon'), null);
    assert.equal(acceptsPidf([]), true);
    assert.equal(acceptsPidf(['application/xpidf+xml, application/pidf+xml;q=0.5']), true);
    assert.equal(acceptsPidf(['application/xpidf+xml']), false);
  });
});

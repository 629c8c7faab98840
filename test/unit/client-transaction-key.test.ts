import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseVia } from '../../src/sip/grammar.ts';
import { Headers, type SipResponse } from '../../src/sip/message.ts';
import { clientTransactionKey } from '../../src/sip/transaction/keys.ts';

function response(via: string, cseq: string): SipResponse {
  const headers = new Headers();
  headers.append('via', via);
  headers.append('cseq', cseq);
  return { kind: 'response', status: 200, reason: 'OK', headers, body: Buffer.alloc(0) } as SipResponse;
}

describe('clientTransactionKey reads only the branch and the CSeq method (§17.1.3)', () => {
  it('takes the branch as written, whatever comes before or after it', () => {
    assert.equal(clientTransactionKey(response('SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKabc', '7 NOTIFY')), 'z9hG4bKabc|NOTIFY');
    assert.equal(clientTransactionKey(response('SIP/2.0/UDP [::1]:5060;rport=5070;received=10.0.0.1;branch=z9hG4bKAbC;x', '1 OPTIONS')), 'z9hG4bKAbC|OPTIONS');
  });

  it('reads the parameter name in any letter case and with the spaces §7.3.1 allows around ";" and "="', () => {
    for (const via of ['SIP/2.0/TCP h:5060;BRANCH=z9hG4bK1', 'SIP/2.0/TCP h:5060 ; branch = z9hG4bK1 ;rport', 'SIP/2.0/TCP h:5060;Branch=z9hG4bK1,']) {
      assert.equal(clientTransactionKey(response(via, '2 MESSAGE')), 'z9hG4bK1|MESSAGE', via);
    }
  });

  it('takes the first branch only, and no parameter whose name merely ends in "branch"', () => {
    assert.equal(clientTransactionKey(response('SIP/2.0/TCP h;xbranch=nope;branch=z9hG4bK2;branch=z9hG4bK3', '2 NOTIFY')), 'z9hG4bK2|NOTIFY');
    assert.equal(clientTransactionKey(response('SIP/2.0/TCP h;xbranch=nope', '2 NOTIFY')), '|NOTIFY');
  });

  it('gives what the full parse gives when a quoted value could hide a ";branch="', () => {
    const via = 'SIP/2.0/TCP h;x=";branch=fake";branch=z9hG4bK4';
    assert.equal(parseVia(via).params.get('branch'), 'z9hG4bK4');
    assert.equal(clientTransactionKey(response(via, '3 NOTIFY')), 'z9hG4bK4|NOTIFY');
  });

  it('reads an unusual CSeq through the full parse, and refuses a malformed one as before', () => {
    assert.equal(clientTransactionKey(response('SIP/2.0/TCP h;branch=z9hG4bK5', '4294967295  X-Ping')), 'z9hG4bK5|X-Ping');
    assert.throws(() => clientTransactionKey(response('SIP/2.0/TCP h;branch=z9hG4bK5', '4294967296 NOTIFY')), /CSeq/);
    assert.throws(() => clientTransactionKey(response('SIP/2.0/TCP h;branch=z9hG4bK5', 'NOTIFY')), /CSeq/);
  });
});

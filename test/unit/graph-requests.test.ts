// The Graph connector's request shapes and its reading of Graph's answers, without a server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyGraphError, findByInternetMessageIdQuery, folderPath, graphFailure, graphScope, messageJson, missedCountQuery, parseGraphError, retryAfterMs } from '../../src/mailbox/graph/requests.ts';

const context = { mailbox: 'bob@parley.test', clientId: 'app-1', graphUrl: 'https://graph.microsoft.com/v1.0' };

describe('Graph request shapes', () => {
  it('the scope is the Graph resource with /.default; the mailbox is named by its address in the path', () => {
    assert.equal(graphScope('https://graph.microsoft.com/v1.0'), 'https://graph.microsoft.com/.default');
    assert.equal(graphScope('https://graph.microsoft.us/v1.0/'), 'https://graph.microsoft.us/.default');
    assert.equal(folderPath('o\'neil@parley.test', 'conversationhistory'), "/users/o'neil@parley.test/mailFolders/conversationhistory");
    assert.equal(folderPath('a#b/c@parley.test', 'inbox'), '/users/a%23b%2Fc@parley.test/mailFolders/inbox');
  });

  it('$filter literals double single quotes; the count asks for @odata.count and one id', () => {
    const q = new URLSearchParams(findByInternetMessageIdQuery("<sp-a'b@parley.test>").slice(1));
    assert.equal(q.get('$filter'), "internetMessageId eq '<sp-a''b@parley.test>'");
    assert.equal(q.get('$top'), '1');
    const c = new URLSearchParams(missedCountQuery(true).slice(1));
    assert.equal(c.get('$filter'), "singleValueExtendedProperties/Any(ep: ep/id eq 'String 0x001A' and ep/value eq 'IPM.Note.Microsoft.Missed') and isRead eq false");
    assert.equal(c.get('$count'), 'true');
  });

  it('a read Conversation item carries MSGFLAG_READ and no display name where there is none', () => {
    const m = messageJson({ mailbox: 'bob@parley.test', folder: 'conversationhistory', itemClass: 'IPM.Note.Microsoft.Conversation', internetMessageId: '<x@y>', subject: 's', from: { address: 'a@y', name: '' }, to: [], bodyHtml: '<p/>', bodyText: '', sentAt: new Date(0), isRead: true }, new Date(1000));
    assert.deepEqual(m.from, { emailAddress: { address: 'a@y' } });
    assert.deepEqual(m.singleValueExtendedProperties.slice(0, 2), [{ id: 'Integer 0x0E07', value: '1' }, { id: 'String 0x001A', value: 'IPM.Note.Microsoft.Conversation' }]);
    assert.equal(m.singleValueExtendedProperties[3]?.value, '1970-01-01T00:00:01.000Z');
  });

  it('Retry-After as seconds or an HTTP-date', () => {
    assert.equal(retryAfterMs('7', 0), 7000);
    assert.equal(retryAfterMs('Thu, 01 Jan 1970 00:00:30 GMT', 10_000), 20_000);
    assert.equal(retryAfterMs(null, 0), undefined);
    assert.equal(retryAfterMs('soon', 0), undefined);
  });

  it('reads Graph\'s error shape, and a body that is not one', () => {
    assert.deepEqual(parseGraphError(403, '{"error":{"code":"ErrorAccessDenied","message":"Access is denied.","innerError":{"date":"2026-01-01T00:00:00"}}}'), { status: 403, code: 'ErrorAccessDenied', message: 'Access is denied.' });
    assert.deepEqual(parseGraphError(502, '<html>Bad gateway</html>'), { status: 502, code: 'HTTP 502', message: '<html>Bad gateway</html>' });
  });

  it('retried: 429, 503, 504, other 5xx and 408; a new token: 401 InvalidAuthenticationToken; refused: the rest', () => {
    const kind = (status: number, code = 'x') => classifyGraphError({ status, code, message: '' });
    assert.deepEqual([429, 503, 504, 500, 408].map((s) => kind(s)), ['retry', 'retry', 'retry', 'retry', 'retry']);
    assert.equal(kind(401, 'InvalidAuthenticationToken'), 'token');
    assert.deepEqual([401, 403, 404, 400, 409].map((s) => kind(s)), ['refuse', 'refuse', 'refuse', 'refuse', 'refuse']);
  });

  it('a refusal says what to fix; a retry is REMOTE_UNAVAILABLE', () => {
    const denied = graphFailure({ status: 403, code: 'ErrorAccessDenied', message: 'Access is denied.' }, context);
    assert.equal(denied.code, 'REMOTE_REFUSED');
    assert.match(denied.message, /grant it the Mail\.ReadWrite application permission .*application access policy/);
    assert.match(graphFailure({ status: 404, code: 'ErrorInvalidUser', message: '' }, context).message, /has no Exchange Online mailbox/);
    assert.equal(graphFailure({ status: 504, code: 'GatewayTimeout', message: '' }, context).code, 'REMOTE_UNAVAILABLE');
  });
});

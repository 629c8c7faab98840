import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatJson, formatList } from '../../src/admin/format.ts';
import { timeSpan } from '../../src/admin/types.ts';

describe('output formatting', () => {
  it('aligns names, shows booleans, TimeSpans and $Null as PowerShell does, a blank line between objects', () => {
    const lines = formatList([
      [['Identity', 'Global'], ['EnableOfflineIm', false], ['OfflineImMaxAge', timeSpan(86400)]],
      [['Identity', 'Site:Redmond'], ['Site', null], ['Users', 3]],
    ]);
    assert.deepEqual(lines, [
      'Identity        : Global',
      'EnableOfflineIm : False',
      'OfflineImMaxAge : 1.00:00:00',
      '',
      'Identity : Site:Redmond',
      'Site     :',
      'Users    : 3',
    ]);
    assert.deepEqual(formatList([]), []);
  });

  it('writes JSON for scripts', () => {
    const at = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
    assert.deepEqual(JSON.parse(formatJson([[['Identity', 'Global'], ['EnableOfflineIm', true], ['OfflineImPickupDelay', timeSpan(120)], ['Site', null], ['When', at]]])), [
      { Identity: 'Global', EnableOfflineIm: true, OfflineImPickupDelay: '00:02:00', Site: null, When: '2026-01-02T03:04:05.000Z' },
    ]);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SettingsError, formatTimeSpan, parseTimeSpan } from '../../src/settings/index.ts';

describe('TimeSpan', () => {
  it('parses hh:mm:ss, d.hh:mm:ss and hh:mm', () => {
    assert.equal(parseTimeSpan('00:02:00'), 120);
    assert.equal(parseTimeSpan('1.00:00:00'), 86400);
    assert.equal(parseTimeSpan('2.03:04:05'), 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
    assert.equal(parseTimeSpan(' 23:59:59 '), 86399);
    assert.equal(parseTimeSpan('00:05'), 300);
  });

  it('formats as .NET does, days only when there are some', () => {
    assert.equal(formatTimeSpan(120), '00:02:00');
    assert.equal(formatTimeSpan(86400), '1.00:00:00');
    assert.equal(formatTimeSpan(0), '00:00:00');
    assert.equal(formatTimeSpan(90061), '1.01:01:01');
    for (const text of ['00:02:00', '1.00:00:00', '12.23:59:59']) assert.equal(formatTimeSpan(parseTimeSpan(text)), text);
  });

  it('refuses what is not a TimeSpan, saying why', () => {
    const cases: Array<[string, RegExp]> = [
      ['two minutes', /not a TimeSpan.*hh:mm:ss/],
      ['24:00:00', /24 hours.*d\.hh:mm:ss/],
      ['00:60:00', /60 minutes/],
      ['00:00:75', /75 seconds/],
      ['-00:02:00', /negative/],
      ['00:00:01.5', /fraction of a second/],
      ['', /not a TimeSpan/],
      ['120', /not a TimeSpan/],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => parseTimeSpan(text), (e: unknown) => e instanceof SettingsError && e.code === 'BAD_TIMESPAN' && message.test(e.message), text);
    }
  });
});

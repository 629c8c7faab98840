import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdminError, CMDLETS } from '../../src/admin/index.ts';
import { bindArguments, closestName, editDistance, findCmdlet, tokenize, wildcard } from '../../src/admin/parse.ts';
import { checkCmdlets } from '../../src/admin/registry.ts';

const cmdlet = (name: string) => findCmdlet(CMDLETS, name);
const bind = (line: string) => {
  const [name = '', ...rest] = tokenize(line);
  return bindArguments(cmdlet(name), rest);
};
const adminError = (code: string, message: RegExp) => (e: unknown) => e instanceof AdminError && e.code === code && message.test(e.message);

describe('cmdlet parsing', () => {
  it('matches cmdlet and parameter names in any case', () => {
    assert.equal(cmdlet('set-csimconfiguration').name, 'Set-CsImConfiguration');
    assert.deepEqual(bind('SET-CSIMCONFIGURATION -EnableOfflineIM $False'), { EnableOfflineIm: false });
    assert.deepEqual(bind('Set-CsImConfiguration -enableofflineim $TRUE'), { EnableOfflineIm: true });
  });

  it('reads $True, $False, $Null, True/False/1/0 and -Param:Value', () => {
    assert.deepEqual(bind('Set-CsClientPolicy -Identity Tag:Sales -DisableSavingIM $true -EnableIMAutoArchiving 0'), { Identity: 'Tag:Sales', DisableSavingIM: true, EnableIMAutoArchiving: false });
    assert.deepEqual(bind('Set-CsImConfiguration -EnableOfflineIm:$false'), { EnableOfflineIm: false });
    assert.deepEqual(bind('Grant-CsClientPolicy alice -PolicyName $NULL'), { Identity: 'alice', PolicyName: null });
    assert.throws(() => bind('Set-CsImConfiguration -EnableOfflineIm $Null'), adminError('BAD_VALUE', /-EnableOfflineIm takes a Boolean.*\$Null is not allowed/));
  });

  it('reads TimeSpans and names the parameter and type of a bad value', () => {
    assert.deepEqual(bind('Set-CsImConfiguration -OfflineImPickupDelay 00:05:00 -OfflineImMaxAge 2.00:00:00'), { OfflineImPickupDelay: 300, OfflineImMaxAge: 172800 });
    assert.throws(() => bind('Set-CsImConfiguration -OfflineImPickupDelay 5min'), adminError('BAD_VALUE', /-OfflineImPickupDelay takes a TimeSpan.*"5min"/));
    assert.deepEqual(bind('Set-CsImConfiguration -ConversationIdleTimeout 00:10:00 -UnreadMissedTimeout 00:00:00'), { ConversationIdleTimeout: 600, UnreadMissedTimeout: 0 });
    assert.throws(() => bind('Set-CsImConfiguration -UnreadMissedTimeout 5min'), adminError('BAD_VALUE', /-UnreadMissedTimeout takes a TimeSpan.*"5min"/));
    assert.throws(() => bind('Set-CsImConfiguration -EnableOfflineIm maybe'), adminError('BAD_VALUE', /-EnableOfflineIm takes a Boolean \(\$True or \$False\), not "maybe"/));
  });

  it('handles quoting, positional Identity and unique prefixes', () => {
    assert.deepEqual(tokenize(`Set-CsUser 'alice' -DisplayName "Alice ""the"" Liddell" -Site ''`), ['Set-CsUser', 'alice', '-DisplayName', 'Alice "the" Liddell', '-Site', '']);
    assert.deepEqual(bind(`Set-CsUser alice -DisplayName 'Alice Liddell'`), { Identity: 'alice', DisplayName: 'Alice Liddell' });
    assert.deepEqual(bind('Get-CsImConfiguration -Filter "site:*"'), { Filter: 'site:*' });
    assert.deepEqual(bind('Set-CsImConfiguration -EnableOff $false'), { EnableOfflineIm: false });
    assert.throws(() => bind('Set-CsImConfiguration -OfflineIm 00:01:00'), adminError('AMBIGUOUS_PARAMETER', /-OfflineImPickupDelay or -OfflineImMaxAge/));
    assert.throws(() => tokenize(`Get-CsUser 'alice`), adminError('BAD_SYNTAX', /never closed/));
  });

  it('suggests the closest cmdlet', () => {
    assert.throws(() => cmdlet('Get-CsImConfig'), adminError('UNKNOWN_CMDLET', /did you mean Get-CsImConfiguration\?/));
    assert.throws(() => cmdlet('Set-CsImConfigration'), adminError('UNKNOWN_CMDLET', /did you mean Set-CsImConfiguration\?/));
    assert.throws(() => cmdlet('Grant-CsClientPolcy'), adminError('UNKNOWN_CMDLET', /did you mean Grant-CsClientPolicy\?/));
    assert.throws(() => cmdlet('Frobnicate'), (e: unknown) => e instanceof AdminError && !/did you mean/.test(e.message));
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(closestName('get-cssite', ['Get-CsSite', 'Get-CsUser']), 'Get-CsSite');
  });

  it('lists the valid parameters of an unknown one', () => {
    assert.throws(
      () => bind('Set-CsImConfiguration -EnableOfflineMessages $false'),
      adminError('UNKNOWN_PARAMETER', /has no parameter -EnableOfflineMessages \(did you mean -EnableOfflineIm\?\); its parameters are -Identity, -EnableOfflineIm, -OfflineImPickupDelay, -OfflineImMaxAge, -ConversationIdleTimeout, -UnreadMissedTimeout$/),
    );
  });

  it('refuses a missing value (what a shell leaves of an unquoted $False), duplicates, strays and missing required parameters', () => {
    assert.throws(() => bind('Set-CsImConfiguration -EnableOfflineIM'), adminError('MISSING_PARAMETER', /needs a value.*quote it/));
    assert.throws(() => bind('Set-CsImConfiguration -EnableOfflineIM -Identity Global'), adminError('MISSING_PARAMETER', /-EnableOfflineIm needs a value/));
    assert.throws(() => bind('Set-CsImConfiguration -EnableOfflineIm 1 -enableofflineim 0'), adminError('BAD_SYNTAX', /more than once/));
    assert.throws(() => bind('Get-CsImConfiguration Global extra'), adminError('BAD_SYNTAX', /unexpected argument "extra"/));
    assert.throws(() => bind('Enable-CsUser alice'), adminError('MISSING_PARAMETER', /needs -Password/));
  });

  it('never echoes a secret value', () => {
    assert.throws(() => bind('Enable-CsUser alice -Password $Null'), (e: unknown) => e instanceof AdminError && /\*\*\*/.test(e.message) && !/\$Null"/.test(e.message));
  });

  it('matches -Filter wildcards on the whole Identity, any case', () => {
    assert.ok(wildcard('site:*').test('Site:Redmond'));
    assert.ok(!wildcard('site:*').test('Global'));
    assert.ok(wildcard('Tag:S?les').test('tag:sales'));
    assert.ok(!wildcard('a.b').test('axb'));
  });

  it('checks the cmdlet declarations', () => {
    assert.equal(checkCmdlets(CMDLETS), CMDLETS);
    const run = () => [];
    assert.throws(() => checkCmdlets([{ name: 'Get-Xy', synopsis: '', parameters: [], run }, { name: 'Get-XY', synopsis: '', parameters: [], run }]), /declared twice/);
    assert.throws(() => checkCmdlets([{ name: 'Get-Xy', synopsis: '', parameters: [{ name: 'A', type: 'string' }, { name: 'a', type: 'string' }], run }]), /PascalCase|declared twice/);
  });
});

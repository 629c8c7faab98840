import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../harness/server.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'parley-admin-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('parley admin (the real CLI process)', () => {
  it("runs the seed's two commands", async () => {
    // spawned without a shell, so $False reaches Parley as typed (in bash, quote it: '$False')
    const set = await runCli(['admin', '--data-dir', dir, 'Set-CsImConfiguration', '-EnableOfflineIM', '$False']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, '');
    const get = await runCli(['admin', '--data-dir', dir, 'Get-CsImConfiguration']);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^Identity +: Global\nEnableOfflineIm +: False\n/);
    assert.match(get.stdout, /OfflineImPickupDelay +: 00:02:00\nOfflineImMaxAge +: 1\.00:00:00\nConversationIdleTimeout : 00:10:00\nUnreadMissedTimeout +: 00:05:00\n$/);
  });

  it('exits 2 with the closest cmdlet on a typo', async () => {
    const typo = await runCli(['admin', '--data-dir', dir, 'Get-CsImConfigration']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /did you mean Get-CsImConfiguration\?/);
  });
});

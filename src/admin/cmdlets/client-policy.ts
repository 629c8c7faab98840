// Get-/Set-/New-/Remove-CsClientPolicy (Global, Site:<name>, Tag:<name>) and
// Grant-CsClientPolicy -Identity <user> -PolicyName <tag name>|$Null.
import { parseAddress } from '../../directory/index.ts';
import { CLIENT_POLICY, grantClientPolicy } from '../../settings/index.ts';
import type { CmdletSpec } from '../types.ts';
import { argString } from '../types.ts';
import { change, settingsCmdlets } from './settings-nouns.ts';

const GRANT: CmdletSpec = {
  name: 'Grant-CsClientPolicy',
  synopsis: 'gives a user a per-user (Tag) client policy; -PolicyName $Null removes the grant',
  parameters: [
    { name: 'Identity', type: 'string', position: 0, required: true, help: 'the SIP address of the user' },
    { name: 'PolicyName', type: 'string', position: 1, required: true, nullable: true, help: 'the name of a Tag policy, or $Null' },
  ],
  run(ctx, args) {
    const address = parseAddress(argString(args, 'Identity') ?? '', ctx.domain).address;
    const policy = argString(args, 'PolicyName') ?? null;
    grantClientPolicy(ctx.db, address, policy === null ? null : policy.replace(/^tag:/i, ''), change(ctx, 'Grant-CsClientPolicy'));
    return [];
  },
};

export const CLIENT_POLICY_CMDLETS: readonly CmdletSpec[] = [...settingsCmdlets(CLIENT_POLICY), GRANT];

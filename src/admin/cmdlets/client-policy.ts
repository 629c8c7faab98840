// Get-/Set-/New-/Remove-CsClientPolicy (Global, Site:<name>, Tag:<name>) and
// Grant-CsClientPolicy -Identity <user> -PolicyName <tag name>|$Null.
import { CLIENT_POLICY } from '../../settings/index.ts';
import type { CmdletSpec } from '../types.ts';
import { settingsCmdlets } from './settings-nouns.ts';

export const CLIENT_POLICY_CMDLETS: readonly CmdletSpec[] = settingsCmdlets(CLIENT_POLICY);

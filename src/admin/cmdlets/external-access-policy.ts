// Get-/Set-/New-/Remove-CsExternalAccessPolicy (Global, Site:<name>, Tag:<name>) and
// Grant-CsExternalAccessPolicy -Identity <user> -PolicyName <tag name>|$Null: whether a user may
// talk to federated partners (issue 15). Resolved like CsClientPolicy, see settings/effective.ts.
import { EXTERNAL_ACCESS_POLICY } from '../../settings/index.ts';
import type { CmdletSpec } from '../types.ts';
import { settingsCmdlets } from './settings-nouns.ts';

export const EXTERNAL_ACCESS_POLICY_CMDLETS: readonly CmdletSpec[] = settingsCmdlets(EXTERNAL_ACCESS_POLICY);

// Get-/Set-/New-/Remove-CsImConfiguration (Global and Site:<name>).
import { IM_CONFIGURATION } from '../../settings/index.ts';
import type { CmdletSpec } from '../types.ts';
import { settingsCmdlets } from './settings-nouns.ts';

export const IM_CONFIGURATION_CMDLETS: readonly CmdletSpec[] = settingsCmdlets(IM_CONFIGURATION);

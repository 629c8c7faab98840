// The cmdlets `parley admin` knows. Each is declared in its own module under cmdlets/; this list
// is checked once, when it is built: a wrong declaration is a bug and fails every run and test.

import { ACCESS_EDGE_CMDLETS } from './cmdlets/access-edge.ts';
import { AUDIT_CMDLETS } from './cmdlets/audit.ts';
import { authLockoutCmdlets } from './cmdlets/auth-lockout.ts';
import type { LiveLockouts } from './cmdlets/auth-lockout.ts';
import { CLIENT_POLICY_CMDLETS } from './cmdlets/client-policy.ts';
import { EXTERNAL_ACCESS_POLICY_CMDLETS } from './cmdlets/external-access-policy.ts';
import { IM_CONFIGURATION_CMDLETS } from './cmdlets/im-configuration.ts';
import { PARTNER_DOMAIN_CMDLETS } from './cmdlets/partner-domains.ts';
import { presenceCmdlets } from './cmdlets/presence.ts';
import type { LivePresence } from './cmdlets/presence.ts';
import { SITE_CMDLETS } from './cmdlets/site.ts';
import { USER_CMDLETS } from './cmdlets/user.ts';
import type { CmdletSpec } from './types.ts';

export const CMDLETS: readonly CmdletSpec[] = checkCmdlets([
  ...IM_CONFIGURATION_CMDLETS,
  ...CLIENT_POLICY_CMDLETS,
  ...SITE_CMDLETS,
  ...USER_CMDLETS,
  ...AUDIT_CMDLETS,
  ...presenceCmdlets(),
  ...authLockoutCmdlets(),
  ...EXTERNAL_ACCESS_POLICY_CMDLETS,
  ...ACCESS_EDGE_CMDLETS,
  ...PARTNER_DOMAIN_CMDLETS,
]);

/** The cmdlets as the running server serves them (admin API): those that read live state get it. */
export function serverCmdlets(live: { presence: LivePresence; lockouts?: LiveLockouts }): readonly CmdletSpec[] {
  const served = new Map([...presenceCmdlets(live.presence), ...authLockoutCmdlets(live.lockouts)].map((c) => [c.name, c]));
  return CMDLETS.map((c) => served.get(c.name) ?? c);
}

/** Names are Verb-Noun and unique (ignoring case), parameter names and positions unique per cmdlet. */
export function checkCmdlets(cmdlets: readonly CmdletSpec[]): readonly CmdletSpec[] {
  const names = new Set<string>();
  for (const cmdlet of cmdlets) {
    if (!/^[A-Z][a-z]+-[A-Z][A-Za-z]+$/.test(cmdlet.name)) throw new Error(`cmdlet name ${cmdlet.name} is not Verb-Noun`);
    const key = cmdlet.name.toLowerCase();
    if (names.has(key)) throw new Error(`cmdlet ${cmdlet.name} is declared twice`);
    names.add(key);
    const params = new Set<string>();
    const positions = new Set<number>();
    for (const p of cmdlet.parameters) {
      if (!/^[A-Z][A-Za-z0-9]*$/.test(p.name)) throw new Error(`${cmdlet.name}: parameter name ${p.name} is not PascalCase`);
      if (params.has(p.name.toLowerCase())) throw new Error(`${cmdlet.name}: parameter ${p.name} is declared twice`);
      params.add(p.name.toLowerCase());
      if (p.position !== undefined) {
        if (positions.has(p.position)) throw new Error(`${cmdlet.name}: two parameters at position ${p.position}`);
        positions.add(p.position);
      }
    }
  }
  return cmdlets;
}

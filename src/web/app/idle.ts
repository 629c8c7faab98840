// Automatic presence as Skype for Business does it: with no keyboard or pointer input for 5
// minutes, Available or Busy becomes Inactive (published as Away: PIDF has no Inactive), and after
// 5 more minutes Away; any input brings back the state the user chose. A state the user set
// themselves (Do Not Disturb, Be Right Back, Away, Offline) is never changed. Pure.

import type { PresenceStateName } from './presence.ts';

export const INACTIVE_AFTER_MS = 5 * 60_000;
export const AWAY_AFTER_MS = 10 * 60_000;

/** What is shown for the user: the published state, and 'Inactive' as the label of the first idle step. */
export interface AutoState {
  published: PresenceStateName;
  label: PresenceStateName | 'Inactive';
}

export function autoState(chosen: PresenceStateName, idleMs: number): AutoState {
  if (chosen !== 'Available' && chosen !== 'Busy') return { published: chosen, label: chosen };
  if (idleMs >= AWAY_AFTER_MS) return { published: 'Away', label: 'Away' };
  if (idleMs >= INACTIVE_AFTER_MS) return { published: 'Away', label: 'Inactive' };
  return { published: chosen, label: chosen };
}

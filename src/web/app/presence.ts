// Presence as the views show it: the six states of Parley's PIDF (src/presence/pidf.ts), each
// with a colour class, and the order a contact list sorts by. Pure.

export type PresenceStateName = 'Available' | 'Busy' | 'Do Not Disturb' | 'Be Right Back' | 'Away' | 'Offline';

export const PRESENCE_STATES: readonly PresenceStateName[] = ['Available', 'Busy', 'Do Not Disturb', 'Be Right Back', 'Away', 'Offline'];

/** what a user may choose for themselves (Offline is what signing out does) */
export const SETTABLE_STATES: readonly PresenceStateName[] = ['Available', 'Busy', 'Do Not Disturb', 'Be Right Back', 'Away'];

/** CSS class of the state's colour: green, red, dark red, yellow, grey */
export function presenceClass(state: string): string {
  switch (state) {
    case 'Available':
      return 'p-available';
    case 'Busy':
      return 'p-busy';
    case 'Do Not Disturb':
      return 'p-dnd';
    case 'Be Right Back':
    case 'Away':
    case 'Inactive':
      return 'p-away';
    default:
      return 'p-offline';
  }
}

/** Sort rank: the more available, the higher in the list. */
export function presenceRank(state: string): number {
  const at = PRESENCE_STATES.indexOf(state as PresenceStateName);
  return at < 0 ? PRESENCE_STATES.length : at;
}

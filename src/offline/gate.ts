// The offline-IM gate (MISSION.md, "Offline IM, precisely" 2): a message to an offline user is
// kept only when the local party's effective EnableOfflineIm (CsImConfiguration) and
// EnableIMAutoArchiving (CsClientPolicy) are both true; otherwise the sender hears why.
// The local party is the SENDER between local users and towards a partner organisation's user (an
// `email` entry: the recipient has no settings here); it is the local RECIPIENT of a partner's
// message (a `note` entry: the partner's user has none).
import type { EffectiveSettings } from '../settings/index.ts';

export type GateDecision =
  | { allowed: true }
  | { allowed: false; setting: 'EnableOfflineIm' | 'EnableIMAutoArchiving'; warning: string };

/** Whose settings `settings` are: the sender's (default) or the recipient's. */
export type GatedParty = 'sender' | 'recipient';

export function offlineGate(recipient: string, settings: EffectiveSettings, party: GatedParty = 'sender'): GateDecision {
  if (party === 'recipient') return recipientGate(recipient, settings);
  if (!settings.EnableOfflineIm) {
    return {
      allowed: false,
      setting: 'EnableOfflineIm',
      warning: `${recipient} is offline and offline IM is off: EnableOfflineIm is False in CsImConfiguration ${settings.sources.ImConfiguration}`,
    };
  }
  if (!settings.EnableIMAutoArchiving) {
    return {
      allowed: false,
      setting: 'EnableIMAutoArchiving',
      warning: `${recipient} is offline and your conversations are not saved: EnableIMAutoArchiving is False in CsClientPolicy ${settings.sources.ClientPolicy}, so offline IM is not available to you`,
    };
  }
  return { allowed: true };
}

/**
 * The recipient's settings decide; the warning goes to another organisation, so it names the
 * setting but not the policy instance it came from (that is this organisation's business: the trace
 * has it).
 */
function recipientGate(recipient: string, settings: EffectiveSettings): GateDecision {
  if (!settings.EnableOfflineIm) {
    return { allowed: false, setting: 'EnableOfflineIm', warning: `${recipient} is offline and does not take offline messages (EnableOfflineIm is False for them)` };
  }
  if (!settings.EnableIMAutoArchiving) {
    return { allowed: false, setting: 'EnableIMAutoArchiving', warning: `${recipient} is offline and does not take offline messages (EnableIMAutoArchiving is False for them)` };
  }
  return { allowed: true };
}

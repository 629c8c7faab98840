// The offline-IM gate (MISSION.md, "Offline IM, precisely" 2): a message to an offline user is
// kept only when the SENDER's effective EnableOfflineIm (CsImConfiguration) and
// EnableIMAutoArchiving (CsClientPolicy) are both true; otherwise the sender hears why.
import type { EffectiveSettings } from '../settings/index.ts';

export type GateDecision =
  | { allowed: true }
  | { allowed: false; setting: 'EnableOfflineIm' | 'EnableIMAutoArchiving'; warning: string };

export function offlineGate(recipient: string, settings: EffectiveSettings): GateDecision {
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

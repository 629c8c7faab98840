// Header fields of the SIP event framework as a subscriber reads them (RFC 6665 §8.2). Pure.
//
//   Event              = ( "Event" / "o" ) HCOLON event-type *( SEMI event-param )
//   event-param        = generic-param / ( "id" EQUAL token )
//   Subscription-State = "Subscription-State" HCOLON substate-value *( SEMI subexp-params )
//   substate-value     = "active" / "pending" / "terminated" / extension-substate
//   subexp-params      = ("reason" EQUAL event-reason-value) / ("expires" EQUAL delta-seconds)
//                        / ("retry-after" EQUAL delta-seconds) / generic-param

import { parseParams } from '../sip/pure.ts';

export interface SubscriptionState {
  /** `active`, `pending`, `terminated` or an extension value, lower-cased */
  state: string;
  /** seconds left, as the notifier counts them (active and pending) */
  expires?: number;
  /** why it ended (terminated): deactivated, probation, rejected, timeout, giveup, noresource, invariant… */
  reason?: string;
  /** seconds to wait before subscribing again (terminated) */
  retryAfter?: number;
}

/** Parses Subscription-State; null when the value is not one. */
export function parseSubscriptionState(value: string | undefined): SubscriptionState | null {
  if (value === undefined) return null;
  const semi = value.indexOf(';');
  const state = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  if (!/^[a-z0-9.!%*_+`'~-]+$/.test(state)) return null;
  let params: Map<string, string | null>;
  try {
    params = semi < 0 ? new Map() : parseParams(value.slice(semi));
  } catch {
    return null;
  }
  const result: SubscriptionState = { state };
  const expires = deltaSeconds(params.get('expires'));
  const retryAfter = deltaSeconds(params.get('retry-after'));
  const reason = params.get('reason');
  if (expires !== undefined) result.expires = expires;
  if (retryAfter !== undefined) result.retryAfter = retryAfter;
  if (reason !== undefined && reason !== null && reason !== '') result.reason = reason.toLowerCase();
  return result;
}

/** The package of an Event header (`message-summary;id=1` → `message-summary`), lower-cased. */
export function eventType(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const name = (value.split(';')[0] ?? '').trim().toLowerCase();
  return name === '' ? undefined : name;
}

/** Expires as delta-seconds (RFC 3261 §20.19); undefined when absent or malformed. */
export function expiresHeader(value: string | undefined): number | undefined {
  return deltaSeconds(value);
}

function deltaSeconds(value: string | null | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  return /^\d{1,10}$/.test(text) ? Math.min(Number(text), 2 ** 32 - 1) : undefined;
}

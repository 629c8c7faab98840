// RFC 3994 message composition indication: the application/im-iscomposing+xml body a client
// sends in a MESSAGE while its user types, and what a received one says. Pure.
//
//   <isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">
//     <state>active</state>           "active" or "idle" (§3)
//     <contenttype>text/plain</contenttype>
//     <refresh>60</refresh>           §4: the sender refreshes an active state within this many s
//   </isComposing>

import { escapeXmlText, parseXml } from '../xml/index.ts';
import { childText } from '../xml/index.ts';

export const IS_COMPOSING_TYPE = 'application/im-iscomposing+xml';
const NS = 'urn:ietf:params:xml:ns:im-iscomposing';
/** §4: the refresh interval we announce while active */
export const COMPOSING_REFRESH_SECONDS = 60;
/** §3.2 (receiver): without a refresh element, an active state ends after 120 s */
export const DEFAULT_ACTIVE_TIMEOUT_SECONDS = 120;

export interface ComposingState {
  active: boolean;
  /** seconds until an active state lapses without a refresh */
  refreshSeconds: number;
}

export function isComposingBody(active: boolean, contentType = 'text/plain'): string {
  const refresh = active ? `\n  <refresh>${COMPOSING_REFRESH_SECONDS}</refresh>` : '';
  return `<?xml version="1.0" encoding="UTF-8"?>\n<isComposing xmlns="${NS}">\n  <state>${active ? 'active' : 'idle'}</state>\n  <contenttype>${escapeXmlText(contentType)}</contenttype>${refresh}\n</isComposing>\n`;
}

/** What an isComposing document says; undefined when it is not one (§3: state is required). */
export function parseIsComposing(body: Uint8Array | string): ComposingState | undefined {
  try {
    const root = parseXml(body);
    if (root.ns !== NS || root.name !== 'isComposing') return undefined;
    const state = childText(root, NS, 'state')?.trim().toLowerCase();
    if (state !== 'active' && state !== 'idle') return undefined;
    const refresh = Number.parseInt(childText(root, NS, 'refresh')?.trim() ?? '', 10);
    return { active: state === 'active', refreshSeconds: Number.isInteger(refresh) && refresh > 0 ? refresh : DEFAULT_ACTIVE_TIMEOUT_SECONDS };
  } catch {
    return undefined;
  }
}

/**
 * The receiver's view of who is typing (§3.2): an active state lapses after its refresh interval
 * unless refreshed, and a message from that sender ends it. Calls `change` on each transition.
 */
export class ComposingTracker {
  readonly #change: (from: string, active: boolean) => void;
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(change: (from: string, active: boolean) => void) {
    this.#change = change;
  }

  /** An isComposing from `from`. */
  update(from: string, state: ComposingState): void {
    const wasActive = this.#clear(from);
    if (state.active) {
      const timer = setTimeout(() => {
        this.#timers.delete(from);
        this.#change(from, false);
      }, state.refreshSeconds * 1000);
      (timer as { unref?: () => void }).unref?.();
      this.#timers.set(from, timer);
      if (!wasActive) this.#change(from, true);
    } else {
      // told even when they were not shown as typing: an explicit idle is worth passing on
      this.#change(from, false);
    }
  }

  /** A message from `from` arrived: §3.2, they are no longer composing it. */
  messageFrom(from: string): void {
    if (this.#clear(from)) this.#change(from, false);
  }

  /** Forgets everyone, silently (the connection is closed). */
  clear(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  #clear(from: string): boolean {
    const timer = this.#timers.get(from);
    if (timer === undefined) return false;
    clearTimeout(timer);
    this.#timers.delete(from);
    return true;
  }
}

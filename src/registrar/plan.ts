// REGISTER processing, RFC 3261 §10.3 steps 6–8, as a pure function: what to change in the
// location service, or why the request fails. The handler does authentication and I/O around it.

import type { Binding, BindingChange, FlowRef } from './location.ts';
import { detach, parseNameAddr, parseUri, SipParseError } from '../sip/index.ts';
import type { NameAddr, SipRequest } from '../sip/index.ts';

export interface RegistrarSettings {
  /** seconds; shorter non-zero requests get 423 Interval Too Brief */
  minExpires: number;
  /** seconds; longer requests are shortened to this */
  maxExpires: number;
  /** seconds, when the request names no expiry */
  defaultExpires: number;
  /** bindings one address-of-record may hold; the oldest give way to new ones */
  maxBindings: number;
}

export const DEFAULT_REGISTRAR_SETTINGS: RegistrarSettings = {
  minExpires: 60,
  maxExpires: 3600,
  defaultExpires: 3600,
  maxBindings: 16,
};

export type RegisterPlan =
  /**
   * `stateless`: the request only binds, so its 200 may be sent without keeping the transaction
   * for Timer J: a retransmission, handed over again by the transaction layer (answerAgain), is
   * answered again with the bindings, which it cannot change (handler.ts). Queries and removals
   * keep their transaction (rare, and answered byte for byte as the RFC has it).
   */
  | { ok: true; changes: BindingChange[]; stateless: boolean }
  | { ok: false; status: number; warning: string; minExpires?: number };

export function planRegistration(input: {
  aor: string;
  request: SipRequest;
  flow: FlowRef;
  current: readonly Binding[];
  now: number;
  settings: RegistrarSettings;
}): RegisterPlan {
  const { request, current, now, settings } = input;
  const callId = request.headers.get('call-id') ?? '';
  const cseq = Number.parseInt((request.headers.get('cseq') ?? '').trim(), 10);
  const contacts = request.headers.getAll('contact');
  const headerExpires = request.headers.get('expires');
  let defaultExpires = settings.defaultExpires;
  if (headerExpires !== undefined) {
    const parsed = parseSeconds(headerExpires);
    if (parsed === null) return fail(400, `Expires header "${headerExpires}" is not a number of seconds`);
    defaultExpires = parsed;
  }

  // A REGISTER without Contact is a query: answer with the current bindings (§10.3 step 8).
  if (contacts.length === 0) return { ok: true, changes: [], stateless: false };

  // "*" removes every binding, and only with Expires: 0 and as the only Contact (§10.2.2).
  if (contacts.some((c) => c.trim() === '*')) {
    if (contacts.length !== 1) return fail(400, 'Contact "*" must be the only Contact');
    if (headerExpires === undefined || defaultExpires !== 0) return fail(400, 'Contact "*" requires "Expires: 0"');
    const stale = current.find((b) => b.callId === callId && b.cseq >= cseq);
    if (stale) return fail(400, `CSeq ${cseq} is not higher than ${stale.cseq} of the last REGISTER with this Call-ID`);
    return { ok: true, changes: [{ type: 'remove-all' }], stateless: false };
  }

  const changes: BindingChange[] = [];
  let stateless = true;
  for (const text of contacts) {
    let contact: NameAddr;
    let key: string;
    try {
      contact = parseNameAddr(text);
      key = bindingKey(contact);
    } catch (err) {
      if (err instanceof SipParseError) return fail(400, `Contact "${text}": ${err.message}`);
      throw err;
    }
    const expiresParam = contact.params.get('expires');
    let expires = defaultExpires;
    if (expiresParam !== undefined) {
      const parsed = parseSeconds(expiresParam ?? '');
      if (parsed === null) return fail(400, `Contact expires parameter "${expiresParam}" is not a number of seconds`);
      expires = parsed;
    }
    if (expires > 0 && expires < settings.minExpires) {
      return { ok: false, status: 423, warning: `expiry ${expires}s is shorter than the minimum ${settings.minExpires}s`, minExpires: settings.minExpires };
    }
    expires = Math.min(expires, settings.maxExpires);

    const existing = current.find((b) => b.key === key);
    if (existing && existing.callId === callId && existing.cseq >= cseq) {
      return fail(400, `CSeq ${cseq} is not higher than ${existing.cseq} of the last REGISTER with this Call-ID`);
    }
    if (expires === 0) {
      changes.push({ type: 'remove', key });
      stateless = false;
      continue;
    }
    const userAgent = request.headers.get('user-agent');
    // A binding lives as long as the registration: its strings are copied off the REGISTER's text,
    // which would otherwise stay in memory with it (~0.6 KiB per registration).
    changes.push({
      type: 'put',
      binding: {
        aor: detach(input.aor),
        contact: detach(contact.uri),
        key: detach(key),
        callId: detach(callId),
        cseq,
        expiresAt: now + expires * 1000,
        registeredAt: existing?.registeredAt ?? now,
        q: parseQ(contact.params.get('q')),
        userAgent: userAgent === undefined ? null : detach(userAgent),
        flow: input.flow,
      },
    });
  }

  // Over the limit, the oldest bindings make room for the new ones.
  const remaining = new Map(current.map((b) => [b.key, b] as const));
  for (const c of changes) {
    if (c.type === 'remove') remaining.delete(c.key);
    else if (c.type === 'put') remaining.set(c.binding.key, c.binding);
  }
  const excess = remaining.size - settings.maxBindings;
  if (excess > 0) {
    const oldest = [...remaining.values()].sort((a, b) => a.registeredAt - b.registeredAt).slice(0, excess);
    for (const b of oldest) changes.push({ type: 'remove', key: b.key });
  }
  return { ok: true, changes, stateless };
}

/**
 * Bindings are compared by their Contact URI (RFC 3261 §10.3 step 7, §19.1.4), or by the
 * instance id when the client gives one (RFC 5626 §4.2), so a client behind a changing address
 * replaces its binding instead of piling up new ones.
 */
export function bindingKey(contact: NameAddr): string {
  const instance = contact.params.get('+sip.instance');
  if (instance) return `instance:${instance.replace(/^"|"$/g, '')}`;
  const uri = parseUri(contact.uri);
  const transport = uri.params.get('transport') ?? '';
  return `${uri.scheme}:${uri.user ?? ''}@${uri.host}:${uri.port ?? ''};transport=${transport.toLowerCase()}`;
}

function parseSeconds(text: string): number | null {
  const t = text.trim();
  if (!/^\d{1,10}$/.test(t)) return null;
  return Math.min(Number(t), 2 ** 32 - 1);
}

function parseQ(value: string | null | undefined): number | null {
  if (value === undefined || value === null) return null;
  const q = Number(value);
  return Number.isFinite(q) && q >= 0 && q <= 1 ? q : null;
}

function fail(status: number, warning: string): RegisterPlan {
  return { ok: false, status, warning };
}

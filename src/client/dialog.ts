// The dialog of a subscription as the subscriber keeps it (RFC 3261 §12.1, RFC 6665 §4.1.2.4):
// created by the 2xx to SUBSCRIBE or by a NOTIFY that overtakes it, identified by Call-ID and
// both tags. Pure.

import { parseNameAddr } from '../sip/pure.ts';
import type { SipRequest, SipResponse } from '../sip/pure.ts';
import { newCallId, newTag } from './ids.ts';
import { nameAddr } from './requests.ts';

export interface Dialog {
  callId: string;
  localTag: string;
  remoteTag: string | null;
  /** To of in-dialog requests: the notifier's address, with its tag once known */
  remote: string;
  /** Request-URI of in-dialog requests (RFC 3261 §12.2.1.1): the notifier's Contact */
  remoteTarget: string;
  /** Route of in-dialog requests (RFC 3261 §12.1.2: Record-Route of the 2xx, reversed) */
  routeSet: string[];
  cseq: number;
  /** when the first 2xx arrived */
  establishedAt: number | null;
}

/** A dialog not yet established: a new Call-ID and From tag, aimed at `target`. */
export function newDialog(target: string): Dialog {
  return { callId: newCallId(), localTag: newTag(), remoteTag: null, remote: nameAddr(target), remoteTarget: target, routeSet: [], cseq: 0, establishedAt: null };
}

/** The dialog identifiers of an incoming in-dialog request: Call-ID, our tag (To) and theirs (From). */
export function dialogIdsOf(request: SipRequest): { callId: string; localTag: string | undefined; remoteTag: string | undefined } {
  return { callId: request.headers.get('call-id') ?? '', localTag: tagOf(request.headers.get('to')), remoteTag: tagOf(request.headers.get('from')) };
}

/** The dialog from the 2xx (RFC 3261 §12.1.2, UAC side), unless a NOTIFY created it first. */
export function learnFromResponse(dialog: Dialog, response: SipResponse): void {
  if (dialog.remoteTag !== null) return;
  const to = response.headers.get('to');
  const tag = tagOf(to);
  if (to === undefined || tag === undefined) return;
  dialog.remoteTag = tag;
  dialog.remote = to;
  dialog.routeSet = response.headers.getAll('record-route').reverse();
  const contact = contactOf(response);
  if (contact !== undefined) dialog.remoteTarget = contact;
}

/**
 * RFC 6665 §4.1.2.4: a NOTIFY may create the dialog before the 2xx arrives (§12.1.1, UAS side:
 * Record-Route in order); any NOTIFY updates the remote target.
 */
export function learnFromNotify(dialog: Dialog, request: SipRequest): void {
  if (dialog.remoteTag === null) {
    const from = request.headers.get('from');
    const tag = tagOf(from);
    if (from !== undefined && tag !== undefined) {
      dialog.remoteTag = tag;
      dialog.remote = from;
      dialog.routeSet = request.headers.getAll('record-route');
    }
  }
  const contact = contactOf(request);
  if (contact !== undefined) dialog.remoteTarget = contact;
}

function tagOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return parseNameAddr(value).params.get('tag') ?? undefined;
  } catch {
    return undefined;
  }
}

function contactOf(message: SipRequest | SipResponse): string | undefined {
  const value = message.headers.get('contact');
  if (value === undefined) return undefined;
  try {
    return parseNameAddr(value).uri;
  } catch {
    return undefined;
  }
}

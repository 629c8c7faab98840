// What a sent message's SIP answer means to the person who sent it (RFC 3428 §7: 200 delivered;
// Parley's 202: stored for the recipient's mailbox; anything else failed, with the server's
// Warning text as the reason, never a bare code). Pure.

export type DeliveryStatus = 'queued' | 'sending' | 'delivered' | 'mailbox' | 'failed' | 'seen';

export interface Outcome {
  status: DeliveryStatus;
  /** the Warning text (202 and failures), or the reason phrase when there was no Warning */
  detail?: string;
}

export function outcomeOf(response: { status: number; reason: string; warning?: string }): Outcome {
  if (response.status === 202) return { status: 'mailbox', ...(response.warning ? { detail: response.warning } : {}) };
  if (response.status >= 200 && response.status < 300) return { status: 'delivered' };
  const detail = response.warning?.trim() || `${response.reason || 'refused'} (${response.status})`;
  return { status: 'failed', detail };
}

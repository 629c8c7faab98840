// The conversations of this page: one per person, their messages in order, unread counts and the
// typing indicator, as signals the views read. Only what this tab saw since it was opened: the
// mailbox (Missed Conversations, Conversation History) keeps what happened while it was not.

import { batch, computed, signal, type Signal } from '@preact/signals';
import type { DeliveryStatus } from './outcome.ts';

export interface ChatMessage {
  /** local id, for keys and updates */
  readonly id: string;
  readonly direction: 'in' | 'out';
  readonly text: string;
  /** incoming: `text` is HTML (text/html), shown only through the transcripts' allow-list sanitiser */
  readonly html?: boolean;
  /** ms since the epoch: when sent or received here */
  readonly at: number;
  /** outgoing only */
  status?: DeliveryStatus;
  /** the Warning text of a 202 or a failure */
  detail?: string;
  /** RFC 5438 imdn.Message-ID: ours (asked for a display notification) or theirs */
  imdnMessageId?: string;
  /** incoming: the sender asked to hear when it was displayed, and we have not told them yet */
  displayPending?: boolean;
}

export interface Conversation {
  /** the other person's address, `bob@parley.local` */
  readonly address: string;
  readonly displayName: Signal<string>;
  readonly messages: Signal<readonly ChatMessage[]>;
  readonly unread: Signal<number>;
  /** they are typing (RFC 3994 active) */
  readonly typing: Signal<boolean>;
  /** ms of the last message, for the order of the list */
  readonly lastAt: Signal<number>;
}

let counter = 0;
export const newLocalId = (): string => `m${Date.now().toString(36)}${(counter++).toString(36)}`;

export class Conversations {
  readonly #byAddress = signal<ReadonlyMap<string, Conversation>>(new Map());
  /** the conversation on screen, or null */
  readonly active = signal<string | null>(null);
  /** every conversation, the latest first */
  readonly list = computed(() => [...this.#byAddress.value.values()].sort((a, b) => b.lastAt.value - a.lastAt.value));
  /** unread messages in all conversations (the tab title) */
  readonly totalUnread = computed(() => this.list.value.reduce((n, c) => n + c.unread.value, 0));

  get(address: string): Conversation | undefined {
    return this.#byAddress.value.get(address);
  }

  /** The conversation with `address`, made when there is none. */
  open(address: string, displayName = ''): Conversation {
    const existing = this.#byAddress.value.get(address);
    if (existing !== undefined) {
      if (displayName !== '' && existing.displayName.value === '') existing.displayName.value = displayName;
      return existing;
    }
    const conversation: Conversation = {
      address,
      displayName: signal(displayName),
      messages: signal([]),
      unread: signal(0),
      typing: signal(false),
      lastAt: signal(0),
    };
    this.#byAddress.value = new Map([...this.#byAddress.value, [address, conversation]]);
    return conversation;
  }

  add(address: string, message: ChatMessage, countUnread: boolean): void {
    const c = this.open(address);
    batch(() => {
      c.messages.value = [...c.messages.value, message];
      c.lastAt.value = message.at;
      if (message.direction === 'in') c.typing.value = false; // RFC 3994 §4: a message ends composing
      if (countUnread) c.unread.value += 1;
    });
  }

  /** Changes one message (a status arrived); no-op when it is gone. */
  update(address: string, id: string, change: Partial<ChatMessage>): void {
    const c = this.get(address);
    if (c === undefined) return;
    c.messages.value = c.messages.value.map((m) => (m.id === id ? { ...m, ...change } : m));
  }

  /**
   * Their client showed our message `imdnMessageId`: it and our earlier delivered ones are Seen
   * (they were above it on their screen).
   */
  seen(address: string, imdnMessageId: string): void {
    const c = this.get(address);
    if (c === undefined) return;
    const at = c.messages.value.findIndex((m) => m.direction === 'out' && m.imdnMessageId === imdnMessageId);
    if (at < 0) return;
    c.messages.value = c.messages.value.map((m, i) => (i <= at && m.direction === 'out' && (m.status === 'delivered' || i === at) ? { ...m, status: 'seen' } : m));
  }

  /** The outgoing messages waiting for the connection, oldest first. */
  queued(): Array<{ address: string; message: ChatMessage }> {
    const out: Array<{ address: string; message: ChatMessage }> = [];
    for (const c of this.list.value) for (const m of c.messages.value) if (m.status === 'queued') out.push({ address: c.address, message: m });
    return out.sort((a, b) => a.message.at - b.message.at);
  }

  /** The address of the next (step 1) or previous (-1) conversation with unread messages, from the active one. */
  nextUnread(step: 1 | -1): string | null {
    const list = this.list.value;
    if (list.length === 0) return null;
    const from = list.findIndex((c) => c.address === this.active.value);
    for (let k = 1; k <= list.length; k++) {
      const i = (((from < 0 ? (step === 1 ? -1 : 0) : from) + k * step) % list.length + list.length) % list.length;
      const c = list[i];
      if (c !== undefined && c.unread.value > 0 && c.address !== this.active.value) return c.address;
    }
    return null;
  }

  clear(): void {
    batch(() => {
      this.#byAddress.value = new Map();
      this.active.value = null;
    });
  }
}

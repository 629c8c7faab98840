// Which received messages the person has seen. The terminal shows one conversation at a time: a
// message from the person on screen (or the first one when no conversation is open) is printed at
// once; one from anybody else is held, announced in a line, and printed when its conversation is
// opened (/to, /msg). Only a printed message earns an RFC 5438 `displayed` report (§7.2.1.1: "the
// message was displayed to the user"), so a message nobody opens stays unread and the server can
// turn it into a Missed Conversation after UnreadMissedTimeout.

/** a received text, ready to print */
export interface ReceivedText {
  /** the sender's bare address, lower case */
  from: string;
  /** the sender as the screen names them */
  name: string;
  text: string;
  at: Date;
  /** set when the sender asked for a display notification: what the `displayed` report names */
  reportDisplayedAs?: string;
}

/** how many messages one peer may have waiting before the oldest are dropped (a flood must not grow memory) */
export const MAX_HELD_PER_PEER = 200;

export class HeldMessages {
  readonly #held = new Map<string, ReceivedText[]>();

  /** Puts a message aside; returns how many from that peer now wait. */
  hold(message: ReceivedText): number {
    const list = this.#held.get(message.from) ?? [];
    list.push(message);
    if (list.length > MAX_HELD_PER_PEER) list.splice(0, list.length - MAX_HELD_PER_PEER);
    this.#held.set(message.from, list);
    return list.length;
  }

  /** The messages waiting from `address`, oldest first, no longer held. */
  take(address: string): ReceivedText[] {
    const list = this.#held.get(address) ?? [];
    this.#held.delete(address);
    return list;
  }

  /** the peers with messages waiting, and how many each */
  waiting(): Array<{ from: string; name: string; count: number }> {
    return [...this.#held.values()].map((list) => ({ from: list[0]!.from, name: list[list.length - 1]!.name, count: list.length }));
  }
}

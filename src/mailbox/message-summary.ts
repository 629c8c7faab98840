// The `message-summary` event package (RFC 3842) over the user's Missed Conversations: a client
// subscribed to its own account learns how many missed conversations are unread (new) and read
// (old), as a message-waiting indication.
//
// RFC 3842 §5.2 (the body, application/simple-message-summary):
//   message-summary = msg-status-line CRLF
//                     [msg-account CRLF]
//                     [*(msg-summary-line CRLF)]
//                     [ *(extension-header CRLF) ]
//   msg-status-line  = "Messages-Waiting" HCOLON msg-status
//   msg-status = "yes" / "no"
//   msg-account = "Message-Account" HCOLON Account-URI
//   msg-summary-line = message-context-class HCOLON newmsgs SLASH oldmsgs
//                      [ LPAREN new-urgentmsgs SLASH old-urgentmsgs RPAREN ]
// with message-context-class from RFC 3458 §4.2: a missed conversation is a "text-message".

import type { Authorization, EventNotifications, EventPackage } from '../events/index.ts';
import type { SipContext } from '../router/context.ts';
import type { MissedSummary } from './missed.ts';

export const MESSAGE_SUMMARY_EVENT = 'message-summary';
export const MESSAGE_SUMMARY_TYPE = 'application/simple-message-summary';

/**
 * The RFC 3842 body for `account` (`sip:bob@parley.local`): Messages-Waiting is yes when a missed
 * conversation is unread; the text-message line counts the unread (new) and read (old) Missed
 * Conversations. Every line ends with CRLF, as in the ABNF above.
 */
export function buildMessageSummary(account: string, summary: MissedSummary): string {
  const unread = summary.unread;
  const read = Math.max(0, summary.total - summary.unread);
  return [`Messages-Waiting: ${unread > 0 ? 'yes' : 'no'}`, `Message-Account: ${account}`, `Text-Message: ${unread}/${read}`].map((line) => `${line}\r\n`).join('');
}

export interface MessageSummaryOptions {
  /** the counts of a user's mailbox, wherever it is (the embedded store or an external EWS server) */
  summary(address: string): Promise<MissedSummary>;
}

/**
 * The package (src/events). The resource is the subscriber's own account: RFC 3842 leaves the
 * authorization policy to the notifier, and Parley's is that only the account's owner learns of
 * its messages; another user gets 403.
 */
export class MessageSummaryPackage implements EventPackage {
  readonly name = MESSAGE_SUMMARY_EVENT;
  readonly contentType = MESSAGE_SUMMARY_TYPE;
  readonly #summary: (address: string) => Promise<MissedSummary>;
  /** the last counts read per account: shown again while an external mailbox cannot be reached */
  readonly #lastKnown = new Map<string, MissedSummary>();
  #events: EventNotifications | undefined;

  constructor(opts: MessageSummaryOptions) {
    this.#summary = opts.summary;
  }

  start(_ctx: SipContext, events: EventNotifications): void {
    this.#events = events;
  }

  authorize(_ctx: SipContext, watcher: string, resource: string): Authorization {
    if (watcher.toLowerCase() === resource) return 'ok';
    return { status: 403, warning: `${watcher} may not watch the messages of ${resource}: subscribe to your own account` };
  }

  async body(sub: { resource: string }): Promise<string> {
    let summary: MissedSummary;
    try {
      summary = await this.#summary(sub.resource);
      this.#lastKnown.set(sub.resource, summary);
    } catch (err) {
      const known = this.#lastKnown.get(sub.resource);
      if (known === undefined) throw err;
      summary = known;
    }
    return buildMessageSummary(`sip:${sub.resource}`, summary);
  }

  /** The user's Missed Conversations changed (delivered, read, unread, deleted): NOTIFY if the counts did. */
  mailboxChanged(address: string): void {
    this.#events?.changed(this.name, address);
  }

  close(): void {
    this.#lastKnown.clear();
    this.#events = undefined;
  }
}

// The chat session of `parley chat`: one signed-in user agent, the current conversation, the
// contact list's presence, the missed conversations; commands in, lines out. No terminal here:
// the screen (terminal.ts) reads lines and shows what `show` is given.
//
// Steps: connect → REGISTER (a refusal ends the program, exit 1) → watch provisioning (the EWS
// URL), the contact list (one RFC 4662 subscription) and the missed-conversation count (RFC 3842)
// → commands until /quit, Ctrl-C or Ctrl-D → unregister (which removes the presence publication) →
// close.

import { addressOfUri, ClientError, htmlToText, listResource, SipClient } from '../client/index.ts';
import type { IncomingMessage, MailboxReader, MissedConversation, NodeSipClientOptions, PresenceList, PresenceStateName } from '../client/index.ts';
import { fallbackEwsUrl } from './args.ts';
import type { ChatOptions } from './args.ts';
import type { ChatCommand } from './commands.ts';
import { clean, contactLines, HELP, incomingLines, missedItemLines, missedListLines, nameOf, outcomeText, outgoingLines, presenceLine, stateText } from './render.ts';
import type { Style } from './render.ts';
import { HeldMessages } from './unread.ts';
import type { ReceivedText } from './unread.ts';

export interface ChatScreen {
  /** shows lines above the prompt */
  show(lines: readonly string[]): void;
  /** the prompt changed (the current conversation) */
  setPrompt(prompt: string): void;
  style(): Style;
}

/** Why the session could not start: the reason for the person, exit 1. */
export class ChatStartError extends Error {}

/** Bodies that are not a person's text: typing (RFC 3994) and receipts (RFC 5438) are not shown. */
const SILENT_TYPES = new Set(['application/im-iscomposing+xml', 'message/imdn+xml']);
const MISSED_PAGE = 20;
/** how long sign-in waits for the contact list's first NOTIFY before showing what it has */
const FIRST_STATE_WAIT_MS = 3000;

export class ChatSession {
  readonly #options: ChatOptions;
  readonly #screen: ChatScreen;
  readonly #client: SipClient;
  readonly #domain: string;
  #contacts: PresenceList | null = null;
  #current: string | null = null;
  /** received messages of conversations not on screen: printed (and reported displayed) when opened */
  readonly #held = new HeldMessages();
  #missed: MissedConversation[] | null = null;
  #mailbox: MailboxReader | null = null;
  #unreadMissed = -1;
  #closing = false;
  #reconnecting = false;
  /** resolves when the connection is lost (not after quit) */
  readonly lost: Promise<string>;

  constructor(options: ChatOptions, password: string, screen: ChatScreen, clientOptions: Partial<NodeSipClientOptions> = {}) {
    this.#options = options;
    this.#screen = screen;
    this.#domain = options.address.slice(options.address.lastIndexOf('@') + 1);
    // a lost connection (a laptop's Wi-Fi, an SSH hop) is restored by the SDK: back-off, register, re-subscribe
    this.#client = new SipClient({ server: options.server, aor: `sip:${options.address}`, password, userAgent: 'Parley-chat/0.1', autoReconnect: true, ...clientOptions });
    this.lost = new Promise((resolve) => {
      this.#client.on('connection', (event) => {
        if (this.#closing) return;
        if (event.state === 'disconnected') resolve(event.error?.message ?? 'the connection closed');
        else if (event.state === 'reconnecting') this.#notice(`connection lost${event.error === undefined ? '' : ` (${event.error.message})`}; reconnecting in ${Math.ceil((event.delayMs ?? 0) / 1000)} s (attempt ${event.attempt ?? 1})`);
        else if (event.state === 'connected' && this.#reconnecting) this.#screen.show(['Reconnected.']);
        this.#reconnecting = event.state === 'reconnecting';
      });
    });
    this.#client.on('message', (m) => this.#onMessage(m));
    this.#client.on('message-summary', (s) => this.#onSummary(s.textMessages.new));
  }

  async start(): Promise<void> {
    try {
      await this.#client.connect();
    } catch (error) {
      throw new ChatStartError(`cannot connect to ${this.#options.server}: ${(error as Error).message}`);
    }
    try {
      await this.#client.register({ expires: 600 });
    } catch (error) {
      await this.#client.close();
      // 403 with the server's reason (wrong user name or password, locked out…) in the message
      if (error instanceof ClientError && (error.code === 'AUTH_FAILED' || error.status === 403)) {
        throw new ChatStartError(`sign-in refused for ${this.#options.address}: ${error.message.replace(/^REGISTER failed: /, '')}`);
      }
      throw new ChatStartError(`sign-in failed for ${this.#options.address}: ${(error as Error).message}`);
    }
    const style = this.#screen.style();
    this.#screen.show([`Signed in as ${this.#options.address} on ${this.#options.server}. /help lists the commands.`]);
    // The rest is best effort: chatting works without any of it.
    await this.#client.watchProvisioning().catch((error: unknown) => this.#notice(`no provisioning from the server (${(error as Error).message}); /missed uses ${this.#options.ewsUrl ?? fallbackEwsUrl(this.#options.server)}`));
    try {
      const contacts = await this.#client.watchPresenceList(`sip:${listResource(this.#options.address)}`);
      this.#contacts = contacts;
      // the first NOTIFY may follow the SUBSCRIBE's 200: wait for it (briefly) to show the whole list at once
      if (!contacts.known) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, FIRST_STATE_WAIT_MS);
          contacts.subscription.once('notify', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      contacts.on('change', (info) => this.#screen.show(presenceLine(info, new Date(), this.#screen.style())));
      contacts.on('removed', ({ address }) => this.#screen.show([`${address} is no longer in your contacts.`]));
      contacts.on('terminated', (t) => {
        if (!this.#closing && !t.retrying) this.#notice(`contact presence is no longer updated (${t.reason ?? 'ended'})`);
      });
      this.#screen.show(contactLines(contacts.snapshot().values(), style));
    } catch (error) {
      this.#notice(`cannot watch your contacts' presence: ${(error as Error).message}`);
    }
    await this.#client.watchMessageSummary().catch((error: unknown) => this.#notice(`missed conversations are not counted: ${(error as Error).message}`));
    this.#setPrompt();
  }

  /** Runs one command; resolves false when the session should end. */
  async run(command: ChatCommand): Promise<boolean> {
    try {
      switch (command.kind) {
        case 'none':
          return true;
        case 'error':
          this.#notice(command.message);
          return true;
        case 'help':
          this.#screen.show(HELP);
          return true;
        case 'quit':
          return false;
        case 'contacts':
          this.#screen.show(this.#contacts === null ? ['Contact presence is not available.'] : contactLines(this.#contacts.snapshot().values(), this.#screen.style()));
          return true;
        case 'to': {
          const to = this.#addressOf(command.to);
          this.#current = to;
          this.#setPrompt();
          this.#screen.show([`Now talking with ${this.#nameFor(to)}.`]);
          this.#showHeld(to);
          return true;
        }
        case 'say':
          if (this.#current === null) {
            this.#notice('no current conversation: start one with /msg USER text');
            return true;
          }
          await this.#send(this.#current, command.text);
          return true;
        case 'msg': {
          const to = this.#addressOf(command.to);
          if (to !== this.#current) {
            this.#current = to;
            this.#setPrompt();
            this.#showHeld(to);
          }
          await this.#send(to, command.text);
          return true;
        }
        case 'presence':
          await this.#presence(command.state, command.note);
          return true;
        case 'missed':
          await (command.index === undefined ? this.#listMissed() : this.#openMissed(command.index));
          return true;
      }
    } catch (error) {
      this.#notice((error as Error).message);
      return true;
    }
  }

  /** Signs out: unregister (removing the presence publication), unsubscribe, close. Never throws. */
  async stop(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#client.connected) {
      await this.#contacts?.close().catch(() => undefined);
      if (this.#client.registered) await this.#client.unregister().catch(() => undefined);
    }
    await this.#client.close().catch(() => undefined);
  }

  async #send(to: string, text: string): Promise<void> {
    const style = this.#screen.style();
    this.#screen.show(outgoingLines(this.#nameFor(to), text, new Date(), style));
    // asks for a display notification (RFC 5438): the server makes a message never displayed a missed conversation
    const result = await this.#client.sendMessage(`sip:${to}`, text, { requestDisplayNotification: true });
    this.#screen.show([`        ${outcomeText(result)}`]);
  }

  async #presence(state: PresenceStateName | undefined, note: string | undefined): Promise<void> {
    const style = this.#screen.style();
    if (state === undefined) {
      const mine = await this.#client.watchPresence(this.#options.address);
      const info = mine.snapshot().get(this.#options.address);
      await mine.close();
      this.#screen.show([info === undefined ? 'Your presence is not known yet.' : `Your presence: ${stateText(info.state, style)}${info.note === undefined ? '' : ` (${clean(info.note)})`}`]);
      return;
    }
    await this.#client.publishPresence(note === undefined ? { state } : { state, note });
    this.#screen.show([`Your presence is now ${stateText(state, style)}${note === undefined ? '' : ` (${clean(note)})`}.`]);
  }

  async #listMissed(): Promise<void> {
    this.#missed = await this.#withMailbox((m) => m.listMissedConversations({ max: MISSED_PAGE }));
    this.#screen.show(missedListLines(this.#missed, this.#screen.style()));
  }

  async #openMissed(index: number): Promise<void> {
    if (this.#missed === null) this.#missed = await this.#withMailbox((m) => m.listMissedConversations({ max: MISSED_PAGE }));
    const entry = this.#missed[index - 1];
    if (entry === undefined) {
      this.#notice(this.#missed.length === 0 ? 'there are no missed conversations' : `there is no missed conversation ${index}; /missed lists 1 to ${this.#missed.length}`);
      return;
    }
    const item = await this.#withMailbox((m) => m.getItem(entry.itemId));
    this.#screen.show(missedItemLines(item, this.#screen.style()));
    if (!item.isRead) {
      // marked read in the mailbox itself, so every device (and the count) agrees
      const marked = await this.#withMailbox((m) => m.markRead(item.itemId, item.changeKey));
      this.#missed[index - 1] = { ...entry, isRead: true, itemId: marked.itemId, changeKey: marked.changeKey };
    }
    const from = item.from.address.toLowerCase();
    if (from.includes('@') && from !== this.#options.address) {
      this.#current = from;
      this.#setPrompt();
      this.#screen.show([`Reply to ${this.#nameFor(from)} by typing; /to USER talks with someone else.`]);
      this.#showHeld(from);
    }
  }

  /**
   * Runs an EWS call with the mailbox reader: the URL given, else the one provisioning announced,
   * else the server's HTTP port; a URL that cannot be reached is replaced by the next.
   */
  async #withMailbox<T>(call: (m: MailboxReader) => Promise<T>): Promise<T> {
    if (this.#mailbox !== null) return call(this.#mailbox);
    const urls = [this.#options.ewsUrl ?? this.#client.provisioning?.ewsUrl, fallbackEwsUrl(this.#options.server)].filter((u): u is string => u !== undefined);
    let last: unknown;
    for (const url of [...new Set(urls)]) {
      const reader = this.#client.mailbox(url);
      try {
        const value = await call(reader);
        this.#mailbox = reader;
        return value;
      } catch (error) {
        last = error;
        if (!(error instanceof ClientError && error.code === 'HTTP_FAILED' && error.status === undefined)) break;
      }
    }
    throw new Error(`cannot read your mailbox: ${(last as Error).message}`);
  }

  #onMessage(message: IncomingMessage): void {
    // the SDK delivers typing and receipts as their own events; a stray one is still not a text
    const type = (message.textContentType.split(';')[0] ?? '').trim().toLowerCase();
    if (SILENT_TYPES.has(type)) return;
    const from = message.assertedIdentity ?? { uri: message.from, displayName: message.fromDisplayName };
    const address = addressOfUri(from.uri).toLowerCase();
    const text = type === '' || type.startsWith('text/plain') ? message.text : type === 'text/html' ? htmlToText(message.text) : `[a message of type ${type} that this client cannot show]`;
    const received: ReceivedText = { from: address, name: nameOf(address, from.displayName ?? this.#contacts?.snapshot().get(address)?.displayName), text, at: new Date() };
    if (message.displayNotificationRequested && message.imdnMessageId !== undefined) received.reportDisplayedAs = message.imdnMessageId;
    if (this.#current === null) {
      this.#current = address;
      this.#setPrompt();
    }
    if (address === this.#current) {
      this.#print([received]);
      return;
    }
    // another conversation: announced, not shown (and so not reported displayed) until it is opened
    const waiting = this.#held.hold(received);
    this.#screen.show([`New message from ${clean(received.name)} (${waiting} waiting): /to ${this.#shortName(address)} shows ${waiting === 1 ? 'it' : 'them'}.`]);
  }

  /** Prints the messages held for `address`, now that its conversation is on screen. */
  #showHeld(address: string): void {
    const held = this.#held.take(address);
    if (held.length > 0) this.#print(held);
  }

  /** Prints received messages and reports each one that asked for it displayed (RFC 5438 §7.2.1.1). */
  #print(messages: readonly ReceivedText[]): void {
    const style = this.#screen.style();
    this.#screen.show(messages.flatMap((m) => incomingLines(m.name, m.text, m.at, style)));
    for (const m of messages) {
      if (m.reportDisplayedAs === undefined) continue;
      // best effort: a lost report only means the server may file the message as missed
      this.#client.sendDisplayed(`sip:${m.from}`, m.reportDisplayedAs).catch((error: unknown) => {
        if (!this.#closing) this.#notice(`could not tell ${m.name} the message was read: ${(error as Error).message}`);
      });
    }
  }

  #onSummary(unread: number): void {
    if (unread !== this.#unreadMissed && (unread > 0 || this.#unreadMissed > 0)) {
      this.#screen.show([unread === 0 ? 'No unread missed conversations.' : `You have ${unread} unread missed conversation${unread === 1 ? '' : 's'}: /missed lists them.`]);
    }
    if (unread !== this.#unreadMissed) this.#missed = null;
    this.#unreadMissed = unread;
  }

  /** `bob` → `bob@<our domain>`; `sip:bob@x` → `bob@x`. */
  #addressOf(user: string): string {
    const bare = user.replace(/^sips?:/i, '').toLowerCase();
    return bare.includes('@') ? bare : `${bare}@${this.#domain}`;
  }

  #nameFor(address: string): string {
    return nameOf(address, this.#contacts?.snapshot().get(address)?.displayName);
  }

  /** `bob@<our domain>` → `bob`; others as they are */
  #shortName(address: string): string {
    return address.endsWith(`@${this.#domain}`) ? address.slice(0, -this.#domain.length - 1) : address;
  }

  #setPrompt(): void {
    this.#screen.setPrompt(this.#current === null ? '> ' : `${this.#shortName(this.#current)}> `);
  }

  #notice(text: string): void {
    this.#screen.show([`! ${clean(text)}`]);
  }
}

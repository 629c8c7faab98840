// The signed-in user's side of the page: the HTTP session, the SIP user agent over the server's
// WebSocket (registered, publishing presence, watching the contact list and the missed-
// conversation summary), and what arrives on it. The views read the signals; they call the
// methods. The password lives only in the user agent's options, for SIP digest, while the page lives.

import { batch, signal } from '@preact/signals';
import { BrowserSipClient } from '../../client/browser.ts';
import type { ConnectionEvent, DisplayedEvent, IncomingMessage, PresenceInfo, PresenceList, TypingEvent } from '../../client/browser.ts';
import { api, webSocketServers, type ContactEntry, type SessionInfo } from './api.ts';
import { Conversations, newLocalId, type ChatMessage } from './conversations.ts';
import { autoState } from './idle.ts';
import { outcomeOf } from './outcome.ts';
import type { PresenceStateName } from './presence.ts';
import { sanitizeHtml } from '../../offline/html.ts';

export type Phase = 'loading' | 'signed-out' | 'password-again' | 'connecting' | 'signed-in';
export type ConnectionState = 'connected' | 'reconnecting' | 'disconnected';

export interface Contact {
  address: string;
  displayName: string;
  state: string;
  note: string;
}

/** How long a typing indicator we send stays active without a key press (RFC 3994 idle). */
const TYPING_IDLE_MS = 5_000;
/** We refresh "active" before the 60 s refresh interval we announced ends. */
const TYPING_REFRESH_MS = 45_000;

export interface Notifier {
  /** a message arrived while the page is not what the user looks at */
  message(from: string, name: string, text: string): void;
}

export class ParleyClient {
  readonly phase = signal<Phase>('loading');
  readonly session = signal<SessionInfo | null>(null);
  readonly error = signal<string>('');
  readonly connection = signal<{ state: ConnectionState; attempt?: number }>({ state: 'disconnected' });
  readonly contacts = signal<ReadonlyMap<string, Contact>>(new Map());
  /** what the user chose, and what is shown (Inactive while idle) */
  readonly chosenState = signal<PresenceStateName>('Available');
  readonly shownState = signal<PresenceStateName | 'Inactive'>('Available');
  readonly note = signal('');
  readonly unreadMissed = signal(0);
  readonly conversations = new Conversations();
  /** whether the user looks at the page (focused and visible), set by the page */
  readonly looking = signal(true);
  /**
   * Whether "Save conversation" is offered: the user's effective DisableSavingIM (CsClientPolicy)
   * from the provisioning subscription, so an administrator's change reaches an open page by NOTIFY.
   * Not offered until the settings are known; offered when the server sends none (an older one).
   */
  readonly savingAllowed = signal(false);
  notifier: Notifier | null = null;

  #ua: BrowserSipClient | null = null;
  #presenceList: PresenceList | null = null;
  #published: PresenceStateName | null = null;
  #publishedNote = '';
  #typingTimers = new Map<string, { idle: ReturnType<typeof setTimeout>; lastActive: number }>();
  #presence = new Map<string, PresenceInfo>();
  #members: ContactEntry[] = [];

  /** On page load: a live session asks for the password again (the browser never kept it). */
  async start(): Promise<void> {
    try {
      const session = await api.currentSession();
      batch(() => {
        this.session.value = session ?? null;
        this.phase.value = session ? 'password-again' : 'signed-out';
      });
    } catch (error) {
      batch(() => {
        this.error.value = messageOf(error);
        this.phase.value = 'signed-out';
      });
    }
  }

  async signIn(user: string, password: string): Promise<void> {
    this.error.value = '';
    this.phase.value = 'connecting';
    let session: SessionInfo;
    try {
      // a live session for this user (a reload, a second tab) is used as it is: the SIP digest
      // checks the password; a new sign-in would leave the old session behind until it expires
      const live = this.session.value;
      const wanted = user.trim().toLowerCase();
      session = live !== null && (wanted === live.address.toLowerCase() || wanted === live.authUser.toLowerCase()) ? live : await api.signIn(user.trim(), password);
    } catch (error) {
      batch(() => {
        this.error.value = messageOf(error);
        this.phase.value = this.session.value ? 'password-again' : 'signed-out';
      });
      throw error;
    }
    this.session.value = session;
    const ua = new BrowserSipClient({
      server: webSocketServers(session),
      aor: session.sipUri,
      username: session.authUser,
      password,
      displayName: session.displayName,
      userAgent: 'Parley-Web/0.1',
      autoReconnect: true,
      requestTimeoutMs: 15_000,
    });
    try {
      await ua.connect();
      const registered = await ua.register({ expires: 600 });
      if (registered.status < 200 || registered.status >= 300) throw new Error(registeredText(registered));
    } catch (error) {
      await ua.close().catch(() => {});
      batch(() => {
        this.error.value = messageOf(error);
        this.phase.value = 'password-again';
      });
      throw error;
    }
    this.#ua = ua;
    this.#listen(ua);
    batch(() => {
      this.connection.value = { state: 'connected' };
      this.phase.value = 'signed-in';
    });
    await Promise.all([this.#publish(), this.#watch(ua, session), this.#watchSettings(ua), this.refreshContacts()]).catch((error: unknown) => {
      this.error.value = messageOf(error);
    });
  }

  /** Ends the SIP registration (and the publication with it) and the HTTP session. */
  async signOut(): Promise<void> {
    const ua = this.#ua;
    this.#ua = null;
    if (ua !== null) {
      await this.#presenceList?.close().catch(() => {});
      if (ua.registered) await ua.unregister().catch(() => {});
      await ua.close().catch(() => {});
    }
    await api.signOut().catch(() => {});
    for (const t of this.#typingTimers.values()) clearTimeout(t.idle);
    this.#typingTimers.clear();
    batch(() => {
      this.#presenceList = null;
      this.#published = null;
      this.#presence.clear();
      this.#members = [];
      this.contacts.value = new Map();
      this.conversations.clear();
      this.unreadMissed.value = 0;
      this.savingAllowed.value = false;
      this.session.value = null;
      this.connection.value = { state: 'disconnected' };
      this.phase.value = 'signed-out';
    });
  }

  /** Sends `text` now, or when the connection is back; the message's status tells what happened. */
  send(address: string, text: string): void {
    if (text.trim() === '') return;
    this.#typingDone(address, false);
    const message: ChatMessage = { id: newLocalId(), direction: 'out', text, at: Date.now(), status: 'queued' };
    this.conversations.add(address, message, false);
    if (this.connection.value.state === 'connected') void this.#deliver(address, message);
    else if (this.connection.value.state === 'disconnected') this.conversations.update(address, message.id, { status: 'failed', detail: 'not connected' });
  }

  retry(address: string, id: string): void {
    const message = this.conversations.get(address)?.messages.value.find((m) => m.id === id);
    if (message === undefined) return;
    this.conversations.update(address, id, { status: 'queued', detail: undefined });
    if (this.connection.value.state === 'connected') void this.#deliver(address, { ...message, status: 'queued' });
  }

  /** A key was pressed in the message box of `address` (text: its content now). */
  typing(address: string, text: string): void {
    const ua = this.#ua;
    if (ua === null || this.connection.value.state !== 'connected') return;
    if (text.trim() === '') {
      this.#typingDone(address, true);
      return;
    }
    const now = Date.now();
    const timer = this.#typingTimers.get(address);
    if (timer === undefined || now - timer.lastActive > TYPING_REFRESH_MS) void ua.sendTyping(sipUri(address), true).catch(() => {});
    if (timer !== undefined) clearTimeout(timer.idle);
    this.#typingTimers.set(address, {
      lastActive: timer === undefined || now - timer.lastActive > TYPING_REFRESH_MS ? now : timer.lastActive,
      idle: setTimeout(() => this.#typingDone(address, true), TYPING_IDLE_MS),
    });
  }

  /** Tells the sender their message is on screen (RFC 5438 display notification), once. */
  displayed(address: string, id: string): void {
    const message = this.conversations.get(address)?.messages.value.find((m) => m.id === id);
    if (message?.displayPending !== true || message.imdnMessageId === undefined || this.#ua === null) return;
    this.conversations.update(address, id, { displayPending: false });
    void this.#ua.sendDisplayed(sipUri(address), message.imdnMessageId).catch(() => {
      this.conversations.update(address, id, { displayPending: true });
    });
  }

  /** Marks the conversation read when the user looks at it. */
  read(address: string): void {
    const c = this.conversations.get(address);
    if (c !== undefined && c.unread.value > 0) c.unread.value = 0;
  }

  async setState(state: PresenceStateName): Promise<void> {
    this.chosenState.value = state;
    this.shownState.value = state;
    await this.#publish();
  }

  async setNote(note: string): Promise<void> {
    this.note.value = note.trim();
    await this.#publish();
  }

  /** The idle time changed (the page checks it every few seconds): Inactive, Away, or back. */
  idle(idleMs: number): void {
    if (this.phase.value !== 'signed-in') return;
    const auto = autoState(this.chosenState.value, idleMs);
    this.shownState.value = auto.label;
    if (auto.published !== this.#published) void this.#publish();
  }

  async addContact(address: string): Promise<void> {
    await api.addContact(address);
    await this.refreshContacts();
  }

  async removeContact(address: string): Promise<void> {
    await api.removeContact(address);
    await this.refreshContacts();
  }

  /** The list's members from the server (who is on it), joined with the presence the subscription gave. */
  async refreshContacts(): Promise<void> {
    const { contacts } = await api.contacts();
    this.#members = contacts;
    this.#showContacts();
  }

  async #deliver(address: string, message: ChatMessage): Promise<void> {
    const ua = this.#ua;
    if (ua === null) return;
    this.conversations.update(address, message.id, { status: 'sending' });
    try {
      const response = await ua.sendMessage(sipUri(address), message.text, { requestDisplayNotification: true });
      const outcome = outcomeOf(response);
      this.conversations.update(address, message.id, { status: outcome.status, detail: outcome.detail, imdnMessageId: response.imdnMessageId });
    } catch (error) {
      // lost with the connection: sent again once it is back, unless it is gone for good
      const state = this.connection.value.state;
      this.conversations.update(address, message.id, state === 'reconnecting' ? { status: 'queued' } : { status: 'failed', detail: messageOf(error) });
    }
  }

  #listen(ua: BrowserSipClient): void {
    ua.on('message', (m) => this.#received(m));
    ua.on('typing', (e: TypingEvent) => {
      // only in a conversation that exists: typing alone does not start one
      const c = this.conversations.get(e.from);
      if (c !== undefined) c.typing.value = e.active;
    });
    ua.on('displayed', (e: DisplayedEvent) => this.conversations.seen(e.from, e.imdnMessageId));
    ua.on('message-summary', (summary) => {
      this.unreadMissed.value = summary.textMessages.new;
    });
    ua.on('connection', (e: ConnectionEvent) => {
      this.connection.value = { state: e.state, ...(e.attempt === undefined ? {} : { attempt: e.attempt }) };
      if (e.state === 'connected') {
        // re-registered and re-subscribed by the SDK; what waited goes out now, in order
        for (const { address, message } of this.conversations.queued()) void this.#deliver(address, message);
        void this.#publish(true);
      }
      if (e.state === 'disconnected') {
        for (const { address, message } of this.conversations.queued()) this.conversations.update(address, message.id, { status: 'failed', detail: 'the connection to the server was lost' });
      }
    });
  }

  #received(m: IncomingMessage): void {
    const from = addressOf(m.assertedIdentity?.uri ?? m.from);
    const name = m.assertedIdentity?.displayName ?? this.#nameOf(from);
    const conversation = this.conversations.open(from, name);
    const onScreen = this.conversations.active.value === from && this.looking.value;
    const message: ChatMessage = {
      id: newLocalId(),
      direction: 'in',
      text: m.text,
      ...(isHtml(m.textContentType) ? { html: true } : {}),
      at: Date.now(),
      ...(m.imdnMessageId !== undefined ? { imdnMessageId: m.imdnMessageId, displayPending: m.displayNotificationRequested } : {}),
    };
    this.conversations.add(from, message, !onScreen);
    if (!onScreen) this.notifier?.message(from, conversation.displayName.value || from, message.html === true ? htmlText(m.text) : m.text);
  }

  async #watch(ua: BrowserSipClient, session: SessionInfo): Promise<void> {
    const list = await ua.watchPresenceList(session.contactListUri);
    this.#presenceList = list;
    for (const [address, info] of list.snapshot()) this.#presence.set(address, info);
    list.on('change', (info) => {
      this.#presence.set(info.address, info);
      this.#showContacts();
    });
    list.on('removed', ({ address }) => {
      this.#presence.delete(address);
      this.#showContacts();
    });
    this.#showContacts();
    await ua.watchMessageSummary();
  }

  /** The user's settings (RFC 6665 vnd-parley-provisioning): each NOTIFY, an administrator's change included. */
  async #watchSettings(ua: BrowserSipClient): Promise<void> {
    ua.on('provisioning', (settings) => {
      this.savingAllowed.value = !settings.DisableSavingIM;
    });
    try {
      await ua.watchProvisioning();
    } catch {
      // no provisioning from this server: nothing forbids saving
      this.savingAllowed.value = true;
    }
  }

  #showContacts(): void {
    const contacts = new Map<string, Contact>();
    for (const member of this.#members) {
      const info = this.#presence.get(member.contact);
      contacts.set(member.contact, {
        address: member.contact,
        displayName: member.displayName || info?.displayName || member.contact,
        state: info?.state ?? 'Offline',
        note: info?.note ?? '',
      });
    }
    this.contacts.value = contacts;
  }

  async #publish(force = false): Promise<void> {
    const ua = this.#ua;
    if (ua === null || this.connection.value.state !== 'connected') return;
    const state = this.shownState.value === 'Inactive' ? 'Away' : this.shownState.value;
    if (!force && state === this.#published && this.note.value === this.#publishedNote) return;
    this.#published = state;
    this.#publishedNote = this.note.value;
    try {
      await ua.publishPresence({ state, ...(this.note.value ? { note: this.note.value } : {}) });
    } catch (error) {
      this.#published = null;
      this.error.value = messageOf(error);
    }
  }

  #typingDone(address: string, tell: boolean): void {
    const timer = this.#typingTimers.get(address);
    if (timer === undefined) return;
    clearTimeout(timer.idle);
    this.#typingTimers.delete(address);
    if (tell && this.#ua !== null && this.connection.value.state === 'connected') void this.#ua.sendTyping(sipUri(address), false).catch(() => {});
  }

  #nameOf(address: string): string {
    return this.contacts.value.get(address)?.displayName ?? this.conversations.get(address)?.displayName.value ?? '';
  }
}

/** `sip:bob@parley.local;transport=ws` or `<sip:…>` → `bob@parley.local` */
export function addressOf(uri: string): string {
  return uri.trim().replace(/^<|>$/g, '').replace(/^sips?:/i, '').replace(/[;?>].*$/, '');
}

/** `bob@parley.local` → `sip:bob@parley.local` (the SDK's requests take URIs) */
export function sipUri(address: string): string {
  return `sip:${address}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function registeredText(r: { status: number; reason?: string; warning?: string }): string {
  return r.warning ?? `${r.reason ?? 'registration refused'} (${r.status})`;
}

/** text/html, whatever its parameters (the SDK gives the CPIM-unwrapped type) */
function isHtml(contentType: string | undefined): boolean {
  return /^\s*text\/html\s*(;|$)/i.test(contentType ?? '');
}

/** What a notification (or a saved conversation) shows of an HTML message: its text, after the sanitiser, never markup. */
export function htmlText(html: string): string {
  return new DOMParser().parseFromString(sanitizeHtml(html), 'text/html').body.textContent ?? '';
}

// The signed-in screen: a top bar (own status and note, missed conversations, notifications, sign
// out), the list pane (contacts with presence, conversations) and the main pane (a conversation or
// the mailbox). At phone width one pane shows at a time.

import { useSignal } from '@preact/signals';
import { useApp } from '../context.ts';
import { SETTABLE_STATES, type PresenceStateName } from '../presence.ts';
import { ConversationView } from './Conversation.tsx';
import { MissedPanel } from './Missed.tsx';
import { PresenceDot, PresenceText, stateLabel } from './Presence.tsx';
import { SearchDialog } from './Search.tsx';

export function Shell() {
  const { t, client, ui } = useApp();
  const main = ui.main.value;
  const conn = client.connection.value;
  return (
    <div class={`shell pane-${ui.pane.value}`}>
      <a class="skip" href="#main">
        {t('skip')}
      </a>
      <TopBar />
      {conn.state !== 'connected' && (
        <div class="banner" role="status">
          {conn.state === 'reconnecting' ? t('connection.reconnecting', { attempt: conn.attempt ?? 1 }) : t('connection.disconnected')}
        </div>
      )}
      {client.error.value && (
        <div class="banner error" role="alert">
          {t('error.generic', { detail: client.error.value })}
          <button type="button" class="link" onClick={() => (client.error.value = '')}>
            ×
          </button>
        </div>
      )}
      <div class="panes">
        <nav class="list-pane" aria-label={t('nav.contacts')}>
          <button type="button" class="search-button" onClick={() => (ui.searchOpen.value = true)} aria-keyshortcuts="Control+K">
            {t('search.button')}
          </button>
          <ContactList />
          <ConversationList />
        </nav>
        <main class="main-pane" id="main" aria-label={t('nav.main')}>
          {main.kind === 'missed' ? <MissedPanel /> : <ConversationView />}
        </main>
      </div>
      {ui.searchOpen.value && <SearchDialog />}
    </div>
  );
}

function TopBar() {
  const { t, client, ui } = useApp();
  const session = client.session.value;
  const note = useSignal(client.note.value);
  const missed = client.unreadMissed.value;
  const perm = ui.notifications.value;
  const askNotifications = async () => {
    if (typeof Notification === 'undefined') return;
    ui.notifications.value = await Notification.requestPermission();
  };
  return (
    <header class="topbar">
      <div class="me">
        <PresenceDot state={client.shownState.value} />
        <div class="me-text">
          <span class="me-name">{session?.displayName || session?.address}</span>
          <span class="me-address">{session?.address}</span>
        </div>
        <label class="visually-hidden" for="me-state">
          {t('me.state')}
        </label>
        <select
          id="me-state"
          value={client.chosenState.value}
          onChange={(e) => void client.setState(e.currentTarget.value as PresenceStateName)}
          title={stateLabel(t, client.shownState.value)}
        >
          {SETTABLE_STATES.map((s) => (
            <option key={s} value={s}>
              {stateLabel(t, s)}
            </option>
          ))}
        </select>
        {client.shownState.value === 'Inactive' && <span class="inactive">{t('presence.Inactive')}</span>}
        <form
          class="note-form"
          onSubmit={(e) => {
            e.preventDefault();
            void client.setNote(note.value);
          }}
        >
          <label class="visually-hidden" for="me-note">
            {t('me.note')}
          </label>
          <input id="me-note" placeholder={t('me.notePlaceholder')} value={note.value} onInput={(e) => (note.value = e.currentTarget.value)} maxLength={200} />
          <button type="submit" class="secondary">
            {t('me.saveNote')}
          </button>
        </form>
      </div>
      <div class="actions">
        <button
          type="button"
          class={`missed-button ${ui.main.value.kind === 'missed' ? 'current' : ''}`}
          onClick={() => {
            ui.main.value = { kind: 'missed' };
            ui.pane.value = 'main';
          }}
          aria-label={missed > 0 ? `${t('missed.title')}: ${t.plural('missed.badge', missed)}` : t('missed.title')}
        >
          {t('missed.title')}
          {missed > 0 && (
            <span class="badge" data-testid="missed-badge" aria-hidden="true">
              {missed}
            </span>
          )}
        </button>
        {perm === 'default' && (
          <button type="button" class="secondary" onClick={() => void askNotifications()}>
            {t('notify.enable')}
          </button>
        )}
        {perm === 'denied' && <span class="muted small">{t('notify.denied')}</span>}
        <button type="button" class="secondary" onClick={() => void client.signOut()}>
          {t('signout')}
        </button>
      </div>
    </header>
  );
}

function ContactList() {
  const { t, client, ui } = useApp();
  const contacts = [...client.contacts.value.values()].sort((a, b) => a.displayName.localeCompare(b.displayName));
  const open = (address: string, name: string) => {
    client.conversations.open(address, name);
    client.conversations.active.value = address;
    ui.main.value = { kind: 'chat' };
    ui.pane.value = 'main';
  };
  return (
    <section class="contacts" aria-labelledby="contacts-title">
      <h2 id="contacts-title">{t('contacts.title')}</h2>
      {contacts.length === 0 && <p class="muted small">{t('contacts.empty')}</p>}
      <ul>
        {contacts.map((c) => (
          <li key={c.address} class="contact" data-address={c.address}>
            <button type="button" class="contact-open" onClick={() => open(c.address, c.displayName)}>
              <span class="contact-name">{c.displayName}</span>
              <PresenceText state={c.state} note={c.note} />
            </button>
            <button type="button" class="icon remove" onClick={() => void client.removeContact(c.address).catch((e: Error) => (client.error.value = e.message))} aria-label={t('contacts.remove', { name: c.displayName })} title={t('contacts.remove', { name: c.displayName })}>
              ×
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

function ConversationList() {
  const { t, client, ui } = useApp();
  const list = client.conversations.list.value;
  if (list.length === 0) return null;
  return (
    <section class="chats" aria-labelledby="chats-title">
      <h2 id="chats-title">{t('chats.title')}</h2>
      <ul>
        {list.map((c) => {
          const unread = c.unread.value;
          const active = client.conversations.active.value === c.address && ui.main.value.kind === 'chat';
          return (
            <li key={c.address}>
              <button
                type="button"
                class={`chat-item ${active ? 'current' : ''}`}
                aria-current={active ? 'true' : undefined}
                data-address={c.address}
                onClick={() => {
                  client.conversations.active.value = c.address;
                  ui.main.value = { kind: 'chat' };
                  ui.pane.value = 'main';
                }}
              >
                <span class="contact-name">{c.displayName.value || c.address}</span>
                {unread > 0 && (
                  <span class="badge" aria-label={t.plural('chats.unread', unread)}>
                    {unread}
                  </span>
                )}
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

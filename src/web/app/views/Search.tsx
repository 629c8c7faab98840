// Directory search (Ctrl+K): a modal <dialog> (the browser keeps the focus in it, Escape closes
// it), results paged by the server; each person can be chatted with or added to the contacts. An
// address of another organisation typed in full (`dave@partner.example`) is offered too: with
// federation, partners' users may be chatted with and be contacts (the server says when not).

import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import { api, type DirectoryUser } from '../api.ts';
import { useApp } from '../context.ts';

const DEBOUNCE_MS = 250;

/** `user@domain.tld` typed in full, lower case; undefined for anything else. */
function fullAddress(text: string): string | undefined {
  const address = text.trim().replace(/^sips?:/i, '').toLowerCase();
  return /^[^@\s<>";]+@[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(address) ? address : undefined;
}

export function SearchDialog() {
  const { t, client, ui } = useApp();
  const dialog = useRef<HTMLDialogElement>(null);
  const q = useSignal('');
  const users = useSignal<DirectoryUser[]>([]);
  const total = useSignal(0);
  const page = useSignal(1);
  const error = useSignal('');

  useEffect(() => {
    const d = dialog.current;
    if (d !== null && !d.open) d.showModal();
  }, []);

  useEffect(() => {
    const query = q.value;
    const timer = setTimeout(() => {
      api.directory(query, 1).then(
        (result) => {
          users.value = result.users;
          total.value = result.total;
          page.value = 1;
          error.value = '';
        },
        (e: Error) => (error.value = e.message),
      );
    }, DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [q.value]);

  const more = async () => {
    const result = await api.directory(q.value, page.value + 1).catch((e: Error) => {
      error.value = e.message;
      return undefined;
    });
    if (result === undefined) return;
    users.value = [...users.value, ...result.users];
    page.value = result.page;
  };
  const close = () => {
    dialog.current?.close();
    ui.searchOpen.value = false;
  };
  const chat = (u: DirectoryUser) => {
    client.conversations.open(u.address, u.displayName);
    client.conversations.active.value = u.address;
    ui.main.value = { kind: 'chat' };
    ui.pane.value = 'main';
    close();
  };
  const own = client.session.value?.address;
  // a partner's user: typed in full, of another domain than ours
  const typed = fullAddress(q.value);
  const partner: DirectoryUser | undefined =
    typed !== undefined && !typed.endsWith(`@${client.session.value?.domain ?? ''}`) && !users.value.some((u) => u.address === typed) ? { address: typed, sipUri: `sip:${typed}`, displayName: '' } : undefined;
  const shown = partner === undefined ? users.value : [...users.value, partner];

  return (
    <dialog ref={dialog} class="search-dialog" aria-labelledby="search-title" onClose={() => (ui.searchOpen.value = false)}
      onKeyDown={(e) => {
        // Escape closes at once, also from the search field (where the browser would only clear it)
        if (e.key === 'Escape') {
          e.preventDefault();
          close();
        }
      }}
    >
      <header>
        <h2 id="search-title">{t('search.title')}</h2>
        <button type="button" class="icon" onClick={close} aria-label={t('search.close')}>
          ×
        </button>
      </header>
      <label for="search-input">{t('search.label')}</label>
      <input id="search-input" type="search" value={q.value} onInput={(e) => (q.value = e.currentTarget.value)} autofocus autocomplete="off" />
      {error.value && (
        <p class="error" role="alert">
          {error.value}
        </p>
      )}
      <ul class="results" aria-live="polite">
        {shown.map((u) => {
          const inContacts = client.contacts.value.has(u.address);
          return (
            <li key={u.address} class="result" data-address={u.address}>
              <div>
                <span class="contact-name">{u.displayName || u.address}</span>
                <span class="me-address">{u === partner ? t('search.partner') : u.address}</span>
              </div>
              <div class="result-actions">
                {u.address !== own && (
                  <button type="button" class="secondary" onClick={() => chat(u)}>
                    {t('search.chat')}
                  </button>
                )}
                {u.address !== own &&
                  (inContacts ? (
                    <span class="muted small">{t('contacts.added')}</span>
                  ) : (
                    <button type="button" class="primary" onClick={() => void client.addContact(u.address).catch((e: Error) => (error.value = e.message))}>
                      {t('contacts.add')}
                    </button>
                  ))}
              </div>
            </li>
          );
        })}
      </ul>
      {shown.length === 0 && q.value !== '' && !error.value && <p class="muted">{t('search.none', { q: q.value })}</p>}
      {users.value.length < total.value && (
        <button type="button" class="secondary" onClick={() => void more()}>
          {t('search.more')}
        </button>
      )}
    </dialog>
  );
}

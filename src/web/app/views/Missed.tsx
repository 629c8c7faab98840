// Missed Conversations and Conversation History, read from the user's mailbox through
// /api/conversations: newest first, searched and paged on the server. Opening an unread item marks
// it read on the server (so every device's badge drops: the message-summary NOTIFY follows);
// "Reply" opens the chat with that person. The transcript's HTML is shown only after the same
// allow-list sanitiser the transcripts are written with (src/offline/html.ts: allowed elements,
// no attributes, all text escaped), run here again on what the server sent.

import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { sanitizeHtml } from '../../../offline/html.ts';
import { api, ApiError, type ConversationDetail, type ConversationKind, type ConversationPage } from '../api.ts';
import { useApp } from '../context.ts';
import { formatTime } from '../time.ts';

const KINDS: ReadonlyArray<{ kind: ConversationKind; key: 'missed.title' | 'missed.history' | 'missed.all' }> = [
  { kind: 'missed', key: 'missed.title' },
  { kind: 'history', key: 'missed.history' },
  { kind: 'all', key: 'missed.all' },
];

export function MissedPanel() {
  const { t, client, ui } = useApp();
  const kind = useSignal<ConversationKind>('missed');
  const q = useSignal('');
  const applied = useSignal('');
  const page = useSignal(1);
  const result = useSignal<ConversationPage | null>(null);
  const open = useSignal<ConversationDetail | null>(null);
  const error = useSignal('');
  const unreadMissed = client.unreadMissed.value;

  const load = () =>
    api.conversations(kind.value, applied.value, page.value).then(
      (r) => {
        result.value = r;
        error.value = '';
      },
      (e: Error) => (error.value = e instanceof ApiError && e.code === 'MAILBOX_EXTERNAL' ? t('missed.external') : e.message),
    );
  // the list follows the mailbox: reloaded when the message-summary count changes
  useEffect(() => void load(), [kind.value, applied.value, page.value, unreadMissed]);

  const openItem = async (id: string) => {
    try {
      const detail = await api.conversation(id);
      open.value = detail;
      if (detail.unread) {
        await api.markRead(id);
        await load();
      }
    } catch (e) {
      error.value = (e as Error).message;
    }
  };
  const reply = (address: string, name: string) => {
    client.conversations.open(address, name);
    client.conversations.active.value = address;
    ui.main.value = { kind: 'chat' };
  };

  const detail = open.value;
  const r = result.value;
  return (
    <section class="missed" aria-labelledby="missed-heading">
      <header class="chat-header">
        <button type="button" class="icon back" onClick={() => (ui.pane.value = 'list')} aria-label={t('chat.back')}>
          ←
        </button>
        <h2 id="missed-heading">{t(KINDS.find((k) => k.kind === kind.value)?.key ?? 'missed.title')}</h2>
      </header>
      <div class="tabs" role="tablist">
        {KINDS.map((k) => (
          <button
            key={k.kind}
            type="button"
            role="tab"
            aria-selected={kind.value === k.kind}
            class={kind.value === k.kind ? 'current' : ''}
            onClick={() => {
              kind.value = k.kind;
              page.value = 1;
              open.value = null;
            }}
          >
            {t(k.key)}
          </button>
        ))}
      </div>
      <form
        class="missed-search"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          applied.value = q.value.trim();
          page.value = 1;
        }}
      >
        <label class="visually-hidden" for="missed-q">
          {t('missed.search')}
        </label>
        <input id="missed-q" type="search" placeholder={t('missed.search')} value={q.value} onInput={(e) => (q.value = e.currentTarget.value)} />
        <button type="submit" class="secondary">
          {t('missed.search')}
        </button>
      </form>
      {error.value && (
        <p class="error" role="alert">
          {error.value}
        </p>
      )}
      <div class="missed-body">
        <ul class="items" aria-label={t('missed.title')}>
          {r?.items.length === 0 && <li class="muted">{t('missed.empty')}</li>}
          {r?.items.map((item) => (
            <li key={item.id}>
              <button type="button" class={`item ${item.unread ? 'unread' : ''} ${detail?.id === item.id ? 'current' : ''}`} onClick={() => void openItem(item.id)} data-id={item.id}>
                <span class="item-top">
                  <span class="contact-name">{item.with.displayName || item.with.address}</span>
                  <time dateTime={item.received}>{formatTime(Date.parse(item.received), Date.now(), t.lang)}</time>
                </span>
                <span class="preview">{item.preview}</span>
                {item.unread && <span class="visually-hidden">{t('missed.unread')}</span>}
              </button>
            </li>
          ))}
        </ul>
        {r && (r.page > 1 || r.page * r.pageSize < r.total) && (
          <div class="pager">
            <button type="button" class="secondary" disabled={r.page <= 1} onClick={() => (page.value = r.page - 1)}>
              {t('missed.prev')}
            </button>
            <button type="button" class="secondary" disabled={r.page * r.pageSize >= r.total} onClick={() => (page.value = r.page + 1)}>
              {t('missed.next')}
            </button>
          </div>
        )}
        {detail && (
          <article class="transcript" aria-labelledby="transcript-title">
            <header>
              <h3 id="transcript-title">{detail.subject}</h3>
              <div class="result-actions">
                <button type="button" class="primary" onClick={() => reply(detail.with.address, detail.with.displayName)}>
                  {t('missed.reply')}
                </button>
                <button type="button" class="secondary" onClick={() => (open.value = null)}>
                  {t('missed.close')}
                </button>
              </div>
            </header>
            {/* sanitised again here: allow-listed elements without attributes, text escaped */}
            <div class="transcript-body" dangerouslySetInnerHTML={{ __html: sanitizeHtml(detail.html) }} />
          </article>
        )}
      </div>
    </section>
  );
}

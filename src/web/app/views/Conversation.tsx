// One conversation: the messages (times, per-message status), the typing indicator, and the box
// to write in (Enter sends, Shift+Enter is a new line). A received message that asked for a
// display notification is reported `displayed` only once it is really on screen in a focused,
// visible window (an IntersectionObserver, and the page's `looking` signal).

import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import type { ChatMessage, Conversation } from '../conversations.ts';
import { htmlText } from '../client.ts';
import { useApp } from '../context.ts';
import { formatTime, isoTime } from '../time.ts';
import { download } from '../download.ts';
import { transcriptFileName, transcriptText } from '../transcript.ts';
import { MessageText } from './MessageText.tsx';
import { PresenceText } from './Presence.tsx';

export function ConversationView() {
  const { t, client } = useApp();
  const address = client.conversations.active.value;
  const conversation = address === null ? undefined : client.conversations.get(address);
  if (conversation === undefined) {
    return (
      <div class="empty-state">
        <p>{t('chat.empty')}</p>
      </div>
    );
  }
  return <ChatPane key={conversation.address} conversation={conversation} />;
}

function ChatPane({ conversation }: { conversation: Conversation }) {
  const { t, client, ui } = useApp();
  const name = conversation.displayName.value || conversation.address;
  const contact = client.contacts.value.get(conversation.address);
  const messages = conversation.messages.value;
  const looking = client.looking.value;
  const logRef = useRef<HTMLDivElement>(null);
  const visible = useRef(new Set<string>());

  // read while looking at it
  useEffect(() => {
    if (looking) client.read(conversation.address);
  }, [looking, messages.length, conversation.address]);

  // keep the newest message in view
  useEffect(() => {
    const log = logRef.current;
    if (log !== null) log.scrollTop = log.scrollHeight;
  }, [messages.length, conversation.typing.value]);

  // RFC 5438: `displayed` only for what is on screen while the window has the focus
  useEffect(() => {
    const log = logRef.current;
    if (log === null || typeof IntersectionObserver === 'undefined') return;
    const observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          const id = (entry.target as HTMLElement).dataset.id ?? '';
          if (entry.isIntersecting) visible.current.add(id);
          else visible.current.delete(id);
        }
        tellDisplayed();
      },
      { root: log, threshold: 0.6 },
    );
    for (const el of log.querySelectorAll('[data-pending="true"]')) observer.observe(el);
    return () => observer.disconnect();
  }, [messages]);
  const tellDisplayed = () => {
    if (!client.looking.value) return;
    for (const m of conversation.messages.value) if (m.displayPending === true && visible.current.has(m.id)) client.displayed(conversation.address, m.id);
  };
  useEffect(tellDisplayed, [looking]);

  return (
    <section class="chat" aria-labelledby="chat-title">
      <header class="chat-header">
        <button type="button" class="icon back" onClick={() => (ui.pane.value = 'list')} aria-label={t('chat.back')}>
          ←
        </button>
        <div>
          <h2 id="chat-title">{name}</h2>
          {contact && <PresenceText state={contact.state} note={contact.note} />}
        </div>
        {/* DisableSavingIM (CsClientPolicy): when True the client does not let the user save conversations */}
        {client.savingAllowed.value && messages.length > 0 && (
          <button type="button" class="save-conversation" onClick={() => saveConversation(conversation, name, t('chat.you'), t('chat.log', { name }), t.lang)}>
            {t('chat.save')}
          </button>
        )}
      </header>
      <div class="messages" ref={logRef} role="log" aria-live="polite" aria-label={t('chat.log', { name })} tabIndex={0}>
        <ol class="message-list">
          {messages.map((m) => (
            <MessageItem key={m.id} m={m} name={name} address={conversation.address} />
          ))}
        </ol>
      </div>
      <p class="typing" aria-live="polite" data-testid="typing">
        {conversation.typing.value ? t('chat.typing', { name }) : ''}
      </p>
      <Composer conversation={conversation} name={name} />
    </section>
  );
}

/** Downloads what the conversation shows (sent messages that failed left out) as a text file. */
function saveConversation(conversation: Conversation, name: string, you: string, title: string, lang: string): void {
  const messages = conversation.messages.value
    .filter((m) => m.direction === 'in' || m.status !== 'failed')
    .map((m) => ({ at: m.at, who: m.direction === 'out' ? you : name, text: m.html === true ? htmlText(m.text) : m.text }));
  download(transcriptFileName(conversation.address, Date.now()), transcriptText(title, messages, lang));
}

function MessageItem({ m, name, address }: { m: ChatMessage; name: string; address: string }) {
  const { t, client } = useApp();
  return (
    <li class={`message ${m.direction}`} data-id={m.id} data-pending={m.displayPending === true ? 'true' : undefined} data-status={m.status}>
      <div class="meta">
        <span class="who">{m.direction === 'out' ? t('chat.you') : name}</span>
        <time dateTime={isoTime(m.at)}>{formatTime(m.at, Date.now(), t.lang)}</time>
      </div>
      <div class="bubble">
        <MessageText text={m.text} html={m.html === true} />
      </div>
      {m.direction === 'out' && (
        <div class={`status s-${m.status ?? 'sending'}`}>
          <StatusText m={m} />
          {m.status === 'failed' && (
            <button type="button" class="link" onClick={() => client.retry(address, m.id)}>
              {t('status.retry')}
            </button>
          )}
        </div>
      )}
    </li>
  );
}

function StatusText({ m }: { m: ChatMessage }) {
  const { t } = useApp();
  switch (m.status) {
    case 'queued':
      return <span>{t('status.queued')}</span>;
    case 'delivered':
      return <span>{t('status.delivered')}</span>;
    case 'seen':
      return <span>{t('status.seen')}</span>;
    case 'mailbox':
      return <span title={m.detail}>{t('status.mailbox')}</span>;
    case 'failed':
      return <span>{t('status.failed', { reason: m.detail ?? '' })}</span>;
    default:
      return <span>{t('status.sending')}</span>;
  }
}

function Composer({ conversation, name }: { conversation: Conversation; name: string }) {
  const { t, client } = useApp();
  const text = useSignal('');
  const send = () => {
    const value = text.value;
    if (value.trim() === '') return;
    text.value = '';
    client.send(conversation.address, value);
  };
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      <label class="visually-hidden" for="composer-input">
        {t('chat.input', { name })}
      </label>
      <textarea
        id="composer-input"
        rows={2}
        value={text.value}
        placeholder={t('chat.input', { name })}
        aria-describedby="composer-hint"
        autofocus
        onInput={(e) => {
          text.value = e.currentTarget.value;
          client.typing(conversation.address, text.value);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            send();
          }
        }}
      />
      <span id="composer-hint" class="visually-hidden">
        {t('chat.hint')}
      </span>
      <button type="submit" class="primary">
        {t('chat.send')}
      </button>
    </form>
  );
}

// What the page itself tells the client: whether the user looks at it (focus and visibility),
// how long since their last input (automatic Inactive/Away), the keyboard shortcuts, the tab
// title's unread count, and desktop notifications (only once the user allowed them from a click).

import { effect } from '@preact/signals';
import type { ParleyClient } from './client.ts';
import type { UiState } from './context.ts';
import type { Translator } from './i18n/index.ts';

/** how often the idle time is looked at */
const IDLE_CHECK_MS = 15_000;

export function wirePage(client: ParleyClient, ui: UiState, t: Translator): void {
  const looking = () => document.visibilityState === 'visible' && document.hasFocus();
  const update = () => (client.looking.value = looking());
  update();
  window.addEventListener('focus', update);
  window.addEventListener('blur', update);
  document.addEventListener('visibilitychange', update);

  let lastInput = Date.now();
  const input = () => {
    const wasIdle = Date.now() - lastInput > IDLE_CHECK_MS;
    lastInput = Date.now();
    if (wasIdle) client.idle(0);
  };
  for (const type of ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart']) window.addEventListener(type, input, { passive: true, capture: true });
  setInterval(() => client.idle(Date.now() - lastInput), IDLE_CHECK_MS);

  window.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k') {
      if (client.phase.value !== 'signed-in') return;
      e.preventDefault();
      ui.searchOpen.value = true;
      return;
    }
    if (e.altKey && e.shiftKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
      const next = client.conversations.nextUnread(e.key === 'ArrowDown' ? 1 : -1);
      if (next === null) return;
      e.preventDefault();
      client.conversations.active.value = next;
      ui.main.value = { kind: 'chat' };
      ui.pane.value = 'main';
    }
  });

  effect(() => {
    const unread = client.conversations.totalUnread.value;
    document.title = unread > 0 ? t('title.unread', { count: unread }) : t('app.name');
  });

  client.notifier = {
    message(from, name, text) {
      if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
      const n = new Notification(t('notify.message', { name }), { body: text.slice(0, 200), tag: from });
      n.onclick = () => {
        window.focus();
        client.conversations.active.value = from;
        ui.main.value = { kind: 'chat' };
        ui.pane.value = 'main';
        n.close();
      };
    },
  };
}

// A presence state as colour and text (never colour alone), and the note.

import { useApp } from '../context.ts';
import type { MessageKey } from '../i18n/index.ts';
import { presenceClass } from '../presence.ts';

export function stateLabel(t: ReturnType<typeof useApp>['t'], state: string): string {
  const key = `presence.${state}` as MessageKey;
  const text = t(key);
  return text === key ? t('presence.unknown') : text;
}

export function PresenceDot({ state }: { state: string }) {
  return <span class={`dot ${presenceClass(state)}`} aria-hidden="true" />;
}

export function PresenceText({ state, note }: { state: string; note?: string }) {
  const { t } = useApp();
  return (
    <span class="presence">
      <PresenceDot state={state} />
      <span class="state">{stateLabel(t, state)}</span>
      {note ? <span class="note"> — {note}</span> : null}
    </span>
  );
}

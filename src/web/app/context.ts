// What every view reads: the translator, the signed-in client, and the page's own UI state.

import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { signal } from '@preact/signals';
import type { ParleyClient } from './client.ts';
import type { Translator } from './i18n/index.ts';

export type MainView = { kind: 'chat' } | { kind: 'missed' };

/** UI state that is not the client's: what the main pane shows, the open dialog, the phone layout's pane. */
export class UiState {
  readonly main = signal<MainView>({ kind: 'chat' });
  readonly searchOpen = signal(false);
  /** at phone width only one pane shows: the list or the main pane */
  readonly pane = signal<'list' | 'main'>('list');
  readonly notifications = signal<NotificationPermission | 'unsupported'>(typeof Notification === 'undefined' ? 'unsupported' : Notification.permission);
}

export interface AppContextValue {
  t: Translator;
  client: ParleyClient;
  ui: UiState;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (value === null) throw new Error('AppContext is not provided');
  return value;
}

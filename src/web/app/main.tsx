// The web client's entry: picks the language, starts the client, renders the app into #app.

import { render } from 'preact';
import './styles.css';
import { ParleyClient } from './client.ts';
import { AppContext, UiState } from './context.ts';
import { chooseLanguage, translator } from './i18n/index.ts';
import { wirePage } from './page.ts';
import { App } from './views/App.tsx';

const t = translator(chooseLanguage(navigator.languages ?? [navigator.language]));
document.documentElement.lang = t.lang;
const client = new ParleyClient();
const ui = new UiState();
wirePage(client, ui, t);
const root = document.getElementById('app');
if (root !== null) {
  render(
    <AppContext.Provider value={{ t, client, ui }}>
      <App />
    </AppContext.Provider>,
    root,
  );
}
void client.start();

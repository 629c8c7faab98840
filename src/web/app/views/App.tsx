// The page: sign-in until the SIP user agent is registered, then the signed-in screen.

import { useApp } from '../context.ts';
import { Shell } from './Shell.tsx';
import { SignIn } from './SignIn.tsx';

export function App() {
  const { t, client } = useApp();
  switch (client.phase.value) {
    case 'loading':
      return (
        <main class="signin" id="main">
          <p role="status">{t('app.loading')}</p>
        </main>
      );
    case 'signed-in':
      return <Shell />;
    default:
      return <SignIn />;
  }
}

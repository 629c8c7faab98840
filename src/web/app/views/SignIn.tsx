// The sign-in form: address or user name and password. After a reload with a live session the
// user is prefilled and only the password is asked (the browser never kept it).

import { useSignal } from '@preact/signals';
import { useApp } from '../context.ts';

export function SignIn() {
  const { t, client } = useApp();
  const again = client.phase.value === 'password-again';
  const busy = client.phase.value === 'connecting';
  const user = useSignal(client.session.value?.address ?? '');
  const password = useSignal('');

  const submit = async (e: Event) => {
    e.preventDefault();
    const pw = password.value;
    password.value = '';
    await client.signIn(user.value, pw).catch(() => {});
  };

  return (
    <main class="signin" id="main">
      <form class="signin-card" onSubmit={submit} aria-labelledby="signin-title">
        <div class="brand" aria-hidden="true">
          <span class="logo" />
        </div>
        <h1 id="signin-title">{t('signin.title')}</h1>
        {again && <p class="hint">{t('signin.again')}</p>}
        <label for="signin-user">{t('signin.user')}</label>
        <input id="signin-user" name="username" autocomplete="username" required value={user.value} onInput={(e) => (user.value = e.currentTarget.value)} autofocus={!again} />
        <label for="signin-password">{t('signin.password')}</label>
        <input id="signin-password" name="password" type="password" autocomplete="current-password" required value={password.value} onInput={(e) => (password.value = e.currentTarget.value)} autofocus={again} />
        {client.error.value && (
          <p class="error" role="alert">
            {t('signin.failed', { detail: client.error.value })}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? t('signin.busy') : t('signin.submit')}
        </button>
        {again && (
          <button type="button" class="link" onClick={() => void client.signOut()}>
            {t('signin.other')}
          </button>
        )}
      </form>
    </main>
  );
}

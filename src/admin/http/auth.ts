// Bearer token authentication (RFC 6750) for /admin/: `Authorization: Bearer <token>`, the token
// the server made in its data directory (src/server/secrets.ts, loadAdminToken).

import { createHash, timingSafeEqual } from 'node:crypto';
import { AdminApiError } from './problem.ts';

const REALM = 'parley-admin';

/**
 * Checks the Authorization header against the token, in constant time: both sides are hashed
 * first, so neither the content nor the length of the token leaks through timing.
 */
export function createTokenCheck(token: string, what = 'the admin API'): (header: string | undefined) => void {
  if (token.length < 16) throw new Error('the admin token is too short (at least 16 characters)');
  const expected = digest(token);
  return (header) => {
    // RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token
    const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header ?? '');
    if (m?.[1] === undefined) {
      throw new AdminApiError('UNAUTHORIZED', `${what} needs Authorization: Bearer <token>, the token in the server's data directory (secrets/admin.token)`, {
        'www-authenticate': `Bearer realm="${REALM}"`,
      });
    }
    if (!timingSafeEqual(digest(m[1]), expected)) {
      // §3.1: invalid_token
      throw new AdminApiError('UNAUTHORIZED', 'the admin token is not the server\'s (see secrets/admin.token in its data directory)', {
        'www-authenticate': `Bearer realm="${REALM}", error="invalid_token"`,
      });
    }
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

// The session cookie (RFC 6265): read from a Cookie header, written in a Set-Cookie header. Pure.
//
// `parley_session=<token>; Path=/; HttpOnly; SameSite=Strict` (+ `Secure` over TLS): no script of
// the page can read it (HttpOnly), a request started by another site does not carry it
// (SameSite=Strict, RFC 6265bis §5.4.7), and over TLS it never travels in clear (Secure). No
// Expires/Max-Age: it ends with the browser session; the server ends it sooner (idle, maximum age).

export const SESSION_COOKIE = 'parley_session';

/** A token as we make them: base64url of 32 bytes (43 characters); anything else is not looked up. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/**
 * The value of cookie `name` in a Cookie header (RFC 6265 §5.4: `name=value` pairs separated by
 * "; "), or undefined. A header with the name twice (a cookie for another path, say) gives the
 * first well-formed token.
 */
export function readCookie(header: string | undefined, name: string = SESSION_COOKIE): string | undefined {
  if (header === undefined || header === '') return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (TOKEN.test(value)) return value;
  }
  return undefined;
}

/** True when the request carries a session cookie at all (a browser signed in through /api/session). */
export function hasSessionCookie(header: string | undefined): boolean {
  return readCookie(header) !== undefined;
}

/** The Set-Cookie header value that hands the browser its session token. */
export function sessionCookie(token: string, secure: boolean): string {
  if (!TOKEN.test(token)) throw new Error('a session token is base64url of 32 bytes');
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** The Set-Cookie header value that removes the cookie (RFC 6265 §3.1: an expiry in the past). */
export function clearedCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT${secure ? '; Secure' : ''}`;
}

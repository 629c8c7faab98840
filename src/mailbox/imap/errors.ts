// What an IMAP failure means for the offline pipeline (src/offline/worker.ts PERMANENT): a server
// that cannot be reached, times out, says BYE or drops the connection is REMOTE_UNAVAILABLE and the
// delivery is retried until the entry's OfflineImMaxAge; credentials it refuses, a mailbox the
// sign-in may not act as, a missing right (ACL) or a TLS setup that cannot work are REMOTE_REFUSED:
// retrying will not help until an administrator acts, and the reason says what to do.
import { MailboxError } from '../errors.ts';

/** The fields of imapflow's errors we read (its ImapFlowError; every one optional). */
interface ImapFailure {
  message?: string;
  code?: string;
  authenticationFailed?: boolean;
  tlsFailed?: boolean;
  serverResponseCode?: string;
  responseStatus?: string;
  responseText?: string;
  reason?: string;
  mailboxMissing?: boolean;
}

/** Node's socket errors and imapflow's connection errors: the server is not there (now). */
const UNREACHABLE = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND',
  'NoConnection', 'EConnectionClosed', 'StateLogout', 'ClosedAfterConnectText', 'ClosedAfterConnectTLS',
  'CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'UPGRADE_TIMEOUT', 'ETIMEOUT', 'ETHROTTLE',
]);

/** RFC 5530 response codes a later attempt may not meet: the server is busy, full or in trouble. */
const TRANSIENT_CODES = new Set(['UNAVAILABLE', 'SERVERBUG', 'INUSE', 'OVERQUOTA', 'LIMIT', 'EXPUNGEISSUED', 'CORRUPTION']);

/** Certificate failures (Node's codes and messages): the server was reached but cannot be trusted as configured. */
const CERTIFICATE = /certificate|self[- ]signed|unable to verify|CERT|UNABLE_TO_(VERIFY|GET_ISSUER)/i;

/**
 * The MailboxError for an imapflow failure of `doing` (`signing in to imaps://mail.example.com as
 * parley for alice@example.com`, `APPEND to "Conversation History"`).
 */
export function imapError(error: unknown, doing: string, server: string): MailboxError {
  if (error instanceof MailboxError) return error;
  const e = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as ImapFailure;
  const said = serverSaid(e);
  const code = e.serverResponseCode?.toUpperCase();
  if (e.authenticationFailed === true) {
    if (code === 'AUTHORIZATIONFAILED') {
      return new MailboxError('REMOTE_REFUSED', `${server} accepted the password but refused ${doing}: the mailbox does not exist there, or the account may not act for it (a master user, or an authorization identity it may not assume)${said}`, { cause: error });
    }
    if (code === 'UNAVAILABLE') return new MailboxError('REMOTE_UNAVAILABLE', `${server} could not check the credentials just now (${doing})${said}`, { cause: error });
    return new MailboxError('REMOTE_REFUSED', `${server} refused the credentials (${doing}): check the user name and password in the mailbox server's settings${said}`, { cause: error });
  }
  if (e.tlsFailed === true || (e.code === undefined && CERTIFICATE.test(e.message ?? '')) || CERTIFICATE.test(e.code ?? '')) {
    if (/STARTTLS/i.test(e.message ?? '') && !CERTIFICATE.test(e.message ?? '')) {
      return new MailboxError('REMOTE_REFUSED', `${server} does not offer STARTTLS, and Parley sends no password in clear: use imaps:// or enable TLS on the server (${e.message ?? ''})`, { cause: error });
    }
    return new MailboxError('REMOTE_REFUSED', `the TLS connection to ${server} cannot be trusted (${e.message ?? e.code ?? 'TLS failed'}): give the CA that signed its certificate in the setting ca`, { cause: error });
  }
  if (e.responseStatus === 'NO' || e.responseStatus === 'BAD') {
    if (code === 'NOPERM') return new MailboxError('REMOTE_REFUSED', `${server} refused ${doing}: the signed-in account lacks the right (ACL) to it; grant it, or sign in with an account that has it${said}`, { cause: error });
    if (code !== undefined && TRANSIENT_CODES.has(code)) return new MailboxError('REMOTE_UNAVAILABLE', `${server} could not do ${doing} just now${said}`, { cause: error });
    if (code === 'NONEXISTENT' || code === 'TRYCREATE' || e.mailboxMissing === true) {
      return new MailboxError('REMOTE_REFUSED', `${server} refused ${doing}: no such folder, or the account may not see it (ACL lookup right)${said}`, { cause: error });
    }
    if (e.responseStatus === 'BAD' || code === 'CANNOT' || code === 'CLIENTBUG') return new MailboxError('REMOTE_REFUSED', `${server} refused ${doing}${said}`, { cause: error });
    // a NO without a code: nothing says it is final, so it is retried (within OfflineImMaxAge)
    return new MailboxError('REMOTE_UNAVAILABLE', `${server} answered NO to ${doing}${said}`, { cause: error });
  }
  if (e.code !== undefined && UNREACHABLE.has(e.code)) {
    return new MailboxError('REMOTE_UNAVAILABLE', `cannot reach ${server} (${doing}): ${e.reason !== undefined ? `BYE ${e.reason}` : (e.message ?? e.code)}`, { cause: error });
  }
  // anything else (a dropped connection in some other shape, a parser failure) may go by itself
  return new MailboxError('REMOTE_UNAVAILABLE', `${doing} at ${server} failed: ${e.message ?? 'unknown error'}${e.code !== undefined ? ` (${e.code})` : ''}`, { cause: error });
}

function serverSaid(e: ImapFailure): string {
  const text = e.responseText?.replace(/\s*\(\d+\.\d+ \+ [^)]*secs\)\.?$/, '').trim();
  const code = e.serverResponseCode;
  if (text === undefined || text === '') return code !== undefined ? ` (server: [${code}])` : '';
  return ` (server: ${code !== undefined ? `[${code}] ` : ''}${text})`;
}

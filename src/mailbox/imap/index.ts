// The IMAP mailbox connector (issue 17): a user's mailbox on Dovecot, Cyrus or any IMAP server.
export type { ImapConnectorOptions, ImapSignIn } from './connector.ts';
export { DEFAULT_IMAP_FOLDER, ImapMailboxConnector } from './connector.ts';
export { imapEndpointError, isLoopback } from './endpoint.ts';
export { CLASS_HEADER as IMAP_CLASS_HEADER } from './message.ts';

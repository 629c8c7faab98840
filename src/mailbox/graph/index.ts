// The Microsoft Graph mailbox connector (Exchange Online): what the rest of Parley may use.
export type { GraphConnectorOptions } from './connector.ts';
export { GraphMailboxConnector } from './connector.ts';
export type { GraphCredential } from './sign-in.ts';
export { DEFAULT_AUTHORITY_HOST, DEFAULT_GRAPH_URL } from './requests.ts';

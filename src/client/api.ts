// The client SDK's Node-free public API: what both entries export, src/client/index.ts for Node
// and src/client/browser.ts for browsers. Nothing reachable from here imports a Node module except
// through src/sip's few (node:crypto hashes, node:net isIPv6, Buffer), which the browser build shims.

export { SipUserAgent } from './user-agent.ts';
export type { ConnectionEvent, ConnectionState, DisplayedEvent, ReconnectPolicy, RequestOptions, ResponseInfo, SendMessageOptions, SipClientEvents, SipClientOptions, TypingEvent } from './types.ts';
export type { AssertedIdentity, IncomingMessage } from './incoming.ts';
export type { Binding, RegisterResult } from './registration.ts';
export { ClientSubscription } from './subscription.ts';
export type { ClientSubscriptionState, SubscribeOptions, SubscribeResult, SubscriptionEvents, SubscriptionNotify, SubscriptionState, SubscriptionTermination } from './subscription.ts';
export { parseSubscriptionState } from './event-headers.ts';
export { MESSAGE_SUMMARY_EVENT, MESSAGE_SUMMARY_TYPE, parseMessageSummary } from './message-summary.ts';
export type { MessageCounts, MessageSummary } from './message-summary.ts';
export { parseProvisioning, PROVISIONING_EVENT, PROVISIONING_TYPE } from './provisioning.ts';
export type { ProvisioningSettings } from './provisioning.ts';
export { MailboxReader } from './mailbox.ts';
export type { FetchLike, ListOptions, MailboxItem, MailboxReaderOptions, Mailer, MissedConversation } from './mailbox.ts';
export { htmlToText, MISSED_CONVERSATION_CLASS } from './ews-soap.ts';
export { CLIENT_ERROR_CODES, ClientError } from './errors.ts';
export type { ClientErrorCode } from './errors.ts';
export { parseServerList, parseServerUrl } from './transport.ts';
export type { ClientTransport, ServerAddress, ServerResolver, ServerScheme, TransportConnector } from './transport.ts';
export { connectWebSocket } from './transport-ws.ts';
export type { WebSocketOptions } from './transport-ws.ts';
export { addressOfUri, DEFAULT_PUBLISH_EXPIRES, LIST_ACCEPT, listResource, PRESENCE_EVENT, PRESENCE_STATES, PresenceList, PresencePublisher, presenceStateNamed } from './presence.ts';
export { warningTextOf } from './warning.ts';
export type { PresenceInfo, PresenceListEvents, PresenceStateName, PublishPresence, PublishResult } from './presence.ts';
export { parseListNotify } from './rlmi.ts';
export type { ListInstance, ListResourceState, ListUpdate } from './rlmi.ts';
export { parseMultipart } from './multipart.ts';
export type { MimePart } from './multipart.ts';

// The client SDK for Node: a SIP user agent over TCP, TLS or WebSocket, with RFC 6665
// subscriptions (message-summary, provisioning) and an EWS reader of missed conversations.
// What other code may use.
// A browser build will export SipUserAgent with connectWebSocket as its connector instead.

import type { NodeTransportOptions } from './transport-node.ts';
import { nodeConnector } from './transport-node.ts';
import type { TransportConnector } from './transport.ts';
import { SipUserAgent } from './user-agent.ts';
import type { SipClientOptions } from './types.ts';

export interface NodeSipClientOptions extends SipClientOptions, NodeTransportOptions {
  /** a custom connection factory (an in-memory transport in tests, say) instead of TCP/TLS/WS */
  connector?: TransportConnector;
}

export class SipClient extends SipUserAgent {
  constructor(options: NodeSipClientOptions) {
    super(options, options.connector ?? nodeConnector(options));
  }
}

export { SipUserAgent } from './user-agent.ts';
export type { RequestOptions, ResponseInfo, SendMessageOptions, SipClientEvents, SipClientOptions } from './types.ts';
export type { AssertedIdentity, IncomingMessage } from './incoming.ts';
export type { Binding, RegisterResult } from './registration.ts';
export { ClientSubscription } from './subscription.ts';
export type { ClientSubscriptionState, SubscribeOptions, SubscribeResult, SubscriptionEvents, SubscriptionNotify, SubscriptionState, SubscriptionTermination } from './subscription.ts';
export { parseSubscriptionState } from './event-headers.ts';
export { MESSAGE_SUMMARY_EVENT, MESSAGE_SUMMARY_TYPE, parseMessageSummary } from './message-summary.ts';
export type { MessageCounts, MessageSummary } from './message-summary.ts';
export { parseProvisioning, PROVISIONING_EVENT, PROVISIONING_TYPE } from './provisioning.ts';
export type { ProvisioningSettings } from './provisioning.ts';
export { addressOfUri, DEFAULT_PUBLISH_EXPIRES, LIST_ACCEPT, listResource, PRESENCE_EVENT, PRESENCE_STATES, PresenceList, PresencePublisher, presenceStateNamed, warningTextOf } from './presence.ts';
export type { PresenceInfo, PresenceListEvents, PresenceStateName, PublishPresence, PublishResult } from './presence.ts';
export { parseListNotify } from './rlmi.ts';
export type { ListInstance, ListResourceState, ListUpdate } from './rlmi.ts';
export { parseMultipart } from './multipart.ts';
export type { MimePart } from './multipart.ts';
export { MailboxReader } from './mailbox.ts';
export type { FetchLike, ListOptions, MailboxItem, MailboxReaderOptions, Mailer, MissedConversation } from './mailbox.ts';
export { MISSED_CONVERSATION_CLASS } from './ews-soap.ts';
export { CLIENT_ERROR_CODES, ClientError } from './errors.ts';
export type { ClientErrorCode } from './errors.ts';
export { parseServerUrl } from './transport.ts';
export type { ClientTransport, ServerAddress, ServerScheme, TransportConnector } from './transport.ts';
export { connectWebSocket } from './transport-ws.ts';
export { nodeConnector } from './transport-node.ts';
export type { NodeTransportOptions } from './transport-node.ts';

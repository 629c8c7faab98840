// Missed Conversations and Conversation History over HTTP for the web client: what other capabilities may use.
export type { ConversationDetail, ConversationSummary } from './view.ts';
export { detailOf, summaryOf } from './view.ts';
export type { ConversationsRouteOptions } from './http.ts';
export { CONVERSATIONS_PATH, createConversationsRoute } from './http.ts';

// Conversation History (issue 14): every conversation in each archiving participant's Conversation
// History, and unread messages as missed conversations. What other capabilities may use.
export { HISTORY_MIGRATIONS } from './schema.ts';
export type { HistoryCounts, HistoryServiceOptions } from './service.ts';
export { HistoryService } from './service.ts';
export { MAX_COMMIT_WINDOW_MS } from './recorder.ts';
export { runHistoryCommand } from './cli.ts';

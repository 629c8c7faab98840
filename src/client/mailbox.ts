// A small EWS reader for the missed-conversation list: the IPM.Note.Microsoft.Missed items of
// Conversation History (FindItem), one item with its body (GetItem), mark read (UpdateItem).
// HTTP Basic over the `fetch` of the platform (Node 24 or a browser), or one given in the options.

import { ClientError } from './errors.ts';
import { findMissedRequest, getItemRequest, markReadRequest, readFoundItems, readGotItem, readResponseMessage, readUpdatedId } from './ews-soap.ts';
import type { MailboxItem, MissedConversation } from './ews-soap.ts';

export type { Mailer, MailboxItem, MissedConversation } from './ews-soap.ts';

/** The part of `fetch` the reader uses; globalThis.fetch fits, and so does a test double. */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal },
) => Promise<{ status: number; text(): Promise<string> }>;

export interface MailboxReaderOptions {
  /** the EWS endpoint, e.g. `https://mail.example.com/EWS/Exchange.asmx` */
  ewsUrl: string;
  /** the mailbox address (the SIP address without `sip:`), e.g. `alice@parley.local` */
  username: string;
  password: string;
  fetch?: FetchLike;
  /** per request; default 30 s */
  timeoutMs?: number;
}

export interface ListOptions {
  /** page size; default 50 */
  max?: number;
  /** items to skip from the newest; default 0 */
  offset?: number;
}

export class MailboxReader {
  readonly ewsUrl: string;
  readonly #authorization: string;
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;

  constructor(options: MailboxReaderOptions) {
    let url: URL;
    try {
      url = new URL(options.ewsUrl);
    } catch (cause) {
      throw new ClientError('INVALID_ARGUMENT', `ewsUrl ${JSON.stringify(options.ewsUrl)} is not a URL`, { cause });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ClientError('INVALID_ARGUMENT', `ewsUrl ${JSON.stringify(options.ewsUrl)} is not http or https`);
    this.ewsUrl = options.ewsUrl;
    this.#authorization = `Basic ${base64(`${options.username}:${options.password}`)}`;
    const platform = globalThis.fetch as FetchLike | undefined;
    const chosen = options.fetch ?? platform;
    if (chosen === undefined) throw new ClientError('INVALID_ARGUMENT', 'this platform has no fetch; give one in the options');
    this.#fetch = chosen;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** The missed conversations, newest first (FindItem, IndexedPageItemView). */
  async listMissedConversations(options: ListOptions = {}): Promise<MissedConversation[]> {
    const max = options.max ?? 50;
    const offset = options.offset ?? 0;
    if (!Number.isInteger(max) || max < 1) throw new ClientError('INVALID_ARGUMENT', `max must be a positive integer, not ${max}`);
    if (!Number.isInteger(offset) || offset < 0) throw new ClientError('INVALID_ARGUMENT', `offset must be a non-negative integer, not ${offset}`);
    return readFoundItems(await this.#call('FindItem', findMissedRequest(max, offset)));
  }

  /** One item with its body. */
  async getItem(itemId: string): Promise<MailboxItem> {
    return readGotItem(await this.#call('GetItem', getItemRequest(itemId)));
  }

  /** Marks the item read (or unread); resolves with its new ItemId and ChangeKey. */
  async markRead(itemId: string, changeKey: string, isRead = true): Promise<{ itemId: string; changeKey: string }> {
    return readUpdatedId(await this.#call('UpdateItem', markReadRequest(itemId, changeKey, isRead)));
  }

  async #call(operation: string, soap: string) {
    let status: number;
    let text: string;
    try {
      const response = await this.#fetch(this.ewsUrl, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', accept: 'text/xml', authorization: this.#authorization },
        body: soap,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = response.status;
      text = await response.text();
    } catch (cause) {
      throw new ClientError('HTTP_FAILED', `EWS ${operation} to ${this.ewsUrl} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
    if (status === 401 || status === 403) throw new ClientError('AUTH_FAILED', `EWS refused the credentials: HTTP ${status}`, { status });
    // 200 with the answer, or 500 with a SOAP Fault (SOAP 1.1 §6.2): both are read as SOAP
    if (status !== 200 && status !== 500) throw new ClientError('HTTP_FAILED', `EWS ${operation} answered HTTP ${status}`, { status });
    try {
      return readResponseMessage(text, operation);
    } catch (error) {
      if (error instanceof ClientError && error.code === 'HTTP_FAILED' && status !== 200) throw new ClientError('HTTP_FAILED', `EWS ${operation} answered HTTP ${status}`, { status, cause: error });
      throw error;
    }
  }
}

/** Base64 of the UTF-8 bytes (RFC 7617 §2.1 charset="UTF-8"), with what both Node and browsers have. */
function base64(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

// The HTTP calls of the web client, to its own origin: the sign-in session (an HttpOnly cookie the
// script never sees), the directory, the contact list and the mailbox's conversations. fetch sends
// the cookie (same origin) and, for every method but GET/HEAD, the Origin header the server's CSRF
// check wants. Errors are the server's problem JSON (RFC 9457), kept with their stable `code`.

export interface SessionInfo {
  address: string;
  sipUri: string;
  displayName: string;
  authUser: string;
  domain: string;
  webSocketUrl: string;
  /**
   * every node's SIP-over-WebSocket URL when the server runs as a cluster (webSocketUrl among
   * them, usually first): the client moves to the next when its connection is lost; absent or
   * empty on a single server
   */
  webSocketUrls?: string[];
  contactListUri: string;
  demo: boolean;
}

/**
 * The WebSocket URLs to reach SIP at, tried in this order and round robin after a loss: every
 * node's (webSocketUrls) when the server is a cluster, from webSocketUrl on when it is among them
 * (the node that served the page first); else the one webSocketUrl. Entries that are not
 * non-empty strings are ignored (the JSON is the server's, read defensively).
 */
export function webSocketServers(session: Pick<SessionInfo, 'webSocketUrl' | 'webSocketUrls'>): string[] {
  const listed: unknown[] = Array.isArray(session.webSocketUrls) ? session.webSocketUrls : [];
  const urls = [...new Set(listed.filter((u): u is string => typeof u === 'string' && u !== ''))];
  const own = urls.indexOf(session.webSocketUrl);
  if (urls.length === 0) return [session.webSocketUrl];
  return own <= 0 ? urls : [...urls.slice(own), ...urls.slice(0, own)];
}

export interface DirectoryUser {
  address: string;
  sipUri: string;
  displayName: string;
}

export interface DirectoryPage {
  users: DirectoryUser[];
  page: number;
  pageSize: number;
  total: number;
}

export interface ContactEntry {
  contact: string;
  displayName: string;
  since: string;
}

export type ConversationKind = 'missed' | 'history' | 'all';

export interface ConversationItem {
  id: string;
  kind: 'missed' | 'conversation';
  subject: string;
  with: { address: string; displayName: string };
  received: string;
  unread: boolean;
  preview: string;
}

export interface ConversationPage {
  items: ConversationItem[];
  page: number;
  pageSize: number;
  total: number;
  unreadMissed: number;
}

export interface ConversationDetail extends ConversationItem {
  html: string;
  text: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, detail: string) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (cause) {
    throw new ApiError(0, 'NETWORK', cause instanceof Error ? cause.message : String(cause));
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const problem = (json ?? {}) as { code?: unknown; detail?: unknown; title?: unknown };
    const detail = typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, typeof problem.code === 'string' ? problem.code : `HTTP_${response.status}`, detail);
  }
  return json as T;
}

const query = (params: Record<string, string | number | undefined>): string => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(name, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
};

export const api = {
  signIn: (user: string, password: string) => call<SessionInfo>('POST', '/api/session', { user, password }),
  /** the live session, or undefined (401 NO_SESSION) */
  currentSession: async (): Promise<SessionInfo | undefined> => {
    try {
      return await call<SessionInfo>('GET', '/api/session');
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return undefined;
      throw error;
    }
  },
  signOut: () => call<void>('DELETE', '/api/session'),
  directory: (q: string, page = 1, pageSize = 20) => call<DirectoryPage>('GET', `/api/directory${query({ q, page, pageSize })}`),
  contacts: () => call<{ uri: string; contacts: ContactEntry[] }>('GET', '/presence/contacts'),
  addContact: (address: string) => call<unknown>('PUT', `/presence/contacts/${encodeURIComponent(address)}`),
  removeContact: (address: string) => call<void>('DELETE', `/presence/contacts/${encodeURIComponent(address)}`),
  conversations: (kind: ConversationKind, q = '', page = 1, pageSize = 20) => call<ConversationPage>('GET', `/api/conversations${query({ kind, q, page, pageSize })}`),
  conversation: (id: string) => call<ConversationDetail>('GET', `/api/conversations/${encodeURIComponent(id)}`),
  markRead: (id: string) => call<void>('POST', `/api/conversations/${encodeURIComponent(id)}/read`, {}),
};

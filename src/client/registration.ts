// Registration of one contact (RFC 3261 §10.2): one Call-ID for every REGISTER of this binding
// with an increasing CSeq (§10.2.4), 423 answered with the registrar's Min-Expires (§10.2.8),
// and a refresh before the granted expiry. The user agent lends its auth-handling send function.

import { parseNameAddr, parseUri } from '../sip/pure.ts';
import { warningTextOf } from './warning.ts';
import type { Headers, SipResponse } from '../sip/pure.ts';
import { ClientError } from './errors.ts';
import { newCallId } from './ids.ts';
import { intervalTooBriefRetry, RefreshTimer, SerialQueue } from './refresh.ts';

export interface Binding {
  /** the contact URI as the registrar wrote it */
  uri: string;
  /** its `expires` parameter, if present */
  expires: number | null;
}

export interface RegisterResult {
  status: number;
  reason: string;
  /** seconds granted for our contact (0 after unregister) */
  expires: number;
  /** every binding of the AOR the registrar listed (§10.3 step 8) */
  contacts: Binding[];
  headers: Headers;
}

export interface RegisterSend {
  /** sends REGISTER with this Call-ID and CSeq, Contact and Expires, answering one challenge */
  (request: { callId: string; cseq: () => number; contact: string; expires: number }): Promise<SipResponse>;
}

export interface RegistrationEvents {
  registered(result: RegisterResult): void;
  unregistered(error?: ClientError): void;
  error(error: ClientError): void;
}

export { refreshDelayMs } from './refresh.ts';

export function parseRegisterResult(response: SipResponse, contactUri: string, requested: number): RegisterResult {
  const contacts: Binding[] = [];
  let ours: number | null | undefined;
  for (const value of response.headers.getAll('contact')) {
    try {
      const field = parseNameAddr(value);
      const param = field.params.get('expires');
      const expires = param === undefined || param === null || !/^\d+$/.test(param) ? null : Number(param);
      contacts.push({ uri: field.uri, expires });
      if (ours === undefined && sameContact(field.uri, contactUri)) ours = expires;
    } catch {
      // a binding we cannot read is not ours
    }
  }
  const header = response.headers.get('expires');
  const headerExpires = header !== undefined && /^\s*\d+\s*$/.test(header) ? Number(header) : null;
  // §10.2.4: the expiration is the contact's expires parameter, else the Expires header.
  const expires = ours ?? headerExpires ?? requested;
  return { status: response.status, reason: response.reason, expires, contacts, headers: response.headers };
}

/** §10.3 step 6 (and §19.1.4): compare URIs, not strings; enough here to compare user, host, port, transport. */
export function sameContact(a: string, b: string): boolean {
  try {
    const x = parseUri(a);
    const y = parseUri(b);
    return (
      x.user === y.user &&
      x.host === y.host &&
      (x.port ?? 0) === (y.port ?? 0) &&
      (x.params.get('transport') ?? '').toLowerCase() === (y.params.get('transport') ?? '').toLowerCase()
    );
  } catch {
    return a === b;
  }
}

export class Registration {
  readonly #send: RegisterSend;
  readonly #events: RegistrationEvents;
  readonly #contactUri: string;
  readonly #callId = newCallId();
  #cseq = 0;
  #requested = 600;
  readonly #refreshTimer = new RefreshTimer();
  readonly #queue = new SerialQueue();
  #active = false;

  constructor(contactUri: string, send: RegisterSend, events: RegistrationEvents) {
    this.#contactUri = contactUri;
    this.#send = send;
    this.#events = events;
  }

  get contactUri(): string {
    return this.#contactUri;
  }

  get active(): boolean {
    return this.#active;
  }

  register(expires: number): Promise<RegisterResult> {
    this.#requested = expires;
    return this.#serial(() => this.#register());
  }

  unregister(): Promise<RegisterResult> {
    this.#cancelRefresh();
    return this.#serial(async () => {
      const response = await this.#exchange(0);
      if (response.status < 200 || response.status >= 300) throw this.#failure(response);
      const result = parseRegisterResult(response, this.#contactUri, 0);
      this.#active = false;
      this.#events.unregistered();
      return { ...result, expires: 0 };
    });
  }

  /** Stops refreshing (the connection is gone or the user agent is closing). */
  stop(): void {
    this.#cancelRefresh();
    this.#active = false;
  }

  async #register(): Promise<RegisterResult> {
    let expires = this.#requested;
    for (let attempt = 0; ; attempt++) {
      const response = await this.#exchange(expires);
      const longer = intervalTooBriefRetry(response, expires, attempt);
      if (longer !== undefined) {
        expires = longer;
        this.#requested = longer;
        continue;
      }
      if (response.status < 200 || response.status >= 300) throw this.#failure(response);
      const result = parseRegisterResult(response, this.#contactUri, expires);
      this.#active = result.expires > 0;
      if (this.#active) this.#scheduleRefresh(result.expires);
      this.#events.registered(result);
      return result;
    }
  }

  #exchange(expires: number): Promise<SipResponse> {
    return this.#send({ callId: this.#callId, cseq: () => ++this.#cseq, contact: this.#contactUri, expires });
  }

  #failure(response: SipResponse): ClientError {
    const auth = response.status === 401 || response.status === 407;
    // the server's Warning says why (wrong password, locked out, another domain): keep it
    const warning = warningTextOf(response);
    return new ClientError(auth ? 'AUTH_FAILED' : 'REGISTER_FAILED', `REGISTER failed: ${response.status} ${response.reason}${warning === '' ? '' : `: ${warning}`}`, {
      status: response.status,
      reason: response.reason,
    });
  }

  #scheduleRefresh(expires: number): void {
    this.#refreshTimer.schedule(expires, () => {
      this.#serial(() => this.#register()).catch((error: unknown) => {
        this.#active = false;
        const failure = error instanceof ClientError ? error : new ClientError('REGISTER_FAILED', 'REGISTER refresh failed', { cause: error });
        this.#events.error(failure);
        this.#events.unregistered(failure);
      });
    });
  }

  #cancelRefresh(): void {
    this.#refreshTimer.cancel();
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    return this.#queue.run(operation);
  }
}

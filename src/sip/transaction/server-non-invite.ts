import type { SipRequest, SipResponse } from '../message.ts';
import { serialize } from '../serializer.ts';
import type { Flow } from '../transport/flow.ts';
import type { TimerSettings } from './timers.ts';

// RFC 3261 §17.2.2, Figure 8: the non-INVITE server transaction.
//
//   trying --1xx--> proceeding --final--> completed --Timer J--> terminated
//      \--------------final--------------/
export type ServerState = 'trying' | 'proceeding' | 'completed' | 'terminated';

const ALLOWED: Readonly<Record<ServerState, readonly ServerState[]>> = {
  trying: ['proceeding', 'completed', 'terminated'],
  proceeding: ['proceeding', 'completed', 'terminated'],
  completed: ['terminated'],
  terminated: [],
};

export class NonInviteServerTransaction {
  readonly key: string;
  readonly request: SipRequest;
  readonly flow: Flow;
  #state: ServerState = 'trying';
  #lastResponse: Buffer | undefined;
  #timerJ: NodeJS.Timeout | undefined;
  readonly #timers: TimerSettings;
  readonly #onTerminated: (tx: NonInviteServerTransaction) => void;

  constructor(key: string, request: SipRequest, flow: Flow, timers: TimerSettings, onTerminated: (tx: NonInviteServerTransaction) => void) {
    this.key = key;
    this.request = request;
    this.flow = flow;
    this.#timers = timers;
    this.#onTerminated = onTerminated;
  }

  get state(): ServerState {
    return this.#state;
  }

  /** true once a final response has been sent */
  get answered(): boolean {
    return this.#state === 'completed' || this.#state === 'terminated';
  }

  /** The TU's response. A response after the final one is a TU bug and is refused. */
  respond(response: SipResponse): void {
    if (this.answered) throw new Error(`transaction ${this.key} already answered; ${response.status} not sent`);
    const bytes = serialize(response);
    this.#lastResponse = bytes;
    if (response.status < 200) {
      this.#transition('proceeding');
      this.#send(bytes);
      return;
    }
    this.#transition('completed');
    this.#send(bytes);
    if (this.#state !== 'completed') return;
    // Timer J absorbs retransmissions of the request; zero on reliable transports.
    const j = this.flow.reliable ? 0 : 64 * this.#timers.t1;
    if (j === 0) this.#terminate();
    else this.#timerJ = setTimeout(() => this.#terminate(), j);
  }

  /** A retransmission of the request: answered with the last response, if any (§17.2.2). */
  receiveRetransmission(): void {
    if ((this.#state === 'proceeding' || this.#state === 'completed') && this.#lastResponse) this.#send(this.#lastResponse);
  }

  /** Ends the transaction without waiting (server shutdown). */
  dispose(): void {
    if (this.#state !== 'terminated') this.#terminate();
  }

  #send(bytes: Buffer): void {
    // §17.2.4: a transport error terminates the transaction; the TU has nothing left to do.
    if (!this.flow.send(bytes)) this.#terminate();
  }

  #terminate(): void {
    clearTimeout(this.#timerJ);
    this.#transition('terminated');
    this.#onTerminated(this);
  }

  #transition(to: ServerState): void {
    if (!ALLOWED[this.#state].includes(to)) throw new Error(`server transaction ${this.key}: illegal transition ${this.#state} -> ${to}`);
    this.#state = to;
  }
}

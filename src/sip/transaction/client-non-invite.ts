import type { SipRequest, SipResponse } from '../message.ts';
import { serialize } from '../serializer.ts';
import type { Flow } from '../transport/flow.ts';
import type { TimerSettings } from './timers.ts';

// RFC 3261 §17.1.2, Figure 6: the non-INVITE client transaction.
//
//   trying --1xx--> proceeding --final--> completed --Timer K--> terminated
//      \--------------final--------------/
//   Timer F or a transport error in trying/proceeding --> terminated (the TU is told)
export type ClientState = 'trying' | 'proceeding' | 'completed' | 'terminated';

const ALLOWED: Readonly<Record<ClientState, readonly ClientState[]>> = {
  trying: ['proceeding', 'completed', 'terminated'],
  proceeding: ['completed', 'terminated'],
  completed: ['terminated'],
  terminated: [],
};

export interface ClientTransactionUser {
  onProvisional?(response: SipResponse): void;
  onFinal(response: SipResponse): void;
  /** Timer F fired: no final response in 64·T1 */
  onTimeout(): void;
  /** the flow could not carry the request */
  onTransportError(): void;
}

export class NonInviteClientTransaction {
  readonly key: string;
  readonly request: SipRequest;
  readonly flow: Flow;
  #state: ClientState = 'trying';
  #bytes: Buffer;
  #interval: number;
  #timerE: NodeJS.Timeout | undefined;
  #timerF: NodeJS.Timeout | undefined;
  #timerK: NodeJS.Timeout | undefined;
  readonly #timers: TimerSettings;
  readonly #user: ClientTransactionUser;
  readonly #onTerminated: (tx: NonInviteClientTransaction) => void;

  constructor(key: string, request: SipRequest, flow: Flow, timers: TimerSettings, user: ClientTransactionUser, onTerminated: (tx: NonInviteClientTransaction) => void) {
    this.key = key;
    this.request = request;
    this.flow = flow;
    this.#timers = timers;
    this.#user = user;
    this.#onTerminated = onTerminated;
    this.#bytes = serialize(request);
    this.#interval = timers.t1;
  }

  get state(): ClientState {
    return this.#state;
  }

  start(): void {
    if (!this.flow.send(this.#bytes)) {
      this.#fail(() => this.#user.onTransportError());
      return;
    }
    // Timer E retransmits only over unreliable transports (§17.1.2.1).
    if (!this.flow.reliable) this.#timerE = setTimeout(() => this.#retransmit(), this.#interval);
    this.#timerF = setTimeout(() => this.#fail(() => this.#user.onTimeout()), 64 * this.#timers.t1);
  }

  receiveResponse(response: SipResponse): void {
    if (this.#state === 'completed' || this.#state === 'terminated') return; // retransmission: absorbed
    if (response.status < 200) {
      if (this.#state === 'trying') this.#transition('proceeding');
      this.#user.onProvisional?.(response);
      return;
    }
    clearTimeout(this.#timerE);
    clearTimeout(this.#timerF);
    this.#transition('completed');
    this.#user.onFinal(response);
    // Timer K absorbs response retransmissions; zero on reliable transports.
    const k = this.flow.reliable ? 0 : this.#timers.t4;
    if (k === 0) this.#terminate();
    else this.#timerK = setTimeout(() => this.#terminate(), k);
  }

  dispose(): void {
    if (this.#state !== 'terminated') this.#terminate();
  }

  #retransmit(): void {
    if (this.#state !== 'trying' && this.#state !== 'proceeding') return;
    if (!this.flow.send(this.#bytes)) {
      this.#fail(() => this.#user.onTransportError());
      return;
    }
    // In proceeding the interval stays at T2; in trying it doubles up to T2.
    this.#interval = this.#state === 'proceeding' ? this.#timers.t2 : Math.min(2 * this.#interval, this.#timers.t2);
    this.#timerE = setTimeout(() => this.#retransmit(), this.#interval);
  }

  #fail(tell: () => void): void {
    if (this.#state === 'completed' || this.#state === 'terminated') return;
    this.#terminate();
    tell();
  }

  #terminate(): void {
    clearTimeout(this.#timerE);
    clearTimeout(this.#timerF);
    clearTimeout(this.#timerK);
    this.#transition('terminated');
    this.#onTerminated(this);
  }

  #transition(to: ClientState): void {
    if (!ALLOWED[this.#state].includes(to)) throw new Error(`client transaction ${this.key}: illegal transition ${this.#state} -> ${to}`);
    this.#state = to;
  }
}

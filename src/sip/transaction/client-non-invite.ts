import type { SipRequest, SipResponse } from '../message.ts';
import { serialize } from '../serializer.ts';
import type { Flow } from '../transport/flow.ts';
import type { TimerSettings } from './timers.ts';
import { DeadlineWheel } from './deadline-wheel.ts';
import type { Expiring, Slot } from './deadline-wheel.ts';

// RFC 3261 §17.1.2, Figure 6: the non-INVITE client transaction.
//
//   trying --1xx--> proceeding --final--> completed --Timer K--> terminated
//      \--------------final--------------/
//   Timer F or a transport error in trying/proceeding --> terminated (the TU is told)
//
// The request is kept serialised, for Timer E, only until the final response; Timer K is the
// transaction layer's: it keeps only a fingerprint of the key (layer.ts, answered.ts).
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

const NO_BYTES = Buffer.alloc(0);
const ANSWERED: ClientTransactionUser = { onFinal() {}, onTimeout() {}, onTransportError() {} };

/** What the transaction layer does for a transaction at the end of its life. */
export interface ClientTransactionOwner {
  /**
   * A final response came over an unreliable flow: the owner absorbs retransmissions of it until
   * Timer K, without the transaction object (which stays 'completed').
   */
  awaitTimerK(tx: NonInviteClientTransaction): void;
  terminated(tx: NonInviteClientTransaction): void;
}

/** Timer F over reliable flows, one wheel per duration (64·T1) for every transaction (deadline-wheel.ts) */
const timerFWheels = new Map<number, DeadlineWheel<NonInviteClientTransaction>>();

function timerFWheel(ms: number): DeadlineWheel<NonInviteClientTransaction> {
  let wheel = timerFWheels.get(ms);
  if (wheel === undefined) timerFWheels.set(ms, (wheel = new DeadlineWheel(ms)));
  return wheel;
}

export class NonInviteClientTransaction implements Expiring {
  readonly key: string;
  readonly flow: Flow;
  #state: ClientState = 'trying';
  /**
   * The serialised request while it may be sent: over an unreliable flow until the final response
   * (Timer E), over a reliable one until start() (text the sender made is kept as text: a stream
   * flow writes it without a Buffer, Flow.sendText); NO_BYTES after.
   */
  #bytes: Buffer | string;
  #interval: number;
  /**
   * Over an unreliable flow Timers E and F are one timer: it runs until the next of the two is due
   * (one setTimeout and one clearTimeout per request instead of two of each), `#waited` saying how
   * long the transaction has waited through it, `#next` how long it runs this time.
   */
  #timer: NodeJS.Timeout | undefined;
  #waited = 0;
  #next = 0;
  /** Timer F's place on the wheel, over a reliable flow */
  #timerFSlot: Slot<NonInviteClientTransaction> | undefined;
  readonly #timers: TimerSettings;
  #user: ClientTransactionUser;
  readonly #owner: ClientTransactionOwner;

  /** `request`: the message, or its bytes or text when the sender serialised it (TransactionLayer.sendPrepared) */
  constructor(key: string, request: SipRequest | Buffer | string, flow: Flow, timers: TimerSettings, user: ClientTransactionUser, owner: ClientTransactionOwner) {
    this.key = key;
    this.flow = flow;
    this.#timers = timers;
    this.#user = user;
    this.#owner = owner;
    if (typeof request === 'string') this.#bytes = flow.reliable && flow.sendText !== undefined ? request : Buffer.from(request, 'utf8');
    else this.#bytes = Buffer.isBuffer(request) ? request : serialize(request);
    this.#interval = timers.t1;
  }

  get state(): ClientState {
    return this.#state;
  }

  start(): void {
    const bytes = this.#bytes;
    const sent = typeof bytes === 'string' ? this.flow.sendText?.(bytes) === true : this.flow.send(bytes);
    if (!sent) {
      this.#fail(() => this.#user.onTransportError());
      return;
    }
    // Timer E retransmits only over unreliable transports (§17.1.2.1).
    if (!this.flow.reliable) {
      this.#schedule();
    } else {
      // nothing is sent again over a reliable flow: the bytes need not wait for the answer
      this.#bytes = NO_BYTES;
      this.#timerFSlot = timerFWheel(64 * this.#timers.t1).add(this);
    }
  }

  /** Timer F fired: no final response in 64·T1. */
  expire(): void {
    this.#fail(() => this.#user.onTimeout());
  }

  receiveResponse(response: SipResponse): void {
    if (this.#state === 'completed' || this.#state === 'terminated') return; // retransmission: absorbed
    if (response.status < 200) {
      if (this.#state === 'trying') this.#transition('proceeding');
      this.#user.onProvisional?.(response);
      return;
    }
    this.#stopTimers();
    this.#bytes = NO_BYTES;
    this.#transition('completed');
    // Timer K only absorbs retransmissions: it need not keep the TU's callbacks (and what they hold) alive
    const user = this.#user;
    this.#user = ANSWERED;
    user.onFinal(response);
    // Timer K absorbs response retransmissions; zero on reliable transports.
    if (this.flow.reliable) this.#terminate();
    else this.#owner.awaitTimerK(this);
  }

  dispose(): void {
    if (this.#state !== 'terminated') this.#terminate();
  }

  /** The timer of an unreliable flow, until Timer E (the interval) or Timer F (64·T1 from the start), whichever is first. */
  #schedule(): void {
    this.#next = Math.min(this.#interval, 64 * this.#timers.t1 - this.#waited);
    this.#timer = setTimeout(() => this.#due(), this.#next);
  }

  /** Timer F when 64·T1 have gone by, else Timer E. */
  #due(): void {
    this.#timer = undefined;
    this.#waited += this.#next;
    if (this.#waited >= 64 * this.#timers.t1) this.expire();
    else this.#retransmit();
  }

  #retransmit(): void {
    if (this.#state !== 'trying' && this.#state !== 'proceeding') return;
    // unreliable flows only: their bytes are a Buffer (the constructor)
    if (!this.flow.send(this.#bytes as Buffer)) {
      this.#fail(() => this.#user.onTransportError());
      return;
    }
    // In proceeding the interval stays at T2; in trying it doubles up to T2.
    this.#interval = this.#state === 'proceeding' ? this.#timers.t2 : Math.min(2 * this.#interval, this.#timers.t2);
    this.#schedule();
  }

  #fail(tell: () => void): void {
    if (this.#state === 'completed' || this.#state === 'terminated') return;
    this.#terminate();
    tell();
  }

  #terminate(): void {
    this.#stopTimers();
    this.#bytes = NO_BYTES;
    this.#transition('terminated');
    this.#owner.terminated(this);
  }

  /** Timers E and F are done with; a cleared timer object is let go too, not kept through Timer K */
  #stopTimers(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#timerFSlot !== undefined) timerFWheel(64 * this.#timers.t1).cancel(this.#timerFSlot, this);
    this.#timerFSlot = undefined;
  }

  #transition(to: ClientState): void {
    if (!ALLOWED[this.#state].includes(to)) throw new Error(`client transaction ${this.key}: illegal transition ${this.#state} -> ${to}`);
    this.#state = to;
  }
}

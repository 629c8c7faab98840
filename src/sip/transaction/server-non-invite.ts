import type { SipResponse } from '../message.ts';
import { serialize } from '../serializer.ts';
import type { Flow } from '../transport/flow.ts';
import type { KeptResponse, ResponseLog } from './response-log.ts';

// RFC 3261 §17.2.2, Figure 8: the non-INVITE server transaction.
//
//   trying --1xx--> proceeding --final--> completed --Timer J--> terminated
//      \--------------final--------------/
//
// The transaction keeps only what it needs: the request goes to the TU and is not held here, and
// a provisional response is kept, to answer retransmissions, in the transaction layer's response
// log, outside the JS heap (see response-log.ts). Once completed over UDP the object is let go:
// the layer keeps the key and the final response until Timer J (completed.ts), and answers
// retransmissions from them; the object the TU may still hold stays 'completed'.
export type ServerState = 'trying' | 'proceeding' | 'completed' | 'terminated';

const ALLOWED: Readonly<Record<ServerState, readonly ServerState[]>> = {
  trying: ['proceeding', 'completed', 'terminated'],
  proceeding: ['proceeding', 'completed', 'terminated'],
  completed: ['terminated'],
  terminated: [],
};

export interface RespondOptions {
  /**
   * End the transaction with this final response instead of keeping it for Timer J, so that a
   * retransmitted request is handled anew. Only for answers the TU gives again to a retransmission,
   * as a stateless server does (§8.2.7): a digest challenge (a new nonce each time is fine), a
   * registrar's 200 (with `answerAgain`).
   */
  stateless?: boolean;
  /**
   * With `stateless`, over an unreliable transport: for Timer J's time, a retransmission of the
   * request is handed to the TU again marked as one (`retransmission`), for it to answer as it did,
   * having kept nothing but a fingerprint of the key (answered.ts). For answers a TU can give again
   * once it knows the request is a retransmission, but not from the request alone: a registrar's.
   */
  answerAgain?: boolean;
}

/** What the transaction layer does for a transaction at the end of its life. */
export interface ServerTransactionOwner {
  /** where the last response sent is kept */
  readonly responses: ResponseLog;
  /**
   * A final response was sent over an unreliable flow: the owner answers retransmissions with it
   * until Timer J, without the transaction object (completed.ts), which stays 'completed'.
   */
  completed(tx: NonInviteServerTransaction, response: Buffer): void;
  /** a final response was sent with `answerAgain` over an unreliable flow: remember the request was answered */
  answered(tx: NonInviteServerTransaction): void;
  terminated(tx: NonInviteServerTransaction): void;
}

export class NonInviteServerTransaction {
  readonly key: string;
  readonly flow: Flow;
  /**
   * The request is a retransmission of one whose transaction ended at a final response sent with
   * `answerAgain` (or, once in 2^30, one whose key has the same fingerprint): the TU answers it as
   * it answered that one.
   */
  readonly retransmission: boolean;
  #state: ServerState = 'trying';
  /** the last response sent, in the owner's response log */
  #lastResponse: KeptResponse | undefined;
  readonly #owner: ServerTransactionOwner;

  constructor(key: string, flow: Flow, owner: ServerTransactionOwner, retransmission = false) {
    this.key = key;
    this.flow = flow;
    this.retransmission = retransmission;
    this.#owner = owner;
  }

  get state(): ServerState {
    return this.#state;
  }

  /** true once a final response has been sent */
  get answered(): boolean {
    return this.#state === 'completed' || this.#state === 'terminated';
  }

  /** The TU's response. A response after the final one is a TU bug and is refused. */
  respond(response: SipResponse, options: RespondOptions = {}): void {
    if (this.answered) throw new Error(`transaction ${this.key} already answered; ${response.status} not sent`);
    const bytes = serialize(response);
    if (response.status < 200) {
      this.#keep(bytes);
      this.#transition('proceeding');
      this.#send(bytes);
      return;
    }
    this.#transition('completed');
    if (!this.#send(bytes)) return;
    // Timer J absorbs retransmissions of the request; it is zero on reliable transports.
    if (this.flow.reliable || options.stateless === true) {
      if (!this.flow.reliable && options.answerAgain === true) this.#owner.answered(this);
      this.#terminate();
      return;
    }
    this.#forget();
    this.#owner.completed(this, bytes);
  }

  /** A retransmission of the request: answered with the last response, if any (§17.2.2). */
  receiveRetransmission(): void {
    if ((this.#state === 'proceeding' || this.#state === 'completed') && this.#lastResponse !== undefined) {
      this.#send(this.#owner.responses.read(this.#lastResponse));
    }
  }

  /** Timer J fired, or the server is shutting down. */
  dispose(): void {
    if (this.#state !== 'terminated') this.#terminate();
  }

  #send(bytes: Buffer): boolean {
    // §17.2.4: a transport error terminates the transaction; the TU has nothing left to do.
    if (this.flow.send(bytes)) return true;
    this.#terminate();
    return false;
  }

  /** Keeps `bytes` as the last response, in place of any earlier one. */
  #keep(bytes: Buffer): void {
    this.#forget();
    this.#lastResponse = this.#owner.responses.keep(bytes);
  }

  #forget(): void {
    if (this.#lastResponse === undefined) return;
    this.#owner.responses.release(this.#lastResponse);
    this.#lastResponse = undefined;
  }

  #terminate(): void {
    this.#forget();
    this.#transition('terminated');
    this.#owner.terminated(this);
  }

  #transition(to: ServerState): void {
    if (!ALLOWED[this.#state].includes(to)) throw new Error(`server transaction ${this.key}: illegal transition ${this.#state} -> ${to}`);
    this.#state = to;
  }
}

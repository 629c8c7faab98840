import type { SipMessage, SipRequest, SipResponse, Via } from '../message.ts';
import type { Flow } from '../transport/flow.ts';
import { NonInviteClientTransaction, type ClientTransactionOwner, type ClientTransactionUser } from './client-non-invite.ts';
import { AnsweredRequests } from './answered.ts';
import { CompletedTransactions } from './completed.ts';
import { clientTransactionKey, serverTransactionKey } from './keys.ts';
import { ResponseLog } from './response-log.ts';
import { NonInviteServerTransaction, type ServerTransactionOwner } from './server-non-invite.ts';
import type { TimerSettings } from './timers.ts';

export interface TransactionUser {
  /**
   * A new request. `tx` is its server transaction; null for INVITE and ACK, which Parley answers
   * statelessly (it serves IM and presence, not calls: no INVITE transaction is kept).
   */
  onRequest(request: SipRequest, flow: Flow, tx: NonInviteServerTransaction | null): void;
}

/** Matches messages to transactions (RFC 3261 §17.1.3, §17.2.3) and keeps them while they live. */
export class TransactionLayer {
  readonly #server = new Map<string, NonInviteServerTransaction>();
  readonly #client = new Map<string, NonInviteClientTransaction>();
  readonly #timers: TimerSettings;
  readonly #user: TransactionUser;
  /** completed over UDP, until Timer J: key and final response only (completed.ts) */
  readonly #completed: CompletedTransactions;
  /** requests answered with `answerAgain`, for Timer J's time: fingerprints only (answered.ts) */
  readonly #answered: AnsweredRequests;
  /**
   * client transactions completed over UDP, for Timer K (T4; kept T4 to 2·T4): fingerprints of their
   * keys only (answered.ts), which absorb retransmissions of the final response. The objects were
   * ~60 % of the heap that lived past a scavenge at 2,400 relayed MESSAGEs/s (12,000 transactions
   * with their keys and Map and queue slots for 5 s), all of it promoted and collected again.
   */
  readonly #timerK: AnsweredRequests;
  readonly #serverOwner: ServerTransactionOwner;
  readonly #clientOwner: ClientTransactionOwner;

  constructor(timers: TimerSettings, user: TransactionUser) {
    this.#timers = timers;
    this.#user = user;
    const timerJ = 64 * timers.t1;
    this.#completed = new CompletedTransactions(timerJ, 2 * timers.t1, Math.min(timers.completedResponse ?? timerJ, timerJ));
    this.#answered = new AnsweredRequests(64 * timers.t1);
    this.#timerK = new AnsweredRequests(timers.t4);
    this.#serverOwner = {
      responses: new ResponseLog(),
      completed: (tx, response) => {
        if (this.#server.get(tx.key) === tx) this.#server.delete(tx.key);
        this.#completed.add(tx.key, response);
      },
      answered: (tx) => this.#answered.add(tx.key),
      terminated: (tx) => {
        if (this.#server.get(tx.key) === tx) this.#server.delete(tx.key);
      },
    };
    this.#clientOwner = {
      awaitTimerK: (tx) => {
        if (this.#client.get(tx.key) === tx) this.#client.delete(tx.key);
        this.#timerK.add(tx.key);
      },
      terminated: (tx) => {
        if (this.#client.get(tx.key) === tx) this.#client.delete(tx.key);
      },
    };
  }

  /**
   * A parsed message from a transport (`topVia`: a request's top Via, when the caller has parsed it
   * already). Returns false for a response no transaction claims.
   */
  receive(message: SipMessage, flow: Flow, topVia?: Via): boolean {
    if (message.kind === 'response') return this.#receiveResponse(message);
    const method = message.method;
    if (method === 'INVITE' || method === 'ACK') {
      this.#user.onRequest(message, flow, null);
      return true;
    }
    const key = serverTransactionKey(message, method, topVia);
    const existing = this.#server.get(key);
    if (existing) {
      existing.receiveRetransmission();
      return true;
    }
    if (!flow.reliable) {
      // §17.2.2: in the completed state a retransmission gets the final response again
      const response = this.#completed.response(key);
      if (response !== undefined) {
        if (response !== 'absorbed') flow.send(response);
        return true;
      }
    }
    const tx = new NonInviteServerTransaction(key, flow, this.#serverOwner, !flow.reliable && this.#answered.has(key));
    this.#server.set(key, tx);
    this.#user.onRequest(message, flow, tx);
    return true;
  }

  /** Sends a request in a new client transaction. The request's top Via must carry a unique branch. */
  sendRequest(request: SipRequest, flow: Flow, user: ClientTransactionUser): NonInviteClientTransaction {
    const key = clientTransactionKey(request);
    const tx = new NonInviteClientTransaction(key, request, flow, this.#timers, user, this.#clientOwner);
    this.#client.set(key, tx);
    tx.start();
    return tx;
  }

  /**
   * A request serialised by its sender (bytes, or text sent as UTF-8) with its client transaction
   * key (what clientTransactionKey gives for it): a presence fan-out fills a NOTIFY template per
   * watcher (src/events/notifier.ts) rather than building, serialising and parsing again 10,000 of
   * them, and a stream flow writes the text without a Buffer made for it (Flow.sendText).
   */
  sendPrepared(key: string, bytes: Buffer | string, flow: Flow, user: ClientTransactionUser): NonInviteClientTransaction {
    const tx = new NonInviteClientTransaction(key, bytes, flow, this.#timers, user, this.#clientOwner);
    this.#client.set(key, tx);
    tx.start();
    return tx;
  }

  /** transactions kept: `server` counts those completed, waiting for Timer J; `client` those waiting for Timer K */
  get size(): { server: number; client: number } {
    return { server: this.#server.size + this.#completed.size, client: this.#client.size + this.#timerK.size };
  }

  /** requests answered with `answerAgain` still remembered (fingerprints) */
  get answeredSize(): number {
    return this.#answered.size;
  }

  close(): void {
    this.#answered.clear();
    this.#completed.clear();
    this.#timerK.clear();
    for (const tx of [...this.#server.values()]) tx.dispose();
    for (const tx of [...this.#client.values()]) tx.dispose();
  }

  #receiveResponse(response: SipResponse): boolean {
    const key = clientTransactionKey(response);
    const tx = this.#client.get(key);
    // a retransmission of a final response during Timer K is absorbed (§17.1.2.2)
    if (!tx) return this.#timerK.has(key);
    tx.receiveResponse(response);
    return true;
  }
}

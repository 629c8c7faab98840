// RFC 3261 §17.1.1.1 and Table 4. T1 is configurable so tests can run the state machines quickly.
export interface TimerSettings {
  /** RTT estimate, default 500 ms */
  t1: number;
  /** maximum retransmit interval for non-INVITE requests, default 4 s */
  t2: number;
  /** maximum time a message stays in the network, default 5 s */
  t4: number;
  /**
   * How long a non-INVITE server transaction completed over UDP keeps its final response to answer
   * retransmitted requests; Timer J (64·T1) when not given, as RFC 3261 §17.2.2 has it. Shorter, a
   * retransmission that comes after it is absorbed unanswered until Timer J (completed.ts).
   */
  completedResponse?: number;
}

export const DEFAULT_TIMERS: TimerSettings = { t1: 500, t2: 4000, t4: 5000 };

// The NOTIFY client transaction's own cost (issue 20, presence fan-out): N NOTIFYs sent in client
// transactions over reliable flows whose write does nothing (TransactionLayer.sendPrepared, as the
// notifier sends them), then each one's 200 matched and completed (TransactionLayer.receive with
// the response parsed beforehand). What is left is the transaction layer's part of a fan-out: the
// transaction, its key, Timer F's wheel, the maps; no socket, no parse.
//
//   node bench/notify-transaction-micro.ts [--notifies 10000] [--rounds 30]
//
// Prints the CPU time per NOTIFY (send + 200; process.cpuUsage, so that other load on the core
// counts less than in wall time), the median of the later rounds, and the bytes
// allocated per NOTIFY (heap used before and after a round, no GC between: --expose-gc is asked for).

import { parseArgs } from 'node:util';
import { DEFAULT_TIMERS, newBranch, parseMessage, TransactionLayer } from '../src/sip/index.ts';
import type { Flow, SipResponse } from '../src/sip/index.ts';

const { values } = parseArgs({ options: { notifies: { type: 'string' }, rounds: { type: 'string' } } });
const n = Number(values.notifies ?? 10_000);
const rounds = Number(values.rounds ?? 30);

const flow: Flow = {
  id: 'tcp:127.0.0.1:5060>127.0.0.1:40000#1',
  protocol: 'tcp',
  local: { address: '127.0.0.1', port: 5060 },
  remote: { address: '127.0.0.1', port: 40000 },
  reliable: true,
  closed: false,
  send: () => true,
  sendText: () => true,
};
const layer = new TransactionLayer(DEFAULT_TIMERS, { onRequest() {} });
let answered = 0;
const user = { onFinal() { answered++; }, onTimeout() {}, onTransportError() {} };

const notify = (branch: string) => `NOTIFY sip:w@127.0.0.1:40000;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=${branch}\r\nCSeq: 2 NOTIFY\r\nContent-Length: 0\r\n\r\n`;
const ok = (branch: string) => parseMessage(Buffer.from(`SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=${branch}\r\nFrom: <sip:b@x>;tag=1\r\nTo: <sip:w@x>;tag=2\r\nCall-ID: c\r\nCSeq: 2 NOTIFY\r\nContent-Length: 0\r\n\r\n`)) as SipResponse;

const perRound: number[] = [];
const allocated: number[] = [];
for (let r = 0; r < rounds; r++) {
  const branches = Array.from({ length: n }, () => newBranch());
  const texts = branches.map(notify);
  const responses = branches.map(ok);
  globalThis.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) layer.sendPrepared(`${branches[i]}|NOTIFY`, texts[i]!, flow, user);
  for (let i = 0; i < n; i++) layer.receive(responses[i]!, flow);
  const cpu = process.cpuUsage(cpu0);
  const ns = (cpu.user + cpu.system) * 1000;
  allocated.push((process.memoryUsage().heapUsed - heap0) / n);
  perRound.push(ns / n);
}
if (answered !== n * rounds) throw new Error(`answered ${answered} of ${n * rounds}`);
layer.close();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const later = perRound.slice(Math.floor(rounds / 3)); // after the optimising compiler has run
process.stdout.write(`NOTIFY transaction (send + 200), ${n} per round: median ${Math.round(median(later))} ns per NOTIFY (min ${Math.round(Math.min(...later))}), heap ${Math.round(median(allocated.slice(Math.floor(rounds / 3))))} B per NOTIFY\n`);

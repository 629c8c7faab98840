// The public API of the SIP layer; other capabilities import from here, never from the files
// (the client SDK imports pure.ts, the socket-free part, so that it bundles for a browser).
export * from './pure.ts';
export type { TimerSettings } from './transaction/timers.ts';
export { DEFAULT_TIMERS } from './transaction/timers.ts';
export { MAGIC_COOKIE, newBranch } from './transaction/keys.ts';
export { TransactionLayer, type TransactionUser } from './transaction/layer.ts';
export type { NonInviteServerTransaction } from './transaction/server-non-invite.ts';
export type { ClientTransactionUser, NonInviteClientTransaction } from './transaction/client-non-invite.ts';
export { DeadlineWheel, type Expiring, type Slot } from './transaction/deadline-wheel.ts';
export * from './transport/flow.ts';
export { deliverUnit, type TransportSink } from './transport/sink.ts';
export { isRoutable, isWildcardAddress, localAddressFor, plainAddress, type InterfaceAddress } from './transport/address.ts';
export { stampReceived } from './transport/received.ts';
export { listenUdp, type UdpListener } from './transport/udp.ts';
export { connectStream, listenStream, type PartnerSide, type StreamConnectOptions, type StreamConnectResult, type StreamListener } from './transport/stream.ts';
export { CONNECTION_GUARD_CODES, ConnectionGuard, DEFAULT_CONNECTION_LIMITS, GuardedConnection, sourceOf } from './transport/guard.ts';
export type { ConnectionGuardCode, ConnectionGuardEvent, ConnectionLimits } from './transport/guard.ts';
export { WebSocketMeter } from './transport/ws-meter.ts';
export { createWebSocketAcceptor, type WebSocketAcceptor } from './transport/websocket.ts';
export { warmSipPaths } from './warm.ts';

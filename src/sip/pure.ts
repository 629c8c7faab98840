// The socket-free part of the SIP layer: message model, grammar, parser, framing, serializer,
// digest computations, CPIM. The client SDK imports this instead of index.ts, so that a browser
// bundle of it reaches no transport (dgram, net, tls, ws); the few Node modules these files
// use (node:crypto hashes, node:net isIPv6, node:buffer) are shimmed by src/client/browser/.
// index.ts re-exports all of it: server code keeps importing from index.ts.
export * from './message.ts';
export * from './errors.ts';
export * from './limits.ts';
export * from './grammar.ts';
export { parseMessage } from './parser.ts';
export { checkRequest, nameAddrFault } from './validate.ts';
export { detach } from './chars.ts';
export * from './framing.ts';
export * from './serializer.ts';
export * from './digest.ts';
export * from './response.ts';
export { cpimDateTime, headerValue as cpimHeader, parseCpim, parseRfc3339, type CpimHeader, type CpimMessage } from './cpim.ts';

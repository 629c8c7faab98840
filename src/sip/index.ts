// The public API of the SIP layer; other capabilities import from here, never from the files.
export * from './message.ts';
export * from './errors.ts';
export * from './limits.ts';
export * from './grammar.ts';
export { parseMessage } from './parser.ts';
export * from './framing.ts';
export * from './serializer.ts';

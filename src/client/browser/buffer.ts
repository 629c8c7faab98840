// node:buffer in a browser bundle: the `buffer` npm package's Buffer (the same API over a
// Uint8Array, as src/sip's message model and parser use it) and isUtf8, which that package lacks.
// The browser build aliases node:buffer here and injects this Buffer for the global name.
// Not supported by that Buffer: the 'base64url' encoding, which only the server's nonce code uses.

import { Buffer } from 'buffer';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether the bytes are valid UTF-8 (node:buffer isUtf8). */
export function isUtf8(input: Uint8Array): boolean {
  try {
    strictUtf8.decode(input);
    return true;
  } catch {
    return false;
  }
}

export { Buffer };

// Random identifiers people read and type: RFC 4648 base32 in lower case (no 0/1/8/9 to confuse
// with letters), from the system's cryptographic random source.

import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** `bytes` random bytes as base32, 8 characters for every 5 bytes (10 bytes: 16 characters, 80 bits). */
export function randomBase32(bytes: number): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of randomBytes(bytes)) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

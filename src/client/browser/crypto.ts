// node:crypto in a browser bundle: the calls src/sip makes (digest.ts, random.ts, response.ts),
// over @noble/hashes (pure JavaScript MD5, SHA-1, SHA-256: Web Crypto has no MD5 and is
// asynchronous, while digest answers are computed synchronously) and crypto.getRandomValues.

import { md5, sha1 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { Buffer } from './buffer.ts';

const HASHES: Readonly<Record<string, (data: Uint8Array) => Uint8Array>> = { md5, sha1, sha256, 'sha-256': sha256 };
const utf8 = new TextEncoder();

export type HashEncoding = 'hex' | 'base64' | 'base64url' | 'buffer';

/** crypto.hash(algorithm, data, outputEncoding): one-shot digest; a string is hashed as UTF-8, as Node does. */
export function hash(algorithm: string, data: string | Uint8Array, outputEncoding: HashEncoding = 'hex'): string | Buffer {
  const digest = HASHES[algorithm.toLowerCase()];
  if (digest === undefined) throw new Error(`Digest method not supported in this bundle: ${algorithm}`);
  const out = digest(typeof data === 'string' ? utf8.encode(data) : data);
  const bytes = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  switch (outputEncoding) {
    case 'buffer':
      return bytes;
    case 'hex':
    case 'base64':
      return bytes.toString(outputEncoding);
    case 'base64url':
      // RFC 4648 §5, unpadded as Node writes it (the buffer package has no base64url)
      return bytes.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    default:
      throw new Error(`Unknown output encoding: ${String(outputEncoding)}`);
  }
}

/** crypto.getRandomValues fills at most 65 536 bytes per call (Web Crypto's quota). */
export function randomFillSync<T extends Uint8Array>(target: T, offset = 0, size = target.length - offset): T {
  for (let at = offset; at < offset + size; at += 65_536) {
    crypto.getRandomValues(target.subarray(at, Math.min(offset + size, at + 65_536)));
  }
  return target;
}

export function randomBytes(size: number): Buffer {
  return randomFillSync(Buffer.alloc(size));
}

/** Compares in time that depends only on the length, as node:crypto does; throws on different lengths as it does. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) throw new RangeError('Input buffers must have the same byte length');
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

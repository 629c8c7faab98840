// Random identifiers for tags, branches and Call-IDs (RFC 3261 §8.1.1.4, §8.1.1.7, §19.3), from
// the Web Crypto API available in Node 24 and browsers alike.

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** `length` characters drawn uniformly from [A-Za-z0-9] (62 symbols, ~5.95 bits each). */
export function randomToken(length: number): string {
  const out: string[] = [];
  const bytes = new Uint8Array(length * 2);
  while (out.length < length) {
    crypto.getRandomValues(bytes);
    for (const b of bytes) {
      // 248 = 4 × 62: reject the top bytes so every symbol is equally likely
      if (b < 248 && out.length < length) out.push(ALPHABET[b % 62] ?? 'x');
    }
  }
  return out.join('');
}

/** RFC 3261 §8.1.1.7: the branch starts with the magic cookie z9hG4bK and is unique per transaction. */
export function newBranch(): string {
  return `z9hG4bK${randomToken(22)}`;
}

/** RFC 3261 §19.3: at least 32 bits of randomness. */
export function newTag(): string {
  return randomToken(12);
}

export function newCallId(): string {
  return randomToken(24);
}

// Bytes written as their differences from a reference: the responses a server keeps for Timer J
// (completed.ts) are nearly all alike — the same status line, header names, domain, Server and
// Content-Length; what differs is a branch, tags, a Call-ID, a user — so each is kept as copies of
// runs of a similar response kept before it, and literals for the rest: a 202 to an offline
// MESSAGE of 440 bytes (key and response) becomes ~100. Decoding needs the same reference.
//
// The format is a byte stream of two kinds of op:
//   0lllllll, then l + 1 literal bytes (1-128)
//   1ccccccc pp pp: copy c + MIN_MATCH bytes (4-131) from position pppp (little-endian) of the reference
// References are at most 65,535 bytes (positions fit in 16 bits); longer ones are used up to there.
//
// The encoder is greedy, one pass, LZ77-like with the reference as the only dictionary: at each
// position it tries where the last copy left off in the reference (fields come in the same order
// in both) and the last place a hash of the next 4 bytes was seen in it, and takes the longer run.

const MIN_MATCH = 4;
const MAX_MATCH = 127 + MIN_MATCH;
const MAX_LITERALS = 128;
const MAX_REFERENCE = 0xffff;
const HASH_BITS = 11;

/** A reference prepared for encoding: its bytes and where each hash of 4 bytes was last seen. */
export interface DeltaReference {
  readonly bytes: Uint8Array;
  /** hash of 4 bytes → their last position + 1 (0: not seen) */
  readonly seen: Uint16Array;
}

function hash4(b: Uint8Array, i: number): number {
  const v = ((b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24)) >>> 0;
  return Math.imul(v, 0x9e3779b1) >>> (32 - HASH_BITS);
}

/** Prepares `bytes` (its first 65,535, if longer) to encode others against. */
export function deltaReference(bytes: Uint8Array): DeltaReference {
  const ref = bytes.length > MAX_REFERENCE ? bytes.subarray(0, MAX_REFERENCE) : bytes;
  const seen = new Uint16Array(1 << HASH_BITS);
  for (let i = 0; i + MIN_MATCH <= ref.length; i++) seen[hash4(ref, i)] = i + 1;
  return { bytes: ref, seen };
}

/** The longest encoding of `length` bytes: all literals, one op byte per 128. */
export function maxDeltaLength(length: number): number {
  return length + Math.ceil(length / MAX_LITERALS);
}

/**
 * Writes `input` encoded against `ref` into `out` at `at` (room for maxDeltaLength(input.length)
 * bytes needed); returns the encoding's length.
 */
export function encodeDelta(input: Uint8Array, ref: DeltaReference, out: Uint8Array, at: number): number {
  const r = ref.bytes;
  const rLength = r.length;
  const seen = ref.seen;
  let o = at;
  /** where the pending literals start in `input` */
  let literals = 0;
  /** in the reference, where the last copy ended */
  let next = 0;
  let i = 0;
  while (i + MIN_MATCH <= input.length) {
    let best = 0;
    let from = 0;
    const limit = Math.min(MAX_MATCH, input.length - i);
    // where the last copy left off: fields come in the same order
    if (r[next] === input[i]) {
      const most = Math.min(limit, rLength - next);
      let n = 1;
      while (n < most && r[next + n] === input[i + n]) n++;
      if (n >= MIN_MATCH) {
        best = n;
        from = next;
      }
    }
    if (best < limit) {
      const p = (seen[hash4(input, i)] as number) - 1;
      if (p >= 0 && p !== from) {
        const most = Math.min(limit, rLength - p);
        let n = 0;
        while (n < most && r[p + n] === input[i + n]) n++;
        if (n > best && n >= MIN_MATCH) {
          best = n;
          from = p;
        }
      }
    }
    if (best === 0) {
      i++;
      continue;
    }
    o = writeLiterals(input, literals, i, out, o);
    out[o++] = 0x80 | (best - MIN_MATCH);
    out[o++] = from & 0xff;
    out[o++] = from >>> 8;
    i += best;
    literals = i;
    next = from + best;
  }
  return writeLiterals(input, literals, input.length, out, o) - at;
}

/** Writes input[from, to) as literal ops at out[o]; returns where they end. */
function writeLiterals(input: Uint8Array, from: number, to: number, out: Uint8Array, o: number): number {
  while (from < to) {
    const n = Math.min(to - from, MAX_LITERALS);
    out[o++] = n - 1;
    for (let k = 0; k < n; k++) out[o++] = input[from++] as number;
  }
  return o;
}

/** The `length` bytes encoded in `encoded` against the reference bytes `ref`. */
export function decodeDelta(encoded: Uint8Array, ref: Uint8Array, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let o = 0;
  let i = 0;
  while (i < encoded.length) {
    const op = encoded[i++] as number;
    if (op < 0x80) {
      const n = op + 1;
      out.set(encoded.subarray(i, i + n), o);
      i += n;
      o += n;
    } else {
      const n = (op & 0x7f) + MIN_MATCH;
      const from = (encoded[i] as number) | ((encoded[i + 1] as number) << 8);
      i += 2;
      out.set(ref.subarray(from, from + n), o);
      o += n;
    }
  }
  if (o !== length) throw new Error(`a kept response decodes to ${o} bytes, not ${length}: its chunk was overwritten`);
  return out;
}

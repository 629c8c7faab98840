// Non-INVITE server transactions in the completed state over UDP (RFC 3261 §17.2.2): until Timer J
// (64·T1, 32 s) a retransmitted request gets the final response again and does not reach the TU.
// That is all a completed transaction still does, so it is kept as bytes, not as an object: at
// 6,000 MESSAGE/s some 190,000 are completed at once, and as objects (transaction, key string,
// kept-response record, Map and queue slots: ~290 bytes of JS heap each, plus the response) they
// were tens of MB the garbage collector had to trace.
//
// Here a completed transaction is one record in a log of off-heap chunks — its key and its
// response, byte for byte — and one entry in a Map from a 30-bit fingerprint of the key (a small
// integer) to where the record is (a number): ~40 bytes of JS heap, no object. The Maps are per
// bucket: a bucket takes the transactions completed during 2·T1 (1 s) and is dropped whole 64·T1
// after it closed, so a transaction is kept between 64·T1 and 64·T1 + 2·T1, never less than Timer J.
// Chunks are written in order and freed whole when the last bucket with records in them is dropped:
// nothing is freed one response at a time.
//
// A record's key and response are kept as their differences from a similar record of the same
// chunk, its reference (delta-codec.ts): the first record of each kind (method and status code) in
// a chunk is kept whole and is the reference of the later ones of that kind. The responses a server
// keeps are nearly all alike, so a 202 to an offline MESSAGE with its key (~460 bytes) takes ~100
// bytes and a 24-byte header: at 6,400/s, 32 s of them are ~27 MiB instead of ~100 (issue 20). It
// costs ~1.5 µs more CPU per transaction than copying it whole (on a loaded machine: less on a
// quiet one); decoding is done only for a retransmission.
//
// Keys of different transactions may share a fingerprint: the record keeps the key, which is
// compared before answering, and records of one bucket with the same fingerprint are chained.
//
// RFC 3261 wants the response kept through Timer J, and so it is by default. `responseMs` may keep
// it for less (Kamailio's tm keeps a completed transaction 5 s): the bucket's chunks are freed
// then, and until Timer J the bucket keeps the fingerprint and a second, independent 30-bit hash
// of each key (~40 bytes of heap, no bytes off the heap), so that a late retransmission is still
// absorbed — not answered, but not taken for a new request either. Two keys match both hashes
// one time in 2^60: a new request taken for a retransmission and dropped, which its sender
// retransmits into the same mistake until Timer J; at 200,000 kept, once in ~10^13 requests.

import { fingerprint } from './answered.ts';
import { decodeDelta, deltaReference, encodeDelta, maxDeltaLength, type DeltaReference } from './delta-codec.ts';
import { ExpiryQueue } from './expiry.ts';

const CHUNK_BYTES = 256 * 1024;
/** a record larger than this gets a chunk of its own, so one big response cannot waste a shared chunk */
const OWN_CHUNK_ABOVE = CHUNK_BYTES / 8;
/** empty chunks kept for reuse; more are left to the garbage collector */
const SPARE_CHUNKS = 16;
/**
 * A record's header: the previous record with the same fingerprint in the bucket (a location, or
 * -1: f64), the key's second hash (u32), where its reference is in the chunk (u32: its own offset
 * when it is kept whole), its key and response's length (u32), the key's length (u16), the length
 * of its encoding (u16: records encoded are at most OWN_CHUNK_ABOVE long), then the bytes.
 */
const HEADER_BYTES = 24;
const AT_HASH = 8;
const AT_REFERENCE = 12;
const AT_LENGTH = 16;
const AT_KEY_LENGTH = 20;
const AT_ENCODED_LENGTH = 22;
/** references a chunk keeps (kinds of response); records of further kinds are kept whole */
const MAX_REFERENCES = 8;
/** in a bucket's `absorbed`: fingerprints shared by keys of the bucket, which absorb whatever has them */
const ANY = -1;
/**
 * A request that is no retransmission (nearly all) would look in every bucket's Map (~2 µs for 34
 * buckets of 6,000): a count of the kept fingerprints by their low bits answers most at once (at
 * 200,000 kept, 9 in 10 find a zero). 2 MiB, one byte a slot.
 */
const FILTER_BITS = 21;
const FILTER_MASK = (1 << FILTER_BITS) - 1;
/** a slot this full is left so: it only makes a lookup look further */
const STUCK = 255;

interface Chunk {
  readonly bytes: Buffer;
  /** the last bucket with a record in it: the chunk is freed when that bucket is dropped */
  lastBucket: number;
  /** kind (method and status code) → the record kept whole that records of that kind are encoded against */
  references: Map<number, { offset: number; reference: DeltaReference }> | undefined;
}

interface Bucket {
  readonly id: number;
  readonly opened: number;
  /** fingerprint of a key → location of its record (the last one, when several share it) */
  records: Map<number, number>;
  /** once the responses are freed: fingerprint of a key → its second hash (or ANY) */
  absorbed: Map<number, number> | undefined;
  /** records in it (several may share a fingerprint) */
  count: number;
}

export class CompletedTransactions {
  readonly #bucketMs: number;
  readonly #now: () => number;
  readonly #expiry: ExpiryQueue<Bucket>;
  /** frees the responses of a bucket before it expires, when they are kept for less than Timer J */
  readonly #responseExpiry: ExpiryQueue<Bucket> | undefined;
  /** newest last */
  #buckets: Bucket[] = [];
  /** chunks in the order they were opened; the first is number #firstChunk */
  #chunks: Chunk[] = [];
  #firstChunk = 0;
  /** write position in the last shared chunk */
  #current: Chunk | undefined;
  #currentSeq = -1;
  #used = 0;
  readonly #spare: Buffer[] = [];
  #nextBucket = 0;
  #size = 0;
  /** how many buckets hold each fingerprint, by its low bits; allocated at the first record */
  #filter: Uint8Array | undefined;
  /** a record's key and response, put together before they are encoded */
  #plain = Buffer.allocUnsafeSlow(4096);

  /**
   * Transactions are kept from `keepMs` to `keepMs` plus one bucket (`bucketMs`); their responses
   * from `responseMs` (at most `keepMs`) to that plus one bucket.
   */
  constructor(keepMs: number, bucketMs: number, responseMs = keepMs, now: () => number = () => performance.now()) {
    this.#bucketMs = bucketMs;
    this.#now = now;
    this.#expiry = new ExpiryQueue(keepMs + bucketMs, (bucket) => this.#drop(bucket), now);
    if (responseMs < keepMs) this.#responseExpiry = new ExpiryQueue(responseMs + bucketMs, (bucket) => this.#freeResponses(bucket), now);
  }

  /** completed transactions kept */
  get size(): number {
    return this.#size;
  }

  /** Chunks held, for tests and measurements. */
  get chunks(): number {
    return this.#chunks.length;
  }

  /** Keeps the transaction `key`, completed with `response`. A key is added once while it is kept. */
  add(key: string, response: Buffer): void {
    const bucket = this.#openBucket();
    const keyLength = Buffer.byteLength(key, 'utf8');
    const length = keyLength + response.length;
    const [chunk, seq, offset] = this.#space(HEADER_BYTES + maxDeltaLength(length), bucket.id);
    const bytes = chunk.bytes;
    let reference = offset;
    let encoded = length;
    if (chunk.references === undefined) {
      // a chunk of its own: the record is too big to share one, and is kept whole
      bytes.write(key, offset + HEADER_BYTES, keyLength, 'utf8');
      response.copy(bytes, offset + HEADER_BYTES + keyLength);
    } else {
      const kind = kindOf(key, response);
      const like = chunk.references.get(kind);
      if (like !== undefined) {
        // at most OWN_CHUNK_ABOVE bytes, as the record shares a chunk
        if (this.#plain.length < length) this.#plain = Buffer.allocUnsafeSlow(OWN_CHUNK_ABOVE);
        const plain = this.#plain;
        plain.write(key, 0, keyLength, 'utf8');
        response.copy(plain, keyLength);
        reference = like.offset;
        encoded = encodeDelta(plain.subarray(0, length), like.reference, bytes, offset + HEADER_BYTES);
      } else {
        bytes.write(key, offset + HEADER_BYTES, keyLength, 'utf8');
        response.copy(bytes, offset + HEADER_BYTES + keyLength);
        if (chunk.references.size < MAX_REFERENCES) {
          chunk.references.set(kind, { offset, reference: deltaReference(bytes.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length)) });
        }
      }
      this.#used = offset + HEADER_BYTES + encoded;
    }
    const f = fingerprint(key);
    const previous = bucket.records.get(f);
    if (previous === undefined) {
      const filter = (this.#filter ??= new Uint8Array(1 << FILTER_BITS));
      const slot = f & FILTER_MASK;
      if (filter[slot] !== STUCK) (filter[slot] as number)++;
    }
    bytes.writeDoubleLE(previous ?? -1, offset);
    bytes.writeUInt32LE(secondHash(key), offset + AT_HASH);
    bytes.writeUInt32LE(reference, offset + AT_REFERENCE);
    bytes.writeUInt32LE(length, offset + AT_LENGTH);
    bytes.writeUInt16LE(keyLength, offset + AT_KEY_LENGTH);
    bytes.writeUInt16LE(reference === offset ? 0 : encoded, offset + AT_ENCODED_LENGTH);
    bucket.records.set(f, seq * CHUNK_BYTES + offset);
    bucket.count++;
    this.#size++;
  }

  /**
   * The final response of the completed transaction `key`, if it is kept: a copy, since the socket
   * may still hold the bytes when the chunk is used again. 'absorbed' when the transaction is kept
   * but its response no longer is; undefined when `key` is no completed transaction.
   */
  response(key: string): Buffer | 'absorbed' | undefined {
    if (this.#size === 0) return undefined;
    const f = fingerprint(key);
    if (this.#filter?.[f & FILTER_MASK] === 0) return undefined;
    for (let b = this.#buckets.length - 1; b >= 0; b--) {
      const bucket = this.#buckets[b] as Bucket;
      if (bucket.absorbed !== undefined) {
        const h = bucket.absorbed.get(f);
        if (h !== undefined && (h === ANY || h === secondHash(key))) return 'absorbed';
        continue;
      }
      let at = bucket.records.get(f);
      while (at !== undefined && at >= 0) {
        const chunk = (this.#chunks[Math.floor(at / CHUNK_BYTES) - this.#firstChunk] as Chunk).bytes;
        const offset = at % CHUNK_BYTES;
        const plain = recordOf(chunk, offset);
        const keyLength = chunk.readUInt16LE(offset + AT_KEY_LENGTH);
        if (plain.toString('utf8', 0, keyLength) === key) return Buffer.from(plain.subarray(keyLength));
        at = chunk.readDoubleLE(offset);
      }
    }
    return undefined;
  }

  clear(): void {
    this.#expiry.drain();
    this.#responseExpiry?.drain();
    this.#buckets = [];
    this.#filter = undefined;
    this.#firstChunk += this.#chunks.length;
    this.#chunks = [];
    this.#current = undefined;
    this.#size = 0;
  }

  #openBucket(): Bucket {
    const now = this.#now();
    const last = this.#buckets[this.#buckets.length - 1];
    if (last !== undefined && now - last.opened < this.#bucketMs) return last;
    const bucket: Bucket = { id: this.#nextBucket++, opened: now, records: new Map(), absorbed: undefined, count: 0 };
    this.#buckets.push(bucket);
    this.#expiry.add(bucket);
    this.#responseExpiry?.add(bucket);
    return bucket;
  }

  /**
   * Room for a record of at most `length` bytes: its chunk, the chunk's number, the offset. In a
   * shared chunk, add() moves the write position past what it wrote.
   */
  #space(length: number, bucket: number): [Chunk, number, number] {
    if (length > OWN_CHUNK_ABOVE) {
      const chunk: Chunk = { bytes: Buffer.allocUnsafeSlow(length), lastBucket: bucket, references: undefined };
      this.#chunks.push(chunk);
      return [chunk, this.#firstChunk + this.#chunks.length - 1, 0];
    }
    let chunk = this.#current;
    if (chunk === undefined || this.#used + length > CHUNK_BYTES) {
      chunk = { bytes: this.#spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES), lastBucket: bucket, references: new Map() };
      this.#chunks.push(chunk);
      this.#current = chunk;
      this.#currentSeq = this.#firstChunk + this.#chunks.length - 1;
      this.#used = 0;
    }
    const offset = this.#used;
    chunk.lastBucket = bucket;
    return [chunk, this.#currentSeq, offset];
  }

  #drop(bucket: Bucket): void {
    // buckets expire in the order they were opened
    this.#buckets.shift();
    this.#size -= bucket.count;
    const filter = this.#filter as Uint8Array;
    for (const f of (bucket.absorbed ?? bucket.records).keys()) {
      const slot = f & FILTER_MASK;
      if (filter[slot] !== STUCK) (filter[slot] as number)--;
    }
    this.#freeChunks(bucket.id);
  }

  /** The bucket's responses go; the second hash of each key stays in their place. */
  #freeResponses(bucket: Bucket): void {
    const absorbed = new Map<number, number>();
    for (const [f, first] of bucket.records) {
      const chunk = (this.#chunks[Math.floor(first / CHUNK_BYTES) - this.#firstChunk] as Chunk).bytes;
      const offset = first % CHUNK_BYTES;
      // several keys share the fingerprint (a chain): rare enough to absorb whatever has it
      absorbed.set(f, chunk.readDoubleLE(offset) >= 0 ? ANY : chunk.readUInt32LE(offset + AT_HASH));
    }
    bucket.absorbed = absorbed;
    bucket.records = new Map();
    this.#freeChunks(bucket.id);
  }

  /** Frees the chunks whose records all belong to buckets up to `bucketId`. */
  #freeChunks(bucketId: number): void {
    let freed = 0;
    while (freed < this.#chunks.length && (this.#chunks[freed] as Chunk).lastBucket <= bucketId) {
      const chunk = this.#chunks[freed] as Chunk;
      if (chunk === this.#current) this.#current = undefined;
      if (chunk.bytes.length === CHUNK_BYTES && this.#spare.length < SPARE_CHUNKS) this.#spare.push(chunk.bytes);
      freed++;
    }
    if (freed > 0) {
      this.#chunks = this.#chunks.slice(freed);
      this.#firstChunk += freed;
    }
  }
}

/**
 * What a record's reference is chosen by: the key's method (its last field) and the response's
 * status code, as a number (two kinds may share one: a poorer reference, not a wrong answer).
 */
function kindOf(key: string, response: Buffer): number {
  let h = 0;
  for (let i = key.lastIndexOf('|') + 1; i < key.length; i++) h = Math.imul(h, 31) + key.charCodeAt(i);
  return Math.imul(h, 1000) + ((response[8] ?? 0) << 16) + ((response[9] ?? 0) << 8) + (response[10] ?? 0);
}

/** The key and response of the record at `offset` in `chunk` (decoded against its reference, or a view of the bytes kept whole). */
function recordOf(chunk: Buffer, offset: number): Buffer {
  const length = chunk.readUInt32LE(offset + AT_LENGTH);
  const reference = chunk.readUInt32LE(offset + AT_REFERENCE);
  if (reference === offset) return chunk.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
  const encoded = chunk.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + chunk.readUInt16LE(offset + AT_ENCODED_LENGTH));
  const start = reference + HEADER_BYTES;
  return decodeDelta(encoded, chunk.subarray(start, start + chunk.readUInt32LE(reference + AT_LENGTH)), length);
}

/** A hash of the key independent of its fingerprint (FNV-1a with another basis, from the last code unit), 30 bits. */
function secondHash(key: string): number {
  let h = 0x2c9277b5;
  for (let i = key.length - 1; i >= 0; i--) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff;
}

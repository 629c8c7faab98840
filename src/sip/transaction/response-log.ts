// The provisional responses transactions keep to answer retransmitted requests (a final one is
// kept by the layer, see completed.ts; this log was first written for those, hence the figures).
// Over UDP a final response is kept through Timer J (32 s). At thousands of transactions a second those responses were most of
// the JS heap (a ~500-byte string each): the garbage collector copied each one twice on its way to
// the old generation, and the old generation grew by hundreds of MB, whose collections set the p99
// latency. Here they are copied into 1 MiB chunks outside the JS heap, one after another. Timer J
// ends transactions in the order they completed, so a chunk empties as a whole and is used again.

const CHUNK_BYTES = 1 << 20;
/** a response larger than this gets a chunk of its own, so one big response cannot waste a shared chunk */
const OWN_CHUNK_ABOVE = CHUNK_BYTES / 8;
/** empty chunks kept for reuse; more than this are left to the garbage collector */
const SPARE_CHUNKS = 8;

interface Chunk {
  readonly bytes: Buffer;
  /** responses in it not yet released */
  live: number;
  /** shared chunks go back to the spares when empty; a big response's own chunk does not */
  readonly shared: boolean;
}

/** Where one kept response is: opaque to the holder, given back to the log to read or release. */
export interface KeptResponse {
  readonly chunk: Chunk;
  readonly offset: number;
  readonly length: number;
}

export class ResponseLog {
  #current: Chunk | undefined;
  #used = 0;
  readonly #spare: Buffer[] = [];

  /** Copies `bytes` into the log. */
  keep(bytes: Buffer): KeptResponse {
    const length = bytes.length;
    if (length > OWN_CHUNK_ABOVE) {
      const chunk: Chunk = { bytes: Buffer.allocUnsafeSlow(length), live: 1, shared: false };
      bytes.copy(chunk.bytes);
      return { chunk, offset: 0, length };
    }
    let chunk = this.#current;
    if (chunk === undefined || this.#used + length > CHUNK_BYTES) {
      const previous = chunk;
      chunk = { bytes: this.#spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES), live: 0, shared: true };
      this.#current = chunk;
      this.#used = 0;
      if (previous !== undefined && previous.live === 0) this.#recycle(previous);
    }
    const offset = this.#used;
    bytes.copy(chunk.bytes, offset);
    this.#used += length;
    chunk.live++;
    return { chunk, offset, length };
  }

  /**
   * A copy of a kept response, to send: the socket may still hold the bytes after this returns, and
   * by then the chunk may have been reused.
   */
  read(kept: KeptResponse): Buffer {
    return Buffer.from(kept.chunk.bytes.subarray(kept.offset, kept.offset + kept.length));
  }

  /** The holder no longer needs the response. Call once per kept response. */
  release(kept: KeptResponse): void {
    const chunk = kept.chunk;
    chunk.live--;
    if (chunk.live === 0 && chunk !== this.#current) this.#recycle(chunk);
  }

  /** Empty chunks waiting for reuse. */
  get spareChunks(): number {
    return this.#spare.length;
  }

  #recycle(chunk: Chunk): void {
    if (chunk.shared && this.#spare.length < SPARE_CHUNKS) this.#spare.push(chunk.bytes);
  }
}

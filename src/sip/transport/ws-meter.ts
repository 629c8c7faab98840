// What the WebSocket library holds for one connection, for the connection guard: the bytes of a
// data message not yet whole (RFC 6455 §5.4: its fragments so far, the frame arriving included)
// and of a control frame not yet whole. Read from the frame headers alone (§5.2), as the bytes
// come, so that it is exact whatever the chunks: a message may end and the next begin in one TCP
// read, and control frames may come between the fragments of a message.
//
//   byte 0: FIN, RSV1-3, opcode (0 continuation, 1 text, 2 binary; 8 and above: control)
//   byte 1: MASK, payload length 0-125, or 126 (16-bit length follows) or 127 (64-bit)
//   then the extended length, the 4-byte masking key when MASK is set, the payload

export class WebSocketMeter {
  /** wire bytes of the whole frames of the data message not yet complete */
  #message = 0;
  /** wire bytes of the frame arriving */
  #frame = 0;
  /** header bytes of the frame arriving seen so far; its header length once the second is seen */
  #headerSeen = 0;
  #headerLength = 0;
  /** bytes of the extended payload length: 0, 2 or 8 */
  #extended = 0;
  #fin = false;
  #data = false;
  #payloadLeft = 0;
  #inPayload = false;

  /** Bytes of a message or control frame that has begun and is not complete. */
  get held(): number {
    return this.#message + this.#frame;
  }

  /**
   * Reads a chunk of the connection's bytes; true when a data message ended in it (so that what
   * is held now began in it).
   */
  push(chunk: Uint8Array): boolean {
    let completed = false;
    let i = 0;
    const end = chunk.length;
    while (i < end) {
      if (this.#inPayload) {
        const k = Math.min(this.#payloadLeft, end - i);
        i += k;
        this.#frame += k;
        this.#payloadLeft -= k;
      } else {
        const byte = chunk[i++] as number;
        this.#frame++;
        const at = this.#headerSeen++;
        if (at === 0) {
          this.#fin = (byte & 0x80) !== 0;
          this.#data = (byte & 0x0f) < 8;
        } else if (at === 1) {
          const length = byte & 0x7f;
          this.#extended = length === 126 ? 2 : length === 127 ? 8 : 0;
          this.#headerLength = 2 + this.#extended + ((byte & 0x80) !== 0 ? 4 : 0);
          this.#payloadLeft = this.#extended === 0 ? length : 0;
        } else if (at < 2 + this.#extended) {
          this.#payloadLeft = this.#payloadLeft * 256 + byte; // network byte order
        }
        if (this.#headerSeen >= 2 && this.#headerSeen === this.#headerLength) this.#inPayload = true;
      }
      if (this.#inPayload && this.#payloadLeft === 0) completed = this.#frameEnded() || completed;
    }
    return completed;
  }

  /** A frame is whole: a data frame joins its message (which ends with FIN); a control frame is gone. */
  #frameEnded(): boolean {
    let completed = false;
    if (this.#data) {
      this.#message += this.#frame;
      if (this.#fin) {
        this.#message = 0;
        completed = true;
      }
    }
    this.#frame = 0;
    this.#headerSeen = 0;
    this.#headerLength = 0;
    this.#inPayload = false;
    return completed;
  }
}

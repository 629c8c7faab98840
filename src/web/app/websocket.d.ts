// Adapter for type-checking the SDK with the DOM's types: src/client/transport-ws.ts sends a Node
// Buffer (the shimmed `buffer` package in the bundle, a Uint8Array either way), which the DOM's
// WebSocket.send accepts at run time but TypeScript's lib.dom types only as an ArrayBuffer-backed
// view. This overload says what browsers accept; it changes no emitted code.
interface WebSocket {
  send(data: string | ArrayBufferLike | Blob | ArrayBufferView<ArrayBufferLike>): void;
}

// Injected into the browser bundle (esbuild `inject`): each free use of the global `Buffer` in
// src/sip and src/client becomes this import.
export { Buffer } from './buffer.ts';

// The JSON body of an admin request: application/json in UTF-8 (RFC 8259 §8.1), at most
// maxBytes, counted while the bytes arrive (a Content-Length above the limit is refused before).

import type http from 'node:http';
import { AdminApiError } from './problem.ts';

/** 64 KiB: a cmdlet call is a few hundred bytes. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/** Refuses a Content-Type that is not JSON before any byte of the body is read. */
export function checkContentType(req: http.IncomingMessage): void {
  const header = req.headers['content-type'];
  if (header === undefined) return; // checked once we know whether there is a body
  const [mediaType = '', ...params] = header.split(';').map((s) => s.trim().toLowerCase());
  if (!/^application\/(?:[a-z0-9.+-]+\+)?json$/.test(mediaType)) {
    throw new AdminApiError('UNSUPPORTED_MEDIA_TYPE', `the body is ${mediaType === '' ? 'of no type' : mediaType}; send application/json`);
  }
  for (const param of params) {
    const m = /^charset\s*=\s*"?([^"]*)"?$/.exec(param);
    if (m !== null && m[1] !== 'utf-8' && m[1] !== 'utf8') {
      throw new AdminApiError('UNSUPPORTED_MEDIA_TYPE', `the body is in ${m[1]}; JSON is sent in UTF-8`);
    }
  }
}

/** The parsed body, or undefined when the request has none. */
export async function readJsonBody(req: http.IncomingMessage, maxBytes: number): Promise<unknown> {
  checkContentType(req);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const bytes = await readBytes(req, maxBytes);
  if (bytes.length === 0) return undefined;
  if (req.headers['content-type'] === undefined) throw new AdminApiError('UNSUPPORTED_MEDIA_TYPE', 'the body has no Content-Type; send application/json');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AdminApiError('BAD_JSON', 'the body is not valid UTF-8');
  }
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new AdminApiError('BAD_JSON', `the body is not JSON: ${(error as Error).message}`);
  }
}

/** The whole body; BODY_TOO_LARGE as soon as it passes maxBytes (the rest is left unread). */
function readBytes(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      done();
      req.pause();
      reject(tooLarge(maxBytes));
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      done();
      reject(error);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
  });
}

/** How much of an unread body is read and dropped after a refusal, before the connection is cut. */
export const DISCARD_LIMIT_BYTES = 1024 * 1024;
const DISCARD_TIMEOUT_MS = 5_000;

/**
 * Reads and drops what is left of the body (a refusal before reading, a body too large): closing
 * a socket with unread bytes makes TCP send a reset, which can destroy the answer before the client
 * reads it. Past DISCARD_LIMIT_BYTES or DISCARD_TIMEOUT_MS the connection is cut anyway.
 */
export function discardBody(req: http.IncomingMessage): void {
  if (req.readableEnded || req.destroyed) return;
  let seen = 0;
  const timer = setTimeout(() => req.destroy(), DISCARD_TIMEOUT_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > DISCARD_LIMIT_BYTES) {
      clearTimeout(timer);
      req.destroy();
    }
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.once('error', () => clearTimeout(timer));
  req.resume();
}

function tooLarge(maxBytes: number): AdminApiError {
  return new AdminApiError('BODY_TOO_LARGE', `the body exceeds the limit of ${maxBytes} bytes`);
}

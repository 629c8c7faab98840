// The small response writer of EWS and autodiscover. Their sign-in is HTTP Basic (src/auth/http-basic.ts).
import type http from 'node:http';

export function send(res: http.ServerResponse, product: string, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), server: product, ...extra });
  res.end(body);
}

// JsSIP (npm `jssip`, 3.13.x) as a real WebSocket SIP client, run inside Node for the e2e tests.
//
//   const alice = await startJsSipUser({ wsUrl: server.wsUrl, uri: 'sip:alice@parley.test', password: 'secret' });
//   const r = await alice.sendMessage('sip:bob@parley.test', 'hi');   // { status: 200, ... }
//   const m = await bob.nextMessage();                                   // { from: 'sip:alice@parley.test', body: 'hi', ... }
//   await alice.stop();
//
// What JsSIP needs in Node (checked in node_modules/jssip/lib and by running it on Node 24):
// - WebSocketInterface does `new WebSocket(url, 'sip')` on the global WebSocket, sets
//   binaryType = 'arraybuffer' and uses onopen/onclose/onmessage/onerror: Node 24's global
//   WebSocket (undici) provides all of it. No shim is needed for REGISTER and MESSAGE.
// - `window` is read only when an INVITE arrives (window.RTCPeerConnection); `navigator` and
//   `document` are never read. These tests make no calls, so neither is defined here.
// - Logging goes through the `debug` package, off unless DEBUG=JsSIP:* is set.
//
// Digest facts (lib/DigestAuthentication.js, lib/Parser.js, lib/RequestSender.js):
// - Only MD5 (and no algorithm) is answered; any other algorithm aborts with a warning and the
//   401/407 is reported (registrationFailed cause "Authentication Error"). The check is
//   case-sensitive: the challenge must say algorithm=MD5, not md5.
// - The parser keeps only the LAST WWW-Authenticate (and the last Proxy-Authenticate) header
//   field of a response. Offered "SHA-256, then MD5" as two header fields, JsSIP answers the MD5
//   one; offered "MD5, then SHA-256" it fails. Both challenges in one comma-joined field would
//   not parse as one challenge: they must be two header fields.
// - qop: "auth-int" is preferred when offered with "auth"; the digest uri is the Request-URI.
// - authorization_user defaults to the user part of `uri`; realm is taken from the challenge.
// - It authenticates a request once; a second 401/407 for the same request ends it.
// - Contact is sip:<random>@<random>.invalid;transport=ws and Via sent-by is <random>.invalid:
//   the server must answer and deliver over the WebSocket connection the REGISTER came on.
// - An incoming request is accepted when its Request-URI user is the AOR user or the Contact
//   user (else 404); a MESSAGE is answered 200 after the 'newMessage' event.

import { UA, WebSocketInterface } from 'jssip';
import type { IncomingMessageEvent, OutgoingMessageEvent, RegisteredEvent, UnRegisteredEvent } from 'jssip/lib/UA.js';
import { Inbox, requireWebSocket, type BrowserUserOptions, type ReceivedMessage } from './browser-ua.ts';

export interface JsSipUserOptions extends BrowserUserOptions {
  userAgent?: string;
}

export type { ReceivedMessage };

export interface SendResult {
  /** final status code; 0 when no response came (timeout, transport error) */
  status: number;
  reason: string | null;
  /** JsSIP's cause on failure (e.g. "Not Found", "Request Timeout"), null on success */
  cause: string | null;
}

export interface JsSipUser {
  ua: UA;
  uri: string;
  sendMessage(target: string, text: string, contentType?: string): Promise<SendResult>;
  /** the oldest MESSAGE not yet taken; waits up to timeoutMs (default 10 s) */
  nextMessage(timeoutMs?: number): Promise<ReceivedMessage>;
  /** MESSAGEs received and not yet taken */
  pending(): number;
  /** unregisters (waits up to 3 s for the answer), then closes the WebSocket */
  stop(): Promise<void>;
}

/** Starts a JsSIP UA, registers it, and resolves on 'registered' (rejects on 'registrationFailed' with its cause). */
export async function startJsSipUser(opts: JsSipUserOptions): Promise<JsSipUser> {
  requireWebSocket('JsSIP');
  const socket = new WebSocketInterface(opts.wsUrl);
  const ua = new UA({
    sockets: [socket],
    uri: opts.uri,
    password: opts.password,
    ...(opts.displayName !== undefined ? { display_name: opts.displayName } : {}),
    ...(opts.authorizationUser !== undefined ? { authorization_user: opts.authorizationUser } : {}),
    register: true,
    register_expires: opts.registerExpires ?? 300,
    user_agent: opts.userAgent ?? 'JsSIP parley-interop',
    // a test that loses its server must fail, not retry for ever
    connection_recovery_min_interval: 2,
    connection_recovery_max_interval: 4,
  });

  const inbox = new Inbox<ReceivedMessage>(`JsSIP ${opts.uri}`);
  ua.on('newMessage', (e: IncomingMessageEvent | OutgoingMessageEvent) => {
    if (e.originator !== 'remote') return;
    const req = e.request;
    inbox.put({
      from: req.from.uri.toString(),
      fromDisplayName: req.from.display_name ?? null,
      to: req.to.uri.toString(),
      body: req.body ?? '',
      contentType: req.getHeader('Content-Type') ?? undefined,
      callId: req.getHeader('Call-ID') ?? '',
    });
  });

  await new Promise<void>((resolve, reject) => {
    const timeoutMs = opts.registerTimeoutMs ?? 10_000;
    const timer = setTimeout(() => {
      cleanup();
      ua.stop();
      reject(new Error(`JsSIP ${opts.uri}: not registered within ${timeoutMs} ms (ws ${opts.wsUrl})`));
    }, timeoutMs);
    const onRegistered = (_e: RegisteredEvent) => {
      cleanup();
      resolve();
    };
    const onFailed = (e: UnRegisteredEvent) => {
      cleanup();
      ua.stop();
      const status = e.response ? `${e.response.status_code} ${e.response.reason_phrase}` : 'no response';
      reject(new Error(`JsSIP ${opts.uri}: registration failed: ${String(e.cause)} (${status})`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      ua.removeListener('registered', onRegistered);
      ua.removeListener('registrationFailed', onFailed);
    };
    ua.on('registered', onRegistered);
    ua.on('registrationFailed', onFailed);
    ua.start();
  });

  let stopping: Promise<void> | null = null;

  return {
    ua,
    uri: opts.uri,
    sendMessage(target: string, text: string, contentType = 'text/plain'): Promise<SendResult> {
      return new Promise((resolve) => {
        ua.sendMessage(target, text, {
          contentType,
          eventHandlers: {
            succeeded: (e) => resolve({ status: e.response.status_code, reason: e.response.reason_phrase, cause: null }),
            failed: (e) =>
              resolve({
                status: e.response ? e.response.status_code : 0,
                reason: e.response ? e.response.reason_phrase : null,
                cause: String(e.cause),
              }),
          },
        });
      });
    },
    nextMessage: (timeoutMs = 10_000) => inbox.next(timeoutMs),
    pending: () => inbox.pending(),
    stop(): Promise<void> {
      stopping ??= (async () => {
        inbox.close();
        if (ua.isRegistered()) {
          const unregistered = new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 3_000);
            const done = () => {
              clearTimeout(t);
              resolve();
            };
            ua.once('unregistered', done);
            ua.once('registrationFailed', done);
          });
          ua.unregister();
          await unregistered;
        }
        const disconnected = new Promise<void>((resolve) => {
          if (!ua.isConnected()) return resolve();
          const t = setTimeout(resolve, 3_000);
          ua.once('disconnected', () => {
            clearTimeout(t);
            resolve();
          });
        });
        ua.stop();
        await disconnected;
      })();
      return stopping;
    },
  };
}

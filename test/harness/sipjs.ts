// SIP.js (npm `sip.js`, 0.21.x, by OnSIP) as a real WebSocket SIP client, run inside Node for the
// e2e tests: its UserAgent with the Web transport, a Registerer and Messagers; no media.
//
//   const alice = await startSipJsUser({ wsUrl: server.wsUrl, uri: 'sip:alice@parley.test', password: 'secret' });
//   const r = await alice.sendMessage('sip:bob@parley.test', 'hi');   // { status: 200, ... }
//   const m = await bob.nextMessage();                                   // { from: 'sip:alice@parley.test', body: 'hi', ... }
//   alice.wire()                                                         // what went over the WebSocket
//   await alice.stop();
//
// What SIP.js needs in Node (checked in node_modules/sip.js/lib and by running it on Node 24):
// - The Web transport (lib/platform/web/transport) does `new WebSocket(server, 'sip')` on the global
//   WebSocket, sets binaryType = 'arraybuffer', uses addEventListener and TextDecoder: Node 24's
//   globals provide all of it. Nothing else of the browser is read for REGISTER and MESSAGE:
//   `navigator` and `window` appear only in the media stream factory of the session description
//   handler and in SessionManager/SimpleUser (calls, WebRTC), which these tests do not use (the
//   handler would be created for an INVITE only). No shim is defined here.
// - Logging goes to the console unless logBuiltinEnabled is false; here it is kept in memory
//   (logs()) for the error messages.
//
// Digest facts (lib/core/messages/digest-authentication.js, parser.js, user-agents/user-agent-client.js):
// - Only MD5 (or no algorithm) is answered; another algorithm makes it give up and the 401/407
//   is reported as the final answer. The check is case-sensitive (algorithm=MD5).
// - The parser keeps only the LAST WWW-Authenticate (and Proxy-Authenticate) header field, as
//   JsSIP's does (SIP.js grew out of JsSIP): offered "SHA-256, then MD5" as two header fields, it
//   answers MD5.
// - qop: "auth" is preferred when offered with "auth-int"; the digest uri is the Request-URI; nc
//   counts per request from 00000001 and cnonce is 12 random characters.
// - Each request authenticates on its own (no credentials are cached for the next request), once,
//   and once more only when the next 401/407 says stale=true; any other second challenge ends it.
// - The Registerer reuses one request for all its REGISTERs and keeps the Authorization of the
//   last one on it: a refresh or the unregistration first repeats the old credentials (same nonce,
//   same nc), which a server that refuses replays answers with a stale=true challenge.
// - The authorization user defaults to the user part of `uri`; realm comes from the challenge.
// - Contact is sip:<random>@<random>.invalid;transport=ws and the Via sent-by <random>.invalid:
//   the server must answer and deliver over the WebSocket connection the REGISTER came on.
// - An incoming request is accepted when its Request-URI user is the AOR user or the Contact
//   user (else 404); a MESSAGE is answered as the delegate says (accept() here: 200).

import { Messager, Registerer, RegistererState, UserAgent, type Core, type Message } from 'sip.js';
import { Inbox, requireWebSocket, type BrowserUserOptions, type ReceivedMessage } from './browser-ua.ts';

export type SipJsUserOptions = BrowserUserOptions;
export type { ReceivedMessage };

/** The final answer to a request SIP.js sent (after its own digest retry, if any). */
export interface Answer {
  /** SIP.js reports a transaction timeout as 408 and a transport failure as 503 */
  status: number;
  reason: string;
  /** the Warning header field, null when there is none */
  warning: string | null;
}

/** One SIP message over the WebSocket, as written or read by SIP.js. */
export interface WireMessage {
  direction: 'sent' | 'received';
  text: string;
}

/** A REGISTER that did not end in 2xx. */
export class SipJsRegistrationError extends Error {
  /** null when no answer came in time */
  readonly answer: Answer | null;

  constructor(message: string, answer: Answer | null) {
    super(message);
    this.name = 'SipJsRegistrationError';
    this.answer = answer;
  }
}

export interface SipJsUser {
  ua: UserAgent;
  registerer: Registerer;
  uri: string;
  sendMessage(target: string, text: string, contentType?: string): Promise<Answer>;
  /** the oldest MESSAGE not yet taken; waits up to timeoutMs (default 10 s) */
  nextMessage(timeoutMs?: number): Promise<ReceivedMessage>;
  /** MESSAGEs received and not yet taken */
  pending(): number;
  /** every SIP message over this user's WebSocket so far, in order (CRLF keep-alives left out) */
  wire(): readonly WireMessage[];
  /** SIP.js's own log lines so far */
  logs(): string;
  /** REGISTER with expires=0 for this contact; resolves with the final answer */
  unregister(): Promise<Answer>;
  /** unregisters when registered, then stops the user agent (closes the WebSocket). Idempotent. */
  stop(): Promise<void>;
}

function answerOf(response: Core.IncomingResponse): Answer {
  const m = response.message;
  return { status: m.statusCode ?? 0, reason: m.reasonPhrase ?? '', warning: m.getHeader('warning') ?? null };
}

function describeAnswer(answer: Answer): string {
  return `${answer.status} ${answer.reason}${answer.warning !== null ? ` (Warning: ${answer.warning})` : ''}`;
}

/**
 * Records both directions of the user agent's transport through its public Transport interface
 * (send() and the onMessage callback the user agent installs), so a test can read the exact
 * requests SIP.js wrote, digest credentials included.
 */
function recordWire(ua: UserAgent, wire: WireMessage[]): void {
  const transport = ua.transport;
  const send = transport.send.bind(transport);
  transport.send = (text: string) => {
    wire.push({ direction: 'sent', text });
    return send(text);
  };
  const deliver = transport.onMessage;
  transport.onMessage = (text: string) => {
    if (!/^(\r\n)+$/.test(text)) wire.push({ direction: 'received', text });
    deliver?.(text);
  };
}

/** Starts a SIP.js UserAgent, registers it, and resolves once registered (rejects with SipJsRegistrationError otherwise). */
export async function startSipJsUser(opts: SipJsUserOptions): Promise<SipJsUser> {
  requireWebSocket('SIP.js');
  const aor = UserAgent.makeURI(opts.uri);
  if (!aor) throw new Error(`SIP.js cannot parse the URI ${opts.uri}`);
  const who = `SIP.js ${opts.uri}`;
  const inbox = new Inbox<ReceivedMessage>(who);
  const wire: WireMessage[] = [];
  let log = '';

  const ua = new UserAgent({
    uri: aor,
    authorizationPassword: opts.password,
    ...(opts.authorizationUser !== undefined ? { authorizationUsername: opts.authorizationUser } : {}),
    ...(opts.displayName !== undefined ? { displayName: opts.displayName } : {}),
    transportOptions: { server: opts.wsUrl },
    logBuiltinEnabled: false,
    logConfiguration: false,
    logConnector: (level: string, category: string, _label: string | undefined, content: string) => {
      log += `${level} ${category} ${content}\n`;
    },
    userAgentString: 'SIP.js parley-interop',
    delegate: {
      onMessage: (message: Message) => {
        const req = message.request;
        inbox.put({
          from: req.from.uri.toString(),
          fromDisplayName: req.from.displayName || null,
          to: req.to.uri.toString(),
          body: req.body ?? '',
          contentType: req.getHeader('content-type'),
          callId: req.callId,
        });
        void message.accept();
      },
    },
  });
  recordWire(ua, wire);
  const registerer = new Registerer(ua, { expires: opts.registerExpires ?? 300 });

  try {
    await ua.start();
    await new Promise<void>((resolve, reject) => {
      const timeoutMs = opts.registerTimeoutMs ?? 10_000;
      const timer = setTimeout(
        () => reject(new SipJsRegistrationError(`${who}: not registered within ${timeoutMs} ms (ws ${opts.wsUrl})`, null)),
        timeoutMs,
      );
      const refused = (response: Core.IncomingResponse) => {
        clearTimeout(timer);
        const answer = answerOf(response);
        reject(new SipJsRegistrationError(`${who}: registration failed: ${describeAnswer(answer)}`, answer));
      };
      registerer
        .register({
          requestDelegate: {
            onAccept: () => {
              clearTimeout(timer);
              // the Registerer reads the 2xx's Contact for its expiry; it is Registered only when one names it
              if (registerer.state === RegistererState.Registered) resolve();
              else reject(new SipJsRegistrationError(`${who}: 2xx to REGISTER, but SIP.js is ${registerer.state}`, null));
            },
            onReject: refused,
            onRedirect: refused,
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        });
    });
  } catch (err) {
    await ua.stop().catch(() => {});
    throw err;
  }

  const unregister = (): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const done = (response: Core.IncomingResponse) => resolve(answerOf(response));
      registerer.unregister({ requestDelegate: { onAccept: done, onReject: done, onRedirect: done } }).catch(reject);
    });

  let stopping: Promise<void> | null = null;
  return {
    ua,
    registerer,
    uri: opts.uri,
    sendMessage(target: string, text: string, contentType = 'text/plain'): Promise<Answer> {
      const targetUri = UserAgent.makeURI(target);
      if (!targetUri) return Promise.reject(new Error(`${who}: cannot parse the target ${target}`));
      return new Promise((resolve, reject) => {
        const done = (response: Core.IncomingResponse) => resolve(answerOf(response));
        new Messager(ua, targetUri, text, contentType)
          .message({ requestDelegate: { onAccept: done, onReject: done, onRedirect: done } })
          .catch(reject);
      });
    },
    nextMessage: (timeoutMs = 10_000) => inbox.next(timeoutMs),
    pending: () => inbox.pending(),
    wire: () => wire,
    logs: () => log,
    unregister,
    stop(): Promise<void> {
      stopping ??= (async () => {
        inbox.close();
        if (registerer.state === RegistererState.Registered) await unregister();
        await ua.stop();
      })();
      return stopping;
    },
  };
}

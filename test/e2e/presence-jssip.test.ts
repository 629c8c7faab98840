// Presence with a peer we did not write: JsSIP's Subscriber (RFC 6665) watches a user who
// publishes with the SDK. JsSIP 3.13 has no PUBLISH API, so the publisher is the SDK.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Subscriber } from 'jssip/lib/Subscriber.js';
import { sdkClients } from '../harness/clients.ts';
import { startJsSipUser, type JsSipUser } from '../harness/jssip.ts';
import { startServer, type RunningServer } from '../harness/server.ts';

const DOMAIN = 'parley.test';
const PIDF = 'application/pidf+xml';
let server: RunningServer;
let watcher: JsSipUser | undefined;
const people = sdkClients(() => server, DOMAIN);

before(async () => {
  server = await startServer({
    domain: DOMAIN,
    users: [
      { address: `alice@${DOMAIN}`, password: 'alice-pw' },
      { address: `bob@${DOMAIN}`, password: 'bob-pw' },
    ],
  });
});

after(async () => {
  await watcher?.stop().catch(() => {});
  await people.closeAll();
  await server?.stop();
});

function pidf(activities: string, note: string): string {
  return `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@${DOMAIN}">` +
    `<tuple id="t"><status><basic>open</basic></status></tuple>` +
    `<dm:person id="p"><rpid:activities>${activities}</rpid:activities><dm:note>${note}</dm:note></dm:person></presence>`;
}

interface Notified {
  isFinal: boolean;
  body: string;
  subscriptionState: string;
}

describe('JsSIP watches a user over WebSocket', () => {
  it('gets the full state, each change, and a final NOTIFY when it unsubscribes', { timeout: 30_000 }, async () => {
    watcher = await startJsSipUser({ wsUrl: server.wsUrl, uri: `sip:alice@${DOMAIN}`, password: 'alice-pw' });
    const bob = await people.connect('bob', { register: true });
    const busy = await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, { headers: { Event: 'presence', Expires: '600' }, body: pidf('<rpid:busy/>', 'Presenting'), contentType: PIDF });
    assert.equal(busy.status, 200);

    const notified: Notified[] = [];
    const waiters: Array<() => void> = [];
    const subscriber: Subscriber = watcher.ua.subscribe(`sip:bob@${DOMAIN}`, 'presence', PIDF, { expires: 600, contentType: PIDF });
    subscriber.on('notify', (isFinal, request, body) => {
      notified.push({ isFinal, body: body ?? '', subscriptionState: request.getHeader('Subscription-State') ?? '' });
      waiters.shift()?.();
    });
    const terminated = new Promise<number>((resolve) => subscriber.on('terminated', (code) => resolve(code)));
    const nth = (n: number) =>
      new Promise<Notified>((resolve, reject) => {
        if (notified.length >= n) return resolve(notified[n - 1]!);
        const timer = setTimeout(() => reject(new Error(`NOTIFY #${n} did not arrive\n${server.logs().slice(-4000)}`)), 5000);
        const check = () => {
          if (notified.length >= n) {
            clearTimeout(timer);
            resolve(notified[n - 1]!);
          } else waiters.push(check);
        };
        waiters.push(check);
      });
    subscriber.subscribe();

    const first = await nth(1);
    assert.equal(first.isFinal, false);
    assert.match(first.subscriptionState, /^active;expires=\d+$/);
    assert.match(first.body, /<rpid:busy\/>/);
    assert.match(first.body, /<note>Presenting<\/note>/);

    const away = await bob.request('PUBLISH', `sip:bob@${DOMAIN}`, {
      headers: { Event: 'presence', Expires: '600', 'SIP-If-Match': busy.headers.get('sip-etag') ?? '' },
      body: pidf('<rpid:away/>', 'Back at 2'),
      contentType: PIDF,
    });
    assert.equal(away.status, 200);
    const second = await nth(2);
    assert.match(second.body, /<rpid:away\/>/);
    assert.match(second.body, /<note>Back at 2<\/note>/);

    subscriber.terminate();
    const last = await nth(3);
    assert.equal(last.isFinal, true);
    assert.equal(last.subscriptionState, 'terminated;reason=timeout');
    assert.equal(await terminated, subscriber.C.FINAL_NOTIFY_RECEIVED);
  });
});

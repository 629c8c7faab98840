// Resource lists (RFC 4662): the list URIs, the multipart/related RLMI + PIDF document, the
// contact-list repository, and the presence package serving a user's contact list.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, afterEach, describe, it } from 'node:test';
import pino from 'pino';
import { EventService, ManualTimers, Subscription } from '../../src/events/index.ts';
import { addContact, listContacts, listsWith, MAX_CONTACTS, removeContact } from '../../src/presence/contacts.ts';
import { buildListDocument, hasOptionTag, listOwner, listResource } from '../../src/presence/lists.ts';
import { buildPidf, databaseBlockList, databaseContactLists, OFFLINE, PresenceService } from '../../src/presence/index.ts';
import { addToContacts } from '../../src/presence/policy.ts';
import { addBlock } from '../../src/presence/blocks.ts';
import type { Binding } from '../../src/registrar/index.ts';
import type { SipContext } from '../../src/router/context.ts';
import { createResponseMessage, Headers } from '../../src/sip/index.ts';
import type { ClientTransactionUser, Flow, SipRequest, SipResponse } from '../../src/sip/index.ts';
import { closeTestPostgres, ENGINES } from '../harness/engines.ts';
import type { EngineUnderTest } from '../harness/engines.ts';
import { closePresenceDatabases, presenceDatabase, quiet, removeUserRow, until } from './presence-database.ts';

const D = 'parley.test';
const T0 = 1_700_000_000_000;

/** The parts of a multipart body: headers (lower-cased names) and content. */
function parts(contentType: string, body: string): Array<{ headers: Record<string, string>; content: string }> {
  const boundary = /boundary="([^"]+)"/.exec(contentType)?.[1];
  assert.ok(boundary, contentType);
  const [, ...rest] = body.split(`--${boundary}`);
  assert.equal(rest.pop(), '--\r\n', 'the close delimiter ends the body');
  return rest.map((p) => {
    const [head, content] = splitOnce(p.replace(/^\r\n/, ''));
    const headers = Object.fromEntries(head.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    return { headers, content: content.replace(/\r\n$/, '') };
  });
}

function splitOnce(text: string): [string, string] {
  const i = text.indexOf('\r\n\r\n');
  return [text.slice(0, i), text.slice(i + 4)];
}

describe('resource list URIs and documents', () => {
  it('names each user a list URI that no user can have', () => {
    assert.equal(listResource(`alice@${D}`), `alice+contacts@${D}`);
    assert.equal(listOwner(`alice+contacts@${D}`), `alice@${D}`);
    assert.equal(listOwner(`alice@${D}`), undefined);
    assert.equal(listOwner(`+contacts@${D}`), undefined);
    assert.equal(hasOptionTag(['100rel, EventList'], 'eventlist'), true);
    assert.equal(hasOptionTag(['eventlists'], 'eventlist'), false);
  });

  it('builds multipart/related: the RLMI document first, then one PIDF per member, named by cid', () => {
    const members = [
      { uri: `sip:bob@${D}`, name: 'Bob & Co', pidf: buildPidf(`sip:bob@${D}`, { state: 'Busy', note: 'meeting' }) },
      { uri: `sip:carol@${D}`, name: null, pidf: buildPidf(`sip:carol@${D}`, OFFLINE) },
    ];
    const doc = buildListDocument({ listUri: `sip:alice+contacts@${D}`, domain: D, version: 3, seed: 'sub-1', members });
    const start = /start="<([^>]+)>"/.exec(doc.contentType)?.[1];
    assert.match(doc.contentType, /^multipart\/related;type="application\/rlmi\+xml";start="<[^>]+>";boundary="[^"]+"$/);
    const [rlmi, bob, carol, ...none] = parts(doc.contentType, doc.body);
    assert.equal(none.length, 0);
    assert.equal(rlmi?.headers['content-id'], `<${start}>`);
    assert.equal(rlmi?.headers['content-type'], 'application/rlmi+xml;charset="UTF-8"');
    assert.match(rlmi!.content, /<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:alice\+contacts@parley\.test" version="3" fullState="true">/);
    assert.match(rlmi!.content, /<resource uri="sip:bob@parley\.test">\r\n    <name>Bob &amp; Co<\/name>/);
    const cids = [...rlmi!.content.matchAll(/<instance id="[^"]+" state="active" cid="([^"]+)"\/>/g)].map((m) => m[1]);
    assert.deepEqual(cids.map((c) => `<${c}>`), [bob?.headers['content-id'], carol?.headers['content-id']]);
    assert.equal(bob?.headers['content-type'], 'application/pidf+xml;charset="UTF-8"');
    assert.equal(bob?.content, members[0]!.pidf, 'each part holds its document exactly');
    assert.match(carol!.content, /<basic>closed<\/basic>/);

    const again = buildListDocument({ listUri: `sip:alice+contacts@${D}`, domain: D, version: 3, seed: 'sub-1', members });
    assert.equal(again.body, doc.body, 'the same state gives the same bytes');
    const next = buildListDocument({ listUri: `sip:alice+contacts@${D}`, domain: D, version: 4, seed: 'sub-1', members });
    assert.notEqual(next.body, doc.body);
    assert.equal(next.key, doc.key, 'the version is not part of what "unchanged" compares');
    const empty = buildListDocument({ listUri: `sip:alice+contacts@${D}`, domain: D, version: 0, seed: 'sub-1', members: [] });
    assert.equal(parts(empty.contentType, empty.body).length, 1);
  });

  it('picks a boundary that no part contains', () => {
    const first = buildListDocument({ listUri: 'sip:a+contacts@x', domain: 'x', version: 0, seed: 's', members: [] });
    const boundary = /boundary="([^"]+)"/.exec(first.contentType)![1]!;
    const hostile = buildListDocument({ listUri: 'sip:a+contacts@x', domain: 'x', version: 0, seed: 's', members: [{ uri: 'sip:b@x', name: boundary, pidf: `--${boundary}` }] });
    assert.notEqual(/boundary="([^"]+)"/.exec(hostile.contentType)![1], boundary);
    assert.equal(parts(hostile.contentType, hostile.body).length, 2);
  });
});

afterEach(closePresenceDatabases);
after(closeTestPostgres);

function database(engine: EngineUnderTest, ...users: string[]) {
  return presenceDatabase(engine, users.map((u) => ({ address: `${u}@${D}`, displayName: u === 'bob' ? 'Bob Builder' : null })));
}

for (const engine of ENGINES) {
describe(`contact lists repository on ${engine.name}`, () => {
  it('adds users of the organisation, lists them with display names, and forgets removed users', async () => {
    const db = await database(engine, 'alice', 'bob', 'carol');
    const users = { userExists: async (a: string) => [`alice@${D}`, `bob@${D}`, `carol@${D}`].includes(a) };
    assert.equal((await addContact(db, `alice@${D}`, `bob@${D}`, T0)).created, true);
    assert.equal((await addContact(db, `alice@${D}`, `bob@${D}`, T0 + 1)).created, false);
    await addContact(db, `alice@${D}`, `carol@${D}`, T0);
    await addContact(db, `carol@${D}`, `bob@${D}`, T0);
    assert.deepEqual((await listContacts(db, `alice@${D}`)).map((c) => [c.member, c.displayName]), [[`bob@${D}`, 'Bob Builder'], [`carol@${D}`, null]]);
    assert.deepEqual((await listsWith(db, `bob@${D}`)).sort(), [`alice@${D}`, `carol@${D}`]);
    await assert.rejects(addContact(db, `alice@${D}`, `ghost@${D}`, T0), /foreign key/i);
    await assert.rejects(addToContacts(db, `alice@${D}`, `ghost@elsewhere.example`, T0, users), { code: 'USER_NOT_FOUND' });
    assert.equal(await removeContact(db, `alice@${D}`, `carol@${D}`), true);
    assert.equal(await removeContact(db, `alice@${D}`, `carol@${D}`), false);
    await removeUserRow(db, `bob@${D}`);
    assert.deepEqual(await listContacts(db, `alice@${D}`), []);
    assert.ok(MAX_CONTACTS >= 100);
  });

  it('keeps lists in memory until a list or a user changes', async () => {
    const db = await database(engine, 'alice', 'bob');
    const lists = databaseContactLists(db);
    await addContact(db, `alice@${D}`, `bob@${D}`, T0);
    assert.deepEqual((await lists.membersOf(`alice@${D}`)).map((c) => c.displayName), ['Bob Builder']);
    assert.deepEqual(await lists.listsWith(`bob@${D}`), [`alice@${D}`]);
    // a member's display name is part of the list: a user's change drops what is kept too
    await db.run('UPDATE users SET display_name = ? WHERE address = ?', ['Robert', `bob@${D}`]);
    await until(async () => (await lists.membersOf(`alice@${D}`))[0]?.displayName === 'Robert', 'the new display name');
    await removeContact(db, `alice@${D}`, `bob@${D}`);
    lists.forget?.();
    assert.deepEqual(await lists.membersOf(`alice@${D}`), []);
    assert.deepEqual(await lists.listsWith(`bob@${D}`), []);
  });
});

describe(`the presence package serving contact lists on ${engine.name}`, () => {
  const logger = pino({ level: 'silent' });
  const FLOW = { id: 'tcp#1', protocol: 'tcp' as const, local: { address: '127.0.0.1', port: 5060 }, remote: { address: '127.0.0.1', port: 40000 } };

  function request(headers: Record<string, string>): SipRequest {
    const h = new Headers();
    for (const [name, value] of Object.entries(headers)) h.append(name, value);
    return { method: 'SUBSCRIBE', uri: `sip:alice+contacts@${D}`, headers: h, body: Buffer.alloc(0) } as unknown as SipRequest;
  }

  async function setup() {
    const db = await database(engine, 'alice', 'bob', 'carol');
    await addContact(db, `alice@${D}`, `bob@${D}`, T0);
    await addContact(db, `alice@${D}`, `carol@${D}`, T0);
    const clock = new ManualTimers(T0);
    const sent: Array<{ request: SipRequest; user: ClientTransactionUser }> = [];
    let registered = new Set<string>();
    const registrations = new EventEmitter<{ changed: [aor: string] }>();
    const ctx = {
      domain: D, product: 'Parley/test', logger, now: clock.now, registrations,
      userExists: (a: string) => [`alice@${D}`, `bob@${D}`, `carol@${D}`].includes(a),
      transactions: { sendRequest: (r: SipRequest, _flow: Flow, user: ClientTransactionUser) => void sent.push({ request: r, user }) },
      resolveFlow: () => ({ ...FLOW, reliable: true, closed: false, send: () => true }),
      location: { lookup: async (aor: string) => (registered.has(aor) ? [{ aor, contact: `sip:${aor}`, userAgent: null, expiresAt: T0 + 300_000, flow: FLOW } as Binding] : []) },
    } as unknown as SipContext;
    const presence = new PresenceService({ timers: clock, blocks: databaseBlockList(db), contacts: databaseContactLists(db) });
    const events = new EventService({ packages: [presence], timers: clock });
    events.start(ctx);
    const sub = new Subscription({
      watcher: `alice@${D}`, package: 'presence', resource: `alice+contacts@${D}`, event: 'presence', flow: FLOW, expiresAt: T0 + 3_600_000,
      dialog: {
        callId: 'list-1', localTag: 'srv', remoteTag: 'cli', localHeader: `<sip:alice+contacts@${D}>;tag=srv`, remoteHeader: `<sip:alice@${D}>;tag=cli`,
        remoteTarget: `sip:alice@127.0.0.1:40000;transport=tcp`, routeSet: [], remoteCSeq: 1,
      },
    });
    events.subscriptions.add(sub);
    const answer = () => {
      for (const s of sent.splice(0)) s.user.onFinal(createResponseMessage(200, 'OK') as SipResponse);
    };
    const shown = (r: SipRequest) => {
      const [rlmi, ...members] = parts(r.headers.get('content-type') ?? '', r.body.toString('utf8'));
      return {
        version: Number(/version="(\d+)"/.exec(rlmi!.content)?.[1]),
        states: members.map((m) => `${/entity="sip:([^@]+)@/.exec(m.content)?.[1]}:${/<basic>(\w+)<\/basic>/.exec(m.content)?.[1]}`),
      };
    };
    const setRegistered = (users: string[]) => {
      registered = new Set(users.map((u) => `${u}@${D}`));
    };
    return { ctx, db, presence, events, sub, sent, answer, shown, registrations, setRegistered };
  }

  it('authorizes only the owner, with Supported: eventlist (421 with Require) and an Accept that reads lists (406)', async () => {
    const { ctx, presence, events } = await setup();
    assert.equal(await presence.hasResource(ctx, `alice+contacts@${D}`), true);
    assert.equal(await presence.hasResource(ctx, `ghost+contacts@${D}`), false);
    assert.equal(await presence.hasResource(ctx, `bob@${D}`), true);
    const listAccept = 'multipart/related, application/rlmi+xml, application/pidf+xml';
    assert.equal(presence.authorize(ctx, `alice@${D}`, `alice+contacts@${D}`, request({ supported: 'eventlist', accept: listAccept })), 'ok');
    assert.equal(presence.authorize(ctx, `alice@${D}`, `alice+contacts@${D}`, request({ supported: 'eventlist' })), 'ok', 'no Accept: the defaults');
    assert.deepEqual(presence.authorize(ctx, `bob@${D}`, `alice+contacts@${D}`, request({ supported: 'eventlist' })), { status: 403, warning: `the contact list alice+contacts@${D} is alice@${D}'s alone` });
    const missing = presence.authorize(ctx, `alice@${D}`, `alice+contacts@${D}`, request({ accept: listAccept }));
    assert.ok(missing !== 'ok' && missing.status === 421);
    assert.deepEqual(missing.headers, [['Require', 'eventlist']]);
    const pidfOnly = presence.authorize(ctx, `alice@${D}`, `alice+contacts@${D}`, request({ supported: 'eventlist', accept: 'application/pidf+xml' }));
    assert.ok(pidfOnly !== 'ok' && pidfOnly.status === 406);
    assert.equal(presence.authorize(ctx, `bob@${D}`, `carol@${D}`, request({})), 'ok', 'a user is not a list');
    events.close();
  });

  it("NOTIFYs the whole list, version by version, when a member changes or the list does; blocks apply", async () => {
    const { db, presence, events, sub, sent, answer, shown, registrations, setRegistered } = await setup();
    events.notifier.notify(sub);
    await quiet(presence, events);
    assert.equal(sent[0]?.request.headers.get('require'), 'eventlist');
    assert.equal(sent[0]?.request.headers.get('event'), 'presence');
    assert.deepEqual(shown(sent[0]!.request), { version: 0, states: ['bob:closed', 'carol:closed'] });
    answer();

    setRegistered(['bob']);
    registrations.emit('changed', `bob@${D}`);
    await quiet(presence, events);
    assert.deepEqual(shown(sent[0]!.request), { version: 1, states: ['bob:open', 'carol:closed'] });
    answer();
    registrations.emit('changed', `bob@${D}`);
    await quiet(presence, events);
    assert.equal(sent.length, 0, 'nothing changed: no NOTIFY, and no version spent');

    await removeContact(db, `alice@${D}`, `carol@${D}`);
    presence.contactsChanged(`alice@${D}`);
    await quiet(presence, events);
    assert.deepEqual(shown(sent[0]!.request), { version: 2, states: ['bob:open'] });
    answer();

    await addBlock(db, `bob@${D}`, `alice@${D}`, T0);
    await presence.blocksChanged();
    await quiet(presence, events);
    assert.deepEqual(shown(sent[0]!.request), { version: 3, states: ['bob:closed'] }, 'bob blocked alice: her list shows him Offline');
    answer();

    const inspection = await presence.inspect(`bob@${D}`);
    assert.deepEqual(inspection.watchers.map((w) => [w.watcher, w.viaList, w.blocked]), [[`alice@${D}`, true, true]]);

    // a refresh sends the state again, with the next version
    events.notifier.notify(sub);
    await quiet(presence, events);
    assert.equal(shown(sent[0]!.request).version, 4);
    events.close();
  });
});
}

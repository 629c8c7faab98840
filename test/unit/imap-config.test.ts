// `mailboxes.servers.NAME` with "kind": "imap" (src/server/config.ts), what check-config reads of
// its files, and the routing it makes (src/offline/connectors.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ImapMailboxConnector } from '../../src/mailbox/index.ts';
import type { MailboxConnector } from '../../src/mailbox/index.ts';
import { createMailboxRouting } from '../../src/offline/index.ts';
import { checkStartup } from '../../src/server/check-config.ts';
import { loadConfig } from '../../src/server/config.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'parley-imap-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, content);
  return p;
}
const config = (server: object) => file(`c${Math.random().toString(36).slice(2)}.json`, JSON.stringify({ dataDir: path.join(dir, 'data'), mailboxes: { servers: { mail: server }, domains: { 'parley.test': 'mail' } } }));
const load = (server: object) => loadConfig(config(server), {});
const master = { kind: 'imap', url: 'imaps://mail.example.com', username: 'parley', password: 'pw' };

describe('IMAP mailbox servers in the config', () => {
  it('takes an imaps:// server with a master user, and STARTTLS or a loopback imap:// one', () => {
    assert.equal(load(master).mailboxes.servers?.mail?.kind, 'imap');
    load({ ...master, url: 'imap://mail.example.com' });
    load({ ...master, url: 'imap://127.0.0.1:1143', starttls: false });
    load({ ...master, signIn: 'authzid', folder: 'Parley/Missed', timeout: 10, maxConnections: 4, masterSeparator: undefined });
    load({ kind: 'imap', url: 'imaps://mail.example.com', signIn: 'per-user', credentials: { 'alice@parley.test': 'a-pw', 'bob@parley.test': { username: 'bob', password: 'b-pw' } } });
  });

  it('refuses cleartext off loopback, a bad URL, an unknown kind and half a sign-in, saying what to write', () => {
    assert.throws(() => load({ ...master, url: 'imap://mail.example.com', starttls: false }), /mailboxes\.servers\.mail\.url: imap:\/\/mail\.example\.com is not a loopback address, so the connection must be protected: use imaps:\/\/ or leave starttls on/);
    assert.throws(() => load({ ...master, url: 'https://mail.example.com' }), /must start with imaps:\/\/ \(TLS\) or imap:\/\/ \(STARTTLS\)/);
    assert.throws(() => load({ ...master, url: 'imaps://u:p@mail.example.com/INBOX' }), /credentials and the folder are separate settings/);
    assert.throws(() => load({ ...master, kind: 'pop3' }), /mailboxes\.servers\.mail\.kind must be ews .* graph .* or imap \(an IMAP server\), not "pop3"/);
    assert.throws(() => load({ kind: 'imap', url: 'imaps://mail.example.com', password: 'pw' }), /needs username \(the master user\)/);
    assert.throws(() => load({ ...master, passwordFile: '/etc/parley/imap.pw' }), /needs exactly one of password and passwordFile/);
    assert.throws(() => load({ kind: 'imap', url: 'imaps://mail.example.com', signIn: 'per-user' }), /needs exactly one of credentials and credentialsFile/);
    assert.throws(() => load({ ...master, signIn: 'per-user', credentialsFile: '/x' }), /username is for a master or authzid sign-in/);
    assert.throws(() => load({ ...master, signIn: 'authzid', masterSeparator: '*' }), /masterSeparator is for signIn master only/);
    assert.throws(() => load({ ...master, folder: 'a\nb' }), /must be a folder name/);
    assert.throws(() => load({ ...master, url: 'imaps://mail.example.com', kind: 'imap', access: 'delegate' }), /unknown setting config\.mailboxes\.servers\.mail\.access/);
  });

  it('check-config reads the credentials file and the CA, and says what is wrong with them', () => {
    const creds = file('creds.json', JSON.stringify({ 'alice@parley.test': 'a-pw' }));
    const perUser = { kind: 'imap', url: 'imaps://mail.example.com', signIn: 'per-user', credentialsFile: creds };
    assert.match(checkStartup(load(perUser)).join('\n'), /mailboxes: embedded and mail \(IMAP\)/);
    assert.throws(() => checkStartup(load({ ...perUser, credentialsFile: file('bad.json', '["x"]') })), /credentialsFile: .* must be a JSON object of mailbox address → password/);
    assert.throws(() => checkStartup(load({ ...perUser, credentialsFile: file('garbled.json', '{') })), /credentialsFile: .* is not JSON/);
    assert.throws(() => checkStartup(load({ ...perUser, credentialsFile: path.join(dir, 'missing.json') })), /credentialsFile: cannot read .*ENOENT/);
    assert.throws(() => checkStartup(load({ ...master, ca: file('empty.pem', '') })), /mailboxes\.servers\.mail\.ca: .* holds no PEM certificate; the IMAP server's certificate could never be verified/);
    assert.throws(() => checkStartup(load({ ...master, password: undefined, passwordFile: path.join(dir, 'nope.pw') })), /mailboxes\.servers\.mail\.passwordFile: cannot read/);
  });

  it('routes the domain to an IMAP connector built from the files, and closes it', async () => {
    const pw = file('imap.pw', 'secret\n');
    const embedded = { deliver: async () => ({ itemId: 'x', created: true }), missedSummary: async () => ({ total: 0, unread: 0 }) } satisfies MailboxConnector;
    const routing = createMailboxRouting(load({ ...master, password: undefined, passwordFile: pw }).mailboxes, embedded);
    const picked = routing.connectorFor('alice@parley.test');
    assert.equal(picked.name, 'mail');
    assert.ok(picked.connector instanceof ImapMailboxConnector);
    assert.equal(routing.connectorFor('bob@elsewhere.test').connector, embedded);
    await routing.close();
  });
});

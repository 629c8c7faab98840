// mailboxes.servers.NAME.kind: ews (the default, so configs from before keep working) or graph,
// each checked for what it needs; the routing builds the connector of each kind; check-config
// reads the secret and certificate files the server reads when it starts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { EmbeddedMailboxConnector, EwsMailboxConnector, GraphMailboxConnector } from '../../src/mailbox/index.ts';
import { createMailboxRouting, mailboxServerOf } from '../../src/offline/index.ts';
import { checkStartup } from '../../src/server/check-config.ts';
import { ConfigError, loadConfig } from '../../src/server/config.ts';
import { openMemoryDatabase, sqliteSql } from '../../src/storage/index.ts';
import { makeAppCertificate } from '../harness/graph-standin.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'parley-graph-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const CLIENT_ID = '6731de76-14a6-49ae-97bc-6eba6914391e';
const TENANT = 'b3c1e2f4-0000-4000-8000-123456789abc';

function config(servers: Record<string, unknown>, extra: object = {}) {
  const p = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, JSON.stringify({ dataDir: path.join(dir, 'data'), mailboxes: { servers, ...extra } }));
  return loadConfig(p, {});
}
const graph = (over: object = {}) => ({ kind: 'graph', tenantId: TENANT, clientId: CLIENT_ID, clientSecret: 's3cret', ...over });

describe('mailboxes.servers kinds', () => {
  it('a server without kind is EWS, as before', () => {
    const c = config({ exchange: { url: 'https://mail.example.com/EWS/Exchange.asmx', username: 'svc', password: 'pw' } });
    assert.equal(c.mailboxes.servers?.exchange?.kind, undefined);
    assert.ok(config({ exchange: { kind: 'ews', url: 'https://mail.example.com/EWS/Exchange.asmx', username: 'svc', password: 'pw' } }));
  });

  it('graph: tenantId, clientId and one credential, a secret or a certificate with its key', () => {
    assert.equal(config({ online: graph() }).mailboxes.servers?.online?.kind, 'graph');
    assert.ok(config({ online: graph({ clientSecret: undefined, clientSecretFile: '/etc/parley/graph.secret' }) }));
    assert.ok(config({ online: graph({ clientSecret: undefined, certificateFile: '/etc/parley/app.pem', privateKeyFile: '/etc/parley/app.key' }) }));
    assert.throws(() => config({ online: graph({ clientId: undefined }) }), /mailboxes\.servers\.online needs tenantId and clientId/);
    assert.throws(() => config({ online: graph({ clientId: 'my-app' }) }), /clientId must be the application \(client\) id/);
    assert.throws(() => config({ online: graph({ clientSecretFile: '/x' }) }), /needs exactly one credential/);
    assert.throws(() => config({ online: graph({ clientSecret: undefined }) }), /needs exactly one credential/);
    assert.throws(() => config({ online: graph({ certificateFile: '/etc/parley/app.pem' }) }), /needs exactly one credential/);
    assert.throws(() => config({ online: graph({ clientSecret: undefined, certificateFile: '/etc/parley/app.pem' }) }), /certificate credential needs certificateFile and one of privateKey and privateKeyFile/);
    assert.throws(() => config({ online: graph({ graphUrl: 'http://graph.example/v1.0' }) }), /graphUrl must be an https:\/\/ URL/);
    assert.throws(() => config({ online: graph({ url: 'https://x' }) }), /unknown setting config\.mailboxes\.servers\.online\.url/);
  });

  it('an unknown kind names the three', () => {
    assert.throws(() => config({ x: { kind: 'pop3' } }), (e: unknown) => e instanceof ConfigError && /kind must be ews .*, graph .* or imap .*, not "pop3"/.test(e.message));
  });

  it('the routing builds each kind\'s connector; users win over domains', () => {
    const c = config({ online: graph(), exchange: { url: 'https://mail.example.com/EWS/Exchange.asmx', username: 'svc', password: 'pw' } }, { domains: { 'parley.test': 'online' }, users: { 'bob@parley.test': 'exchange', 'carol@parley.test': 'embedded' } });
    const embedded = new EmbeddedMailboxConnector({ sql: sqliteSql(openMemoryDatabase()), userExists: async () => true });
    const routing = createMailboxRouting(c.mailboxes, embedded);
    assert.ok(routing.connectorFor('alice@parley.test').connector instanceof GraphMailboxConnector);
    assert.ok(routing.connectorFor('bob@parley.test').connector instanceof EwsMailboxConnector);
    assert.equal(routing.connectorFor('carol@parley.test').connector, embedded);
    assert.equal(mailboxServerOf(c.mailboxes, 'dave@elsewhere.test'), 'embedded');
  });

  it('check-config reads the secret, key and certificate files, and names a missing one', () => {
    const cert = makeAppCertificate(dir);
    const secret = path.join(dir, 'graph.secret');
    writeFileSync(secret, 's3cret\n');
    const lines = checkStartup(config({ online: graph({ clientSecret: undefined, clientSecretFile: secret }), cert: graph({ clientSecret: undefined, certificateFile: cert.certificateFile, privateKeyFile: cert.privateKeyFile }) }));
    assert.ok(lines.includes('mailboxes: embedded and online (Microsoft Graph), cert (Microsoft Graph)'), lines.join('\n'));
    assert.throws(() => checkStartup(config({ online: graph({ clientSecret: undefined, clientSecretFile: path.join(dir, 'missing.secret') }) })), /mailboxes\.servers\.online\.clientSecretFile: cannot read .*missing\.secret: ENOENT/);
    assert.throws(() => checkStartup(config({ online: graph({ clientSecret: undefined, certificateFile: secret, privateKeyFile: cert.privateKeyFile }) })), /mailboxes\.servers\.online\.certificateFile: .*holds no certificate/);
  });
});
